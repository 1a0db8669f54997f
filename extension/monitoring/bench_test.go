package monitoring

import (
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/seed393f6fe3/apim-arc-gateway/extension/internal/lafake"
)

// benchRecord is a typical request-log record (about 560 bytes) built
// without encoding/json, so the producer costs little next to the
// pipeline.
func benchRecord(seq uint64, epoch string, t time.Time) []byte {
	b := make([]byte, 0, 640)
	b = append(b, `{"TimeGenerated":"`...)
	b = t.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	b = append(b, `","CorrelationId":"`...)
	b = append(b, correlationID(epoch, seq)...)
	b = append(b, `","Method":"GET","Url":"https://api.contoso.com/orders/items/42?x=1","Hostname":"api.contoso.com","ResponseCode":200,"ResponseSize":512,"RequestSize":0,"BackendMethod":"GET","BackendUrl":"http://orders.internal/items/42?x=1","BackendResponseCode":200,"BackendTime":`...)
	b = strconv.AppendUint(b, 8+seq%7, 10)
	b = append(b, `,"TotalTime":`...)
	b = strconv.AppendUint(b, 10+seq%13, 10)
	b = append(b, `,"ClientTime":1,"Cache":"none","ApiId":"`...)
	b = append(b, []string{"orders", "users", "echo", "billing"}[seq%4]...)
	b = append(b, `","OperationId":"list","ProductId":"starter","ApimSubscriptionId":"sub-1","ApiRevision":"1","ClientProtocol":"HTTP/1.1","CallerIpAddress":"10.1.2.3","IsRequestSuccess":true,"Sequence":`...)
	b = strconv.AppendUint(b, seq, 10)
	return append(b, '}')
}

// benchPipeline drives the whole agent path: read pages from the gateway's
// telemetry endpoint over loopback HTTP, decode, aggregate, batch, spool to
// disk (fsync per batch), sign and upload over TLS to the fake Data
// Collector, which validates every body. One op is one request record.
// rate > 0 paces the producer at that many records/s into a ring of 65,536
// records (the gateway's default); rate 0 produces as fast as the pipeline
// delivers, at most 30,000 records ahead of the last uploaded one. The
// fakes run in the same process and take CPU from the pipeline, so the
// figures are a floor. Reported: records/s end to end (until the last row
// is accepted), the peak heap in use, and the CPU time of the whole process
// per record. Any record lost (ring overwrite or spool eviction) fails.
func benchPipeline(b *testing.B, rate int) {
	h := newHarness(b, 0, false)
	h.gw.genFunc = benchRecord
	h.cfg.PageSize = 5000
	h.cfg.UploadInterval = time.Second
	h.cfg.PollInterval = 5 * time.Millisecond
	h.deps.Logger = zerolog.Nop()
	if rate > 0 {
		h.gw.cap = 65536
	}
	var peak atomic.Uint64
	stopSampling := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		for {
			select {
			case <-stopSampling:
				return
			case <-time.After(50 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
		}
	}()
	// The fake Data Collector keeps counts only; rows are not decoded.
	h.dc.Close()
	dc, err := newDCForBench(h)
	if err != nil {
		b.Fatal(err)
	}
	defer dc.Close()
	p, stop := h.start(b)
	b.ReportAllocs()
	start, cpu0 := time.Now(), cpuTime()
	n := 0
	for b.Loop() {
		if n%1000 == 0 {
			if rate > 0 {
				if d := time.Until(start.Add(time.Duration(n) * time.Second / time.Duration(rate))); d > 0 {
					time.Sleep(d)
				}
			} else {
				for n-dc.RowCount(LogTypeLogs) > 30000 {
					time.Sleep(time.Millisecond)
				}
			}
			// The fake ring drops what was read, as the real ring
			// overwrites it: memory stays flat.
			h.gw.mu.Lock()
			if drop := int(h.gw.maxRead) - int(h.gw.first) + 1; drop > 0 {
				h.gw.ring = h.gw.ring[drop:]
				h.gw.first += uint64(drop)
			}
			h.gw.mu.Unlock()
		}
		h.gw.add(1)
		n++
	}
	waitFor(b, 2*time.Minute, "every row uploaded", func() bool {
		st := p.Stats()
		return dc.RowCount(LogTypeLogs)+int(st.RecordsLost+st.Destinations[0].RowsEvicted) >= n
	})
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	stop()
	close(stopSampling)
	st := p.Stats()
	if st.RecordsLost > 0 || st.Destinations[0].RowsEvicted > 0 {
		b.Fatalf("did not keep up: %d records overwritten in the ring, %d rows evicted from the spool", st.RecordsLost, st.Destinations[0].RowsEvicted)
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "records/s")
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
	// On a shared machine wall time says little; this says what the rate
	// costs (rate x this = CPU seconds per second).
	b.ReportMetric(float64(cpu.Microseconds())/float64(n), "process-CPU-µs/record")
}

// BenchmarkPipeline: the most the pipeline delivers end to end.
func BenchmarkPipeline(b *testing.B) { benchPipeline(b, 0) }

// BenchmarkPipeline20k: gateway traffic of 20,000 requests/s; fails if a
// record is lost.
func BenchmarkPipeline20k(b *testing.B) { benchPipeline(b, 20000) }

// BenchmarkIngestRecord is the per-record work of the ingest goroutine:
// decode, aggregate, append the log row to a batch.
func BenchmarkIngestRecord(b *testing.B) {
	raws := make([][]byte, 1024)
	now := time.Now()
	for i := range raws {
		raws[i] = benchRecord(uint64(i+1), "e", now)
	}
	a := newAggregator("", 10000)
	var mc minuteCache
	var rec record
	buf := make([]byte, 0, 4<<20)
	b.ReportAllocs()
	b.SetBytes(int64(len(raws[0])))
	i := 0
	for b.Loop() {
		raw := raws[i%len(raws)]
		i++
		rec = record{}
		if err := decodeRecord(raw, &rec); err != nil {
			b.Fatal(err)
		}
		a.add(&rec, mc.minuteOf(rec.TimeGenerated, now))
		buf = appendLogRow(buf, raw, "e", rec.Sequence, "EventTime")
		if len(buf) > 4<<20-1024 {
			buf = buf[:0]
		}
	}
}

func newDCForBench(h *harness) (interface {
	RowCount(string) int
	Close()
}, error) {
	dc, err := lafake.NewDataCollector(testWorkspace, testKey, false)
	if err != nil {
		return nil, err
	}
	h.cfg.DataCollectorEndpoint = dc.Endpoint()
	h.deps.DataCollectorClient = dc.Client()
	return dc, nil
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
