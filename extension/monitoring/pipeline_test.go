package monitoring

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/rs/zerolog"

	"github.com/seed393f6fe3/apim-arc-gateway/extension/internal/lafake"
	"github.com/seed393f6fe3/apim-arc-gateway/extension/settings"
	"github.com/seed393f6fe3/apim-arc-gateway/internal/logcapture"
)

// harness runs a pipeline against a fake gateway and both fake
// destinations.
type harness struct {
	gw   *fakeGateway
	dc   *lafake.DataCollector
	li   *lafake.Ingestion
	cfg  Config
	deps Deps
	logs *logcapture.Buffer
}

func newHarness(t testing.TB, gwCap int, withIngestion bool) *harness {
	t.Helper()
	h := &harness{gw: newFakeGateway(gwCap), logs: &logcapture.Buffer{}}
	t.Cleanup(h.gw.Close)
	var err error
	h.dc, err = lafake.NewDataCollector(testWorkspace, testKey, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.dc.Close)
	h.cfg = Config{
		WorkspaceID: testWorkspace, IngestionKey: settings.NewSecret(testKey), DataCollectorEndpoint: h.dc.Endpoint(),
		CustomResourceID: testResource, UploadInterval: 200 * time.Millisecond, SpoolDir: t.TempDir(),
		GatewayTelemetryURL: h.gw.URL, PollInterval: 20 * time.Millisecond, PageSize: 500,
		RetryMax: 2, RetryWaitMin: 5 * time.Millisecond, RetryWaitMax: 20 * time.Millisecond, ShutdownTimeout: 10 * time.Second,
	}
	h.deps = Deps{Logger: zerolog.New(h.logs), DataCollectorClient: h.dc.Client()}
	if withIngestion {
		h.li = lafake.NewIngestion(testRule, []string{"Custom-APIMGatewayLogs", DefaultMetricsStream}, true)
		t.Cleanup(h.li.Close)
		h.cfg.LogsIngestion = LogsIngestionConfig{Endpoint: h.li.URL, RuleID: testRule, StreamName: "Custom-APIMGatewayLogs"}
		cred, err := h.li.Credential()
		if err != nil {
			t.Fatal(err)
		}
		opts := h.li.ClientOptions()
		opts.Retry = policy.RetryOptions{MaxRetries: 1, RetryDelay: 5 * time.Millisecond, MaxRetryDelay: 20 * time.Millisecond}
		h.deps.Credential, h.deps.IngestionOptions = cred, opts
	}
	return h
}

// start runs a pipeline; stop cancels it and waits for Run to return.
func (h *harness) start(t testing.TB) (p *Pipeline, stop func()) {
	t.Helper()
	p, err := New(h.cfg, h.deps)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	return p, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

// table is the rows of one destination table: Data Collector Log-Type or
// Logs Ingestion stream.
type table interface {
	Rows(string) []map[string]any
}

// checkDelivery asserts every generated request arrived in name's log
// table, and that a request seen twice always carries the same RecordId.
// It returns how many rows were duplicates.
func checkDelivery(t *testing.T, tb table, name string, want []string) int {
	t.Helper()
	ids := map[string]string{} // CorrelationId -> RecordId
	byRecord := map[string]string{}
	dups := 0
	for _, r := range tb.Rows(name) {
		corr, _ := r["CorrelationId"].(string)
		rid, _ := r["RecordId"].(string)
		if rid == "" {
			t.Fatalf("%s: row without RecordId: %v", name, r)
		}
		if prev, ok := ids[corr]; ok {
			if prev != rid {
				t.Fatalf("%s: request %s arrived twice with different ids %s and %s", name, corr, prev, rid)
			}
			dups++
			continue
		}
		if other, ok := byRecord[rid]; ok {
			t.Fatalf("%s: RecordId %s names two requests: %s and %s", name, rid, other, corr)
		}
		ids[corr], byRecord[rid] = rid, corr
	}
	missing := 0
	for _, c := range want {
		if _, ok := ids[c]; !ok {
			missing++
		}
	}
	if missing > 0 || len(ids) != len(want) {
		t.Fatalf("%s: %d of %d requests missing, %d unexpected", name, missing, len(want), len(ids)+missing-len(want))
	}
	return dups
}

// requestsCounted sums the Requests metric over distinct metric rows.
func requestsCounted(t *testing.T, tb table, name string) int64 {
	t.Helper()
	seen := map[string]bool{}
	var n int64
	for _, r := range tb.Rows(name) {
		rid := r["RecordId"].(string)
		if seen[rid] || r["MetricName"] != "Requests" {
			continue
		}
		seen[rid] = true
		c, err := r["Count"].(json.Number).Int64()
		if err != nil {
			t.Fatal(err)
		}
		n += c
	}
	return n
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestOutageLosesNothing: steady traffic, then Log Analytics (both APIs)
// is down for the outage length, then back (and the first answers after it
// are lost, so batches arrive twice). Every request's record and its
// metrics arrive; a request that arrives twice carries the same RecordId.
// The issue asks for a 2-minute outage; it runs by default, -short runs 3s
// (same code path: the spool does not care how long the outage is, only
// how much it holds), -outage=<d> sets any length.
func TestOutageLosesNothing(t *testing.T) {
	d := *outage
	if d == 0 {
		d = 2 * time.Minute
		if testing.Short() {
			d = 3 * time.Second
		}
	}
	t.Parallel()
	h := newHarness(t, 0, true)
	p, stop := h.start(t)

	var want []string
	var mu sync.Mutex
	traffic, stopTraffic := context.WithCancel(context.Background())
	trafficDone := make(chan struct{})
	go func() {
		defer close(trafficDone)
		tick := time.NewTicker(10 * time.Millisecond) // 200 requests/s
		defer tick.Stop()
		for {
			select {
			case <-traffic.Done():
				return
			case <-tick.C:
				ids := h.gw.add(2)
				mu.Lock()
				want = append(want, ids...)
				mu.Unlock()
			}
		}
	}()

	time.Sleep(time.Second)
	h.dc.SetOutage(true)
	h.li.SetOutage(true)
	time.Sleep(d)
	mu.Lock()
	during := len(want)
	mu.Unlock()
	// The outage was seen by both uploaders and data was kept on disk.
	for _, s := range p.Stats().Destinations {
		if s.UploadFailures == 0 || s.SpoolBytes == 0 {
			t.Errorf("%s: no failures or nothing spooled during the outage: %+v", s.Destination, s)
		}
	}
	// The outage ends badly: the first batches are stored but their
	// answers lost, so they are sent again and arrive twice.
	h.dc.LoseAnswers(2)
	h.li.LoseAnswers(2)
	h.dc.SetOutage(false)
	h.li.SetOutage(false)
	time.Sleep(time.Second)
	stopTraffic()
	<-trafficDone
	mu.Lock()
	total := len(want)
	mu.Unlock()
	t.Logf("outage %v: %d requests before it ended, %d in all", d, during, total)

	waitFor(t, 60*time.Second, "every log row", func() bool {
		return h.dc.DistinctRecordIDs(LogTypeLogs) >= total && h.li.DistinctRecordIDs("Custom-APIMGatewayLogs") >= total
	})
	stop() // closes the open minutes and uploads their metric rows

	dupDC := checkDelivery(t, h.dc, LogTypeLogs, want)
	dupLI := checkDelivery(t, h.li, "Custom-APIMGatewayLogs", want)
	t.Logf("duplicates (same RecordId): data collector %d, logs ingestion %d", dupDC, dupLI)
	if dupDC == 0 || dupLI == 0 {
		t.Error("lost answers produced no duplicates: the dedup check saw nothing")
	}
	if n := requestsCounted(t, h.dc, LogTypeMetrics); n != int64(total) {
		t.Errorf("data collector metrics count %d requests, want %d", n, total)
	}
	if n := requestsCounted(t, h.li, DefaultMetricsStream); n != int64(total) {
		t.Errorf("logs ingestion metrics count %d requests, want %d", n, total)
	}
	st := p.Stats()
	if st.RecordsLost != 0 {
		t.Errorf("records lost: %d", st.RecordsLost)
	}
	for _, s := range st.Destinations {
		if s.RowsEvicted != 0 || s.RowsRejected != 0 || s.SpoolBatches != 0 {
			t.Errorf("%s: %+v", s.Destination, s)
		}
	}
	if strings.Contains(h.logs.String(), testKey) {
		t.Fatal("ingestion key in the logs")
	}
}

// TestGatewayRestartStartsNewEpoch: a gateway restart (new epoch,
// sequence back to 1) is followed from its first record, and ids of the
// two processes never collide.
func TestGatewayRestartStartsNewEpoch(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 0, false)
	p, stop := h.start(t)
	want := h.gw.add(50)
	waitFor(t, 10*time.Second, "first epoch", func() bool { return h.dc.RowCount(LogTypeLogs) >= 50 })
	h.gw.restart()
	want = append(want, h.gw.add(30)...)
	waitFor(t, 10*time.Second, "second epoch", func() bool { return h.dc.RowCount(LogTypeLogs) >= 80 })
	stop()
	checkDelivery(t, h.dc, LogTypeLogs, want)
	if st := p.Stats(); st.GatewayRestarts != 1 || st.RecordsRead != 80 {
		t.Fatalf("stats %+v", st)
	}
}

// TestAgentRestartResumes: a new agent process continues where the last
// one stopped (no record twice), and uploads what the last one spooled.
func TestAgentRestartResumes(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 0, false)
	p1, stop := h.start(t)
	want := h.gw.add(40)
	waitFor(t, 10*time.Second, "first run", func() bool { return h.dc.RowCount(LogTypeLogs) >= 40 })
	// Log Analytics goes down and the agent stops with batches spooled.
	h.dc.SetOutage(true)
	want = append(want, h.gw.add(25)...)
	waitFor(t, 10*time.Second, "first run reads all", func() bool { return p1.Stats().RecordsRead >= 65 })
	stop()
	if st := p1.Stats().Destinations[0]; st.SpoolBatches == 0 {
		t.Fatalf("nothing left spooled by the first run: %+v", st)
	}
	h.dc.SetOutage(false)

	want = append(want, h.gw.add(10)...)
	p2, stop2 := h.start(t)
	waitFor(t, 10*time.Second, "second run", func() bool { return h.dc.RowCount(LogTypeLogs) >= 75 })
	stop2()
	if dups := checkDelivery(t, h.dc, LogTypeLogs, want); dups != 0 {
		t.Fatalf("%d duplicates after a clean restart", dups)
	}
	if n := requestsCounted(t, h.dc, LogTypeMetrics); n != 75 {
		t.Fatalf("metrics count %d requests, want 75", n)
	}
	if r := p2.Stats().RecordsRead; r != 10 {
		t.Fatalf("second run read %d records, want 10", r)
	}
}

// TestRingOverwriteCounted: records the gateway overwrote before the agent
// read them are counted as lost and logged.
func TestRingOverwriteCounted(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 100, false)
	h.gw.add(250) // 150 overwritten before the agent starts
	p, stop := h.start(t)
	waitFor(t, 10*time.Second, "rows", func() bool { return h.dc.RowCount(LogTypeLogs) >= 100 })
	stop()
	if st := p.Stats(); st.RecordsLost != 150 || st.RecordsRead != 100 {
		t.Fatalf("stats %+v", st)
	}
	if !strings.Contains(h.logs.String(), "overwrote request logs") {
		t.Fatal("loss not logged")
	}
}

// TestSpoolFullDropsOldestAndCounts: an outage longer than the spool holds
// loses the oldest rows, counted and logged; the newest arrive.
func TestSpoolFullDropsOldestAndCounts(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 0, false)
	h.cfg.SpoolBytes = 64 << 10
	h.dc.SetOutage(true)
	p, stop := h.start(t)
	var want []string
	for range 30 {
		want = append(want, h.gw.add(20)...)
		time.Sleep(30 * time.Millisecond)
	}
	waitFor(t, 10*time.Second, "every record read", func() bool { return p.Stats().RecordsRead >= uint64(len(want)) })
	waitFor(t, 10*time.Second, "eviction", func() bool { return p.Stats().Destinations[0].RowsEvicted > 0 })
	h.dc.SetOutage(false)
	waitFor(t, 20*time.Second, "the spool to drain", func() bool {
		d := p.Stats().Destinations[0]
		return d.SpoolBatches == 0 && d.RowsUploaded[kindLogs] > 0
	})
	stop()
	st := p.Stats().Destinations[0]
	got := h.dc.RowCount(LogTypeLogs)
	if st.SpoolBytes > 64<<10 {
		t.Fatalf("spool over its bound: %d", st.SpoolBytes)
	}
	if uint64(got)+st.RowsEvicted < uint64(len(want)) {
		t.Fatalf("%d uploaded + %d evicted < %d requests: loss not counted", got, st.RowsEvicted, len(want))
	}
	rows := h.dc.Rows(LogTypeLogs)
	if last := rows[len(rows)-1]["CorrelationId"]; last != want[len(want)-1] {
		t.Fatalf("newest record %v not kept (want %s)", last, want[len(want)-1])
	}
	if !strings.Contains(h.logs.String(), "spool full") {
		t.Fatal("eviction not logged")
	}
	var m bytes.Buffer
	p.WriteMetrics(&m)
	if !strings.Contains(m.String(), fmt.Sprintf(`apim_agent_monitoring_rows_dropped_total{destination="datacollector",reason="spool_full"} %d`, st.RowsEvicted)) {
		t.Fatalf("metrics:\n%s", m.String())
	}
}
