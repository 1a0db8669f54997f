package proxy

import (
	"bytes"
	"errors"
	"net"
	"os"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// Error reasons recorded as LastErrorReason, named as API Management does.
const (
	ReasonConnectionFailure = "BackendConnectionFailure"
	ReasonTimeout           = "Timeout"
)

// hopByHop are the RFC 9110 section 7.6.1 connection-specific headers a
// proxy must not forward, plus Proxy-Connection which old clients send.
// Transfer-Encoding is not listed: fasthttp keeps framing out of the
// header map and frames the outgoing body itself.
var hopByHop = []string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "TE", "Trailer", "Upgrade",
}

// headerBuf is scratch space for one request. Not safe for concurrent use.
type headerBuf struct {
	names [16][]byte
	tmp   []byte
}

// Outbound describes where one request goes.
type Outbound struct {
	Client *fasthttp.HostClient
	Scheme string // "http" or "https": the backend's, not the client's
	Host   string // Host header for the backend
	// PathAndQuery is the request-target sent to the backend. It must stay
	// valid until Do returns.
	PathAndQuery []byte
	Timeout      time.Duration
	// ClientIP, Proto and OriginalHost feed X-Forwarded-*.
	ClientIP     net.IP
	Proto        string
	OriginalHost []byte
}

// Forwarder sends requests to backends. The zero value is ready to use;
// one Forwarder serves one request at a time (keep it in per-request
// state).
type Forwarder struct {
	hb headerBuf
}

// Do forwards req to the backend and fills resp, whose body is streamed
// from the backend connection when it is large. Request and response
// hop-by-hop headers are removed. On failure resp is reset and the error is
// classified by Reason.
func (f *Forwarder) Do(req *fasthttp.Request, resp *fasthttp.Response, out *Outbound) error {
	h := &req.Header
	f.stripHopByHop(h)
	f.setForwarded(h, out)
	req.SetRequestURIBytes(out.PathAndQuery)
	// The URI inherits the client connection's scheme; HostClient refuses
	// a request whose scheme differs from its own.
	req.URI().SetScheme(out.Scheme)
	req.Header.SetHost(out.Host)
	req.UseHostHeader = true

	var err error
	if out.Timeout > 0 {
		err = out.Client.DoTimeout(req, resp, out.Timeout)
	} else {
		err = out.Client.Do(req, resp)
	}
	if err != nil {
		resp.Reset()
		return err
	}
	f.stripHopByHop(&resp.Header)
	return nil
}

// Reason maps a forwarding error to an API Management LastErrorReason and
// the status the gateway answers with: 504 for timeouts, 502 otherwise.
func Reason(err error) (string, int) {
	var ne net.Error
	switch {
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, os.ErrDeadlineExceeded):
		return ReasonTimeout, fasthttp.StatusGatewayTimeout
	case errors.Is(err, fasthttp.ErrDialTimeout):
		return ReasonConnectionFailure, fasthttp.StatusBadGateway
	case errors.As(err, &ne) && ne.Timeout():
		return ReasonTimeout, fasthttp.StatusGatewayTimeout
	}
	return ReasonConnectionFailure, fasthttp.StatusBadGateway
}

// header is what stripping needs of a request or response header.
type header interface {
	Peek(key string) []byte
	Del(key string)
	DelBytes(key []byte)
}

func (f *Forwarder) stripHopByHop(h header) {
	// Headers named in Connection are hop-by-hop too (RFC 9110 7.6.1).
	n := 0
	if conn := h.Peek("Connection"); len(conn) > 0 {
		f.hb.tmp = append(f.hb.tmp[:0], conn...)
		n = f.connectionTokens(f.hb.tmp)
	}
	for i := range n {
		h.DelBytes(f.hb.names[i])
	}
	// Most requests carry none of these; Del is only called for those
	// present, so the header list is not rewritten needlessly.
	for _, name := range hopByHop {
		if h.Peek(name) != nil {
			h.Del(name)
		}
	}
}

// connectionTokens splits a Connection header value into f.hb.names and
// returns how many there are. "close" and "keep-alive" are options, not
// header names, but deleting such headers is harmless.
func (f *Forwarder) connectionTokens(v []byte) int {
	n := 0
	for len(v) > 0 && n < len(f.hb.names) {
		var tok []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			tok, v = v[:i], v[i+1:]
		} else {
			tok, v = v, nil
		}
		tok = bytes.TrimSpace(tok)
		if len(tok) == 0 {
			continue
		}
		f.hb.names[n] = tok
		n++
	}
	return n
}

func (f *Forwarder) setForwarded(h *fasthttp.RequestHeader, out *Outbound) {
	if out.ClientIP != nil {
		b := f.hb.tmp[:0]
		if prior := h.Peek("X-Forwarded-For"); len(prior) > 0 {
			b = append(b, prior...)
			b = append(b, ", "...)
		}
		b = AppendIP(b, out.ClientIP)
		f.hb.tmp = b
		h.SetBytesV("X-Forwarded-For", b)
	}
	if out.Proto != "" {
		h.Set("X-Forwarded-Proto", out.Proto)
	}
	if len(out.OriginalHost) > 0 {
		h.SetBytesV("X-Forwarded-Host", out.OriginalHost)
	}
}

// AppendIP appends the text form of ip, without allocating for IPv4.
func AppendIP(b []byte, ip net.IP) []byte {
	if ip4 := ip.To4(); ip4 != nil {
		for i, o := range ip4 {
			if i > 0 {
				b = append(b, '.')
			}
			b = appendUint(b, int(o))
		}
		return b
	}
	return append(b, strings.ToLower(ip.String())...)
}

func appendUint(b []byte, n int) []byte {
	if n >= 100 {
		b = append(b, byte('0'+n/100))
	}
	if n >= 10 {
		b = append(b, byte('0'+n/10%10))
	}
	return append(b, byte('0'+n%10))
}
