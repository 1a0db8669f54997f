package policy

import (
	"bytes"
	"errors"
	"io"
)

// ErrBodyTooLarge is what a body stream returns once it passes the
// gateway's body limit. The server's limiting reader returns it; policies
// that read the body turn it into a 413.
var ErrBodyTooLarge = errors.New("request body larger than the gateway's limit")

// RequestBody reads the whole request body, once: it stays buffered, so
// the backend call still sends it. fasthttp's own Request.Body() turns a
// read error into the body's text; this does not.
func (r *Request) RequestBody() ([]byte, error) {
	if !r.bodyRead {
		r.bodyRead = true
		if stream := r.Ctx.RequestBodyStream(); stream != nil {
			var buf bytes.Buffer
			if _, err := io.Copy(&buf, stream); err != nil {
				r.bodyErr = err
			} else {
				r.Ctx.Request.SetBody(buf.Bytes())
			}
		}
	}
	if r.bodyErr != nil {
		if errors.Is(r.bodyErr, ErrBodyTooLarge) {
			return nil, &Error{Source: "request", Reason: "RequestEntityTooLarge", Message: "Request entity too large", Status: 413}
		}
		return nil, &Error{Source: "request", Reason: "ClientConnectionFailure", Message: "Bad request", Status: 400}
	}
	return r.Ctx.Request.Body(), nil
}
