package router

import (
	"strings"
	"unsafe"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/config"
)

// hostSet decides whether a request's host is one the gateway serves. It
// only restricts anything when the snapshot asks for it
// (gateway.rejectUnknownHostnames).
type hostSet struct {
	enforce  bool
	exact    map[string]bool
	wildcard map[string]bool // ".contoso.com" for "*.contoso.com"
}

func newHostSet(g config.Gateway) hostSet {
	h := hostSet{enforce: g.RejectUnknownHostnames && len(g.Hostnames) > 0, exact: map[string]bool{}, wildcard: map[string]bool{}}
	for _, hn := range g.Hostnames {
		name := strings.ToLower(hn.Hostname)
		if strings.HasPrefix(name, "*.") {
			h.wildcard[name[1:]] = true
		} else {
			h.exact[name] = true
		}
	}
	return h
}

func (h *hostSet) allows(m *Match, host string) bool {
	if !h.enforce {
		return true
	}
	host = m.lowered(stripPort(host))
	if h.exact[host] {
		return true
	}
	if i := strings.IndexByte(host, '.'); i > 0 {
		return h.wildcard[host[i:]]
	}
	return false
}

// stripPort removes a ":port" suffix, leaving IPv6 literals intact.
func stripPort(host string) string {
	if strings.HasPrefix(host, "[") {
		if i := strings.IndexByte(host, ']'); i > 0 {
			return host[1:i]
		}
		return host
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 && strings.IndexByte(host, ':') == i {
		return host[:i]
	}
	return host
}

// unsafeString views b as a string without copying. The caller must not
// keep the string past the next change to b.
func unsafeString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}
