package server

import (
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/config"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/proxy"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/router"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/subscription"
)

// runtime is one compiled configuration: everything a request needs,
// immutable once built and swapped in with one atomic store. Requests keep
// the runtime they started with until they finish.
type runtime struct {
	snapshot *config.Snapshot
	hash     [sha256.Size]byte
	loadedAt time.Time
	table    *router.Table
	subs     *subscription.Index
	backends []apiBackend // by router.API.Index
	certs    *certStore
	targets  map[proxy.Target]bool
	// unexecuted lists the policy scopes present in the snapshot that this
	// gateway does not run yet.
	unexecuted []string
}

type apiBackend struct {
	client   *fasthttp.HostClient
	scheme   string
	host     string
	basePath string
}

// compile builds a runtime from a validated snapshot. Backend clients come
// from pool, so targets unchanged since the last configuration keep their
// connections.
func compile(s *config.Snapshot, hash [sha256.Size]byte, pool *proxy.Pool) (*runtime, error) {
	table, err := router.Compile(s)
	if err != nil {
		return nil, fmt.Errorf("routes: %w", err)
	}
	certs, err := compileCertificates(s)
	if err != nil {
		return nil, fmt.Errorf("certificates: %w", err)
	}
	rt := &runtime{
		snapshot: s,
		hash:     hash,
		loadedAt: time.Now(),
		table:    table,
		subs:     subscription.Compile(s, table),
		backends: make([]apiBackend, len(table.APIs)),
		certs:    certs,
		targets:  map[proxy.Target]bool{},
	}
	for _, a := range table.APIs {
		if a.Config.Properties.ServiceURL == "" {
			continue
		}
		target, base, err := proxy.ParseTarget(a.Config.Properties.ServiceURL)
		if err != nil {
			return nil, fmt.Errorf("api %q: %w", a.Name, err)
		}
		rt.targets[target] = true
		rt.backends[a.Index] = apiBackend{client: pool.Client(target), scheme: target.Scheme, host: target.Host, basePath: base}
	}
	rt.unexecuted = s.PolicyScopes()
	return rt, nil
}
