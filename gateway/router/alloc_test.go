//go:build !race

package router

import (
	"strings"
	"testing"
)

// TestLookupZeroAlloc checks that a lookup allocates nothing, whatever its
// outcome. (The race detector allocates, hence the build tag.)
func TestLookupZeroAlloc(t *testing.T) {
	routing := mustCompile(t, routingSnapshot())
	versions := loadTable(t, "versions.json")
	hosts := mustCompile(t, hostsSnapshot(true))
	for _, tc := range []struct {
		name  string
		table *Table
		req   Request
		want  Result
	}{
		{name: "hit with params", table: routing, req: Request{Method: "GET", Path: "/shop/users/42/orders/7"}, want: Found},
		{name: "case-folded hit", table: routing, req: Request{Method: "GET", Path: "/SHOP/Users/ME"}, want: Found},
		{name: "case-folded hit with params", table: routing, req: Request{Method: "GET", Path: "/Shop/RESOURCE(12)"}, want: Found},
		{name: "wildcard hit", table: routing, req: Request{Method: "GET", Path: "/shop/assets/css/site.css"}, want: Found},
		{name: "query template hit", table: routing, req: Request{Method: "GET", Path: "/shop/search", Query: "x=1&q=shoes"}, want: Found},
		{name: "segment version hit", table: versions, req: Request{Method: "GET", Path: "/seg/V1/items/9"}, want: Found},
		{name: "query version hit", table: versions, req: Request{Method: "GET", Path: "/qry/info", Query: "api-version=2024-01-01"}, want: Found},
		{name: "header version hit", table: versions, req: Request{Method: "GET", Path: "/hdr/info", Header: fakeHeader{name: "Api-Version", value: []byte("V2")}}, want: Found},
		{name: "header unknown long version", table: versions, req: Request{Method: "GET", Path: "/hdr/info", Header: fakeHeader{name: "Api-Version", value: []byte("2024-01-01-preview-with-a-long-unknown-identifier")}}, want: NotFound},
		{name: "revision hit", table: versions, req: Request{Method: "GET", Path: "/echo;rev=2/new"}, want: Found},
		{name: "host hit", table: hosts, req: Request{Host: "API.contoso.com:443", Method: "GET", Path: "/h/x"}, want: Found},
		{name: "404", table: routing, req: Request{Method: "GET", Path: "/nosuch/users/42"}, want: NotFound},
		{name: "404 unknown host", table: hosts, req: Request{Host: "evil.example.com", Method: "GET", Path: "/h/x"}, want: NotFound},
		{name: "404 too many segments", table: routing, req: Request{Method: "GET", Path: "/deep" + strings.Repeat("/s", MaxSegments)}, want: NotFound},
		{name: "operation not found", table: routing, req: Request{Method: "DELETE", Path: "/shop/users/42"}, want: OperationNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := new(Match)
			req := tc.req
			if got := tc.table.Lookup(m, &req); got != tc.want {
				t.Fatalf("Result = %s, want %s", resultName(got), resultName(tc.want))
			}
			allocs := testing.AllocsPerRun(200, func() {
				tc.table.Lookup(m, &req)
			})
			if allocs != 0 {
				t.Errorf("Lookup allocates %v times per call, want 0", allocs)
			}
		})
	}
}
