package monitoring

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func ptr(v float64) *float64 { return &v }

// TestAggregateMinute checks the AzureMetrics-shaped rows of one minute
// against testdata/minute.golden.json (run with -update to rewrite it after
// a deliberate change, then review the diff).
func TestAggregateMinute(t *testing.T) {
	t.Parallel()
	m0 := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	recs := []record{
		{Sequence: 1, ApiId: "echo", OperationId: "get", Hostname: "h", ResponseCode: 200, BackendResponseCode: 200, Cache: "none", TotalTime: 10, BackendTime: ptr(8), ClientTime: ptr(1)},
		{Sequence: 2, ApiId: "echo", OperationId: "get", Hostname: "h", ResponseCode: 200, BackendResponseCode: 200, Cache: "none", TotalTime: 30, BackendTime: ptr(20), ClientTime: ptr(3)},
		{Sequence: 3, ApiId: "echo", OperationId: "get", Hostname: "h", ResponseCode: 502, BackendResponseCode: 503, LastErrorReason: "BackendConnectionFailure", Cache: "none", TotalTime: 5, BackendTime: ptr(4)},
		// Answered from cache: no backend, no BackendDuration sample.
		{Sequence: 4, ApiId: "echo", OperationId: "get", Hostname: "h", ResponseCode: 200, Cache: "hit", TotalTime: 2,
			CustomMetrics: []customMetric{{Namespace: "contoso", Name: "orders", Value: 3, Dimensions: map[string]string{"region": "west"}}}},
		{Sequence: 5, ApiId: "echo", OperationId: "get", Hostname: "h", ResponseCode: 200, Cache: "hit", TotalTime: 4,
			CustomMetrics: []customMetric{{Namespace: "contoso", Name: "orders", Value: 5, Dimensions: map[string]string{"region": "west"}}}},
	}
	a := newAggregator("/subscriptions/s/resourceGroups/rg/providers/Microsoft.ApiManagement/service/apim", 100)
	a.epoch = "e1"
	for i := range recs {
		a.add(&recs[i], m0)
	}
	// Still open: the minute has not ended.
	var rows []MetricRow
	a.closeBefore(m0.Add(59*time.Second), func(r []MetricRow) { rows = append(rows, r...) })
	if len(rows) != 0 {
		t.Fatalf("minute closed early: %d rows", len(rows))
	}
	if seq, ok := a.safeThrough(); !ok || seq != 0 {
		t.Fatalf("safeThrough = %d, %v; want 0 (records of the open minute must be re-read after a restart)", seq, ok)
	}
	a.closeBefore(m0.Add(time.Minute), func(r []MetricRow) { rows = append(rows, r...) })
	var out []byte
	for i := range rows {
		out = appendMetricRow(out, &rows[i], "TimeGenerated")
		out = append(out, '\n')
	}
	golden := filepath.Join("testdata", "minute.golden.json")
	if *update {
		if err := os.WriteFile(golden, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != string(want) {
		t.Fatalf("rows differ from %s:\n%s", golden, out)
	}
	if _, ok := a.safeThrough(); ok {
		t.Fatal("closed minute still open")
	}

	// The same records aggregated again give the same ids (deduplication
	// after a restart); another gateway process gives other ids.
	again := newAggregator("", 100)
	again.epoch = "e1"
	other := newAggregator("", 100)
	other.epoch = "e2"
	for i := range recs {
		again.add(&recs[i], m0)
		other.add(&recs[i], m0)
	}
	var r2, r3 []MetricRow
	again.closeAll(func(r []MetricRow) { r2 = append(r2, r...) })
	other.closeAll(func(r []MetricRow) { r3 = append(r3, r...) })
	for i := range rows {
		if r2[i].RecordID != rows[i].RecordID {
			t.Errorf("row %d: id not deterministic", i)
		}
		if r3[i].RecordID == rows[i].RecordID {
			t.Errorf("row %d: same id for another gateway process", i)
		}
	}
}

func TestAggregateRowsAreValidJSONForBothDestinations(t *testing.T) {
	t.Parallel()
	a := newAggregator("", 100)
	a.add(&record{Sequence: 1, ApiId: "a\"b", TotalTime: 1}, time.Unix(0, 0))
	a.closeAll(func(rows []MetricRow) {
		for i := range rows {
			for _, tf := range []string{"TimeGenerated", "EventTime"} {
				var m map[string]any
				b := appendMetricRow(nil, &rows[i], tf)
				if err := json.Unmarshal(b, &m); err != nil {
					t.Fatalf("%s: %v", b, err)
				}
				if m[tf] != "1970-01-01T00:00:00Z" || m["TimeGrain"] != "PT1M" {
					t.Fatalf("row %s", b)
				}
			}
		}
	})
}

func TestAggregateBoundsSeries(t *testing.T) {
	t.Parallel()
	a := newAggregator("", 3)
	for i := range 10 {
		a.add(&record{Sequence: uint64(i + 1), ApiId: string(rune('a' + i)), TotalTime: 1}, time.Unix(0, 0))
	}
	if a.dropped != 7 {
		t.Fatalf("dropped %d, want 7", a.dropped)
	}
	n := 0
	a.closeAll(func(rows []MetricRow) {
		for _, r := range rows {
			if r.MetricName == "Requests" {
				n++
			}
		}
	})
	if n != 3 {
		t.Fatalf("%d Requests series, want 3", n)
	}
}
