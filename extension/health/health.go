// Package health serves the agent's probes and metrics on one listener
// (:9091 by default): /healthz is 200 while the process runs, /readyz is 200
// once the agent has a configuration to serve, /metrics is Prometheus text.
package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ReadyFunc reports readiness and a small JSON-encodable detail.
type ReadyFunc func() (ready bool, detail any)

// MetricsFunc writes the metrics in Prometheus text format (see Write*).
type MetricsFunc func(w io.Writer)

// Server is the probe and metrics listener.
type Server struct {
	Ready   ReadyFunc
	Metrics MetricsFunc
	// ShutdownTimeout bounds the graceful shutdown (default 3s).
	ShutdownTimeout time.Duration

	ln net.Listener
}

// Handler returns the probe and metrics routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		ready, detail := true, any(nil)
		if s.Ready != nil {
			ready, detail = s.Ready()
		}
		code := http.StatusOK
		if !ready {
			code = http.StatusServiceUnavailable
		}
		writeJSON(w, code, detail)
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		if s.Metrics != nil {
			s.Metrics(w)
		}
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// Listen binds addr; call it before Serve to learn the address (":0").
func (s *Server) Listen(addr string) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s.ln = ln
	return ln.Addr(), nil
}

// Serve serves on the listener bound by Listen until ctx is done, then shuts
// down gracefully within ShutdownTimeout. It returns nil after a shutdown.
func (s *Server) Serve(ctx context.Context) error {
	if s.ln == nil {
		return errors.New("health: Serve before Listen")
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	timeout := s.ShutdownTimeout
	if timeout <= 0 {
		timeout = 3 * time.Second
	}
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = e
	}
	return err
}

// Sample is one line of a metric family: label pairs (name, value, ...) and a value.
type Sample struct {
	Labels []string
	Value  float64
}

// WriteMetric writes one metric family in Prometheus text format; typ is
// "counter" or "gauge".
func WriteMetric(w io.Writer, name, typ, help string, samples ...Sample) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	for _, s := range samples {
		var b strings.Builder
		b.WriteString(name)
		if len(s.Labels) > 1 {
			b.WriteByte('{')
			for i := 0; i+1 < len(s.Labels); i += 2 {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(s.Labels[i])
				b.WriteString(`="`)
				b.WriteString(escapeLabel(s.Labels[i+1]))
				b.WriteByte('"')
			}
			b.WriteByte('}')
		}
		b.WriteByte(' ')
		b.WriteString(strconv.FormatFloat(s.Value, 'g', -1, 64))
		b.WriteByte('\n')
		io.WriteString(w, b.String())
	}
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func escapeLabel(v string) string { return labelEscaper.Replace(v) }
