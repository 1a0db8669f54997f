package configsync

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/server"
)

// startGateway runs the real gateway on loopback, serving dir.
func startGateway(t *testing.T, dir string) string {
	t.Helper()
	opts := server.DefaultOptions()
	opts.ConfigPath = dir
	opts.HTTPAddr, opts.HTTPSAddr, opts.TelemetryAddr = "127.0.0.1:0", "", "127.0.0.1:0"
	opts.ShutdownDelay, opts.ShutdownTimeout = 0, time.Second
	g, err := server.New(opts, zerolog.Nop(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	<-g.Ready()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return "http://" + g.TelemetryAddr().String()
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func TestHeartbeatReportsTheGatewaysRevision(t *testing.T) {
	// The gateway serves v1 from its own folder while the agent publishes
	// v2 elsewhere: the heartbeat must tell what the gateway has loaded.
	gwDir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(gwDir, "snapshot.json"), []byte(goodV1), 0o644))
	tests := []struct {
		name      string
		telemetry string
		revision  string
		reachable bool
	}{
		{name: "gateway answers", telemetry: startGateway(t, gwDir), revision: "v1", reachable: true},
		{name: "gateway down", telemetry: closedAddr(t), revision: "v2", reachable: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			probe, err := NewGatewayProbe(tt.telemetry)
			if err != nil {
				t.Fatal(err)
			}
			f := newFake(t, reply{status: 200, body: goodV2, header: map[string]string{"ETag": `"e2"`}}, reply{status: 304})
			c, _ := f.client(t, testToken(t), Options{})
			a := &Agent{Client: c, Gateway: probe, Publisher: NewPublisher(t.TempDir()), Logger: zerolog.Nop(),
				Wait: -1, MinInterval: 10 * time.Millisecond, HeartbeatInterval: 20 * time.Millisecond}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 2)
			go func() { done <- a.Run(ctx) }()
			eventually(t, "v2 published", func() bool { return a.PublishedRevision() == "v2" })
			go func() { done <- a.RunHeartbeats(ctx) }()
			n := len(f.heartbeatRequests())
			eventually(t, "two more heartbeats", func() bool { return len(f.heartbeatRequests()) >= n+2 })
			cancel()
			for range 2 {
				must(t, <-done)
			}
			hbs := f.heartbeatRequests()
			hb := decodeHeartbeat(t, hbs[len(hbs)-1].body)
			if hb["configurationRevision"] != tt.revision || hb["gatewayReachable"] != tt.reachable {
				t.Fatalf("heartbeat %v, want revision %q and gatewayReachable %v", hb, tt.revision, tt.reachable)
			}
		})
	}
}

func TestNewGatewayProbeValidation(t *testing.T) {
	for _, bad := range []string{"", "127.0.0.1:9090", "ftp://127.0.0.1", "http://"} {
		if _, err := NewGatewayProbe(bad); err == nil {
			t.Errorf("NewGatewayProbe(%q) accepted", bad)
		}
	}
}

func TestWakeUsesTheNewCredentialAtOnce(t *testing.T) {
	// The endpoint holds long polls (it ignores ?wait and answers late);
	// after Wake the next request must go out without waiting for it.
	f := newFake(t, reply{status: 200, body: goodV1, header: map[string]string{"ETag": `"e1"`}}, reply{status: 401})
	cred := &swapCred{header: "GatewayKey old"}
	c, _ := f.client(t, cred, Options{})
	a := &Agent{Client: c, Publisher: NewPublisher(t.TempDir()), Logger: zerolog.Nop(),
		Wait: -1, MinInterval: time.Millisecond,
		// After the 401 the loop sleeps a long backoff; Wake must cut it.
		Backoff: Backoff{Base: time.Hour, Max: time.Hour}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	eventually(t, "the 401", func() bool { return a.Stats().Failures == 1 })
	cred.set("GatewayKey new")
	a.Wake()
	eventually(t, "a request with the new credential", func() bool {
		for _, r := range f.configRequests() {
			if r.header.Get("Authorization") == "GatewayKey new" {
				return true
			}
		}
		return false
	})
	cancel()
	must(t, <-done)
}
