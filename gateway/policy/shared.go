package policy

import (
	"sync"

	"github.com/valyala/fasthttp"
)

// Shared is the state that outlives configuration reloads and is not a
// store of its own: OpenID configurations fetched for validate-jwt, and
// the bound on send-one-way-request calls under way. The server makes one
// and passes it in every Options; a Set without one makes its own.
type Shared struct {
	oidc   sync.Map // oidcKey -> *oidcProvider
	oneWay *oneWayLimiter
	// oidcClient fetches OpenID configurations when Options.HTTPClient is
	// nil.
	oidcClient HTTPDoer
	// side sends send-request and send-one-way-request calls when
	// Options.SideClient is nil.
	side *fasthttp.Client
}

// NewShared returns empty shared state.
func NewShared() *Shared {
	return &Shared{oneWay: newOneWayLimiter(oneWayMaxInFlight), oidcClient: newOIDCClient(), side: newSideClient()}
}

// OneWayDropped reports how many send-one-way-request calls were dropped
// because too many were under way.
func (s *Shared) OneWayDropped() uint64 { return s.oneWay.dropped.Load() }
