package server

import (
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/config"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/expr"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/policy"
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
	backends []policy.Upstream // by router.API.Index; Client nil without a service URL
	certs    *certStore
	targets  map[proxy.Target]bool
	// pipelines[api][op] are the composed policies, nil when the snapshot
	// has no policy at all (the fast path).
	pipelines [][]opPipelines
	// errPipelines[api] holds the global and API on-error sections for
	// errors raised before the pipeline starts; nil entries have none.
	errPipelines []*policy.Pipeline
	// policyWarnings are the policies skipped at load.
	policyWarnings []policy.Issue
	// What policy expressions read of the static context.
	exprAPIs     []expr.ApiInfo         // by API index
	exprOps      [][]expr.OperationInfo // by API, operation index
	exprProducts map[string]*expr.ProductInfo
	exprSubs     map[string]*[2]expr.SubscriptionInfo // by name: used with the primary, the secondary key
	exprDeploy   expr.DeploymentInfo
}

// opPipelines are one operation's pipelines: without a product context,
// and for each product whose own policy changes the result.
type opPipelines struct {
	none      *policy.Pipeline
	byProduct map[string]*policy.Pipeline
}

// pipeline returns the policies for a request, nil when none apply.
func (rt *runtime) pipeline(api *router.API, op *router.Operation, product string) *policy.Pipeline {
	if rt.pipelines == nil {
		return nil
	}
	ops := &rt.pipelines[api.Index][op.Index]
	if product != "" {
		if p := ops.byProduct[product]; p != nil {
			return p
		}
	}
	return ops.none
}

// compile builds a runtime from a validated snapshot. Backend clients come
// from pool, so targets unchanged since the last configuration keep their
// connections.
func compile(s *config.Snapshot, hash [sha256.Size]byte, pool *proxy.Pool, opts policy.Options) (*runtime, error) {
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
		backends: make([]policy.Upstream, len(table.APIs)),
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
		rt.backends[a.Index] = policy.Upstream{Client: pool.Client(target), Scheme: target.Scheme, Host: target.Host, BasePath: base}
	}
	if len(s.PolicyScopes()) > 0 {
		if err := rt.compilePolicies(s, pool, opts); err != nil {
			return nil, err
		}
	}
	return rt, nil
}

// compilePolicies compiles every policy document and composes one
// pipeline per operation and product context.
func (rt *runtime) compilePolicies(s *config.Snapshot, pool *proxy.Pool, opts policy.Options) error {
	// Every target a policy resolves at load is kept by the pool on the
	// next reload, like the APIs' own.
	// Steps that compute a backend per request (base-url expressions) call
	// these too, concurrently: only load-time calls are recorded.
	var sealed atomic.Bool
	defer sealed.Store(true)
	opts.Client = func(t proxy.Target) *fasthttp.HostClient {
		if !sealed.Load() {
			rt.targets[t] = true
		}
		return pool.Client(t)
	}
	opts.ClientWithCert = func(t proxy.Target, crt *tls.Certificate) *fasthttp.HostClient {
		if !sealed.Load() {
			rt.targets[t] = true
		}
		return pool.ClientWithCert(t, crt)
	}
	set := policy.NewSet(s, opts)
	global := set.Compile(policy.Location{Scope: policy.ScopeGlobal}, s.Policy)
	products := map[string]*policy.Document{}
	productsOf := map[string][]string{} // API base name -> products with a policy
	for i := range s.Products {
		p := &s.Products[i]
		doc := set.Compile(policy.Location{Scope: policy.ScopeProduct, Name: p.Name}, p.Policy)
		if doc == nil {
			continue
		}
		key := p.Name // the subscription index reports products by this name
		products[key] = doc
		for _, ref := range p.APIs {
			api := strings.ToLower(config.BaseName(config.RefName(ref, "apis")))
			productsOf[api] = append(productsOf[api], key)
		}
	}
	rt.pipelines = make([][]opPipelines, len(rt.table.APIs))
	rt.errPipelines = make([]*policy.Pipeline, len(rt.table.APIs))
	for _, a := range rt.table.APIs {
		apiDoc := set.Compile(policy.Location{Scope: policy.ScopeAPI, Name: a.Name}, a.Config.Policy)
		// Errors raised before an operation or product is known run the
		// on-error of the global and API scopes.
		if pl := policy.Compose(global, apiDoc, nil); pl.HasOnError() {
			rt.errPipelines[a.Index] = pl
		}
		ops := make([]opPipelines, len(a.Operations))
		for _, op := range a.Operations {
			opDoc := set.Compile(policy.Location{Scope: policy.ScopeOperation, Name: a.Name + "/" + op.Name}, op.Config.Policy)
			ops[op.Index].none = policy.Compose(global, apiDoc, opDoc)
			for _, prod := range productsOf[strings.ToLower(a.BaseName)] {
				if ops[op.Index].byProduct == nil {
					ops[op.Index].byProduct = map[string]*policy.Pipeline{}
				}
				ops[op.Index].byProduct[prod] = policy.Compose(global, products[prod], apiDoc, opDoc)
			}
		}
		rt.pipelines[a.Index] = ops
	}
	rt.policyWarnings = set.Warnings
	rt.buildExprInfo(s)
	if err := set.Err(); err != nil {
		return fmt.Errorf("policies: %w", err)
	}
	return nil
}

// buildExprInfo renders the static parts of `context` once per snapshot.
func (rt *runtime) buildExprInfo(s *config.Snapshot) {
	rt.exprAPIs = make([]expr.ApiInfo, len(rt.table.APIs))
	rt.exprOps = make([][]expr.OperationInfo, len(rt.table.APIs))
	for _, a := range rt.table.APIs {
		rt.exprAPIs[a.Index] = expr.ApiInfo{Id: a.BaseName, Name: a.Config.Properties.DisplayName, Path: a.Path,
			Version: a.Version, Revision: a.Revision, IsCurrentRevision: a.IsCurrent}
		if rt.exprAPIs[a.Index].Name == "" {
			rt.exprAPIs[a.Index].Name = a.BaseName
		}
		ops := make([]expr.OperationInfo, len(a.Operations))
		for _, op := range a.Operations {
			name := op.Config.Properties.DisplayName
			if name == "" {
				name = op.Name
			}
			ops[op.Index] = expr.OperationInfo{Id: op.Name, Name: name, Method: op.Method, UrlTemplate: op.Template.Raw}
		}
		rt.exprOps[a.Index] = ops
	}
	rt.exprProducts = map[string]*expr.ProductInfo{}
	for i := range s.Products {
		p := &s.Products[i]
		name := p.Properties.DisplayName
		if name == "" {
			name = p.Name
		}
		rt.exprProducts[p.Name] = &expr.ProductInfo{Id: p.Name, Name: name,
			ApprovalRequired: p.Properties.ApprovalRequired, SubscriptionRequired: p.SubscriptionRequiredOrDefault()}
	}
	rt.exprSubs = map[string]*[2]expr.SubscriptionInfo{}
	for i := range s.Subscriptions {
		sub := &s.Subscriptions[i]
		name := sub.Properties.DisplayName
		if name == "" {
			name = sub.Name
		}
		info := expr.SubscriptionInfo{Id: sub.Name, Name: name, PrimaryKey: sub.Properties.PrimaryKey.Value(), SecondaryKey: sub.Properties.SecondaryKey.Value()}
		pair := &[2]expr.SubscriptionInfo{info, info}
		pair[0].Key, pair[1].Key = info.PrimaryKey, info.SecondaryKey
		rt.exprSubs[sub.Name] = pair
	}
	rt.exprDeploy = expr.DeploymentInfo{GatewayId: s.Gateway.Name}
}

// Check compiles s exactly as a reload would (routes, certificates,
// policies) without serving it: what `apim-gateway validate` reports. It
// returns the policies that would be skipped.
func Check(s *config.Snapshot, strictPolicies bool) ([]policy.Issue, error) {
	rt, err := compile(s, [sha256.Size]byte{}, proxy.NewPool(proxy.Options{}), policy.Options{Strict: strictPolicies})
	if err != nil {
		return nil, err
	}
	return rt.policyWarnings, nil
}
