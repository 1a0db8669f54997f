package server

import (
	"errors"
	"net"
	"strconv"

	"github.com/valyala/fasthttp"
)

// apimError is one of the gateway's own answers, rendered once. The body
// matches what the managed gateway sends byte for byte, including the
// spaces inside the braces, so clients that parse or compare it keep
// working (reference/gateway.md, part C).
type apimError struct {
	status  int
	message string
	body    []byte
}

func newAPIMError(status int, message string) apimError {
	b := []byte(`{ "statusCode": `)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `, "message": `...)
	b = strconv.AppendQuote(b, message)
	b = append(b, ` }`...)
	return apimError{status: status, message: message, body: b}
}

// The errors the gateway itself produces. They are immutable after
// construction and shared by all requests.
type apimErrors struct {
	missingKey, invalidKey, notFound, tooLarge, badRequest,
	headerTooLarge, requestTimeout,
	noBackend, badGateway, gatewayTimeout, unavailable apimError
}

func newAPIMErrors() *apimErrors {
	return &apimErrors{
		missingKey:     newAPIMError(401, "Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API."),
		invalidKey:     newAPIMError(401, "Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription."),
		notFound:       newAPIMError(404, "Resource not found"),
		tooLarge:       newAPIMError(413, "Request entity too large"),
		badRequest:     newAPIMError(400, "Bad request"),
		headerTooLarge: newAPIMError(431, "Request header fields too large"),
		requestTimeout: newAPIMError(408, "Request timeout"),
		noBackend:      newAPIMError(500, "Internal server error"),
		badGateway:     newAPIMError(502, "Bad gateway: the backend service could not be reached"),
		gatewayTimeout: newAPIMError(504, "Gateway timeout: the backend service did not answer in time"),
		unavailable:    newAPIMError(503, "Service unavailable: no configuration is loaded"),
	}
}

var statusAccessDenied = []byte("Access Denied")

// write answers with e, dropping anything a backend already put in the
// response.
func (e *apimError) write(ctx *fasthttp.RequestCtx) {
	ctx.Response.Reset()
	// Reset turns header-name normalization back on; keep names as written
	// (WWW-Authenticate, not Www-Authenticate).
	ctx.Response.Header.DisableNormalizing()
	ctx.Response.SetStatusCode(e.status)
	ctx.Response.Header.SetContentType("application/json")
	ctx.Response.SetBodyRaw(e.body)
}

// connError answers requests fasthttp could not read: a header block over
// --max-header-bytes (431), a client too slow for --read-timeout (408), a
// body over the limit (413), anything malformed (400). The connection is
// closed afterwards.
func (g *Gateway) connError(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	var ne net.Error
	switch {
	case errors.As(err, &small):
		g.errs.headerTooLarge.write(ctx)
	case errors.As(err, &ne) && ne.Timeout():
		g.errs.requestTimeout.write(ctx)
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		g.errs.tooLarge.write(ctx)
	default:
		g.errs.badRequest.write(ctx)
	}
	g.metrics.record(ctx.Response.StatusCode())
}
