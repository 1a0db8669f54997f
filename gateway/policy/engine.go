package policy

import (
	"errors"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/expr"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/router"
)

// Error is a policy failure. Its fields are what API Management exposes as
// context.LastError; Status and Message also make the default answer when
// no on-error section handles the failure.
type Error struct {
	Source   string // the policy element, e.g. "check-header"
	Reason   string // e.g. "HeaderNotFound"
	Message  string
	Scope    string // "global", "product", "api", "operation"
	Section  string
	Path     string // e.g. "choose[1]\when[2]\set-header[1]"
	PolicyID string
	Status   int
	// headers are response headers, name then value, that the default
	// answer carries (a rate limit's Retry-After); nil for none.
	headers *[]string
}

func (e *Error) Error() string { return e.Source + ": " + e.Message }

// errStop ends the pipeline after a policy produced the response.
var errStop = errors.New("policy: response produced")

// ForwardOptions are forward-request's attributes.
type ForwardOptions struct {
	Timeout time.Duration // 0: the gateway's backend timeout
}

// Forwarder sends the request to the backend, filling the response. The
// server provides it; it returns a *Error on a failed backend call.
type Forwarder func(r *Request, opts ForwardOptions) error

// Request is one request's state while policies run. The server fills the
// exported fields before Run and reads them after. Not safe for concurrent
// use; reuse with Reset.
type Request struct {
	Ctx       *fasthttp.RequestCtx
	API       *router.API
	Operation *router.Operation
	Match     *router.Match
	Product   string
	// Subscription is the subscription's name, "" for keyless calls.
	Subscription string
	Forward      Forwarder
	// State is the server's per-request state, for its Forwarder.
	State any

	// Backend is where forward-request sends the request: the API's
	// service URL, or what set-backend-service chose.
	Backend *Upstream
	// Path is the backend path after the API path, as rewrite-uri leaves
	// it (starting with '/'), and Query the raw query string; the server
	// builds the backend request-target from them.
	Path  []byte
	Query []byte
	// Forwarded reports that forward-request ran.
	Forwarded bool
	LastError *Error
	Vars      map[string]string

	// Info is the static context expressions read.
	Info RequestInfo

	section Section
	scratch []byte
	values  map[string]expr.Value
	exprEnv expr.Env
	// dynBackend holds a set-backend-service base-url computed per request.
	dynBackend Upstream
	// clientCert is authentication-certificate's client certificate for
	// the backend call, nil for none.
	clientCert *clientCert
	bodyRead   bool
	bodyErr    error
	// onResponse runs, in order, when Run ends, on the final response
	// (cors adds its headers there).
	onResponse []func(*Request)
}

// Reset clears the request for reuse, keeping allocated buffers.
func (r *Request) Reset() {
	vars, values := r.Vars, r.values
	clear(vars)
	clear(values)
	clear(r.onResponse)
	path, query, scratch, hooks := r.Path[:0], r.Query[:0], r.scratch[:0], r.onResponse[:0]
	*r = Request{Vars: vars, values: values, Path: path, Query: query, scratch: scratch, onResponse: hooks}
}

// Upstream is a resolved backend base URL.
type Upstream struct {
	Client   *fasthttp.HostClient
	Scheme   string
	Host     string
	BasePath string
	// Breaker is the backend entity's circuit breaker, nil when it has
	// none; forward-request records each outcome in it.
	Breaker *Breaker
}

// Pipeline is the composed, compiled policy of one operation in one
// product context.
type Pipeline struct {
	sections [numSections][]Step
}

// Run executes inbound, backend and outbound; a failure runs on-error.
// When Run returns, ctx.Response holds the answer.
func (p *Pipeline) Run(r *Request) {
	p.run(r)
	for _, f := range r.onResponse {
		f(r)
	}
}

func (p *Pipeline) run(r *Request) {
	for s := Inbound; s <= Outbound; s++ {
		r.section = s
		err := runSteps(r, p.sections[s])
		if err == nil {
			continue
		}
		if errors.Is(err, errStop) {
			return
		}
		p.fail(r, err)
		return
	}
}

func runSteps(r *Request, steps []Step) error {
	for _, st := range steps {
		if err := st.Exec(r); err != nil {
			return err
		}
	}
	return nil
}

// fail records err as LastError and runs on-error. Without an on-error
// section, or when it fails too, the answer is the error's own.
func (p *Pipeline) fail(r *Request, err error) {
	var pe *Error
	if !errors.As(err, &pe) {
		pe = &Error{Source: "gateway", Reason: "InternalError", Message: err.Error(), Status: 500}
	}
	r.LastError = pe
	r.section = OnError
	// on-error starts from the default answer and may change it (a
	// header, the status) or replace it (return-response).
	writeErrorResponse(r.Ctx, pe.Status, pe.Message)
	pe.writeHeaders(r.Ctx)
	steps := p.sections[OnError]
	if len(steps) == 0 {
		return
	}
	oerr := runSteps(r, steps)
	if oerr == nil || errors.Is(oerr, errStop) {
		return
	}
	if errors.As(oerr, &pe) {
		r.LastError = pe
	}
	writeErrorResponse(r.Ctx, pe.Status, pe.Message)
	pe.writeHeaders(r.Ctx)
}

// HasOnError reports whether the pipeline has an on-error section.
func (p *Pipeline) HasOnError() bool { return p != nil && len(p.sections[OnError]) > 0 }

// OnError runs only the on-error section for an error the gateway raised
// before the pipeline could start (no operation matched, no valid
// subscription key), with e as context.LastError. The caller has already
// written the gateway's answer; on-error may change or replace it, as in
// API Management, where a global on-error sees OperationNotFound and
// SubscriptionKeyNotFound.
func (p *Pipeline) OnError(r *Request, e *Error) {
	r.LastError = e
	r.section = OnError
	err := runSteps(r, p.sections[OnError])
	if err == nil || errors.Is(err, errStop) {
		for _, f := range r.onResponse {
			f(r)
		}
		return
	}
	pe := e
	if errors.As(err, &pe) {
		r.LastError = pe
	}
	writeErrorResponse(r.Ctx, pe.Status, pe.Message)
	pe.writeHeaders(r.Ctx)
}

// writeHeaders adds the error's response headers.
func (e *Error) writeHeaders(ctx *fasthttp.RequestCtx) {
	if e.headers == nil {
		return
	}
	h := *e.headers
	for i := 0; i+1 < len(h); i += 2 {
		ctx.Response.Header.Set(h[i], h[i+1])
	}
}

// writeErrorResponse answers with API Management's JSON error shape.
func writeErrorResponse(ctx *fasthttp.RequestCtx, status int, message string) {
	if status == 0 {
		status = fasthttp.StatusInternalServerError
	}
	ctx.Response.Reset()
	ctx.Response.Header.DisableNormalizing()
	ctx.Response.SetStatusCode(status)
	ctx.Response.Header.SetContentType("application/json")
	b := []byte(`{ "statusCode": `)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `, "message": `...)
	b = strconv.AppendQuote(b, message)
	b = append(b, ` }`...)
	ctx.Response.SetBodyRaw(b)
}

// meta is what every compiled step knows about where it came from.
type meta struct {
	name    string
	id      string
	loc     Location
	section Section
	path    string
}

// fail builds the step's *Error.
func (m *meta) fail(reason, message string, status int) *Error {
	return &Error{
		Source:   m.name,
		Reason:   reason,
		Message:  message,
		Scope:    m.loc.Scope.String(),
		Section:  m.section.String(),
		Path:     m.path,
		PolicyID: m.id,
		Status:   status,
	}
}
