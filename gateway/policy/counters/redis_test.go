package counters

import (
	"context"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/internal/redistest"
)

// TestRedisReplicasShareOneLimit: two stores, as two gateway replicas,
// hit the same keys concurrently and together allow exactly the limit.
func TestRedisReplicasShareOneLimit(t *testing.T) {
	url := redistest.Start(t)
	prefix := "test-" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"
	var stores [2]*Redis
	for i := range stores {
		s, err := NewRedis(url, RedisOptions{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores[i] = s
	}
	w := Window{Period: time.Minute}
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for range 25 {
				res, err := stores[g%2].Hit("shared", 1, w, 100)
				if err != nil {
					t.Error(err)
					return
				}
				if res.Allowed {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if allowed.Load() != 100 {
		t.Errorf("the replicas allowed %d hits, want 100", allowed.Load())
	}
	res, err := stores[1].Hit("shared", 0, w, 100)
	if err != nil || res.Count != 100 || res.Remaining != 0 || res.Reset <= 0 || res.Reset > time.Minute {
		t.Errorf("after: %+v %v", res, err)
	}
	// Another key is separate; a refused hit adds nothing.
	if res, _ := stores[0].Hit("other", 5, w, 4); res.Allowed || res.Count != 0 {
		t.Errorf("over-limit hit: %+v", res)
	}
	// The key expires with its window (plus a margin), not never.
	ttl := stores[0].client.PTTL(context.Background(), prefix+"shared:"+strconv.FormatInt(func() int64 { id, _ := w.At(time.Now()); return id }(), 10)).Val()
	if ttl <= 0 || ttl > time.Minute+6*time.Second {
		t.Errorf("TTL %v", ttl)
	}
	// Lifetime counters have no expiry.
	if _, err := stores[0].Hit("life", 1, Window{}, 10); err != nil {
		t.Fatal(err)
	}
	if ttl := stores[0].client.PTTL(context.Background(), prefix+"life").Val(); ttl != -1 {
		t.Errorf("lifetime counter TTL %v, want none", ttl)
	}
}

// TestRedisFailsOpen: an unreachable server lets hits through, counted.
func TestRedisFailsOpen(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	s, err := NewRedis("redis://"+addr, RedisOptions{Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	res, err := s.Hit("k", 1, Window{Period: time.Minute}, 0)
	if err == nil || !res.Allowed {
		t.Fatalf("hit on a dead server: %+v, %v; want allowed with an error", res, err)
	}
	if s.Errors() != 1 {
		t.Errorf("errors %d, want 1", s.Errors())
	}
}

func TestParseRedis(t *testing.T) {
	o, err := ParseRedis("contoso.redis.cache.windows.net:6380,password=secret,ssl=True,abortConnect=False")
	if err != nil || o.Addr != "contoso.redis.cache.windows.net:6380" || o.Password != "secret" || o.TLSConfig == nil || o.TLSConfig.ServerName != "contoso.redis.cache.windows.net" {
		t.Errorf("azure form: %+v %v", o, err)
	}
	o, err = ParseRedis("redis://:pw@127.0.0.1:6379/2")
	if err != nil || o.Addr != "127.0.0.1:6379" || o.Password != "pw" || o.DB != 2 {
		t.Errorf("url form: %+v %v", o, err)
	}
	if _, err := ParseRedis(""); err == nil {
		t.Error("empty string accepted")
	}
}

func TestWindowAt(t *testing.T) {
	w := Window{Period: time.Hour, Origin: time.Date(2024, 6, 1, 0, 30, 0, 0, time.UTC)}
	_, end := w.At(time.Date(2025, 1, 1, 0, 10, 0, 0, time.UTC))
	if !end.Equal(time.Date(2025, 1, 1, 0, 30, 0, 0, time.UTC)) {
		t.Errorf("end %v", end)
	}
	// Before the origin, windows count backwards.
	_, end = w.At(time.Date(2024, 5, 31, 23, 50, 0, 0, time.UTC))
	if !end.Equal(time.Date(2024, 6, 1, 0, 30, 0, 0, time.UTC)) {
		t.Errorf("end before origin %v", end)
	}
	// Year-1 origins work (quota-by-key's default first-period-start).
	w = Window{Period: 300 * time.Second, Origin: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)}
	now := time.Date(2025, 3, 1, 12, 1, 0, 0, time.UTC)
	if _, end := w.At(now); !end.Equal(time.Date(2025, 3, 1, 12, 5, 0, 0, time.UTC)) {
		t.Errorf("year-1 origin end %v", end)
	}
}
