package router

import (
	"fmt"
	"testing"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/config"
)

// benchSnapshot builds a snapshot of exactly n APIs. API paths are
// "svcNNNNN"; every tenth path is served by a Segment version set with an
// Original and a "v2" version (two APIs). Every API has five operations,
// three of them templated.
func benchSnapshot(n int) (*config.Snapshot, benchShape) {
	s := &config.Snapshot{SchemaVersion: config.SchemaVersion}
	ops := func(prefix string) []config.Operation {
		return []config.Operation{
			op(prefix+"list", "GET", "/items"),
			op(prefix+"get", "GET", "/items/{id}"),
			op(prefix+"create", "POST", "/items"),
			op(prefix+"part", "GET", "/items/{id}/parts/{partId}"),
			op(prefix+"file", "GET", "/files/{name}.json"),
		}
	}
	var shape benchShape
	g := 0
	for ; len(s.APIs) < n; g++ {
		path := fmt.Sprintf("svc%05d", g)
		if g%10 != 0 || len(s.APIs)+2 > n {
			s.APIs = append(s.APIs, api(fmt.Sprintf("api%05d", g), path, ops("")...))
			continue
		}
		vs := fmt.Sprintf("vs%05d", g)
		s.APIVersionSets = append(s.APIVersionSets, config.APIVersionSet{Name: vs, Properties: config.APIVersionSetProperties{VersioningScheme: config.VersioningSegment}})
		orig := api(fmt.Sprintf("api%05d", g), path, ops("")...)
		orig.Properties.APIVersionSetID = "/apiVersionSets/" + vs
		v2 := api(fmt.Sprintf("api%05d-v2", g), path, ops("v2-")...)
		v2.Properties.APIVersionSetID = "/apiVersionSets/" + vs
		v2.Properties.APIVersion = "v2"
		s.APIs = append(s.APIs, orig, v2)
		shape.versioned = g
	}
	shape.paths = g
	return s, shape
}

// benchShape says which API paths a bench snapshot has.
type benchShape struct {
	paths     int // svc00000 to svc{paths-1}
	versioned int // the last path served by a version set
}

type benchRequest struct {
	req  Request
	want Result
}

// benchRequests returns the same request shapes whatever the table size:
// plain, parameter, case-folded and versioned hits, an operation miss and
// 404s, spread over the table.
func benchRequests(shape benchShape) []benchRequest {
	last, mid, versioned := shape.paths-1, shape.paths/2, shape.versioned
	get := func(path string, want Result) benchRequest {
		return benchRequest{req: Request{Host: "gw.example.com", Method: "GET", Path: path}, want: want}
	}
	return []benchRequest{
		get(fmt.Sprintf("/svc%05d/items", last), Found),
		get(fmt.Sprintf("/svc%05d/items/12345", mid), Found),
		get(fmt.Sprintf("/svc%05d/items/12345/parts/9", 1), Found),
		get(fmt.Sprintf("/SVC%05d/Items/AbC", mid), Found),
		get(fmt.Sprintf("/svc%05d/v2/items/42/parts/7", versioned), Found),
		get(fmt.Sprintf("/svc%05d/files/report.json", last), Found),
		get("/nosuch/items/42", NotFound),
		get(fmt.Sprintf("/svc%05d/unknown/thing", mid), OperationNotFound),
		get("/svc99999/items", NotFound),
	}
}

func TestBenchSnapshot(t *testing.T) {
	t.Parallel()
	for _, n := range []int{10, 10000} {
		s, shape := benchSnapshot(n)
		if len(s.APIs) != n {
			t.Fatalf("benchSnapshot(%d) has %d APIs", n, len(s.APIs))
		}
		table := mustCompile(t, s)
		m := new(Match)
		for _, br := range benchRequests(shape) {
			if got := table.Lookup(m, &br.req); got != br.want {
				t.Errorf("%d APIs: %s: %s, want %s", n, br.req.Path, resultName(got), resultName(br.want))
			}
		}
	}
}

func benchmarkLookup(b *testing.B, n int) {
	s, shape := benchSnapshot(n)
	table, err := Compile(s)
	if err != nil {
		b.Fatal(err)
	}
	reqs := benchRequests(shape)
	m := new(Match)
	for _, br := range reqs {
		if got := table.Lookup(m, &br.req); got != br.want {
			b.Fatalf("%s: %s, want %s", br.req.Path, resultName(got), resultName(br.want))
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		table.Lookup(m, &reqs[i].req)
		if i++; i == len(reqs) {
			i = 0
		}
	}
}

// BenchmarkLookup10APIs and BenchmarkLookup10kAPIs run the same request
// shapes: lookup cost must not grow with the number of APIs.
func BenchmarkLookup10APIs(b *testing.B)  { benchmarkLookup(b, 10) }
func BenchmarkLookup10kAPIs(b *testing.B) { benchmarkLookup(b, 10000) }

func BenchmarkCompile10kAPIs(b *testing.B) {
	s, _ := benchSnapshot(10000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(s); err != nil {
			b.Fatal(err)
		}
	}
}
