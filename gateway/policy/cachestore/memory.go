// Package cachestore holds the stores behind API Management's caching
// policies (cache-lookup, cache-store, cache-lookup-value,
// cache-store-value, cache-remove-value): an in-memory store local to one
// gateway instance, bounded by total bytes, and a Redis store that several
// replicas share (cache.external.connectionString).
//
// Stores hold opaque byte values under string keys, each with its own
// time to live. Values handed to Set are copied; values returned by Get
// must not be modified.
package cachestore

import (
	"container/list"
	"errors"
	"hash/maphash"
	"sync"
	"time"
)

// DefaultMemoryBytes bounds a Memory store made with maxBytes 0.
const DefaultMemoryBytes = 64 << 20

// ErrTooLarge is returned by Memory.Set for an entry larger than a shard's
// share of the byte budget; the entry is not stored.
var ErrTooLarge = errors.New("cachestore: entry larger than the cache")

// entryOverhead approximates what an entry costs beyond its key and value
// bytes (map slot, list element, entry struct).
const entryOverhead = 128

const numShards = 16

// Memory is an in-memory LRU store bounded by total bytes (keys, values and
// a fixed overhead per entry). It is split in shards, each with its own
// lock, LRU list and an equal share of the budget; an entry expires after
// its TTL and is dropped when read or when room is needed. Safe for
// concurrent use.
type Memory struct {
	seed     maphash.Seed
	now      func() time.Time
	shardMax int64
	shards   [numShards]shard
}

type shard struct {
	mu    sync.Mutex
	items map[string]*list.Element
	lru   list.List // front: most recently used
	bytes int64
}

type entry struct {
	key     string
	value   []byte
	expires int64 // Unix nanoseconds; 0: never
}

func (e *entry) cost() int64 { return int64(len(e.key)+len(e.value)) + entryOverhead }

// NewMemory returns a store holding at most maxBytes (0:
// DefaultMemoryBytes). now is the clock (nil: time.Now).
func NewMemory(maxBytes int64, now func() time.Time) *Memory {
	if maxBytes <= 0 {
		maxBytes = DefaultMemoryBytes
	}
	if now == nil {
		now = time.Now
	}
	m := &Memory{seed: maphash.MakeSeed(), now: now, shardMax: maxBytes / numShards}
	if m.shardMax < entryOverhead {
		m.shardMax = entryOverhead
	}
	for i := range m.shards {
		m.shards[i].items = map[string]*list.Element{}
	}
	return m
}

func (m *Memory) shard(key string) *shard {
	return &m.shards[maphash.String(m.seed, key)%numShards]
}

// Get returns key's value; false when absent or expired.
func (m *Memory) Get(key string) ([]byte, bool, error) {
	s := m.shard(key)
	now := m.now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.items[key]
	if !ok {
		return nil, false, nil
	}
	e := el.Value.(*entry)
	if e.expires != 0 && now >= e.expires {
		s.remove(el)
		return nil, false, nil
	}
	s.lru.MoveToFront(el)
	return e.value, true, nil
}

// Set stores a copy of value under key for ttl (0 or less: no expiry),
// evicting the least recently used entries of the key's shard when the
// budget is exceeded.
func (m *Memory) Set(key string, value []byte, ttl time.Duration) error {
	e := &entry{key: key, value: append([]byte(nil), value...)}
	if ttl > 0 {
		e.expires = m.now().Add(ttl).UnixNano()
	}
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.items[key]; ok {
		s.remove(el)
	}
	if e.cost() > m.shardMax {
		return ErrTooLarge
	}
	s.items[key] = s.lru.PushFront(e)
	s.bytes += e.cost()
	for s.bytes > m.shardMax {
		s.remove(s.lru.Back())
	}
	return nil
}

// Delete removes key.
func (m *Memory) Delete(key string) error {
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.items[key]; ok {
		s.remove(el)
	}
	return nil
}

// Len returns the number of entries, expired ones not yet dropped
// included.
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += len(s.items)
		s.mu.Unlock()
	}
	return n
}

// Bytes returns the bytes accounted to the entries held.
func (m *Memory) Bytes() int64 {
	var n int64
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += s.bytes
		s.mu.Unlock()
	}
	return n
}

// MaxBytes returns the store's byte budget.
func (m *Memory) MaxBytes() int64 { return m.shardMax * numShards }

func (s *shard) remove(el *list.Element) {
	e := s.lru.Remove(el).(*entry)
	delete(s.items, e.key)
	s.bytes -= e.cost()
}
