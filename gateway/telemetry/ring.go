package telemetry

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultRingSize is the default number of request log records kept
// (--request-log-buffer).
const DefaultRingSize = 65536

// MaxRingSize bounds --request-log-buffer: beyond it the ring's memory
// (up to a few KiB per record) outgrows any sensible pod limit.
const MaxRingSize = 1 << 24

// Longest values kept for the variable-length columns. A slot keeps its
// buffers for reuse, so these bound the ring's memory whatever clients
// send: a longer value is cut (Log Analytics itself cuts fields at 32 KB).
const (
	maxURLBytes   = 2048
	maxShortBytes = 256 // Method, Hostname, ClientProtocol, CallerIpAddress, CorrelationId
	// slotArena is the space allocated up front per record for its byte
	// values: enough for typical requests, so the ring's first lap does
	// not allocate either. A larger record grows its slot's arena once.
	slotArena = 512
)

// MetricDimension is one name/value pair of an emit-metric value.
type MetricDimension struct {
	Name, Value string
}

// CustomMetric is one value the emit-metric policy produced for a request.
type CustomMetric struct {
	Namespace, Name string
	Value           float64
	Dimensions      []MetricDimension
}

// Record is one request's log record, with the meaning of the
// ApiManagementGatewayLogs column of the same name. Byte slices may be
// views of request memory: Ring.Write copies them. Strings and
// CustomMetrics (including their Dimensions) are kept as given, so they
// must not be modified afterwards.
type Record struct {
	Time          time.Time // TimeGenerated: when the gateway started processing
	CorrelationID []byte
	Method        []byte
	URL           []byte // subscription key values already masked
	Hostname      []byte
	ResponseCode  int
	// ResponseSize and RequestSize are bytes; negative when unknown.
	ResponseSize, RequestSize int64
	BackendMethod             []byte
	BackendURL                []byte
	BackendResponseCode       int
	// Backend reports a backend call; BackendTime is only reported then.
	Backend     bool
	BackendTime time.Duration
	TotalTime   time.Duration
	ClientTime  time.Duration
	Cache       Cache

	APIID, OperationID, ProductID, SubscriptionID, APIRevision string

	ClientProtocol   []byte
	ClientTLSVersion string
	CallerIP         []byte

	LastErrorReason, LastErrorMessage, LastErrorSource, LastErrorSection, LastErrorScope string

	CustomMetrics []CustomMetric
}

// IsRequestSuccess is the column of that name: a 1xx to 3xx answer with
// no error recorded.
func (r *Record) IsRequestSuccess() bool {
	return r.ResponseCode < 400 && r.LastErrorReason == ""
}

// copyFrom copies src into r, the byte fields into arena (whose capacity
// is reused from record to record), and returns the arena.
func (r *Record) copyFrom(src *Record, arena []byte) []byte {
	cm := r.CustomMetrics[:0]
	*r = *src
	a := arena[:0]
	a, r.CorrelationID = appendField(a, src.CorrelationID, maxShortBytes)
	a, r.Method = appendField(a, src.Method, maxShortBytes)
	a, r.URL = appendField(a, src.URL, maxURLBytes)
	a, r.Hostname = appendField(a, src.Hostname, maxShortBytes)
	a, r.BackendMethod = appendField(a, src.BackendMethod, maxShortBytes)
	a, r.BackendURL = appendField(a, src.BackendURL, maxURLBytes)
	a, r.ClientProtocol = appendField(a, src.ClientProtocol, maxShortBytes)
	a, r.CallerIP = appendField(a, src.CallerIP, maxShortBytes)
	r.CustomMetrics = cm
	if len(src.CustomMetrics) > 0 { // an empty append still costs a runtime call
		r.CustomMetrics = append(cm, src.CustomMetrics...)
	}
	return a
}

// appendField appends src, cut to limit, to arena and returns the arena
// and the appended part. When the arena grows, parts appended before stay
// valid in the old array.
func appendField(arena, src []byte, limit int) ([]byte, []byte) {
	if len(src) > limit {
		src = src[:limit]
	}
	start := len(arena)
	arena = append(arena, src...)
	return arena, arena[start:len(arena):len(arena)]
}

// slot holds one record. Its lock is only ever contended by a reader
// encoding the record while a writer that lapped the whole ring wants it.
type slot struct {
	mu    sync.Mutex
	seq   uint64 // 0: never written
	rec   Record
	arena []byte
}

// Ring is the bounded request log the agent reads by sequence number.
// Writers never wait for readers: when the ring is full the oldest record
// is overwritten, and counted as dropped if no reader had it yet.
type Ring struct {
	epoch string
	slots []slot
	size  uint64

	_       [64]byte
	written atomic.Uint64 // highest Sequence handed out
	_       [56]byte
	// delivered is the highest `next` returned to any reader: records up
	// to it were read (or reported lost).
	delivered atomic.Uint64
	dropped   atomic.Uint64
}

// NewRing returns an empty ring of size records with a new random epoch.
func NewRing(size int) (*Ring, error) {
	if size < 1 || size > MaxRingSize {
		return nil, fmt.Errorf("request log buffer %d: must be between 1 and %d records", size, MaxRingSize)
	}
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("request log epoch: %w", err)
	}
	r := &Ring{epoch: hex.EncodeToString(id[:]), slots: make([]slot, size), size: uint64(size)}
	// One allocation for every slot's arena; pages are only touched (and
	// become resident) as records fill them.
	arenas := make([]byte, size*slotArena)
	for i := range r.slots {
		r.slots[i].arena = arenas[i*slotArena : i*slotArena : (i+1)*slotArena]
	}
	return r, nil
}

// Epoch identifies this ring: a new gateway process starts a new epoch,
// and Sequence numbers start again at 1.
func (r *Ring) Epoch() string { return r.epoch }

// Size is the ring's capacity in records.
func (r *Ring) Size() int { return int(r.size) }

// Write appends rec with the next Sequence number and returns it.
func (r *Ring) Write(rec *Record) uint64 {
	seq := r.written.Add(1)
	s := &r.slots[(seq-1)%r.size]
	s.mu.Lock()
	switch {
	case s.seq > seq:
		// A writer a whole lap ahead got here first: this record is
		// already older than what the ring holds.
		r.dropped.Add(1)
	default:
		if s.seq != 0 && s.seq > r.delivered.Load() {
			r.dropped.Add(1)
		}
		s.seq = seq
		s.arena = s.rec.copyFrom(rec, s.arena)
	}
	s.mu.Unlock()
	return seq
}

// Written is the highest Sequence handed out.
func (r *Ring) Written() uint64 { return r.written.Load() }

// Dropped counts records overwritten before any reader had them.
func (r *Ring) Dropped() uint64 { return r.dropped.Load() }

// Unread is the number of records held that no reader has had yet.
func (r *Ring) Unread() uint64 {
	w := r.written.Load()
	d := max(r.delivered.Load(), r.first(w)-1)
	if d >= w {
		return 0
	}
	return w - d
}

// first is the oldest Sequence held when w is the newest (w+1 when none).
func (r *Ring) first(w uint64) uint64 {
	if w <= r.size {
		return 1
	}
	return w - r.size + 1
}

// Page is what one read returned besides the records.
type Page struct {
	// First is the oldest Sequence held when the read began.
	First uint64
	// Next is the `after` to send next time.
	Next uint64
	// Lost counts the records after `after` that were overwritten before
	// this read could return them.
	Lost uint64
	// Count is the number of records returned.
	Count int
}

// Read calls fn for the records with Sequence > after, oldest first, at
// most limit of them, holding the record's slot while fn runs: fn must
// not keep rec or its slices, and must be quick. A record still being
// written ends the page; it comes first in the next one.
func (r *Ring) Read(after uint64, limit int, fn func(seq uint64, rec *Record)) Page {
	w := r.written.Load()
	p := Page{First: r.first(w), Next: after}
	if after > w {
		// An `after` beyond the newest record comes from an earlier
		// epoch (the gateway restarted): start again from the beginning,
		// so even a reader that does not compare epochs loses nothing.
		p.Next = 0
		return p
	}
	start := after + 1
	if start < p.First {
		p.Lost = p.First - start
		start = p.First
		p.Next = p.First - 1
	}
	for seq := start; seq <= w && p.Count < limit; seq++ {
		s := &r.slots[(seq-1)%r.size]
		s.mu.Lock()
		got := s.seq
		if got == seq {
			fn(seq, &s.rec)
			// Before the slot is released, so that a writer about to
			// overwrite it does not count it as dropped.
			r.markDelivered(seq)
		}
		s.mu.Unlock()
		if got < seq {
			break // a writer holds this Sequence but has not stored it yet
		}
		if got == seq {
			p.Count++
		} else {
			p.Lost++ // overwritten since the read began
		}
		p.Next = seq
	}
	r.markDelivered(p.Next)
	return p
}

func (r *Ring) markDelivered(next uint64) {
	for {
		d := r.delivered.Load()
		if next <= d || r.delivered.CompareAndSwap(d, next) {
			return
		}
	}
}
