package configsync

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/seed393f6fe3/apim-arc-gateway/extension/credentials"
	"github.com/seed393f6fe3/apim-arc-gateway/internal/logcapture"
)

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRunFailStatic(t *testing.T) {
	f := newFake(t, reply{status: 503})
	tok := testToken(t)
	c, _ := f.client(t, tok, Options{MaxRetries: 1})
	dir := t.TempDir()
	pub := NewPublisher(dir)
	if err := os.WriteFile(pub.Path(), []byte(goodV1), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &logcapture.Buffer{}
	a := &Agent{
		Client: c, Publisher: pub, Logger: zerolog.New(logs).Level(zerolog.DebugLevel),
		Identity:    Heartbeat{InstanceID: "pod-1", Hostname: "node-a", Version: "test"},
		Wait:        -1,
		MinInterval: time.Millisecond, HeartbeatInterval: 20 * time.Millisecond,
		Backoff: Backoff{Base: time.Millisecond, Max: 4 * time.Millisecond},
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 2)
	go func() { runErr <- a.Run(ctx) }()
	go func() { runErr <- a.RunHeartbeats(ctx) }()

	fileIs := func(want string) func() bool {
		return func() bool { b, _ := os.ReadFile(pub.Path()); return string(b) == want }
	}
	nReqs := func() int { return len(f.configRequests()) }
	assertFile := func(want string) {
		t.Helper()
		if !fileIs(want)() {
			b, _ := os.ReadFile(pub.Path())
			t.Fatalf("snapshot = %q, want %q", b, want)
		}
	}

	steps := []struct {
		name   string
		script []reply
		until  func() bool
		file   string
		status string
	}{
		{name: "endpoint down at start keeps the backup", script: nil, file: goodV1, status: StatusStale},
		{name: "recovery publishes v2",
			script: []reply{{status: 200, body: goodV2, header: map[string]string{"ETag": `"e2"`}}, {status: 304}},
			until:  fileIs(goodV2), file: goodV2, status: StatusSynced},
		{name: "outage keeps v2", script: []reply{{status: 503, header: map[string]string{"Retry-After": "0"}}}, file: goodV2, status: StatusStale},
		{name: "401 keeps v2", script: []reply{{status: 401}}, file: goodV2, status: StatusStale},
		{name: "404 keeps v2", script: []reply{{status: 404}}, file: goodV2, status: StatusStale},
		{name: "bad snapshot is rejected",
			script: []reply{{status: 200, body: badV3, header: map[string]string{"ETag": `"e3"`}}, {status: 304}},
			file:   goodV2, status: StatusStale},
		{name: "next good snapshot is published",
			script: []reply{{status: 200, body: goodV1, header: map[string]string{"ETag": `"e4"`}}, {status: 304}},
			until:  fileIs(goodV1), file: goodV1, status: StatusSynced},
	}
	for _, st := range steps {
		if st.script != nil {
			f.setScript(st.script...)
		}
		before := nReqs()
		if st.until != nil {
			eventually(t, st.name, st.until)
		}
		eventually(t, st.name+": more requests", func() bool { return nReqs() >= before+3 })
		assertFile(st.file)
		eventually(t, st.name+": status", func() bool { return a.HeartbeatBody().Status == st.status })
	}

	// After the rejection the agent polled with the rejected ETag.
	var sawRejectedTag bool
	for _, r := range f.configRequests() {
		if r.header.Get("If-None-Match") == `"e3"` {
			sawRejectedTag = true
		}
	}
	if !sawRejectedTag {
		t.Fatal("never polled with the rejected ETag")
	}
	eventually(t, "heartbeats", func() bool { return len(f.heartbeatRequests()) >= 2 })
	cancel()
	for range 2 {
		if err := <-runErr; err != nil {
			t.Fatal(err)
		}
	}

	hb := f.heartbeatRequests()
	last := decodeHeartbeat(t, hb[len(hb)-1].body)
	if last["instanceId"] != "pod-1" || last["hostname"] != "node-a" || last["tokenExpiresAt"] != tok.ExpiresAt().Format(time.RFC3339) {
		t.Fatalf("heartbeat %v", last)
	}
	first := decodeHeartbeat(t, hb[0].body)
	if first["configurationRevision"] != "v1" {
		t.Fatalf("first heartbeat should report the backup revision: %v", first)
	}

	out := logs.String()
	for _, want := range []string{"configsync", "keeping the last good snapshot", "configuration rejected", "$.bogus: unknown field", "published configuration snapshot"} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q", want)
		}
	}
	if strings.Contains(out, testSig) || strings.Contains(out, tok.Header()) {
		t.Fatal("token in logs")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("config dir holds %d entries", len(entries))
	}
}

func TestRunExpiredTokenBacksOff(t *testing.T) {
	f := newFake(t, reply{status: 200, body: goodV1})
	expired := expiredCred{}
	c, _ := f.client(t, expired, Options{})
	logs := &logcapture.Buffer{}
	a := &Agent{Client: c, Publisher: NewPublisher(t.TempDir()), Logger: zerolog.New(logs),
		Wait: -1, MinInterval: time.Millisecond, HeartbeatInterval: time.Hour,
		Backoff: Backoff{Base: 30 * time.Millisecond, Max: 50 * time.Millisecond}}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := a.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(f.configRequests()) + len(f.heartbeatRequests()); n != 0 {
		t.Fatalf("expired credential sent %d requests", n)
	}
	// Backed off: a handful of attempts in 200ms, not thousands.
	if n := strings.Count(logs.String(), "credential expired") + strings.Count(logs.String(), "expired at"); n == 0 || n > 20 {
		t.Fatalf("%d expired-credential log lines:\n%s", n, logs.String())
	}
}

type expiredCred struct{}

func (expiredCred) AuthorizationHeader(context.Context) (string, error) {
	return "", &credentials.ExpiredError{ExpiredAt: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)}
}
