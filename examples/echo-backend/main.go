// Command echo-backend is the backend of the demo configuration and of the
// loopback benchmarks: it answers every request with a JSON description of
// what it received (method, path, query, headers), so a newcomer can see
// what the gateway forwarded, or, with --fixed-body, with a fixed body of
// the given size, which is what the benchmarks compare proxies on.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/valyala/fasthttp"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9080", "listen address")
	fixed := flag.Int("fixed-body", 0, "answer every request with this many bytes instead of an echo (0 = echo)")
	flag.Parse()

	handler := echo
	if *fixed > 0 {
		body := bytes.Repeat([]byte("x"), *fixed)
		handler = func(ctx *fasthttp.RequestCtx) {
			ctx.SetContentType("text/plain")
			ctx.SetBody(body)
		}
	}
	srv := &fasthttp.Server{
		Handler:                       handler,
		Name:                          "echo-backend",
		DisableHeaderNamesNormalizing: true,
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sig
		_ = srv.Shutdown()
	}()
	fmt.Fprintf(os.Stderr, "echo-backend listening on http://%s\n", *addr)
	if err := srv.ListenAndServe(*addr); err != nil {
		fmt.Fprintln(os.Stderr, "echo-backend:", err)
		os.Exit(1)
	}
}

type echoed struct {
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Query   string            `json:"query,omitempty"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body,omitempty"`
}

func echo(ctx *fasthttp.RequestCtx) {
	e := echoed{
		Method:  string(ctx.Method()),
		Path:    string(ctx.Request.URI().PathOriginal()),
		Query:   string(ctx.URI().QueryString()),
		Headers: map[string]string{},
		Body:    string(ctx.PostBody()),
	}
	for k, v := range ctx.Request.Header.All() {
		e.Headers[string(k)] = string(v)
	}
	ctx.SetContentType("application/json")
	enc := json.NewEncoder(ctx)
	enc.SetIndent("", "  ")
	_ = enc.Encode(e)
}
