package server

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/policy"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/proxy"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/router"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/subscription"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/telemetry"
)

// reqState is the per-request scratch space, pooled so that serving a
// request allocates nothing of ours.
type reqState struct {
	match router.Match
	rreq  router.Request
	fwd   proxy.Forwarder
	out   proxy.Outbound
	uri   []byte
	preq  policy.Request
	// secure: the request came over TLS (or a trusted X-Forwarded-Proto).
	secure bool
	// host and reqURI keep the client's Host and request-target: forwarding
	// rewrites both in the request.
	host   []byte
	reqURI []byte
	logBuf []byte
	ip     []byte
	id     [36]byte
	idSet  bool
	start  time.Time
	// bodyLimited: the --max-body-bytes check has run.
	bodyLimited bool
	// key is the presented subscription key (a view of request memory).
	key []byte

	// What the request log reports.
	api         *router.API
	op          *router.Operation
	sub         *subscription.Subscription
	product     string
	backendCode int
	backendTime time.Duration
	lastError   string
	// policyErr is the policy pipeline's context.LastError, for the
	// request log's LastError columns.
	policyErr *policy.Error
	// backendCalled: forward ran (whatever its outcome); backendScheme
	// and backendHost name where it went, st.uri holds the request-target.
	backendCalled              bool
	backendScheme, backendHost string
	backendURL                 []byte

	// rec and sample are what finish reports, kept for their buffers;
	// hint is the metric series this state recorded into last.
	rec    telemetry.Record
	sample telemetry.Sample
	hint   telemetry.SeriesHint
	// custom holds the request's emit-metric values for its record.
	custom []telemetry.CustomMetric
}

// RecordMetric implements policy.RequestMetrics. Dimensions get their own
// slice: the ring keeps it after this state is reused.
func (st *reqState) RecordMetric(namespace, name string, value float64, dims []policy.Dimension) {
	var md []telemetry.MetricDimension
	if len(dims) > 0 {
		md = make([]telemetry.MetricDimension, len(dims))
		for i, d := range dims {
			md[i] = telemetry.MetricDimension{Name: d.Name, Value: d.Value}
		}
	}
	st.custom = append(st.custom, telemetry.CustomMetric{Namespace: namespace, Name: name, Value: value, Dimensions: md})
}

func (st *reqState) reset() {
	st.api, st.op, st.sub, st.product = nil, nil, nil, ""
	st.backendCode, st.backendTime, st.lastError, st.secure = 0, 0, "", false
	st.policyErr, st.backendCalled = nil, false
	st.idSet, st.key, st.bodyLimited = false, nil, false
	st.rreq = router.Request{}
	st.out = proxy.Outbound{}
	clear(st.custom)
	st.custom = st.custom[:0]
}

var (
	statusPath         = []byte(StatusPath)
	internalStatusPath = []byte(InternalStatusPath)
)

func (g *Gateway) handle(ctx *fasthttp.RequestCtx) {
	path := ctx.Request.URI().PathOriginal()
	if bytes.Equal(path, statusPath) || bytes.Equal(path, internalStatusPath) {
		g.health(ctx)
		return
	}
	start := time.Now()
	st := g.states.Get().(*reqState)
	st.reset()
	st.start = start
	st.host = append(st.host[:0], ctx.Request.Header.Host()...)
	st.reqURI = append(st.reqURI[:0], ctx.Request.Header.RequestURI()...)
	g.serve(ctx, st, path)
	g.metrics.record(ctx.Response.StatusCode())
	g.finish(ctx, st, start)
	g.states.Put(st)
}

func (g *Gateway) health(ctx *fasthttp.RequestCtx) {
	if g.draining.Load() || g.rt.Load() == nil {
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
}

func (g *Gateway) serve(ctx *fasthttp.RequestCtx, st *reqState, path []byte) {
	rt := g.rt.Load()
	if rt == nil {
		st.lastError = "ConfigurationNotLoaded"
		g.errs.unavailable.write(ctx)
		return
	}
	if hasDotSegment(path) {
		// Routing and the backend could disagree about what ../ means;
		// refusing it keeps an API path from reaching another.
		st.lastError = "InvalidPath"
		g.errs.badRequest.write(ctx)
		return
	}
	secure := ctx.IsTLS()
	if g.opts.ForwardedProto {
		if p := ctx.Request.Header.Peek("X-Forwarded-Proto"); len(p) > 0 {
			secure = bytes.EqualFold(p, []byte("https"))
		}
	}
	st.rreq = router.Request{
		Host:   b2s(ctx.Request.Header.Host()),
		Secure: secure,
		Method: b2s(ctx.Method()),
		Path:   b2s(path),
		Query:  b2s(ctx.URI().QueryString()),
		Header: &ctx.Request.Header,
	}
	found := rt.table.Lookup(&st.match, &st.rreq)
	if found != router.NotFound && rt.pipelines != nil && policy.IsPreflight(ctx) &&
		(found == router.OperationNotFound || st.match.Operation.Method != fasthttp.MethodOptions) {
		if g.preflight(ctx, st, rt, secure) {
			return
		}
		found = rt.table.Lookup(&st.match, &st.rreq)
	}
	switch found {
	case router.NotFound:
		st.lastError = "ApiNotFound"
		g.errs.notFound.write(ctx)
		return
	case router.OperationNotFound:
		st.api = st.match.API
		st.lastError = "OperationNotFound"
		g.errs.notFound.write(ctx)
		g.onError(ctx, st, rt, fasthttp.StatusNotFound)
		return
	}
	api := st.match.API
	st.api, st.op = api, st.match.Operation

	acc := rt.subs.Access(api)
	key := ctx.Request.Header.Peek(acc.HeaderName)
	keyInHeader := key != nil
	if !keyInHeader {
		key = ctx.QueryArgs().Peek(acc.QueryName)
	}
	res := rt.subs.Check(api, key)
	switch res.Decision {
	case subscription.MissingKey:
		st.lastError = "SubscriptionKeyNotFound"
		g.denied(ctx, st, &g.errs.missingKey, api, acc, secure)
		g.onError(ctx, st, rt, fasthttp.StatusUnauthorized)
		return
	case subscription.InvalidKey:
		st.lastError = "SubscriptionKeyInvalid"
		g.denied(ctx, st, &g.errs.invalidKey, api, acc, secure)
		g.onError(ctx, st, rt, fasthttp.StatusUnauthorized)
		return
	}
	st.sub, st.product, st.key = res.Subscription, res.Product, key

	st.secure = secure
	be := &rt.backends[api.Index]
	if pl := rt.pipeline(api, st.op, st.product); pl != nil {
		g.runPolicies(ctx, st, rt, pl, be)
		return
	}
	if be.Client == nil {
		st.lastError = "BackendNotConfigured"
		g.errs.noBackend.write(ctx)
		return
	}
	if e := g.forward(ctx, st, be, st.match.Suffix, ctx.URI().QueryString(), g.opts.BackendTimeout); e != nil {
		e.write(ctx)
	}
}

// forward sends the request to up, at up's base path plus path, with
// query. On failure it records LastErrorReason and returns the answer to
// give.
func (g *Gateway) forward(ctx *fasthttp.RequestCtx, st *reqState, up *policy.Upstream, path string, query []byte, timeout time.Duration) *apimError {
	if !st.bodyLimited && !g.limitBody(ctx) {
		st.lastError = "RequestEntityTooLarge"
		return &g.errs.tooLarge
	}
	st.uri = append(st.uri[:0], up.BasePath...)
	st.uri = append(st.uri, path...)
	if len(st.uri) == 0 || st.uri[0] != '/' {
		st.uri = append(st.uri[:0], '/')
		st.uri = append(st.uri, up.BasePath...)
		st.uri = append(st.uri, path...)
	}
	if len(query) > 0 {
		st.uri = append(st.uri, '?')
		st.uri = append(st.uri, query...)
	}
	proto := "http"
	if st.secure {
		proto = "https"
	}
	if timeout <= 0 {
		timeout = g.opts.BackendTimeout
	}
	st.out = proxy.Outbound{
		Client:       up.Client,
		Scheme:       up.Scheme,
		Host:         up.Host,
		PathAndQuery: st.uri,
		Timeout:      timeout,
		ClientIP:     ctx.RemoteIP(),
		Proto:        proto,
		OriginalHost: st.host,
	}
	st.backendCalled, st.backendScheme, st.backendHost = true, up.Scheme, up.Host
	began := time.Now()
	err := st.fwd.Do(&ctx.Request, &ctx.Response, &st.out)
	// Retries call forward again: BackendTime is all the time spent
	// waiting for backends.
	st.backendTime += time.Since(began)
	if err != nil {
		if errors.Is(err, errBodyTooLarge) {
			st.lastError = "RequestEntityTooLarge"
			return &g.errs.tooLarge
		}
		reason, status := proxy.Reason(err)
		st.lastError = reason
		g.log.Debug().Err(err).Str("api", st.api.Name).Msg("backend request failed")
		if status == fasthttp.StatusGatewayTimeout {
			return &g.errs.gatewayTimeout
		}
		return &g.errs.badGateway
	}
	st.backendCode = ctx.Response.StatusCode()
	return nil
}

// runPolicies runs the request through its policy pipeline; the backend
// call happens where the pipeline's forward-request is.
func (g *Gateway) runPolicies(ctx *fasthttp.RequestCtx, st *reqState, rt *runtime, pl *policy.Pipeline, be *policy.Upstream) {
	// The body limit applies before any policy can read the body.
	if !g.limitBody(ctx) {
		st.lastError = "RequestEntityTooLarge"
		g.errs.tooLarge.write(ctx)
		return
	}
	st.bodyLimited = true
	pr := &st.preq
	pr.Reset()
	pr.Ctx, pr.API, pr.Operation, pr.Match, pr.Product = ctx, st.api, st.op, &st.match, st.product
	pr.Forward, pr.State = g.forwardFn, st
	pr.Info = policy.RequestInfo{
		API:        &rt.exprAPIs[st.api.Index],
		Operation:  &rt.exprOps[st.api.Index][st.op.Index],
		Deployment: &rt.exprDeploy,
		RequestID:  st.correlationID(),
		Start:      st.start,
	}
	if st.product != "" {
		pr.Info.Product = rt.exprProducts[st.product]
	}
	if st.sub != nil {
		pr.Subscription = st.sub.Name
		if pair := rt.exprSubs[st.sub.Name]; pair != nil {
			pr.Info.Subscription = &pair[0]
			if string(st.key) != pair[0].Key {
				pr.Info.Subscription = &pair[1]
			}
		}
	}
	if be.Client != nil {
		pr.Backend = be
	}
	pr.Path = append(pr.Path, st.match.Suffix...)
	pr.Query = append(pr.Query, ctx.URI().QueryString()...)
	pl.Run(pr)
	if pr.LastError != nil {
		st.policyErr = pr.LastError
		if st.lastError == "" {
			st.lastError = pr.LastError.Reason
		}
	}
}

// forwardForPolicy is forward-request's way to the backend.
func (g *Gateway) forwardForPolicy(r *policy.Request, o policy.ForwardOptions) error {
	st := r.State.(*reqState)
	if r.Backend == nil {
		st.lastError = "BackendNotConfigured"
		return &policy.Error{Reason: "BackendNotConfigured", Message: "Internal server error", Status: fasthttp.StatusInternalServerError}
	}
	if e := g.forward(r.Ctx, st, r.Backend, b2s(r.Path), r.Query, o.Timeout); e != nil {
		return &policy.Error{Reason: st.lastError, Message: e.message, Status: e.status}
	}
	return nil
}

// onError runs the global and API on-error sections, when there are any,
// for the error st.lastError the gateway raised before the policy pipeline
// (st.api is known; the operation may not be), with context.LastError
// saying what the request log says of it. The gateway's answer, with
// status, is already written.
func (g *Gateway) onError(ctx *fasthttp.RequestCtx, st *reqState, rt *runtime, status int) {
	if rt.errPipelines == nil {
		return
	}
	pl := rt.errPipelines[st.api.Index]
	if pl == nil {
		return
	}
	pr := &st.preq
	pr.Reset()
	pr.Ctx, pr.API, pr.Operation, pr.Match = ctx, st.api, st.op, &st.match
	pr.State = st
	pr.Info = policy.RequestInfo{
		API:        &rt.exprAPIs[st.api.Index],
		Deployment: &rt.exprDeploy,
		RequestID:  st.correlationID(),
		Start:      st.start,
	}
	if st.op != nil {
		pr.Info.Operation = &rt.exprOps[st.api.Index][st.op.Index]
	}
	src, sec, msg := gatewayError(st.lastError)
	pl.OnError(pr, &policy.Error{Source: src, Reason: st.lastError, Message: msg, Section: sec, Status: status})
	if pr.LastError != nil {
		st.policyErr = pr.LastError
	}
}

// preflight answers a CORS preflight request with the cors policies that
// apply to the operation the browser asks about, before any operation
// match or subscription check: API Management handles preflight that way
// when the API has no OPTIONS operation of its own. It reports false when
// no cors policy applies (the request then gets the usual answer).
func (g *Gateway) preflight(ctx *fasthttp.RequestCtx, st *reqState, rt *runtime, secure bool) bool {
	asked := st.rreq
	asked.Method = b2s(ctx.Request.Header.Peek(fasthttp.HeaderAccessControlRequestMethod))
	var m router.Match
	api, op := (*router.API)(nil), (*router.Operation)(nil)
	switch rt.table.Lookup(&m, &asked) {
	case router.Found:
		api, op = m.API, m.Operation
	case router.OperationNotFound:
		// Global and API scope cors still apply: take any operation of
		// the API for them.
		if api = m.API; len(api.Operations) > 0 {
			op = api.Operations[0]
		}
	}
	if op == nil {
		return false
	}
	// A preflight carries no subscription key header; a key in the query
	// string gives the product context, as in API Management.
	product := ""
	acc := rt.subs.Access(api)
	if key := ctx.QueryArgs().Peek(acc.QueryName); len(key) > 0 {
		if res := rt.subs.Check(api, key); res.Decision == subscription.Allowed {
			product = res.Product
		}
	}
	pl := rt.pipeline(api, op, product)
	if pl == nil {
		return false
	}
	pr := &st.preq
	pr.Reset()
	pr.Ctx, pr.API, pr.Operation, pr.Match, pr.Product = ctx, api, op, &m, product
	if !pl.Preflight(pr) {
		return false
	}
	st.api, st.op, st.product, st.secure = api, op, product, secure
	return true
}

// correlationID returns the request's id (context.RequestId and the
// request log's CorrelationId), making it on first use.
func (st *reqState) correlationID() []byte {
	if !st.idSet {
		newCorrelationID(st.id[:])
		st.idSet = true
	}
	return st.id[:]
}

// denied answers 401 with API Management's status text and
// WWW-Authenticate challenge naming where the key goes.
func (g *Gateway) denied(ctx *fasthttp.RequestCtx, st *reqState, e *apimError, api *router.API, acc *subscription.APIAccess, secure bool) {
	e.write(ctx)
	ctx.Response.Header.SetStatusMessage(statusAccessDenied)
	b := append(st.uri[:0], `AzureApiManagementKey realm="`...)
	if secure {
		b = append(b, "https://"...)
	} else {
		b = append(b, "http://"...)
	}
	b = append(b, st.host...)
	b = append(b, '/')
	b = append(b, api.Path...)
	b = append(b, `",name="`...)
	b = append(b, acc.HeaderName...)
	b = append(b, `",type="header"`...)
	st.uri = b
	ctx.Response.Header.SetBytesV("WWW-Authenticate", b)
}

// limitBody enforces MaxBodyBytes: a declared length over the limit is
// refused before anything reaches the backend; a chunked body is cut off
// (and the request fails) once it passes the limit.
func (g *Gateway) limitBody(ctx *fasthttp.RequestCtx) bool {
	max := g.opts.MaxBodyBytes
	if max <= 0 {
		return true
	}
	cl := ctx.Request.Header.ContentLength()
	if cl > 0 && int64(cl) > max {
		return false
	}
	if cl == -1 {
		if rs := ctx.RequestBodyStream(); rs != nil {
			ctx.Request.SetBodyStream(&limitedReader{r: rs, left: max}, -1)
		}
	}
	return true
}

// limitedReader fails a read that would pass the body limit.
type limitedReader struct {
	r    io.Reader
	left int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return 0, errBodyTooLarge
	}
	return n, err
}

// errBodyTooLarge is the policy package's, so a policy reading the body
// recognises the limit.
var errBodyTooLarge = policy.ErrBodyTooLarge

// hasDotSegment reports "." or ".." path segments, literal or
// percent-encoded.
func hasDotSegment(p []byte) bool {
	for len(p) > 0 {
		if p[0] == '/' {
			p = p[1:]
			continue
		}
		end := bytes.IndexByte(p, '/')
		if end < 0 {
			end = len(p)
		}
		seg := p[:end]
		p = p[end:]
		if isDots(seg) {
			return true
		}
	}
	return false
}

func isDots(seg []byte) bool {
	dots := 0
	for len(seg) > 0 {
		switch {
		case seg[0] == '.':
			seg = seg[1:]
		case len(seg) >= 3 && seg[0] == '%' && seg[1] == '2' && (seg[2] == 'e' || seg[2] == 'E'):
			seg = seg[3:]
		default:
			return false
		}
		dots++
		if dots > 2 {
			return false
		}
	}
	return dots > 0
}

// sample decides whether a successful request is logged.
func (g *Gateway) sample() bool {
	r := g.opts.RequestLogSampling
	return r >= 1 || (r > 0 && rand.Float64() < r)
}
