package policy

import (
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/internal/redistest"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/policy/cachestore"
)

func newRedisCache(t *testing.T, url, prefix string) *cachestore.Redis {
	t.Helper()
	store, err := cachestore.NewRedis(url, cachestore.RedisOptions{Prefix: prefix, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

func TestCacheRedisStore(t *testing.T) {
	url := redistest.Start(t)
	prefix := "cache-test-" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"
	a := newRedisCache(t, url, prefix)
	b := newRedisCache(t, url, prefix)
	other := newRedisCache(t, url, prefix+"other:")
	type op struct {
		do      string // set, get, del, sleep
		store   *cachestore.Redis
		key     string
		val     string
		ttl     time.Duration
		want    string
		wantHit bool
	}
	tests := []struct {
		name string
		ops  []op
	}{
		{name: "miss", ops: []op{{do: "get", store: a, key: "absent"}}},
		{name: "hit", ops: []op{{do: "set", store: a, key: "k1", val: "v\x001", ttl: time.Minute}, {do: "get", store: a, key: "k1", want: "v\x001", wantHit: true}}},
		{name: "shared by stores with one prefix", ops: []op{{do: "set", store: a, key: "k2", val: "v2", ttl: time.Minute}, {do: "get", store: b, key: "k2", want: "v2", wantHit: true}}},
		{name: "separated by prefix", ops: []op{{do: "set", store: a, key: "k3", val: "v3", ttl: time.Minute}, {do: "get", store: other, key: "k3"}}},
		{name: "delete", ops: []op{{do: "set", store: a, key: "k4", val: "v4", ttl: time.Minute}, {do: "del", store: b, key: "k4"}, {do: "get", store: a, key: "k4"}}},
		{name: "ttl", ops: []op{{do: "set", store: a, key: "k5", val: "v5", ttl: 50 * time.Millisecond}, {do: "sleep", ttl: 150 * time.Millisecond}, {do: "get", store: a, key: "k5"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for i, o := range tc.ops {
				var err error
				switch o.do {
				case "set":
					err = o.store.Set(o.key, []byte(o.val), o.ttl)
				case "del":
					err = o.store.Delete(o.key)
				case "sleep":
					time.Sleep(o.ttl)
				case "get":
					var v []byte
					var ok bool
					v, ok, err = o.store.Get(o.key)
					if ok != o.wantHit || string(v) != o.want {
						t.Fatalf("op %d: get %q = %q, %v; want %q, %v", i, o.key, v, ok, o.want, o.wantHit)
					}
				}
				if err != nil {
					t.Fatalf("op %d: %v", i, err)
				}
			}
		})
	}
	if n := a.Errors(); n != 0 {
		t.Errorf("%d errors", n)
	}
}

// TestCacheRedisTwoSets compiles the same policies in two Sets with two
// Redis stores, as two gateway replicas: what one stores, the other finds.
func TestCacheRedisTwoSets(t *testing.T) {
	url := redistest.Start(t)
	prefix := "cache-test-" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"
	doc := `<policies>
		<inbound>
			<cache-lookup vary-by-developer="false" vary-by-developer-groups="false" caching-type="external">
				<vary-by-query-parameter>version</vary-by-query-parameter>
			</cache-lookup>
		</inbound>
		<outbound>
			<cache-store duration="60" />
			<cache-store-value key="@(&quot;last-&quot; + context.Request.Url.Query.GetValueOrDefault(&quot;version&quot;, &quot;&quot;))" value="@(context.Response.StatusCode)" duration="60" />
		</outbound>
	</policies>`
	lookup := `<policies><inbound><cache-lookup-value key="last-1" variable-name="status" caching-type="external" /></inbound></policies>`
	var replicas, readers [2]*Pipeline
	for i := range replicas {
		store := newRedisCache(t, url, prefix)
		replicas[i] = cacheSet(t, store, doc)
		readers[i] = cacheSet(t, store, lookup)
	}
	var calls int
	tests := []struct {
		name      string
		replica   int
		uri       string
		wantBody  string
		wantCache string
	}{
		{name: "replica 0 misses", replica: 0, uri: "/api/items?version=1", wantBody: "n=1", wantCache: "miss"},
		{name: "replica 1 hits what replica 0 stored", replica: 1, uri: "/api/items?version=1", wantBody: "n=1", wantCache: "hit"},
		{name: "replica 1 misses another version", replica: 1, uri: "/api/items?version=2", wantBody: "n=2", wantCache: "miss"},
		{name: "replica 0 hits it", replica: 0, uri: "/api/items?version=2", wantBody: "n=2", wantCache: "hit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, _ := cacheDo(t, replicas[tc.replica], cacheReq{uri: tc.uri}, 200, &calls)
			if got := string(ctx.Response.Body()); got != tc.wantBody {
				t.Errorf("body %q, want %q", got, tc.wantBody)
			}
			if got := CacheStatus(ctx); got != tc.wantCache {
				t.Errorf("Cache %q, want %q", got, tc.wantCache)
			}
		})
	}
	for i := range readers {
		_, r := cacheDo(t, readers[i], cacheReq{}, 200, &calls)
		v, ok := (exprVars{r}).Get("status")
		if !ok || v.String() != "200" {
			t.Errorf("replica %d: status variable %v %q", i, ok, v.String())
		}
	}
}

// TestCacheRedisDown checks that an unreachable Redis makes lookups miss
// and drops stores, counting the errors, while requests go through.
func TestCacheRedisDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	store, err := cachestore.NewRedis("redis://"+addr, cachestore.RedisOptions{Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	p := cacheSet(t, store, fmt.Sprintf(cacheResponseDoc, "none"))
	var calls int
	for i := range 2 {
		ctx, _ := cacheDo(t, p, cacheReq{}, 200, &calls)
		if ctx.Response.StatusCode() != 200 || CacheStatus(ctx) != "miss" {
			t.Fatalf("call %d: %d %s", i, ctx.Response.StatusCode(), CacheStatus(ctx))
		}
	}
	if calls != 2 {
		t.Errorf("%d backend calls, want 2", calls)
	}
	if n := store.Errors(); n < 4 {
		t.Errorf("%d errors counted, want 4 (two lookups, two stores)", n)
	}
}
