package policy

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/policy/policyxml"
)

// sideServer is a loopback backend for send-request: /echo answers with
// JSON describing the request, /status/N with status N, /slow after
// 2 s (or when release closes), /hit counts calls.
type sideServer struct {
	*httptest.Server
	mu      sync.Mutex
	hits    int
	got     chan string
	release chan struct{}
	slowIn  atomic.Int32 // /slow calls under way
}

func newSideServer(t *testing.T) *sideServer {
	t.Helper()
	s := &sideServer{got: make(chan string, 16), release: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, q *http.Request) {
		body, _ := io.ReadAll(q.Body)
		switch {
		case q.URL.Path == "/echo":
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("X-Out", "out")
			w.WriteHeader(http.StatusCreated)
			json.NewEncoder(w).Encode(map[string]string{
				"method": q.Method, "path": q.URL.RequestURI(), "body": string(body),
				"a": strings.Join(q.Header.Values("X-A"), ","), "in": q.Header.Get("X-In"), "host": q.Host,
			})
		case strings.HasPrefix(q.URL.Path, "/status/"):
			var code int
			json.Unmarshal([]byte(strings.TrimPrefix(q.URL.Path, "/status/")), &code)
			w.WriteHeader(code)
		case q.URL.Path == "/slow":
			s.slowIn.Add(1)
			defer s.slowIn.Add(-1)
			select {
			case <-time.After(2 * time.Second):
			case <-s.release:
			case <-q.Context().Done():
			}
			w.Write([]byte("slow"))
		case q.URL.Path == "/fast":
			w.Write([]byte("fast"))
		case q.URL.Path == "/hit":
			s.mu.Lock()
			s.hits++
			n := s.hits
			s.mu.Unlock()
			if n < 3 {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			w.Write([]byte("hit"))
		case q.URL.Path == "/record":
			s.got <- q.Method + " " + string(body)
		}
	}))
	t.Cleanup(func() {
		select {
		case <-s.release:
		default:
			close(s.release)
		}
		s.Close()
	})
	return s
}

// runDoc compiles an API-scope document, runs it on a fresh request that
// prep may fill, and returns the request.
func runDoc(t *testing.T, doc string, fwd Forwarder, prep func(*Request)) *Request {
	t.Helper()
	set := newSet(t, false)
	api := set.Compile(Location{Scope: ScopeAPI, Name: "a"}, doc)
	if err := set.Err(); err != nil {
		t.Fatal(err)
	}
	for _, w := range set.Warnings {
		t.Errorf("warning: %v", w)
	}
	ctx := &fasthttp.RequestCtx{}
	ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1)}, nil)
	r := &Request{Ctx: ctx, Forward: fwd}
	if prep != nil {
		prep(r)
	}
	Compose(nil, api).Run(r)
	return r
}

func TestSendRequest(t *testing.T) {
	t.Parallel()
	srv := newSideServer(t)
	dead := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return "http://" + addr
	}()
	// answer returns the response variable r as the answer.
	const answer = `<return-response response-variable-name="r" />`
	tests := []struct {
		name       string
		inbound    string
		onError    string
		prep       func(*Request)
		wantStatus int
		wantBody   string // substring
		wantHeader [2]string
	}{
		{name: "new GET, response returned", inbound: `<send-request mode="new" response-variable-name="r">
				<set-url>` + srv.URL + `/echo?x=1</set-url><set-method>GET</set-method>
				<set-header name="X-A" exists-action="override"><value>1</value><value>2</value></set-header>
			</send-request>` + answer,
			wantStatus: 201, wantBody: `"a":"1,2"`, wantHeader: [2]string{"X-Out", "out"}},
		{name: "POST with expression body and url", inbound: `<set-variable name="p" value="echo" />
			<send-request response-variable-name="r" timeout="5">
				<set-url>@("` + srv.URL + `/" + (string)context.Variables["p"])</set-url><set-method>POST</set-method>
				<set-body>@("payload-" + context.Request.Method)</set-body>
			</send-request>` + answer,
			wantStatus: 201, wantBody: `"body":"payload-GET"`},
		{name: "response read as JObject", inbound: `<send-request response-variable-name="r"><set-url>` + srv.URL + `/echo</set-url><set-method>PUT</set-method></send-request>
			<return-response><set-status code="200" reason="OK" /><set-body>@(((IResponse)context.Variables["r"]).Body.As<JObject>()["method"].ToString())</set-body></return-response>`,
			wantStatus: 200, wantBody: "PUT"},
		{name: "status and headers from expressions", inbound: `<send-request response-variable-name="r"><set-url>` + srv.URL + `/echo</set-url></send-request>
			<return-response><set-status code="200" reason="OK" /><set-header name="X-S"><value>@(((IResponse)context.Variables["r"]).StatusCode + "/" + ((IResponse)context.Variables["r"]).Headers.GetValueOrDefault("x-out", "none"))</value></set-header></return-response>`,
			wantStatus: 200, wantHeader: [2]string{"X-S", "201/out"}},
		{name: "copy mode copies headers and body", inbound: `<send-request mode="copy" response-variable-name="r"><set-url>` + srv.URL + `/echo</set-url></send-request>` + answer,
			prep: func(r *Request) {
				r.Ctx.Request.Header.SetMethod("POST")
				r.Ctx.Request.Header.Set("X-In", "yes")
				r.Ctx.Request.SetBodyString("original")
			},
			wantStatus: 201, wantBody: `"body":"original"`},
		{name: "copy mode without set-url goes to the backend", inbound: `<send-request mode="copy" response-variable-name="r" />` + answer,
			prep: func(r *Request) {
				r.Backend = &Upstream{Scheme: "http", Host: strings.TrimPrefix(srv.URL, "http://"), BasePath: "/echo"}
				r.Query = []byte("q=1")
				r.Ctx.Request.Header.Set("X-In", "copied")
			},
			wantStatus: 201, wantBody: `"path":"/echo?q=1"`},
		{name: "Host header set explicitly", inbound: `<send-request response-variable-name="r"><set-url>` + srv.URL + `/echo</set-url>
				<set-header name="Host"><value>gw.example</value></set-header></send-request>` + answer,
			wantStatus: 201, wantBody: `"host":"gw.example"`},
		{name: "timeout goes to on-error", inbound: `<send-request response-variable-name="r" timeout="0.2"><set-url>` + srv.URL + `/slow</set-url></send-request>`,
			onError:    `<set-header name="X-Reason"><value>@(context.LastError.Reason + "|" + context.LastError.Source)</value></set-header>`,
			wantStatus: 500, wantHeader: [2]string{"X-Reason", "Timeout|send-request"}},
		{name: "connection refused goes to on-error", inbound: `<send-request response-variable-name="r"><set-url>` + dead + `/x</set-url></send-request>`,
			onError:    `<set-header name="X-Reason"><value>@(context.LastError.Reason)</value></set-header>`,
			wantStatus: 500, wantHeader: [2]string{"X-Reason", "BackendConnectionFailure"}},
		{name: "ignore-error leaves null", inbound: `<send-request response-variable-name="r" timeout="0.2" ignore-error="true"><set-url>` + srv.URL + `/slow</set-url></send-request>
			<return-response><set-status code="200" reason="OK" /><set-body>@(context.Variables["r"] == null ? "null" : "set")</set-body></return-response>`,
			wantStatus: 200, wantBody: "null"},
		{name: "return-response children change the stored response", inbound: `<send-request response-variable-name="r"><set-url>` + srv.URL + `/echo</set-url></send-request>
			<return-response response-variable-name="r"><set-status code="202" reason="Accepted" /><set-header name="X-Out"><value>changed</value></set-header></return-response>`,
			wantStatus: 202, wantBody: `"method":"GET"`, wantHeader: [2]string{"X-Out", "changed"}},
		{name: "relative url fails when sent", inbound: `<send-request response-variable-name="r"><set-url>/x</set-url></send-request>`,
			wantStatus: 500, wantBody: "absolute http or https URL"},
		{name: "return-response of a null variable fails", inbound: `<set-variable name="r" value="x" /><return-response response-variable-name="nope" />`,
			wantStatus: 500, wantBody: "does not hold a response"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			doc := `<policies><inbound>` + tc.inbound + `</inbound><backend /><outbound /><on-error>` + tc.onError + `</on-error></policies>`
			r := runDoc(t, doc, nil, tc.prep)
			resp := &r.Ctx.Response
			if resp.StatusCode() != tc.wantStatus {
				t.Errorf("status %d, want %d (body %s)", resp.StatusCode(), tc.wantStatus, resp.Body())
			}
			if !strings.Contains(string(resp.Body()), tc.wantBody) {
				t.Errorf("body %s, want %q in it", resp.Body(), tc.wantBody)
			}
			if tc.wantHeader[0] != "" {
				if got := string(resp.Header.Peek(tc.wantHeader[0])); got != tc.wantHeader[1] {
					t.Errorf("header %s = %q, want %q", tc.wantHeader[0], got, tc.wantHeader[1])
				}
			}
		})
	}
}

func TestSendRequestIgnoreErrorStoresNull(t *testing.T) {
	t.Parallel()
	srv := newSideServer(t)
	r := runDoc(t, `<policies><inbound><send-request response-variable-name="r" timeout="0.2" ignore-error="true"><set-url>`+srv.URL+`/slow</set-url></send-request></inbound><backend /></policies>`, nil, nil)
	v, ok := exprVars{r}.Get("r")
	if !ok || !v.IsNull() {
		t.Fatalf("variable r = %v (set %v), want null", v, ok)
	}
	if r.LastError != nil {
		t.Errorf("LastError %+v", r.LastError)
	}
}

func TestSendCompileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		doc     string
		wantErr string
	}{
		{name: "no response variable", doc: `<send-request><set-url>http://a</set-url></send-request>`, wantErr: "response-variable-name is required"},
		{name: "bad mode", doc: `<send-request mode="clone" response-variable-name="r"><set-url>http://a</set-url></send-request>`, wantErr: "mode must be new or copy"},
		{name: "new without url", doc: `<send-request response-variable-name="r" />`, wantErr: "<set-url> is required"},
		{name: "bad timeout", doc: `<send-request response-variable-name="r" timeout="soon"><set-url>http://a</set-url></send-request>`, wantErr: "timeout"},
		{name: "unknown child", doc: `<send-request response-variable-name="r"><set-url>http://a</set-url><rewrite-uri /></send-request>`, wantErr: "cannot be a child"},
		{name: "one-way has no variable", doc: `<send-one-way-request response-variable-name="r"><set-url>http://a</set-url></send-one-way-request>`, wantErr: "not an attribute"},
		{name: "wait child", doc: `<wait><set-header name="x" /></wait>`, wantErr: "cannot be a child of <wait>"},
		{name: "wait for", doc: `<wait for="some" />`, wantErr: "all or any"},
		{name: "return-response variable expression", doc: `<return-response response-variable-name="@("r")" />`, wantErr: "cannot be a policy expression"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			set := newSet(t, false)
			set.Compile(Location{Scope: ScopeAPI, Name: "a"}, `<policies><inbound>`+tc.doc+`</inbound></policies>`)
			err := set.Err()
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestSendRequestSkipsUnsupportedChild(t *testing.T) {
	t.Parallel()
	set := newSet(t, false)
	set.Compile(Location{Scope: ScopeAPI, Name: "a"}, `<policies><inbound><send-request response-variable-name="r"><set-url>http://a</set-url><authentication-certificate thumbprint="x" /></send-request></inbound></policies>`)
	if err := set.Err(); err != nil {
		t.Fatal(err)
	}
	if len(set.Warnings) != 1 || !strings.Contains(set.Warnings[0].String(), "authentication-certificate") {
		t.Errorf("warnings %v", set.Warnings)
	}
}

// compileOne compiles a single policy element in inbound.
func compileOne(t *testing.T, src string) Step {
	t.Helper()
	el, err := policyxml.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	set := newSet(t, false)
	c := &compiler{set: set, loc: Location{Scope: ScopeAPI, Name: "a"}, section: Inbound}
	steps := c.statement(el, "")
	if err := set.Err(); err != nil || len(steps) != 1 {
		t.Fatalf("compile: %v (%d steps)", err, len(steps))
	}
	return steps[0]
}

func newTestRequest() *Request {
	ctx := &fasthttp.RequestCtx{}
	ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1)}, nil)
	return &Request{Ctx: ctx}
}

func TestSendOneWay(t *testing.T) {
	t.Parallel()
	srv := newSideServer(t)
	st := compileOne(t, `<send-one-way-request mode="new" timeout="5"><set-url>`+srv.URL+`/record</set-url><set-method>POST</set-method><set-body>@("hello " + context.Request.Method)</set-body></send-one-way-request>`)
	r := newTestRequest()
	if err := st.Exec(r); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-srv.got:
		if got != "POST hello GET" {
			t.Errorf("backend got %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the one-way request never arrived")
	}
}

func TestSendOneWayDoesNotBlockAndDrops(t *testing.T) {
	t.Parallel()
	srv := newSideServer(t)
	st := compileOne(t, `<send-one-way-request><set-url>`+srv.URL+`/slow</set-url></send-one-way-request>`).(*sendRequest)
	st.limiter = newOneWayLimiter(1)
	r := newTestRequest()
	start := time.Now()
	for range 3 {
		if err := st.Exec(r); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("one-way requests blocked the request for %v", d)
	}
	if n := st.limiter.dropped.Load(); n != 2 {
		t.Errorf("dropped %d, want 2", n)
	}
}
