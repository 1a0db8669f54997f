package telemetry

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"
)

func TestCellSize(t *testing.T) {
	t.Parallel()
	if n := unsafe.Sizeof(cell{}); n%64 != 0 {
		t.Errorf("cell is %d bytes, not whole 64-byte cache lines: adjust cellPad", n)
	}
}

func TestCodeCategoryAndCache(t *testing.T) {
	t.Parallel()
	for code, want := range map[int]string{0: "", 99: "", 100: "1xx", 200: "2xx", 204: "2xx", 302: "3xx", 404: "4xx", 503: "5xx", 1000: ""} {
		if got := CodeCategory(code); got != want {
			t.Errorf("CodeCategory(%d) = %q, want %q", code, got, want)
		}
	}
	for _, s := range []string{"hit", "miss", "none"} {
		if got := ParseCache(s).String(); got != s {
			t.Errorf("cache %q round-trips as %q", s, got)
		}
	}
	if ParseCache("").String() != "none" {
		t.Error("empty cache status is not none")
	}
}

func TestMetricsRecord(t *testing.T) {
	t.Parallel()
	m := NewMetrics(10)
	ok := Dimensions{APIID: "echo", OperationID: "get", Hostname: "gw", GatewayResponseCode: 200, BackendResponseCode: 200, Cache: CacheMiss}
	denied := Dimensions{APIID: "echo", OperationID: "get", Hostname: "gw", GatewayResponseCode: 401, LastErrorReason: "SubscriptionKeyNotFound"}
	m.Record(&Sample{Dimensions: ok, Duration: 3 * time.Millisecond, ClientDuration: time.Millisecond, BackendDuration: 2 * time.Millisecond, Backend: true})
	m.Record(&Sample{Dimensions: ok, Duration: 400 * time.Millisecond, ClientDuration: 100 * time.Millisecond, BackendDuration: 300 * time.Millisecond, Backend: true})
	m.Record(&Sample{Dimensions: denied, Duration: 50 * time.Microsecond, ClientDuration: 50 * time.Microsecond})
	m.Record(&Sample{Dimensions: ok, Duration: 10 * time.Minute, Backend: true, BackendDuration: 10 * time.Minute})

	snap := m.Snapshot()
	if len(snap) != 2 {
		t.Fatalf("%d series, want 2: %+v", len(snap), snap)
	}
	// Sorted: 200 before 401.
	s200, s401 := snap[0], snap[1]
	if s200.Dimensions != ok || s401.Dimensions != denied {
		t.Fatalf("series %+v and %+v", s200.Dimensions, s401.Dimensions)
	}
	if s200.Requests != 3 || s401.Requests != 1 {
		t.Errorf("requests %d and %d, want 3 and 1", s200.Requests, s401.Requests)
	}
	bucketOf := func(d time.Duration) int {
		for i, b := range Buckets() {
			if d <= b {
				return i
			}
		}
		return len(Buckets())
	}
	wantDur := HistogramSnapshot{Sum: 3*time.Millisecond + 400*time.Millisecond + 10*time.Minute}
	wantDur.Counts[bucketOf(3*time.Millisecond)]++
	wantDur.Counts[bucketOf(400*time.Millisecond)]++
	wantDur.Counts[len(Buckets())]++ // 10 minutes: +Inf
	if s200.Duration != wantDur {
		t.Errorf("Duration %+v, want %+v", s200.Duration, wantDur)
	}
	if bucketOf(3*time.Millisecond) != 2 || bucketOf(time.Millisecond) != 0 {
		t.Error("bucket bounds moved: 3 ms should fall in le=0.005, 1 ms in le=0.001")
	}
	if n := s200.BackendDuration.Count(); n != 3 {
		t.Errorf("backend observations %d, want 3", n)
	}
	if n := s401.BackendDuration.Count(); n != 0 {
		t.Errorf("a request without a backend call observed BackendDuration %d times", n)
	}
	if s401.ClientDuration.Counts[0] != 1 || s401.ClientDuration.Sum != 50*time.Microsecond {
		t.Errorf("ClientDuration %+v", s401.ClientDuration)
	}
}

// Dimension strings may be views of request memory: a series keeps its
// own copies.
func TestMetricsCopyDimensionStrings(t *testing.T) {
	t.Parallel()
	m := NewMetrics(10)
	host := []byte("gw.example")
	d := Dimensions{APIID: "a", Hostname: unsafe.String(unsafe.SliceData(host), len(host)), GatewayResponseCode: 200}
	m.Record(&Sample{Dimensions: d})
	copy(host, "XXXXXXXXXX")
	snap := m.Snapshot()
	if len(snap) != 1 || snap[0].Hostname != "gw.example" {
		t.Errorf("series hostname %q after the request buffer changed", snap[0].Hostname)
	}
}

func TestMetricsSeriesBound(t *testing.T) {
	t.Parallel()
	m := NewMetrics(3)
	for i := range 10 {
		m.Record(&Sample{Dimensions: Dimensions{APIID: "a", Hostname: fmt.Sprintf("h%d", i), GatewayResponseCode: 200}})
	}
	// Existing series keep counting after the bound is reached.
	m.Record(&Sample{Dimensions: Dimensions{APIID: "a", Hostname: "h0", GatewayResponseCode: 200}})
	if n := m.SeriesCount(); n != 3 {
		t.Errorf("%d series, want 3", n)
	}
	if n := m.Overflowed(); n != 7 {
		t.Errorf("overflowed %d, want 7", n)
	}
	snap := m.Snapshot()
	last := snap[len(snap)-1]
	if last.APIID != Overflow || last.Hostname != Overflow || last.Requests != 7 {
		t.Errorf("overflow series %+v", last)
	}
	if snap[0].Hostname != "h0" || snap[0].Requests != 2 {
		t.Errorf("first series %+v", snap[0])
	}
	out := string(m.AppendPrometheus(nil))
	for _, want := range []string{
		"apim_gateway_metric_series 3\n", "apim_gateway_metric_series_limit 3\n", "apim_gateway_metric_series_overflow_total 7\n",
		`apim_gateway_requests_total{api_id="other",operation_id="other",hostname="other",gateway_response_code="",gateway_response_code_category="",backend_response_code="",backend_response_code_category="",last_error_reason="other",cache="none"} 7`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("exposition lacks %q", want)
		}
	}
}

// A hint only short-cuts the lookup: alternating dimensions, a hint
// whose series changed, and the overflow series all count where Record
// would.
func TestMetricsRecordHinted(t *testing.T) {
	t.Parallel()
	m := NewMetrics(2)
	var h SeriesHint
	a := Dimensions{APIID: "a", GatewayResponseCode: 200}
	b := Dimensions{APIID: "b", GatewayResponseCode: 200}
	c := Dimensions{APIID: "c", GatewayResponseCode: 200} // beyond the bound
	for _, d := range []Dimensions{a, a, b, a, c, c, a, b, b} {
		m.RecordHinted(&Sample{Dimensions: d}, &h)
	}
	got := map[string]uint64{}
	for _, s := range m.Snapshot() {
		got[s.APIID] = s.Requests
	}
	if got["a"] != 4 || got["b"] != 3 || got[Overflow] != 2 || len(got) != 3 {
		t.Errorf("counts %v, want a 4, b 3, other 2", got)
	}
}

func TestMetricsConcurrentRecord(t *testing.T) {
	t.Parallel()
	m := NewMetrics(50)
	const goroutines, each = 8, 2000
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				m.Record(&Sample{Dimensions: Dimensions{APIID: "a", OperationID: fmt.Sprint(i % 20), GatewayResponseCode: 200 + g%2}, Duration: time.Millisecond})
			}
		}()
	}
	wg.Wait()
	var total, durations uint64
	for _, s := range m.Snapshot() {
		total += s.Requests
		durations += s.Duration.Count()
	}
	if total != goroutines*each || durations != total {
		t.Errorf("counted %d requests and %d durations, want %d", total, durations, goroutines*each)
	}
	if n := m.SeriesCount(); n != 40 {
		t.Errorf("%d series, want 40", n)
	}
}

func TestPrometheusHistogram(t *testing.T) {
	t.Parallel()
	m := NewMetrics(10)
	for _, code := range []int{200, 500} {
		m.Record(&Sample{Dimensions: Dimensions{APIID: "a\"b", OperationID: "op", Hostname: "gw", GatewayResponseCode: code}, Duration: 20 * time.Millisecond})
	}
	out := string(m.AppendPrometheus(nil))
	labels := `api_id="a\"b",operation_id="op",hostname="gw"`
	for _, want := range []string{
		"# TYPE apim_gateway_request_duration_seconds histogram\n",
		"apim_gateway_request_duration_seconds_bucket{" + labels + `,le="0.01"} 0` + "\n",
		"apim_gateway_request_duration_seconds_bucket{" + labels + `,le="0.025"} 2` + "\n",
		"apim_gateway_request_duration_seconds_bucket{" + labels + `,le="+Inf"} 2` + "\n",
		"apim_gateway_request_duration_seconds_sum{" + labels + "} 0.04\n",
		"apim_gateway_request_duration_seconds_count{" + labels + "} 2\n",
		"apim_gateway_backend_duration_seconds_count{" + labels + "} 0\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("exposition lacks %q\n%s", want, out)
		}
	}
}

var benchDims = Dimensions{APIID: "echo", OperationID: "get-item", Hostname: "api.contoso.com", GatewayResponseCode: 200, BackendResponseCode: 200}

func BenchmarkMetricsRecord(b *testing.B) {
	m := NewMetrics(0)
	s := &Sample{Dimensions: benchDims, Duration: 3 * time.Millisecond, ClientDuration: time.Millisecond, BackendDuration: 2 * time.Millisecond, Backend: true}
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		m.Record(s)
	}
	cpu.report(b)
}

// The request path's call: the worker's previous request had the same
// dimensions, so the map is not consulted.
func BenchmarkMetricsRecordHinted(b *testing.B) {
	m := NewMetrics(0)
	var h SeriesHint
	s := &Sample{Dimensions: benchDims, Duration: 3 * time.Millisecond, ClientDuration: time.Millisecond, BackendDuration: 2 * time.Millisecond, Backend: true}
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		m.RecordHinted(s, &h)
	}
	cpu.report(b)
}

// Every core records into the same series: the worst case for sharing.
func BenchmarkMetricsRecordParallel(b *testing.B) {
	m := NewMetrics(0)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := startCPU()
	defer cpu.report(b)
	b.RunParallel(func(pb *testing.PB) {
		s := &Sample{Dimensions: benchDims, Duration: 3 * time.Millisecond, ClientDuration: time.Millisecond, BackendDuration: 2 * time.Millisecond, Backend: true}
		for pb.Next() {
			m.Record(s)
		}
	})
}

// 500 series (50 operations × 10 codes) in rotation: lookups in a larger
// map, cache misses on the cells.
func BenchmarkMetricsRecordParallel500Series(b *testing.B) {
	m := NewMetrics(0)
	samples := make([]Sample, 500)
	for i := range samples {
		d := benchDims
		d.OperationID = fmt.Sprintf("op-%d", i%50)
		d.GatewayResponseCode = 200 + i/50
		samples[i] = Sample{Dimensions: d, Duration: 3 * time.Millisecond}
		m.Record(&samples[i]) // create the series: the steady state is measured
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := startCPU()
	defer cpu.report(b)
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			m.Record(&samples[i%len(samples)])
			i++
		}
	})
}

func BenchmarkMetricsExposition500Series(b *testing.B) {
	m := NewMetrics(0)
	for i := range 500 {
		d := benchDims
		d.OperationID = fmt.Sprintf("op-%d", i%50)
		d.GatewayResponseCode = 200 + i/50
		m.Record(&Sample{Dimensions: d, Duration: 3 * time.Millisecond})
	}
	var buf []byte
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		buf = m.AppendPrometheus(buf[:0])
	}
	cpu.report(b)
}
