// Command apim-probe is the HTTP check the chart's `helm test` pod runs: it
// GETs each URL until it answers with the expected status or the attempts
// run out. It ships in the product image so the test pulls no other image
// (clusters that install the extension may not reach public registries).
//
//	apim-probe [--attempts N] [--interval D] [--timeout D] [--status CODE] URL...
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

type options struct {
	attempts int
	interval time.Duration
	timeout  time.Duration
	status   int
	urls     []string
}

func parse(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("apim-probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.attempts, "attempts", 1, "tries per URL before failing")
	fs.DurationVar(&o.interval, "interval", 2*time.Second, "wait between tries")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Second, "time allowed for one request")
	fs.IntVar(&o.status, "status", http.StatusOK, "expected HTTP status")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.urls = fs.Args()
	if len(o.urls) == 0 {
		fmt.Fprintln(stderr, "apim-probe: at least one URL is required")
		return o, errors.New("no URL")
	}
	for _, u := range o.urls {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			fmt.Fprintf(stderr, "apim-probe: %q is not an http(s) URL\n", u)
			return o, errors.New("bad URL")
		}
	}
	if o.attempts < 1 {
		o.attempts = 1
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parse(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	client := &http.Client{Timeout: o.timeout}
	for _, u := range o.urls {
		if err := probe(ctx, client, u, o); err != nil {
			fmt.Fprintf(stderr, "apim-probe: %s: %v\n", u, err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: %d\n", u, o.status)
	}
	return 0
}

// probe tries u until it answers o.status; the error is the last failure.
func probe(ctx context.Context, client *http.Client, u string, o options) error {
	var last error
	for i := range o.attempts {
		if i > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(o.interval):
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			last = err
			continue
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode == o.status {
			return nil
		}
		last = fmt.Errorf("status %d, want %d (after %d attempt(s))", resp.StatusCode, o.status, i+1)
	}
	return last
}
