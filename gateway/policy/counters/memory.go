package counters

import (
	"hash/maphash"
	"sync"
	"time"
)

const (
	numShards = 64
	// sweepEvery is how often a shard drops the counters of ended
	// windows; between sweeps a stale counter is reset on its next hit.
	sweepEvery = 10 * time.Second
)

// Memory counts in this process. It is safe for concurrent use. Memory is
// bounded by the keys active in their current window: counters of ended
// windows are swept from each shard at most every ten seconds, and a
// concurrency slot entry is dropped when its last slot is released.
type Memory struct {
	now    func() time.Time
	seed   maphash.Seed
	shards [numShards]memShard
}

type memShard struct {
	mu        sync.Mutex
	counts    map[string]memEntry
	slots     map[string]int64
	nextSweep time.Time
}

type memEntry struct {
	window int64
	count  int64
	end    time.Time // zero: never ends
}

// NewMemory returns an empty in-memory store. now is the clock (nil:
// time.Now); tests pass a fake one.
func NewMemory(now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	m := &Memory{now: now, seed: maphash.MakeSeed()}
	for i := range m.shards {
		m.shards[i].counts = map[string]memEntry{}
		m.shards[i].slots = map[string]int64{}
	}
	return m
}

func (m *Memory) shard(key string) *memShard {
	return &m.shards[maphash.String(m.seed, key)%numShards]
}

// Hit adds n to key's counter in the current window of w unless the sum
// would exceed limit. It never fails.
func (m *Memory) Hit(key string, n int64, w Window, limit int64) (Result, error) {
	now := m.now()
	id, end := w.At(now)
	sh := m.shard(key)
	sh.mu.Lock()
	if !now.Before(sh.nextSweep) {
		sh.sweep(now)
	}
	e, ok := sh.counts[key]
	if !ok || e.window != id || !e.end.Equal(end) {
		e = memEntry{window: id, end: end}
	}
	allowed := n <= limit-e.count // no overflow for limit = Unlimited
	if allowed {
		e.count += n
	}
	if allowed {
		sh.counts[key] = e
	}
	count := e.count
	sh.mu.Unlock()
	return result(allowed, count, limit, now, end), nil
}

func (sh *memShard) sweep(now time.Time) {
	for k, e := range sh.counts {
		if !e.end.IsZero() && !now.Before(e.end) {
			delete(sh.counts, k)
		}
	}
	sh.nextSweep = now.Add(sweepEvery)
}

// Len returns the number of counters held (for tests and metrics).
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		n += len(sh.counts)
		sh.mu.Unlock()
	}
	return n
}

// Acquire takes one of max concurrency slots named key; false when all
// are taken. Every successful Acquire must be paired with a Release.
func (m *Memory) Acquire(key string, max int64) bool {
	sh := m.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.slots[key] >= max {
		return false
	}
	sh.slots[key]++
	return true
}

// Release returns a slot taken by Acquire.
func (m *Memory) Release(key string) {
	sh := m.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if n := sh.slots[key] - 1; n > 0 {
		sh.slots[key] = n
	} else {
		delete(sh.slots, key)
	}
}

// InUse returns the slots held under key.
func (m *Memory) InUse(key string) int64 {
	sh := m.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.slots[key]
}
