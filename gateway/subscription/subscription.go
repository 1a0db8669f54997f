// Package subscription decides, as API Management does, whether a request
// may call an API: with a subscription key (header first, then query
// parameter; primary or secondary key of an active subscription scoped to
// all APIs, to the API, or to a product containing it), or without one
// through an open product or an API that requires no subscription.
//
// Keys are found by the SHA-256 of the presented key and then compared in
// constant time, so neither the lookup nor the comparison reveals how much
// of a guessed key was right.
package subscription

import (
	"crypto/sha256"
	"crypto/subtle"
	"strings"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/config"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/router"
)

// Default key locations, renamable per API.
const (
	DefaultHeader = "Ocp-Apim-Subscription-Key"
	DefaultQuery  = "subscription-key"
)

// Decision is the outcome of a check.
type Decision uint8

const (
	// Allowed: the request may proceed.
	Allowed Decision = iota
	// MissingKey: no key was presented and the API requires one.
	MissingKey
	// InvalidKey: the key is unknown, inactive, or not valid for this API.
	InvalidKey
)

// Subscription is the compiled form of a snapshot subscription.
type Subscription struct {
	Name   string
	Active bool
	// kind is "all", "api" or "product"; scope is the API base name or
	// product name (lower case).
	kind  string
	scope string
	// Product is the product's name, as the snapshot spells it, for
	// product-scoped subscriptions.
	Product string
}

// Result is what a check found.
type Result struct {
	Decision     Decision
	Subscription *Subscription // nil without a key
	Product      string        // product context, "" when none
}

type keyEntry struct {
	key []byte
	sub *Subscription
}

// APIAccess is the compiled subscription rules of one API.
type APIAccess struct {
	Required    bool
	HeaderName  string
	QueryName   string
	OpenProduct string
	products    map[string]bool // lower-case product names containing the API
	baseName    string          // lower-case API base name
}

// Index holds the compiled rules for every API of one routing table.
type Index struct {
	keys map[[sha256.Size]byte][]keyEntry
	apis []APIAccess // by router.API.Index
}

// Compile builds the index for the APIs of table.
func Compile(s *config.Snapshot, table *router.Table) *Index {
	idx := &Index{keys: map[[sha256.Size]byte][]keyEntry{}, apis: make([]APIAccess, len(table.APIs))}
	productsOf := map[string]map[string]bool{} // API base name -> products
	// A scope may spell a product in another case; results carry the
	// product's own name, so callers can use it as a key as it is.
	canonical := map[string]string{}
	for i := range s.Products {
		canonical[strings.ToLower(s.Products[i].Name)] = s.Products[i].Name
	}
	openOf := map[string]string{}
	for i := range s.Products {
		p := &s.Products[i]
		open := !p.SubscriptionRequiredOrDefault() && p.Properties.State != "notPublished"
		for _, ref := range p.APIs {
			api := strings.ToLower(config.BaseName(config.RefName(ref, "apis")))
			if productsOf[api] == nil {
				productsOf[api] = map[string]bool{}
			}
			productsOf[api][strings.ToLower(p.Name)] = true
			if open {
				openOf[api] = p.Name
			}
		}
	}
	for _, a := range table.APIs {
		base := strings.ToLower(a.BaseName)
		acc := APIAccess{
			Required:    a.Config.SubscriptionRequiredOrDefault(),
			HeaderName:  DefaultHeader,
			QueryName:   DefaultQuery,
			OpenProduct: openOf[base],
			products:    productsOf[base],
			baseName:    base,
		}
		if k := a.Config.Properties.SubscriptionKeyParameterNames; k != nil {
			if k.Header != "" {
				acc.HeaderName = k.Header
			}
			if k.Query != "" {
				acc.QueryName = k.Query
			}
		}
		idx.apis[a.Index] = acc
	}
	for i := range s.Subscriptions {
		cs := &s.Subscriptions[i]
		kind, name := config.ScopeKind(cs.Properties.Scope)
		sub := &Subscription{
			Name:   cs.Name,
			Active: cs.StateOrDefault() == config.SubscriptionActive,
			kind:   kind,
			scope:  strings.ToLower(config.BaseName(name)),
		}
		if kind == "product" {
			sub.Product = canonical[strings.ToLower(name)]
		}
		for _, k := range []config.Secret{cs.Properties.PrimaryKey, cs.Properties.SecondaryKey} {
			if k.IsZero() {
				continue
			}
			key := []byte(k.Value())
			h := sha256.Sum256(key)
			idx.keys[h] = append(idx.keys[h], keyEntry{key: key, sub: sub})
		}
	}
	return idx
}

// Access returns the rules of the API with the given router index.
func (idx *Index) Access(api *router.API) *APIAccess { return &idx.apis[api.Index] }

// Check decides whether a request to api may proceed. key is the presented
// key (nil or empty when none was presented).
func (idx *Index) Check(api *router.API, key []byte) Result {
	acc := &idx.apis[api.Index]
	if len(key) == 0 {
		if acc.OpenProduct != "" {
			return Result{Decision: Allowed, Product: acc.OpenProduct}
		}
		if !acc.Required {
			return Result{Decision: Allowed}
		}
		return Result{Decision: MissingKey}
	}
	h := sha256.Sum256(key)
	for _, e := range idx.keys[h] {
		if subtle.ConstantTimeCompare(e.key, key) != 1 {
			continue
		}
		if !e.sub.Active {
			return Result{Decision: InvalidKey}
		}
		switch e.sub.kind {
		case "all":
			return Result{Decision: Allowed, Subscription: e.sub}
		case "api":
			if e.sub.scope == acc.baseName {
				return Result{Decision: Allowed, Subscription: e.sub}
			}
		case "product":
			if acc.products[e.sub.scope] {
				return Result{Decision: Allowed, Subscription: e.sub, Product: e.sub.Product}
			}
		}
		return Result{Decision: InvalidKey}
	}
	return Result{Decision: InvalidKey}
}
