package policy

import (
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/expr"
)

// RequestInfo is what expressions see of the request's static context:
// the server builds these once per configuration (API, operation,
// product) or per request (subscription) and hands them in.
type RequestInfo struct {
	API          *expr.ApiInfo
	Operation    *expr.OperationInfo
	Product      *expr.ProductInfo
	Subscription *expr.SubscriptionInfo
	Deployment   *expr.DeploymentInfo
	// RequestID is context.RequestId (the request log's CorrelationId),
	// turned into a string only when an expression reads it.
	RequestID []byte
	Start     time.Time
}

// exprContext is the `context` object over one Request. Its parts are
// fields of the Request, so handing them out allocates nothing.
type exprContext struct{ r *Request }

type exprRequest struct{ r *Request }
type exprResponse struct{ r *Request }
type exprVars struct{ r *Request }
type exprURL struct{ r *Request }
type exprHeaders struct {
	req  *fasthttp.RequestHeader
	resp *fasthttp.ResponseHeader
}
type exprParams struct{ r *Request }
type exprQuery struct{ r *Request }
type exprBody struct {
	r    *Request // the request's body, read through the body limit
	resp *fasthttp.Response
}

func (c exprContext) Request() expr.Request { return exprRequest(c) }
func (c exprContext) Response() expr.Response {
	if !c.r.Forwarded && c.r.section != Outbound && c.r.section != OnError {
		return nil
	}
	return exprResponse(c)
}
func (c exprContext) Variables() expr.Variables { return exprVars(c) }
func (c exprContext) Api() *expr.ApiInfo        { return c.r.Info.API }
func (c exprContext) Operation() *expr.OperationInfo {
	return c.r.Info.Operation
}
func (c exprContext) Product() *expr.ProductInfo { return c.r.Info.Product }
func (c exprContext) Subscription() *expr.SubscriptionInfo {
	return c.r.Info.Subscription
}

// User is null: the gateway knows subscriptions, not developer accounts.
func (c exprContext) User() *expr.UserInfo             { return nil }
func (c exprContext) Deployment() *expr.DeploymentInfo { return c.r.Info.Deployment }
func (c exprContext) LastError() *expr.ErrorInfo {
	e := c.r.LastError
	if e == nil {
		return nil
	}
	return &expr.ErrorInfo{Source: e.Source, Reason: e.Reason, Message: e.Message, Scope: e.Scope, Section: e.Section, Path: e.Path, PolicyId: e.PolicyID}
}
func (c exprContext) RequestID() string        { return string(c.r.Info.RequestID) }
func (c exprContext) Timestamp() time.Time     { return c.r.Info.Start }
func (c exprContext) Elapsed() time.Duration   { return time.Since(c.r.Info.Start) }
func (c exprContext) Trace(source, msg string) {}

func (q exprRequest) Method() string        { return string(q.r.Ctx.Method()) }
func (q exprRequest) Url() expr.URL         { return exprURL(q) }
func (q exprRequest) OriginalUrl() expr.URL { return exprURL(q) }
func (q exprRequest) Headers() expr.MultiMap {
	return exprHeaders{req: &q.r.Ctx.Request.Header}
}
func (q exprRequest) IpAddress() string                 { return q.r.Ctx.RemoteIP().String() }
func (q exprRequest) MatchedParameters() expr.StringMap { return exprParams(q) }
func (q exprRequest) Body() expr.Body {
	return exprBody{r: q.r}
}

func (s exprResponse) StatusCode() int { return s.r.Ctx.Response.StatusCode() }
func (s exprResponse) StatusReason() string {
	if m := s.r.Ctx.Response.Header.StatusMessage(); len(m) > 0 {
		return string(m)
	}
	return fasthttp.StatusMessage(s.r.Ctx.Response.StatusCode())
}
func (s exprResponse) Headers() expr.MultiMap {
	return exprHeaders{resp: &s.r.Ctx.Response.Header}
}
func (s exprResponse) Body() expr.Body { return exprBody{resp: &s.r.Ctx.Response} }

func (u exprURL) Scheme() string {
	if u.r.Ctx.IsTLS() {
		return "https"
	}
	return "http"
}
func (u exprURL) Host() string {
	h := string(u.r.Ctx.Host())
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.HasSuffix(h, "]") {
		return h[:i]
	}
	return h
}
func (u exprURL) Port() int {
	h := string(u.r.Ctx.Host())
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.HasSuffix(h, "]") {
		if p, err := strconv.Atoi(h[i+1:]); err == nil {
			return p
		}
	}
	if u.r.Ctx.IsTLS() {
		return 443
	}
	return 80
}
func (u exprURL) Path() string { return string(u.r.Ctx.Request.URI().PathOriginal()) }
func (u exprURL) QueryString() string {
	if qs := u.r.Ctx.URI().QueryString(); len(qs) > 0 {
		return "?" + string(qs)
	}
	return ""
}
func (u exprURL) Query() expr.MultiMap { return exprQuery(u) }

func (h exprHeaders) Get(name string) ([]string, bool) {
	var out []string
	if h.req != nil {
		for _, v := range h.req.PeekAll(name) {
			out = append(out, string(v))
		}
	} else {
		for _, v := range h.resp.PeekAll(name) {
			out = append(out, string(v))
		}
	}
	return out, len(out) > 0
}

func (h exprHeaders) Names() []string {
	var out []string
	if h.req != nil {
		for k := range h.req.All() {
			out = append(out, string(k))
		}
	} else {
		for k := range h.resp.All() {
			out = append(out, string(k))
		}
	}
	return out
}

func (p exprParams) Get(name string) (string, bool) {
	if p.r.Match == nil {
		return "", false
	}
	return p.r.Match.Param(name)
}

func (p exprParams) Names() []string {
	if p.r.Match == nil {
		return nil
	}
	var out []string
	for _, prm := range p.r.Match.Params() {
		out = append(out, prm.Name)
	}
	return out
}

func (q exprQuery) Get(name string) ([]string, bool) {
	var out []string
	for _, v := range q.r.Ctx.URI().QueryArgs().PeekMulti(name) {
		out = append(out, string(v))
	}
	return out, len(out) > 0
}

func (q exprQuery) Names() []string {
	var out []string
	for k := range q.r.Ctx.URI().QueryArgs().All() {
		out = append(out, string(k))
	}
	return out
}

// Read returns the whole body. With preserveContent false API Management
// hands later readers an empty body; the gateway keeps it, because the
// backend call still needs it (a documented difference).
func (b exprBody) Read(preserveContent bool) ([]byte, error) {
	if b.r != nil {
		return b.r.RequestBody()
	}
	return b.resp.Body(), nil
}

func (v exprVars) Get(name string) (expr.Value, bool) {
	if val, ok := v.r.values[name]; ok {
		return val, true
	}
	if s, ok := v.r.Vars[name]; ok {
		return expr.String(s), true
	}
	return expr.Value{}, false
}

func (v exprVars) Set(name string, val expr.Value) {
	if v.r.values == nil {
		v.r.values = map[string]expr.Value{}
	}
	delete(v.r.Vars, name)
	v.r.values[name] = val
}

// env returns the expression environment of the request.
func (r *Request) env() *expr.Env {
	r.exprEnv.Context = exprContext{r}
	return &r.exprEnv
}

// Var returns a variable's value as text, as context.Variables would give
// it to a string expression.
func (r *Request) Var(name string) (string, bool) {
	if val, ok := r.values[name]; ok {
		return val.String(), true
	}
	s, ok := r.Vars[name]
	return s, ok
}
