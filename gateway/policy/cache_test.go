package policy

import (
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/config"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/expr"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/policy/cachestore"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/router"
)

func TestCacheMemoryStore(t *testing.T) {
	clock := newClock()
	m := cachestore.NewMemory(1<<20, clock.now)
	type op struct {
		do      string // set, get, del, advance
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
		{name: "miss", ops: []op{{do: "get", key: "absent"}}},
		{name: "hit", ops: []op{{do: "set", key: "a", val: "1", ttl: time.Minute}, {do: "get", key: "a", want: "1", wantHit: true}}},
		{name: "overwrite", ops: []op{{do: "set", key: "b", val: "1", ttl: time.Minute}, {do: "set", key: "b", val: "2", ttl: time.Minute}, {do: "get", key: "b", want: "2", wantHit: true}}},
		{name: "ttl expires", ops: []op{{do: "set", key: "c", val: "1", ttl: time.Second}, {do: "advance", ttl: 999 * time.Millisecond}, {do: "get", key: "c", want: "1", wantHit: true}, {do: "advance", ttl: time.Millisecond}, {do: "get", key: "c"}}},
		{name: "no ttl never expires", ops: []op{{do: "set", key: "d", val: "1"}, {do: "advance", ttl: 1000 * time.Hour}, {do: "get", key: "d", want: "1", wantHit: true}}},
		{name: "delete", ops: []op{{do: "set", key: "e", val: "1", ttl: time.Minute}, {do: "del", key: "e"}, {do: "get", key: "e"}}},
		{name: "too large is not stored", ops: []op{{do: "set", key: "f", val: strings.Repeat("x", 1<<20), ttl: time.Minute}, {do: "get", key: "f"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for i, o := range tc.ops {
				switch o.do {
				case "set":
					_ = m.Set(o.key, []byte(o.val), o.ttl)
				case "del":
					_ = m.Delete(o.key)
				case "advance":
					clock.advance(o.ttl)
				case "get":
					v, ok, err := m.Get(o.key)
					if err != nil || ok != o.wantHit || string(v) != o.want {
						t.Fatalf("op %d: get %q = %q, %v, %v; want %q, %v", i, o.key, v, ok, err, o.want, o.wantHit)
					}
				}
			}
		})
	}
}

func TestCacheMemoryEvictionBound(t *testing.T) {
	const budget = 64 << 10
	m := cachestore.NewMemory(budget, nil)
	val := make([]byte, 1000)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				k := "k" + strconv.Itoa(g) + "-" + strconv.Itoa(i)
				_ = m.Set(k, val, time.Minute)
				if v, ok, _ := m.Get(k); ok && len(v) != len(val) {
					t.Errorf("get %s: %d bytes", k, len(v))
				}
				_, _, _ = m.Get("k0-" + strconv.Itoa(i/2))
				if i%7 == 0 {
					_ = m.Delete(k)
				}
				if b := m.Bytes(); b > m.MaxBytes() {
					t.Errorf("%d bytes held, budget %d", b, m.MaxBytes())
					return
				}
			}
		}()
	}
	wg.Wait()
	if m.Bytes() > budget || m.Len() == 0 || m.Len() > budget/1000 {
		t.Fatalf("%d entries, %d bytes; budget %d", m.Len(), m.Bytes(), budget)
	}
	// Least recently used goes first: a key read after every write
	// survives a stream of new keys in its shard.
	m = cachestore.NewMemory(16*4096, nil)
	_ = m.Set("hot", []byte("h"), 0)
	for i := range 5000 {
		_ = m.Set("cold"+strconv.Itoa(i), make([]byte, 500), 0)
		if _, ok, _ := m.Get("hot"); !ok {
			t.Fatalf("hot key evicted after %d writes", i)
		}
	}
}

func TestCacheValueRoundTrip(t *testing.T) {
	obj, err := expr.ParseJSON([]byte(`{"a":1,"b":[true,null,"x"],"c":{"d":2.5}}`))
	if err != nil {
		t.Fatal(err)
	}
	arr, _ := expr.ParseJSON([]byte(`[1,"two",{"three":3}]`))
	tests := []struct {
		name string
		v    expr.Value
	}{
		{"null", expr.Null},
		{"true", expr.Bool(true)},
		{"false", expr.Bool(false)},
		{"int", expr.Int(-42)},
		{"max int", expr.Int(math.MaxInt64)},
		{"double", expr.Double(0.1)},
		{"double nan", expr.Double(math.NaN())},
		{"char", expr.Char('é')},
		{"string", expr.String("héllo\x00world")},
		{"empty string", expr.String("")},
		{"bytes", expr.Bytes([]byte{0, 1, 255})},
		{"datetime", expr.Time(time.Date(2024, 2, 29, 13, 14, 15, 123456789, time.UTC))},
		{"timespan", expr.Duration(90 * time.Minute)},
		{"jobject", obj},
		{"jarray", arr},
		{"string array", expr.StringArray([]string{"a", "b,c"})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := cacheDecodeValue(cacheEncodeValue(tc.v))
			if !ok {
				t.Fatal("not decoded")
			}
			if got.Kind() != tc.v.Kind() || got.String() != tc.v.String() {
				t.Fatalf("got %v %q, want %v %q", got.Kind(), got.String(), tc.v.Kind(), tc.v.String())
			}
			if tc.v.Kind() == expr.KBytes && got.Str() != tc.v.Str() {
				t.Fatalf("bytes %q, want %q", got.Str(), tc.v.Str())
			}
		})
	}
	for _, bad := range []string{"", "\x01", "\x02sx", "\x01bX", "\x01iz", "\x01o[1]", "\x01q"} {
		if _, ok := cacheDecodeValue([]byte(bad)); ok {
			t.Errorf("%q decoded", bad)
		}
	}
}

// cacheSet compiles doc at API scope against store, failing on errors and
// warnings.
func cacheSet(t *testing.T, store Cache, doc string) *Pipeline {
	t.Helper()
	set := NewSet(&config.Snapshot{SchemaVersion: config.SchemaVersion}, Options{Cache: store})
	d := set.Compile(Location{Scope: ScopeAPI, Name: "a"}, doc)
	if err := set.Err(); err != nil {
		t.Fatal(err)
	}
	if len(set.Warnings) > 0 {
		t.Fatalf("warnings: %v", set.Warnings)
	}
	return Compose(nil, d)
}

// cacheReq is one call through a pipeline.
type cacheReq struct {
	method  string
	uri     string
	headers []string // "Name: value"
	sub     string
}

// cacheDo runs p; the backend answers status with body "n=<call number>"
// and counts calls.
func cacheDo(t *testing.T, p *Pipeline, c cacheReq, status int, calls *int) (*fasthttp.RequestCtx, *Request) {
	t.Helper()
	ctx := &fasthttp.RequestCtx{}
	ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1)}, nil)
	if c.method == "" {
		c.method = "GET"
	}
	if c.uri == "" {
		c.uri = "/api/items"
	}
	ctx.Request.Header.SetMethod(c.method)
	ctx.Request.SetRequestURI(c.uri)
	for _, h := range c.headers {
		k, v, _ := strings.Cut(h, ":")
		ctx.Request.Header.Add(k, strings.TrimSpace(v))
	}
	r := &Request{Ctx: ctx, Subscription: c.sub, API: &router.API{Name: "api"}, Operation: &router.Operation{Name: "op"}}
	r.Forward = func(r *Request, _ ForwardOptions) error {
		*calls++
		r.Ctx.Response.Reset()
		r.Ctx.Response.SetStatusCode(status)
		r.Ctx.Response.Header.Set("X-Backend", "yes")
		r.Ctx.Response.Header.Set("Set-Cookie", "s=1")
		r.Ctx.Response.Header.SetContentType("application/json")
		r.Ctx.Response.SetBodyString(fmt.Sprintf("n=%d", *calls))
		return nil
	}
	p.Run(r)
	return ctx, r
}

func TestCacheValuePolicies(t *testing.T) {
	store := cachestore.NewMemory(0, nil)
	put := cacheSet(t, store, `<policies><inbound>
		<cache-store-value key="@(&quot;profile-&quot; + context.Request.Headers.GetValueOrDefault(&quot;X-User&quot;, &quot;&quot;))" value="@(JObject.Parse(&quot;{\&quot;name\&quot;:\&quot;ann\&quot;}&quot;))" duration="60" />
		<cache-store-value key="count" value="@(41 + 1)" duration="@(30 * 2)" />
		<cache-store-value key="text" value="plain" duration="60" />
		<cache-store-value key="gone" value="x" duration="60" />
		<cache-remove-value key="@(&quot;go&quot; + &quot;ne&quot;)" />
	</inbound></policies>`)
	get := cacheSet(t, store, `<policies><inbound>
		<cache-lookup-value key="@(&quot;profile-&quot; + context.Request.Headers.GetValueOrDefault(&quot;X-User&quot;, &quot;&quot;))" variable-name="profile" />
		<cache-lookup-value key="count" variable-name="count" caching-type="internal" />
		<cache-lookup-value key="text" variable-name="text" caching-type="prefer-external" />
		<cache-lookup-value key="gone" variable-name="gone" />
		<cache-lookup-value key="absent" variable-name="dflt" default-value="@(7)" />
		<cache-lookup-value key="absent" variable-name="unset" />
	</inbound></policies>`)
	var calls int
	cacheDo(t, put, cacheReq{headers: []string{"X-User: ann"}}, 200, &calls)
	_, r := cacheDo(t, get, cacheReq{headers: []string{"X-User: ann"}}, 200, &calls)
	tests := []struct {
		name string
		v    string
		kind expr.Kind
		text string
		set  bool
	}{
		{name: "expression key, JObject value", v: "profile", kind: expr.KJObject, text: `"name": "ann"`, set: true},
		{name: "int value", v: "count", kind: expr.KInt, text: "42", set: true},
		{name: "literal string", v: "text", kind: expr.KString, text: "plain", set: true},
		{name: "removed", v: "gone"},
		{name: "default on miss", v: "dflt", kind: expr.KInt, text: "7", set: true},
		{name: "miss without default leaves the variable unset", v: "unset"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, ok := (exprVars{r}).Get(tc.v)
			if ok != tc.set {
				t.Fatalf("set %v, want %v", ok, tc.set)
			}
			if ok && (v.Kind() != tc.kind || !strings.Contains(v.String(), tc.text)) {
				t.Fatalf("got %v %q, want %v containing %q", v.Kind(), v.String(), tc.kind, tc.text)
			}
		})
	}
	// Another user's key misses.
	_, r = cacheDo(t, get, cacheReq{headers: []string{"X-User: bob"}}, 200, &calls)
	if _, ok := (exprVars{r}).Get("profile"); ok {
		t.Error("bob got ann's profile")
	}
}

const cacheResponseDoc = `<policies>
	<inbound>
		<cache-lookup vary-by-developer="false" vary-by-developer-groups="false" downstream-caching-type="%s" must-revalidate="true" caching-type="internal">
			<vary-by-header>Accept</vary-by-header>
			<vary-by-query-parameter>version;lang</vary-by-query-parameter>
		</cache-lookup>
	</inbound>
	<outbound><cache-store duration="60" /></outbound>
</policies>`

func TestCacheResponse(t *testing.T) {
	clock := newClock()
	store := cachestore.NewMemory(0, clock.now)
	p := cacheSet(t, store, fmt.Sprintf(cacheResponseDoc, "none"))
	var calls int
	tests := []struct {
		name      string
		req       cacheReq
		status    int
		advance   time.Duration
		wantBody  string
		wantCache string
	}{
		{name: "first call misses", req: cacheReq{uri: "/api/items?version=1"}, wantBody: "n=1", wantCache: "miss"},
		{name: "same call hits", req: cacheReq{uri: "/api/items?version=1"}, wantBody: "n=1", wantCache: "hit"},
		{name: "unlisted query parameter ignored", req: cacheReq{uri: "/api/items?version=1&other=x"}, wantBody: "n=1", wantCache: "hit"},
		{name: "listed query parameter varies", req: cacheReq{uri: "/api/items?version=2"}, wantBody: "n=2", wantCache: "miss"},
		{name: "second listed parameter varies", req: cacheReq{uri: "/api/items?version=2&lang=fr"}, wantBody: "n=3", wantCache: "miss"},
		{name: "empty differs from absent", req: cacheReq{uri: "/api/items?version=2&lang="}, wantBody: "n=4", wantCache: "miss"},
		{name: "vary-by-header varies", req: cacheReq{uri: "/api/items?version=1", headers: []string{"Accept: text/xml"}}, wantBody: "n=5", wantCache: "miss"},
		{name: "vary-by-header hits", req: cacheReq{uri: "/api/items?version=1", headers: []string{"accept: text/xml"}}, wantBody: "n=5", wantCache: "hit"},
		{name: "other path misses", req: cacheReq{uri: "/api/other?version=1"}, wantBody: "n=6", wantCache: "miss"},
		{name: "subscription ignored without vary-by-developer", req: cacheReq{uri: "/api/other?version=1", sub: "s2"}, wantBody: "n=6", wantCache: "hit"},
		{name: "POST is not cached", req: cacheReq{method: "POST", uri: "/api/items?version=1"}, wantBody: "n=7", wantCache: "none"},
		{name: "Authorization skips the cache", req: cacheReq{uri: "/api/items?version=1", headers: []string{"Authorization: Bearer x"}}, wantBody: "n=8", wantCache: "none"},
		{name: "non-200 is not stored", req: cacheReq{uri: "/api/items?version=9"}, status: 500, wantBody: "n=9", wantCache: "miss"},
		{name: "non-200 still misses", req: cacheReq{uri: "/api/items?version=9"}, wantBody: "n=10", wantCache: "miss"},
		{name: "then the 200 is stored", req: cacheReq{uri: "/api/items?version=9"}, wantBody: "n=10", wantCache: "hit"},
		{name: "expired after duration", req: cacheReq{uri: "/api/items?version=1"}, advance: 61 * time.Second, wantBody: "n=11", wantCache: "miss"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock.advance(tc.advance)
			status := tc.status
			if status == 0 {
				status = 200
			}
			ctx, _ := cacheDo(t, p, tc.req, status, &calls)
			if got := string(ctx.Response.Body()); got != tc.wantBody {
				t.Errorf("body %q, want %q", got, tc.wantBody)
			}
			if got := CacheStatus(ctx); got != tc.wantCache {
				t.Errorf("Cache %q, want %q", got, tc.wantCache)
			}
			if ctx.Response.StatusCode() != status {
				t.Errorf("status %d, want %d", ctx.Response.StatusCode(), status)
			}
			if tc.wantCache == "hit" {
				if string(ctx.Response.Header.Peek("X-Backend")) != "yes" || string(ctx.Response.Header.ContentType()) != "application/json" {
					t.Errorf("cached headers lost: %s", ctx.Response.Header.String())
				}
				if ctx.Response.Header.Peek("Set-Cookie") != nil {
					t.Error("Set-Cookie served from the cache")
				}
			}
		})
	}
}

func TestCacheResponseVariants(t *testing.T) {
	tests := []struct {
		name       string
		doc        string
		reqs       []cacheReq
		status     int
		wantCalls  int
		wantHeader string // Cache-Control of the last answer
	}{
		{
			name:      "vary-by-developer separates subscriptions",
			doc:       `<policies><inbound><cache-lookup vary-by-developer="true" vary-by-developer-groups="false" /></inbound><outbound><cache-store duration="60" /></outbound></policies>`,
			reqs:      []cacheReq{{sub: "a"}, {sub: "b"}, {sub: "a"}},
			wantCalls: 2,
		},
		{
			name:      "cache-store without cache-lookup stores nothing",
			doc:       `<policies><outbound><cache-store duration="60" /></outbound></policies>`,
			reqs:      []cacheReq{{}, {}},
			wantCalls: 2,
		},
		{
			name:      "allow-private-response-caching",
			doc:       `<policies><inbound><cache-lookup vary-by-developer="false" vary-by-developer-groups="false" allow-private-response-caching="@(true)"><vary-by-header>Authorization</vary-by-header></cache-lookup></inbound><outbound><cache-store duration="60" /></outbound></policies>`,
			reqs:      []cacheReq{{headers: []string{"Authorization: a"}}, {headers: []string{"Authorization: a"}}, {headers: []string{"Authorization: b"}}},
			wantCalls: 2,
		},
		{
			name:      "cache-response stores any status",
			doc:       `<policies><inbound><cache-lookup vary-by-developer="false" vary-by-developer-groups="false" /></inbound><outbound><cache-store duration="60" cache-response="true" /></outbound></policies>`,
			reqs:      []cacheReq{{}, {}},
			status:    404,
			wantCalls: 1,
		},
		{
			name:      "expression duration of zero stores nothing",
			doc:       `<policies><inbound><cache-lookup vary-by-developer="false" vary-by-developer-groups="false" /></inbound><outbound><cache-store duration="@(0)" /></outbound></policies>`,
			reqs:      []cacheReq{{}, {}},
			wantCalls: 2,
		},
		{
			name:       "downstream public on a hit",
			doc:        fmt.Sprintf(cacheResponseDoc, "public"),
			reqs:       []cacheReq{{}, {}},
			wantCalls:  1,
			wantHeader: "public, max-age=5", // prefix: the remaining lifetime is 59 or 60
		},
		{
			name:       "downstream private on a miss",
			doc:        strings.Replace(fmt.Sprintf(cacheResponseDoc, "private"), `must-revalidate="true"`, `must-revalidate="false"`, 1),
			reqs:       []cacheReq{{}},
			wantCalls:  1,
			wantHeader: "private, max-age=60",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := cacheSet(t, cachestore.NewMemory(0, nil), tc.doc)
			status := tc.status
			if status == 0 {
				status = 200
			}
			var calls int
			var ctx *fasthttp.RequestCtx
			for _, rq := range tc.reqs {
				ctx, _ = cacheDo(t, p, rq, status, &calls)
				if ctx.Response.StatusCode() != status {
					t.Fatalf("status %d", ctx.Response.StatusCode())
				}
			}
			if calls != tc.wantCalls {
				t.Errorf("%d backend calls, want %d", calls, tc.wantCalls)
			}
			if cc := string(ctx.Response.Header.Peek("Cache-Control")); !strings.HasPrefix(cc, tc.wantHeader) || (tc.wantHeader == "") != (cc == "") {
				t.Errorf("Cache-Control %q, want %q", cc, tc.wantHeader)
			}
		})
	}
}

func TestCacheCompileErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want string
	}{
		{"lookup-value without key", `<inbound><cache-lookup-value variable-name="v" /></inbound>`, "key is required"},
		{"lookup-value without variable", `<inbound><cache-lookup-value key="k" /></inbound>`, "variable-name is required"},
		{"store-value without duration", `<inbound><cache-store-value key="k" value="v" /></inbound>`, "duration is required"},
		{"store-value bad duration", `<inbound><cache-store-value key="k" value="v" duration="soon" /></inbound>`, "number of seconds"},
		{"bad caching-type", `<inbound><cache-remove-value key="k" caching-type="disk" /></inbound>`, "caching-type must be"},
		{"bad downstream", `<inbound><cache-lookup vary-by-developer="false" vary-by-developer-groups="false" downstream-caching-type="shared" /></inbound>`, "downstream-caching-type"},
		{"bad child", `<inbound><cache-lookup vary-by-developer="false" vary-by-developer-groups="false"><vary-by-cookie>x</vary-by-cookie></cache-lookup></inbound>`, "vary-by-cookie"},
		{"lookup outside inbound", `<outbound><cache-lookup vary-by-developer="false" vary-by-developer-groups="false" /></outbound>`, "not allowed"},
		{"store outside outbound", `<inbound><cache-store duration="1" /></inbound>`, "not allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			set := NewSet(&config.Snapshot{SchemaVersion: config.SchemaVersion}, Options{})
			set.Compile(Location{Scope: ScopeAPI, Name: "a"}, "<policies>"+tc.doc+"</policies>")
			err := set.Err()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	// external without an external cache: a warning, the policy runs.
	set := NewSet(&config.Snapshot{SchemaVersion: config.SchemaVersion}, Options{})
	set.Compile(Location{Scope: ScopeAPI, Name: "a"}, `<policies><inbound><cache-lookup-value key="k" variable-name="v" caching-type="external" /></inbound></policies>`)
	if set.Err() != nil || len(set.Warnings) != 1 || !strings.Contains(set.Warnings[0].Message, "no external cache") {
		t.Fatalf("err %v, warnings %v", set.Err(), set.Warnings)
	}
}
