//go:build !race

package telemetry

import (
	"testing"
	"time"
	"unsafe"
)

// Recording a request allocates nothing once its series exists and, for
// the ring, from the first lap on (slots are pre-sized). A record with
// CustomMetrics grows its slot's list once.
func TestRecordingAllocations(t *testing.T) {
	m := NewMetrics(0)
	r, err := NewRing(1000)
	if err != nil {
		t.Fatal(err)
	}
	s := &Sample{Dimensions: benchDims, Duration: 3 * time.Millisecond, Backend: true}
	m.Record(s)
	host := []byte("api.contoso.com")
	rec := recordFor(1, 1)
	rec.BackendURL = []byte("http://backend.internal:8080/api/items/42?x=1")
	tests := []struct {
		name string
		fn   func()
	}{
		{"metrics, existing series", func() { m.Record(s) }},
		{"metrics, hostname viewed from request bytes", func() {
			v := *s
			v.Hostname = unsafe.String(unsafe.SliceData(host), len(host)) // as the server passes it
			m.Record(&v)
		}},
		{"ring write, first lap", func() { r.Write(rec) }},
	}
	for _, tc := range tests {
		if n := testing.AllocsPerRun(500, tc.fn); n != 0 {
			t.Errorf("%s: %.1f allocations, want 0", tc.name, n)
		}
	}
}
