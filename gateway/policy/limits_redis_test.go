package policy

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/policy/counters"
)

// startRedisServer returns a Redis URL: REDIS_URL when set, else a
// throwaway redis-server (killed at cleanup); skips without one.
func startRedisServer(t *testing.T) string {
	t.Helper()
	if u := os.Getenv("REDIS_URL"); u != "" {
		return u
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed (apt-get install redis-server, or set REDIS_URL): skipping the Redis test")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	for range 100 {
		if c.Ping(context.Background()).Err() == nil {
			return "redis://" + addr
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("redis-server did not answer")
	return ""
}

// TestRedisTwoReplicas compiles the same policy in two Sets with two
// Redis stores, as two gateway replicas, and checks they enforce one
// limit together.
func TestRedisTwoReplicas(t *testing.T) {
	url := startRedisServer(t)
	prefix := "policy-test-" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"
	doc := `<policies><inbound><rate-limit calls="3" renewal-period="60" remaining-calls-header-name="X-Remaining" /></inbound></policies>`
	var replicas [2]*Pipeline
	for i := range replicas {
		store, err := counters.NewRedis(url, counters.RedisOptions{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		replicas[i] = limitSet(t, store, product, doc)
	}
	for i, want := range []string{"2", "1", "0"} {
		ctx, _ := do(t, replicas[i%2], call{sub: "s"})
		wantStatus(t, ctx, 200, "")
		if got := string(ctx.Response.Header.Peek("X-Remaining")); got != want {
			t.Errorf("call %d: X-Remaining %q, want %s", i, got, want)
		}
	}
	for i := range replicas {
		ctx, _ := do(t, replicas[i], call{sub: "s"})
		wantStatus(t, ctx, 429, "")
		if ctx.Response.Header.Peek("Retry-After") == nil {
			t.Error("no Retry-After")
		}
	}
	ctx, _ := do(t, replicas[0], call{sub: "other"})
	wantStatus(t, ctx, 200, "")
}
