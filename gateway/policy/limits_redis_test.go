package policy

import (
	"strconv"
	"testing"
	"time"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/internal/redistest"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/policy/counters"
)

// TestRedisTwoReplicas compiles the same policy in two Sets with two
// Redis stores, as two gateway replicas, and checks they enforce one
// limit together.
func TestRedisTwoReplicas(t *testing.T) {
	url := redistest.Start(t)
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
