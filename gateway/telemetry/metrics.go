// Package telemetry holds what the gateway reports about the requests it
// serves: API Management's request metrics (Requests, Duration,
// BackendDuration and ClientDuration, with APIM's dimensions) and a bounded
// ring of request log records named like the columns of Log Analytics'
// ApiManagementGatewayLogs table, which the agent reads by sequence number.
//
// Both are written on the request path. Recording allocates nothing once a
// series or a ring slot has been used, and takes no lock that requests on
// different cores share: series are found through a copy-on-write map read
// with one atomic load, counters are atomics spread over per-core cells.
package telemetry

import (
	"math/rand/v2"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Cache is the Cache dimension and column: whether cache-lookup answered.
type Cache uint8

// Cache values.
const (
	CacheNone Cache = iota
	CacheMiss
	CacheHit
)

func (c Cache) String() string {
	switch c {
	case CacheHit:
		return "hit"
	case CacheMiss:
		return "miss"
	}
	return "none"
}

// ParseCache maps the policy engine's "hit", "miss" and "none".
func ParseCache(s string) Cache {
	switch s {
	case "hit":
		return CacheHit
	case "miss":
		return CacheMiss
	}
	return CacheNone
}

// Dimensions are the Requests metric's dimensions in API Management. The
// response code categories are derived from the codes. A zero
// BackendResponseCode means no backend answered.
type Dimensions struct {
	APIID               string
	OperationID         string
	Hostname            string
	LastErrorReason     string
	GatewayResponseCode int
	BackendResponseCode int
	Cache               Cache
}

// CodeCategory renders a status code's category as API Management does
// ("2xx"); "" for no code.
func CodeCategory(code int) string {
	if code < 100 || code > 999 {
		return ""
	}
	return categories[code/100-1]
}

var categories = [9]string{"1xx", "2xx", "3xx", "4xx", "5xx", "6xx", "7xx", "8xx", "9xx"}

// Sample is one request as the metrics see it.
type Sample struct {
	Dimensions
	// Duration is API Management's Duration (the request log's TotalTime),
	// ClientDuration the ClientTime, BackendDuration the BackendTime.
	Duration, ClientDuration, BackendDuration time.Duration
	// Backend reports that a backend call was made, so BackendDuration is
	// recorded even when the call failed without a response code.
	Backend bool
}

// Histogram bucket upper bounds, shared by the three durations: from 1 ms
// (a cache hit) to APIM's 300 s forward-request default.
var bucketBounds = [...]time.Duration{
	1 * time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	1 * time.Second, 2500 * time.Millisecond, 5 * time.Second,
	10 * time.Second, 30 * time.Second, 60 * time.Second, 120 * time.Second,
	300 * time.Second,
}

// Buckets returns the histogram bucket upper bounds.
func Buckets() []time.Duration { return bucketBounds[:] }

// histogram counts per bucket (the last is +Inf), not cumulatively, so a
// record is one add; exposition accumulates.
type histogram struct {
	counts [len(bucketBounds) + 1]atomic.Uint64
	sum    atomic.Uint64 // nanoseconds
}

func (h *histogram) observe(d time.Duration) {
	if d < 0 {
		d = 0
	}
	i := 0
	for i < len(bucketBounds) && d > bucketBounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(uint64(d))
}

// cell is one core's share of a series. It is padded to whole cache lines
// so that cores writing neighbouring cells do not share a line.
// Requests is the duration histogram's count: one add fewer per request.
type cell struct {
	duration histogram
	client   histogram
	backend  histogram
	_        [cellPad]byte
}

const cellPad = 56 // sizeof(cell) % 64 == 0; TestCellSize checks it

type series struct {
	dims  Dimensions
	cells []cell
}

func (s *series) record(shard uint32, smp *Sample) {
	c := &s.cells[shard]
	c.duration.observe(smp.Duration)
	c.client.observe(smp.ClientDuration)
	if smp.Backend {
		c.backend.observe(smp.BackendDuration)
	}
}

// DefaultMaxSeries is the default bound on distinct dimension sets.
const DefaultMaxSeries = 2000

// Overflow is the value of every string dimension of the series that takes
// requests once MaxSeries series exist.
const Overflow = "other"

// Metrics are the request metrics. The zero value is not usable; call
// NewMetrics.
type Metrics struct {
	// series is replaced, never modified, so readers need no lock.
	series    atomic.Pointer[map[Dimensions]*series]
	mu        sync.Mutex // serialises series creation
	max       int
	shardMask uint32
	overflow  *series
}

// NewMetrics returns empty metrics holding at most maxSeries dimension
// sets (DefaultMaxSeries when maxSeries <= 0); requests with a new
// dimension set beyond that are counted in one series whose string
// dimensions are Overflow.
func NewMetrics(maxSeries int) *Metrics {
	if maxSeries <= 0 {
		maxSeries = DefaultMaxSeries
	}
	// Twice the cores, rounded up to a power of two, keeps two requests on
	// different cores in different cells most of the time.
	shards := 1
	for shards < 2*runtime.GOMAXPROCS(0) && shards < 64 {
		shards <<= 1
	}
	m := &Metrics{max: maxSeries, shardMask: uint32(shards - 1)}
	empty := map[Dimensions]*series{}
	m.series.Store(&empty)
	m.overflow = m.newSeries(Dimensions{APIID: Overflow, OperationID: Overflow, Hostname: Overflow, LastErrorReason: Overflow})
	return m
}

func (m *Metrics) newSeries(d Dimensions) *series {
	return &series{dims: d, cells: make([]cell, m.shardMask+1)}
}

// Record counts one request. The strings in s may be views of request
// memory: they are copied when a new series is created, never kept.
func (m *Metrics) Record(s *Sample) { m.record(s, nil) }

// SeriesHint remembers the series a caller recorded into last. Requests
// handled one after another by the same worker usually share their
// dimensions, and comparing them is cheaper than hashing them for the
// map. The zero value is ready; a hint must not be shared between
// goroutines.
type SeriesHint struct{ s *series }

// RecordHinted is Record, trying h's series first and remembering the
// series used in h.
func (m *Metrics) RecordHinted(s *Sample, h *SeriesHint) { m.record(s, h) }

func (m *Metrics) record(s *Sample, h *SeriesHint) {
	if h != nil && h.s != nil && h.s.dims == s.Dimensions {
		h.s.record(rand.Uint32()&m.shardMask, s)
		return
	}
	cur := *m.series.Load()
	sr := cur[s.Dimensions]
	if sr == nil {
		if len(cur) >= m.max {
			// The map only grows: once full, no lock is needed to know
			// the request goes to the overflow series.
			sr = m.overflow
		} else {
			sr = m.create(s.Dimensions)
		}
	}
	if h != nil && sr != m.overflow {
		h.s = sr
	}
	sr.record(rand.Uint32()&m.shardMask, s)
}

func (m *Metrics) create(d Dimensions) *series {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur := *m.series.Load()
	if sr := cur[d]; sr != nil {
		return sr
	}
	if len(cur) >= m.max {
		return m.overflow
	}
	d.APIID = strings.Clone(d.APIID)
	d.OperationID = strings.Clone(d.OperationID)
	d.Hostname = strings.Clone(d.Hostname)
	d.LastErrorReason = strings.Clone(d.LastErrorReason)
	sr := m.newSeries(d)
	next := make(map[Dimensions]*series, len(cur)+1)
	for k, v := range cur {
		next[k] = v
	}
	next[d] = sr
	m.series.Store(&next)
	return sr
}

// HistogramSnapshot is a histogram's state: Counts per bucket of Buckets()
// plus +Inf last, not cumulative.
type HistogramSnapshot struct {
	Counts [len(bucketBounds) + 1]uint64
	Sum    time.Duration
}

// Count is the number of observations.
func (h *HistogramSnapshot) Count() uint64 {
	var n uint64
	for _, c := range h.Counts {
		n += c
	}
	return n
}

func (h *HistogramSnapshot) add(o *histogram) {
	for i := range h.Counts {
		h.Counts[i] += o.counts[i].Load()
	}
	h.Sum += time.Duration(o.sum.Load())
}

func (h *HistogramSnapshot) merge(o *HistogramSnapshot) {
	for i := range h.Counts {
		h.Counts[i] += o.Counts[i]
	}
	h.Sum += o.Sum
}

// SeriesSnapshot is one dimension set's totals.
type SeriesSnapshot struct {
	Dimensions
	Requests                                  uint64
	Duration, ClientDuration, BackendDuration HistogramSnapshot
}

// Snapshot returns every series with requests, sorted by dimensions, the
// overflow series last. Counters are read one by one while requests go on,
// so a snapshot is not one instant; each value only grows.
func (m *Metrics) Snapshot() []SeriesSnapshot {
	cur := *m.series.Load()
	out := make([]SeriesSnapshot, 0, len(cur)+1)
	for _, sr := range cur {
		out = append(out, sr.snapshot())
	}
	sort.Slice(out, func(i, j int) bool { return lessDims(&out[i].Dimensions, &out[j].Dimensions) })
	if o := m.overflow.snapshot(); o.Requests > 0 {
		out = append(out, o)
	}
	return out
}

func (s *series) snapshot() SeriesSnapshot {
	ss := SeriesSnapshot{Dimensions: s.dims}
	for i := range s.cells {
		c := &s.cells[i]
		ss.Duration.add(&c.duration)
		ss.ClientDuration.add(&c.client)
		ss.BackendDuration.add(&c.backend)
	}
	ss.Requests = ss.Duration.Count()
	return ss
}

func lessDims(a, b *Dimensions) bool {
	switch {
	case a.APIID != b.APIID:
		return a.APIID < b.APIID
	case a.OperationID != b.OperationID:
		return a.OperationID < b.OperationID
	case a.Hostname != b.Hostname:
		return a.Hostname < b.Hostname
	case a.GatewayResponseCode != b.GatewayResponseCode:
		return a.GatewayResponseCode < b.GatewayResponseCode
	case a.BackendResponseCode != b.BackendResponseCode:
		return a.BackendResponseCode < b.BackendResponseCode
	case a.LastErrorReason != b.LastErrorReason:
		return a.LastErrorReason < b.LastErrorReason
	}
	return a.Cache < b.Cache
}

// SeriesCount is the number of distinct dimension sets held (the overflow
// series not included).
func (m *Metrics) SeriesCount() int { return len(*m.series.Load()) }

// MaxSeries is the bound on SeriesCount.
func (m *Metrics) MaxSeries() int { return m.max }

// Overflowed is the number of requests counted in the overflow series.
func (m *Metrics) Overflowed() uint64 { return m.overflow.snapshot().Requests }
