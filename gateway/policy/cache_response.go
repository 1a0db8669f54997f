package policy

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/policy/policyxml"
)

// cacheMaxResponse is the largest response body cache-store keeps; larger
// responses are passed on uncached.
const cacheMaxResponse = 1 << 20

// cacheStateKey is the fasthttp user value under which cache-lookup leaves
// its per-request state for cache-store and the request log.
type cacheStateKey struct{}

// cacheState is what cache-lookup found for a request.
type cacheState struct {
	store Cache
	key   string
	hit   bool
	// downstream is "" (none), "private" or "public".
	downstream     string
	mustRevalidate bool
}

func cacheStateOf(ctx *fasthttp.RequestCtx) *cacheState {
	st, _ := ctx.UserValue(cacheStateKey{}).(*cacheState)
	return st
}

// CacheStatus is the request log's Cache column: "hit" when cache-lookup
// answered from the cache, "miss" when it looked the response up and did
// not find it, "none" when no lookup ran.
func CacheStatus(ctx *fasthttp.RequestCtx) string {
	st := cacheStateOf(ctx)
	switch {
	case st == nil:
		return "none"
	case st.hit:
		return "hit"
	}
	return "miss"
}

// --- cache-lookup ------------------------------------------------------------

type cacheLookup struct {
	meta
	store          Cache
	varyDeveloper  cacheFlag
	varyGroups     cacheFlag
	mustRevalidate cacheFlag
	allowPrivate   cacheFlag
	downstream     text
	headers        []string
	params         []string
}

func compileCacheLookup(c *compiler, el *policyxml.Element, m meta) (Step, error) {
	s := &cacheLookup{meta: m, store: c.cache()}
	var err error
	if s.varyDeveloper, err = cacheBool(el, "vary-by-developer", false); err != nil {
		return nil, err
	}
	if s.varyGroups, err = cacheBool(el, "vary-by-developer-groups", false); err != nil {
		return nil, err
	}
	if s.mustRevalidate, err = cacheBool(el, "must-revalidate", true); err != nil {
		return nil, err
	}
	if s.allowPrivate, err = cacheBool(el, "allow-private-response-caching", false); err != nil {
		return nil, err
	}
	if s.downstream, err = attrText(el, "downstream-caching-type", "none"); err != nil {
		return nil, err
	}
	if !s.downstream.isExpr() {
		if _, ok := cacheDownstreamType(s.downstream.lit); !ok {
			return nil, fmt.Errorf("downstream-caching-type must be none, private or public, found %q", s.downstream.lit)
		}
	}
	for _, ch := range el.Children {
		if ch.TextExpr {
			return nil, fmt.Errorf("<%s> cannot be a policy expression", ch.Name)
		}
		switch ch.Name {
		case "vary-by-header":
			if h := strings.TrimSpace(ch.Text); h != "" {
				s.headers = append(s.headers, h)
			}
		case "vary-by-query-parameter":
			// "Enter a single or multiple parameters. Use semicolon as a
			// separator."
			for p := range strings.SplitSeq(ch.Text, ";") {
				if p = strings.TrimSpace(p); p != "" {
					s.params = append(s.params, p)
				}
			}
		default:
			return nil, fmt.Errorf("<%s> is not an element of cache-lookup (vary-by-header, vary-by-query-parameter)", ch.Name)
		}
	}
	return s, c.cachingType(el)
}

func cacheDownstreamType(v string) (string, bool) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "none":
		return "", true
	case "private":
		return "private", true
	case "public":
		return "public", true
	}
	return "", false
}

// Exec looks up GET requests (not those with an Authorization header
// unless allow-private-response-caching); a hit answers from the cache and
// ends the pipeline, a miss lets cache-store store the response.
func (s *cacheLookup) Exec(r *Request) error {
	ctx := r.Ctx
	if !ctx.IsGet() {
		return nil
	}
	allow, err := s.allowPrivate.eval(r, &s.meta)
	if err != nil {
		return err
	}
	if !allow && len(ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)) > 0 {
		return nil
	}
	byDev, err := s.varyDeveloper.eval(r, &s.meta)
	if err != nil {
		return err
	}
	byGroups, err := s.varyGroups.eval(r, &s.meta)
	if err != nil {
		return err
	}
	st := &cacheState{store: s.store}
	if st.mustRevalidate, err = s.mustRevalidate.eval(r, &s.meta); err != nil {
		return err
	}
	ds, err := s.downstream.str(r, &s.meta)
	if err != nil {
		return err
	}
	var ok bool
	if st.downstream, ok = cacheDownstreamType(ds); !ok {
		return s.fail("ExpressionValueEvaluationFailure", "Expression evaluation failed. downstream-caching-type must be none, private or public.", 500)
	}
	// The gateway knows subscriptions, not developer accounts or their
	// groups: both vary by subscription, which never serves a response
	// across developers.
	st.key = s.key(r, byDev || byGroups)
	ctx.SetUserValue(cacheStateKey{}, st)
	data, found, _ := s.store.Get(st.key)
	if !found {
		return nil
	}
	if !cacheWriteResponse(ctx, data, st) {
		return nil
	}
	st.hit = true
	return errStop
}

// key hashes what a cached response varies by: API, operation, product,
// method, path, the subscription when asked, and the listed headers and
// query parameters (all their values; absent and empty differ).
func (s *cacheLookup) key(r *Request, bySubscription bool) string {
	h := sha256.New()
	var buf []byte
	put := func(b []byte) {
		buf = binary.AppendUvarint(buf[:0], uint64(len(b)))
		buf = append(buf, b...)
		h.Write(buf)
	}
	putString := func(v string) { put([]byte(v)) }
	putString("response/1")
	if r.API != nil {
		putString(r.API.Name)
	} else {
		putString("")
	}
	if r.Operation != nil {
		putString(r.Operation.Name)
	} else {
		putString("")
	}
	putString(r.Product)
	put(r.Ctx.Method())
	put(r.Ctx.Request.URI().PathOriginal())
	if bySubscription {
		putString("sub=" + r.Subscription)
	} else {
		putString("")
	}
	for _, name := range s.headers {
		putString(strings.ToLower(name))
		vals := r.Ctx.Request.Header.PeekAll(name)
		putString(strconv.Itoa(len(vals)))
		for _, v := range vals {
			put(v)
		}
	}
	args := r.Ctx.URI().QueryArgs()
	for _, name := range s.params {
		putString(name)
		vals := args.PeekMulti(name)
		putString(strconv.Itoa(len(vals)))
		for _, v := range vals {
			put(v)
		}
	}
	return cacheResponsePrefix + hex.EncodeToString(h.Sum(nil))
}

// --- cache-store -------------------------------------------------------------

type cacheStore struct {
	meta
	duration      text
	cacheResponse cacheFlag
}

func compileCacheStore(c *compiler, el *policyxml.Element, m meta) (Step, error) {
	s := &cacheStore{meta: m}
	var err error
	if s.duration, err = cacheDurationText(el, "duration"); err != nil {
		return nil, err
	}
	if s.cacheResponse, err = cacheBool(el, "cache-response", false); err != nil {
		return nil, err
	}
	c.cache()
	return s, nil
}

// Exec stores the response of a request cache-lookup missed: status 200
// only unless cache-response, bodies up to cacheMaxResponse.
func (s *cacheStore) Exec(r *Request) error {
	ctx := r.Ctx
	st := cacheStateOf(ctx)
	if st == nil || st.hit {
		return nil
	}
	anyStatus, err := s.cacheResponse.eval(r, &s.meta)
	if err != nil {
		return err
	}
	if !anyStatus && ctx.Response.StatusCode() != fasthttp.StatusOK {
		return nil
	}
	d, err := cacheTTL(&s.duration, r, &s.meta)
	if err != nil || d <= 0 {
		return err
	}
	// The gateway streams backend responses: a body known to be too
	// large is not read; Body() buffers a streamed one.
	if ctx.Response.IsBodyStream() && ctx.Response.Header.ContentLength() > cacheMaxResponse {
		return nil
	}
	body := ctx.Response.Body()
	if len(body) > cacheMaxResponse {
		return nil
	}
	expires := time.Now().Add(d)
	_ = st.store.Set(st.key, cacheEncodeResponse(&ctx.Response, body, expires), d)
	cacheSetDownstream(ctx, st, d)
	return nil
}

// --- cached responses --------------------------------------------------------

const cacheResponseFormat = 1

// Headers not kept with a cached response: framing and connection
// management belong to the serving connection, Set-Cookie to one client.
var cacheSkipHeaders = map[string]bool{
	"connection": true, "keep-alive": true, "transfer-encoding": true, "content-length": true,
	"date": true, "set-cookie": true, "proxy-connection": true, "upgrade": true, "te": true, "trailer": true,
}

// cacheEncodeResponse: format byte, uvarint status, varint expiry (Unix
// milliseconds), uvarint header count, length-prefixed names and values,
// then the body.
func cacheEncodeResponse(resp *fasthttp.Response, body []byte, expires time.Time) []byte {
	b := make([]byte, 0, len(body)+256)
	b = append(b, cacheResponseFormat)
	b = binary.AppendUvarint(b, uint64(resp.StatusCode()))
	b = binary.AppendVarint(b, expires.UnixMilli())
	var hdr []byte
	n := 0
	for k, v := range resp.Header.All() {
		if cacheSkipHeaders[strings.ToLower(string(k))] {
			continue
		}
		n++
		hdr = binary.AppendUvarint(hdr, uint64(len(k)))
		hdr = append(hdr, k...)
		hdr = binary.AppendUvarint(hdr, uint64(len(v)))
		hdr = append(hdr, v...)
	}
	b = binary.AppendUvarint(b, uint64(n))
	b = append(b, hdr...)
	return append(b, body...)
}

// cacheWriteResponse replaces ctx's response with a cached one; false
// (response untouched) for an entry it cannot read.
func cacheWriteResponse(ctx *fasthttp.RequestCtx, data []byte, st *cacheState) bool {
	if len(data) == 0 || data[0] != cacheResponseFormat {
		return false
	}
	p := data[1:]
	status, n := binary.Uvarint(p)
	if n <= 0 || status < 100 || status > 999 {
		return false
	}
	p = p[n:]
	expiresMs, n := binary.Varint(p)
	if n <= 0 {
		return false
	}
	p = p[n:]
	count, n := binary.Uvarint(p)
	if n <= 0 || count > uint64(len(p)) {
		return false
	}
	p = p[n:]
	type kv struct{ k, v []byte }
	hdrs := make([]kv, 0, count)
	field := func() ([]byte, bool) {
		l, n := binary.Uvarint(p)
		if n <= 0 || l > uint64(len(p)-n) {
			return nil, false
		}
		f := p[n : n+int(l)]
		p = p[n+int(l):]
		return f, true
	}
	for range count {
		k, ok := field()
		if !ok {
			return false
		}
		v, ok := field()
		if !ok {
			return false
		}
		hdrs = append(hdrs, kv{k, v})
	}
	resp := &ctx.Response
	resp.Reset()
	resp.SetStatusCode(int(status))
	for _, h := range hdrs {
		resp.Header.AddBytesKV(h.k, h.v)
	}
	resp.SetBody(p)
	cacheSetDownstream(ctx, st, time.Until(time.UnixMilli(expiresMs)))
	return true
}

// cacheSetDownstream adds Cache-Control for downstream-caching-type private or
// public, with max-age the entry's remaining lifetime.
func cacheSetDownstream(ctx *fasthttp.RequestCtx, st *cacheState, left time.Duration) {
	if st.downstream == "" {
		return
	}
	secs := max(int64(left/time.Second), 0)
	v := st.downstream + ", max-age=" + strconv.FormatInt(secs, 10)
	if st.mustRevalidate {
		v += ", must-revalidate"
	}
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, v)
}
