package server

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// rawRequest writes req on a new connection and returns the status line.
func rawStatus(t *testing.T, addr string, req string, pause time.Duration) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	if pause > 0 {
		time.Sleep(pause)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil && line == "" {
		return "closed: " + err.Error()
	}
	return strings.TrimSpace(line)
}

func TestLimits(t *testing.T) {
	be := startBackend(t, nil)
	h := startGateway(t, snapshotFor(be.addr), func(o *Options) {
		o.MaxHeaderBytes = 8 << 10
		o.MaxBodyBytes = 1 << 20
		o.ReadTimeout = 500 * time.Millisecond
	})
	addr := h.g.HTTPAddr().String()

	t.Run("headers too large get 431", func(t *testing.T) {
		t.Parallel()
		big := strings.Repeat("a", 16<<10)
		got := rawStatus(t, addr, "GET /free/x HTTP/1.1\r\nHost: a\r\nX-Big: "+big+"\r\n\r\n", 0)
		if !strings.HasPrefix(got, "HTTP/1.1 431") {
			t.Errorf("status line %q, want 431", got)
		}
	})
	t.Run("declared body too large gets 413", func(t *testing.T) {
		t.Parallel()
		// A raw connection: the gateway answers from the declared length,
		// before the body arrives; an HTTP client still sending the body
		// could see the connection close before it reads the answer.
		got := rawStatus(t, addr, "POST /echo/upload HTTP/1.1\r\nHost: a\r\nOcp-Apim-Subscription-Key: primary-key-0001\r\nContent-Length: 2097152\r\n\r\n"+strings.Repeat("x", 16<<10), 0)
		if !strings.HasPrefix(got, "HTTP/1.1 413") {
			t.Errorf("status line %q, want 413", got)
		}
	})
	t.Run("chunked body too large gets 413", func(t *testing.T) {
		t.Parallel()
		chunk := strings.Repeat("x", 1200<<10)
		got := rawStatus(t, addr, "POST /echo/upload HTTP/1.1\r\nHost: a\r\nOcp-Apim-Subscription-Key: primary-key-0001\r\nTransfer-Encoding: chunked\r\n\r\n"+
			fmt.Sprintf("%x\r\n", len(chunk))+chunk+"\r\n", 0)
		if !strings.HasPrefix(got, "HTTP/1.1 413") {
			t.Errorf("status line %q, want 413", got)
		}
	})
	t.Run("body within the limit passes", func(t *testing.T) {
		t.Parallel()
		body := bytes.Repeat([]byte("y"), 512<<10)
		r := do(t, "POST", h.url+"/echo/upload", map[string]string{"Ocp-Apim-Subscription-Key": "primary-key-0001"}, io.MultiReader(bytes.NewReader(body)))
		if r.status != 200 {
			t.Fatalf("got %d", r.status)
		}
		if e := decodeEcho(t, r); len(e.Body) != len(body) {
			t.Errorf("backend got %d bytes, want %d", len(e.Body), len(body))
		}
	})
	t.Run("slow client gets 408", func(t *testing.T) {
		t.Parallel()
		got := rawStatus(t, addr, "GET /free/x HTTP/1.1\r\nHost: a\r\n", 0) // headers never finish
		if !strings.HasPrefix(got, "HTTP/1.1 408") {
			t.Errorf("status line %q, want 408", got)
		}
	})
	t.Run("malformed request gets 400", func(t *testing.T) {
		t.Parallel()
		got := rawStatus(t, addr, "BROKEN\r\n\r\n", 0)
		if !strings.HasPrefix(got, "HTTP/1.1 400") {
			t.Errorf("status line %q, want 400", got)
		}
	})
}

func TestConnectionLimits(t *testing.T) {
	be := startBackend(t, nil)
	for _, tc := range []struct {
		name   string
		mutate func(*Options)
		want   string
	}{
		{name: "per client IP gets 429", mutate: func(o *Options) { o.MaxConnsPerIP = 2 }, want: "HTTP/1.1 429"},
		{name: "in total gets 503", mutate: func(o *Options) { o.MaxConns = 2 }, want: "HTTP/1.1 503"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := startGateway(t, snapshotFor(be.addr), tc.mutate)
			addr := h.g.HTTPAddr().String()
			// Two connections held open mid-request.
			for range 2 {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				_, _ = c.Write([]byte("GET /free/x HTTP/1.1\r\n"))
			}
			time.Sleep(100 * time.Millisecond)
			got := rawStatus(t, addr, "GET /free/x HTTP/1.1\r\nHost: a\r\n\r\n", 0)
			if !strings.HasPrefix(got, tc.want) {
				t.Errorf("third connection: %q, want %s", got, tc.want)
			}
		})
	}
}

// Bodies stream through the gateway in both directions: the backend sees
// the start of a request body before the client has sent the rest, and the
// client sees the start of a response before the backend has finished.
func TestStreaming(t *testing.T) {
	firstChunkSeen := make(chan struct{})
	finishResponse := make(chan struct{})
	be := startBackend(t, func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Path()) {
		case "/base/upload":
			r := ctx.RequestBodyStream()
			buf := make([]byte, 128<<10)
			if _, err := io.ReadFull(r, buf); err == nil && bytes.Count(buf, []byte("a")) == len(buf) {
				close(firstChunkSeen)
			}
			rest, _ := io.ReadAll(r)
			ctx.SetBodyString(fmt.Sprintf("got %d more bytes", len(rest)))
		case "/base/download":
			ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
				_, _ = w.WriteString(strings.Repeat("a", 64<<10))
				_ = w.Flush()
				<-finishResponse
				_, _ = w.WriteString("end")
			})
		}
	})
	h := startGateway(t, snapshotFor(be.addr), nil)

	pr, pw := io.Pipe()
	go func() {
		// More than any buffer on the way (socket, bufio, fasthttp's
		// pre-read), less than the whole body.
		_, _ = pw.Write(bytes.Repeat([]byte("a"), 256<<10))
		select {
		case <-firstChunkSeen:
		case <-time.After(5 * time.Second):
		}
		_, _ = pw.Write(bytes.Repeat([]byte("b"), 100<<10))
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", h.url+"/echo/upload", pr)
	req.Header.Set("Ocp-Apim-Subscription-Key", "primary-key-0001")
	resp, err := client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	select {
	case <-firstChunkSeen:
	default:
		t.Fatalf("the backend did not see the first part of the body before the client sent the rest: request body buffered (answer %d %q)", resp.StatusCode, b)
	}
	if string(b) != fmt.Sprintf("got %d more bytes", 128<<10+100<<10) {
		t.Errorf("upload answer %q", b)
	}

	resp, err = client().Get(h.url + "/echo/download?subscription-key=primary-key-0001")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, 64<<10)
	done := make(chan error, 1)
	go func() { _, err := io.ReadFull(resp.Body, first); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the first 64 KiB did not arrive while the backend was still writing: response body buffered")
	}
	close(finishResponse)
	rest, _ := io.ReadAll(resp.Body)
	if string(rest) != "end" {
		t.Errorf("tail %q", rest)
	}
}
