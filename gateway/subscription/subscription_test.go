package subscription

import (
	"testing"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/config"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/router"
)

const snapshot = `{"schemaVersion": "1.0",
 "apis": [
  {"name": "orders", "properties": {"path": "orders"}, "operations": [{"name": "o", "properties": {"method": "GET", "urlTemplate": "/"}}]},
  {"name": "orders;rev=2", "properties": {"path": "orders", "isCurrent": false}, "operations": [{"name": "o", "properties": {"method": "GET", "urlTemplate": "/"}}]},
  {"name": "billing", "properties": {"path": "billing", "subscriptionKeyParameterNames": {"header": "X-Key", "query": "k"}}, "operations": [{"name": "o", "properties": {"method": "GET", "urlTemplate": "/"}}]},
  {"name": "public", "properties": {"path": "public"}, "operations": [{"name": "o", "properties": {"method": "GET", "urlTemplate": "/"}}]},
  {"name": "hidden", "properties": {"path": "hidden"}, "operations": [{"name": "o", "properties": {"method": "GET", "urlTemplate": "/"}}]},
  {"name": "free", "properties": {"path": "free", "subscriptionRequired": false}, "operations": [{"name": "o", "properties": {"method": "GET", "urlTemplate": "/"}}]}
 ],
 "products": [
  {"name": "gold", "apis": ["/apis/orders", "billing"]},
  {"name": "open", "properties": {"subscriptionRequired": false, "state": "published"}, "apis": ["public"]},
  {"name": "draft", "properties": {"subscriptionRequired": false, "state": "notPublished"}, "apis": ["hidden"]}
 ],
 "subscriptions": [
  {"name": "gold-sub", "properties": {"scope": "/products/gold", "primaryKey": "gold-primary-1", "secondaryKey": "gold-secondary-1"}},
  {"name": "orders-sub", "properties": {"scope": "/apis/orders", "primaryKey": "orders-only-1"}},
  {"name": "case-sub", "properties": {"scope": "/products/GOLD", "primaryKey": "gold-other-case-1"}},
  {"name": "all-sub", "properties": {"scope": "/apis", "primaryKey": "all-access-1"}},
  {"name": "service-sub", "properties": {"scope": "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.ApiManagement/service/contoso", "primaryKey": "service-level-1"}},
  {"name": "cancelled-sub", "properties": {"scope": "/apis", "primaryKey": "cancelled-key-1", "state": "cancelled"}},
  {"name": "expired-sub", "properties": {"scope": "/products/gold", "primaryKey": "expired-key-1", "state": "expired"}}
 ]}`

func compile(t *testing.T) (*Index, map[string]*router.API) {
	t.Helper()
	s, err := config.Parse([]byte(snapshot))
	if err != nil {
		t.Fatal(err)
	}
	table, err := router.Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	apis := map[string]*router.API{}
	for _, a := range table.APIs {
		apis[a.Name] = a
	}
	return Compile(s, table), apis
}

func TestCheck(t *testing.T) {
	t.Parallel()
	idx, apis := compile(t)
	tests := []struct {
		name        string
		api         string
		key         string
		want        Decision
		wantSub     string
		wantProduct string
	}{
		{name: "product key, primary", api: "orders", key: "gold-primary-1", want: Allowed, wantSub: "gold-sub", wantProduct: "gold"},
		{name: "product key, secondary", api: "billing", key: "gold-secondary-1", want: Allowed, wantSub: "gold-sub", wantProduct: "gold"},
		{name: "product key on a revision of its API", api: "orders;rev=2", key: "gold-primary-1", want: Allowed, wantSub: "gold-sub", wantProduct: "gold"},
		{name: "product scope in another case names the product as the snapshot spells it", api: "orders", key: "gold-other-case-1", want: Allowed, wantSub: "case-sub", wantProduct: "gold"},
		{name: "product key outside the product", api: "public", key: "gold-primary-1", want: InvalidKey},
		{name: "API key on its API", api: "orders", key: "orders-only-1", want: Allowed, wantSub: "orders-sub"},
		{name: "API key on its revision", api: "orders;rev=2", key: "orders-only-1", want: Allowed, wantSub: "orders-sub"},
		{name: "API key elsewhere", api: "billing", key: "orders-only-1", want: InvalidKey},
		{name: "all-APIs key", api: "hidden", key: "all-access-1", want: Allowed, wantSub: "all-sub"},
		{name: "service-level key", api: "billing", key: "service-level-1", want: Allowed, wantSub: "service-sub"},
		{name: "cancelled", api: "orders", key: "cancelled-key-1", want: InvalidKey},
		{name: "expired", api: "orders", key: "expired-key-1", want: InvalidKey},
		{name: "unknown key", api: "orders", key: "made-up-key", want: InvalidKey},
		{name: "prefix of a real key", api: "orders", key: "gold-primary-", want: InvalidKey},
		{name: "no key, subscription required", api: "orders", want: MissingKey},
		{name: "no key, open product", api: "public", want: Allowed, wantProduct: "open"},
		{name: "no key, unpublished open product", api: "hidden", want: MissingKey},
		{name: "no key, subscription not required", api: "free", want: Allowed},
		{name: "bad key, subscription not required", api: "free", key: "made-up-key", want: InvalidKey},
		{name: "good key, subscription not required", api: "free", key: "all-access-1", want: Allowed, wantSub: "all-sub"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			api := apis[tc.api]
			if api == nil {
				t.Fatalf("no API %q", tc.api)
			}
			var key []byte
			if tc.key != "" {
				key = []byte(tc.key)
			}
			res := idx.Check(api, key)
			if res.Decision != tc.want {
				t.Fatalf("decision %d, want %d", res.Decision, tc.want)
			}
			sub := ""
			if res.Subscription != nil {
				sub = res.Subscription.Name
			}
			if sub != tc.wantSub || res.Product != tc.wantProduct {
				t.Errorf("subscription %q product %q, want %q %q", sub, res.Product, tc.wantSub, tc.wantProduct)
			}
		})
	}
}

func TestKeyLocations(t *testing.T) {
	t.Parallel()
	idx, apis := compile(t)
	if acc := idx.Access(apis["orders"]); acc.HeaderName != DefaultHeader || acc.QueryName != DefaultQuery {
		t.Errorf("defaults: %q %q", acc.HeaderName, acc.QueryName)
	}
	if acc := idx.Access(apis["billing"]); acc.HeaderName != "X-Key" || acc.QueryName != "k" {
		t.Errorf("renamed: %q %q", acc.HeaderName, acc.QueryName)
	}
}

func TestCheckDoesNotAllocate(t *testing.T) {
	idx, apis := compile(t)
	key := []byte("gold-primary-1")
	bad := []byte("not-a-key-at-all")
	api := apis["orders"]
	if n := testing.AllocsPerRun(100, func() { idx.Check(api, key); idx.Check(api, bad); idx.Check(api, nil) }); n != 0 {
		t.Errorf("%v allocations per check", n)
	}
}

func BenchmarkCheck(b *testing.B) {
	s, _ := config.Parse([]byte(snapshot))
	table, _ := router.Compile(s)
	idx := Compile(s, table)
	key := []byte("gold-primary-1")
	b.ReportAllocs()
	for b.Loop() {
		idx.Check(table.APIs[0], key)
	}
}
