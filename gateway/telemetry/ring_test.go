package telemetry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// recordFor is a record whose Url names its writer and index, so a
// reader can tell a torn or misplaced record.
func recordFor(writer, i int) *Record {
	return &Record{
		Time:          time.Date(2026, 11, 30, 1, 2, 3, 456789000, time.UTC),
		CorrelationID: []byte("00000000-0000-4000-8000-000000000000"),
		Method:        []byte("GET"),
		URL:           fmt.Appendf(nil, "http://gw.example/w%d/r%d", writer, i),
		Hostname:      []byte("gw.example"),
		ResponseCode:  200,
		ResponseSize:  -1,
		RequestSize:   -1,
	}
}

func readAll(r *Ring, after uint64, limit int) ([]uint64, []string, Page) {
	var seqs []uint64
	var urls []string
	p := r.Read(after, limit, func(seq uint64, rec *Record) {
		seqs = append(seqs, seq)
		urls = append(urls, string(rec.URL))
	})
	return seqs, urls, p
}

func seqRange(from, to uint64) []uint64 {
	var s []uint64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

func TestRingRead(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		size, writes  int
		after         uint64
		limit         int
		wantSeqs      []uint64
		wantFirst     uint64
		wantNext      uint64
		wantLost      uint64
		wantDropped   uint64
		wantUnreadNow uint64 // after the read
	}{
		{name: "empty ring", size: 4, writes: 0, after: 0, limit: 10, wantFirst: 1, wantNext: 0},
		{name: "all of a partly filled ring", size: 4, writes: 3, after: 0, limit: 10, wantSeqs: seqRange(1, 3), wantFirst: 1, wantNext: 3},
		{name: "from the middle", size: 4, writes: 3, after: 1, limit: 10, wantSeqs: seqRange(2, 3), wantFirst: 1, wantNext: 3},
		{name: "limit cuts the page", size: 8, writes: 6, after: 0, limit: 2, wantSeqs: seqRange(1, 2), wantFirst: 1, wantNext: 2, wantUnreadNow: 4},
		{name: "nothing new", size: 4, writes: 3, after: 3, limit: 10, wantFirst: 1, wantNext: 3},
		{name: "exactly full", size: 4, writes: 4, after: 0, limit: 10, wantSeqs: seqRange(1, 4), wantFirst: 1, wantNext: 4},
		{name: "wrapped: the overwritten ones are lost", size: 4, writes: 10, after: 0, limit: 10,
			wantSeqs: seqRange(7, 10), wantFirst: 7, wantNext: 10, wantLost: 6, wantDropped: 6},
		{name: "wrapped, reader behind by some", size: 4, writes: 10, after: 4, limit: 10,
			wantSeqs: seqRange(7, 10), wantFirst: 7, wantNext: 10, wantLost: 2, wantDropped: 6},
		{name: "wrapped, limit", size: 4, writes: 10, after: 0, limit: 1,
			wantSeqs: []uint64{7}, wantFirst: 7, wantNext: 7, wantLost: 6, wantDropped: 6, wantUnreadNow: 3},
		{name: "after from an earlier epoch starts over", size: 4, writes: 3, after: 100, limit: 10, wantFirst: 1, wantNext: 0, wantUnreadNow: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := NewRing(tc.size)
			if err != nil {
				t.Fatal(err)
			}
			for i := range tc.writes {
				if seq := r.Write(recordFor(0, i+1)); seq != uint64(i+1) {
					t.Fatalf("write %d got Sequence %d", i+1, seq)
				}
			}
			seqs, urls, p := readAll(r, tc.after, tc.limit)
			if fmt.Sprint(seqs) != fmt.Sprint(tc.wantSeqs) {
				t.Errorf("sequences %v, want %v", seqs, tc.wantSeqs)
			}
			for i, u := range urls {
				if want := fmt.Sprintf("http://gw.example/w0/r%d", seqs[i]); u != want {
					t.Errorf("record %d has Url %q, want %q", seqs[i], u, want)
				}
			}
			if p.First != tc.wantFirst || p.Next != tc.wantNext || p.Lost != tc.wantLost || p.Count != len(tc.wantSeqs) {
				t.Errorf("page %+v, want first %d next %d lost %d count %d", p, tc.wantFirst, tc.wantNext, tc.wantLost, len(tc.wantSeqs))
			}
			if d := r.Dropped(); d != tc.wantDropped {
				t.Errorf("dropped %d, want %d", d, tc.wantDropped)
			}
			if u := r.Unread(); u != tc.wantUnreadNow {
				t.Errorf("unread %d after the read, want %d", u, tc.wantUnreadNow)
			}
		})
	}
}

// Records a reader already had are not counted as dropped when the ring
// overwrites them; unread ones are.
func TestRingDroppedCountsOnlyUnread(t *testing.T) {
	t.Parallel()
	r, err := NewRing(4)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		r.Write(recordFor(0, i+1))
	}
	if _, _, p := readAll(r, 0, 2); p.Next != 2 {
		t.Fatalf("next %d", p.Next)
	}
	for i := range 4 {
		r.Write(recordFor(0, i+5)) // overwrites 1..4: 1 and 2 were read
	}
	if d := r.Dropped(); d != 2 {
		t.Errorf("dropped %d, want 2 (records 3 and 4)", d)
	}
	seqs, _, p := readAll(r, 2, 100)
	if p.Lost != 2 || fmt.Sprint(seqs) != fmt.Sprint(seqRange(5, 8)) {
		t.Errorf("after 2: lost %d, records %v", p.Lost, seqs)
	}
}

func TestRingEpochAndSize(t *testing.T) {
	t.Parallel()
	a, err := NewRing(1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewRing(1)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Epoch()) != 32 || strings.Trim(a.Epoch(), "0123456789abcdef") != "" {
		t.Errorf("epoch %q is not 32 hex digits", a.Epoch())
	}
	if a.Epoch() == b.Epoch() {
		t.Error("two rings share an epoch")
	}
	for _, size := range []int{0, -1, MaxRingSize + 1} {
		if _, err := NewRing(size); err == nil || !strings.Contains(err.Error(), "request log buffer") {
			t.Errorf("size %d: error %v", size, err)
		}
	}
}

// Write copies what it is given: the request's memory is reused as soon
// as the handler returns.
func TestRingWriteCopies(t *testing.T) {
	t.Parallel()
	r, err := NewRing(2)
	if err != nil {
		t.Fatal(err)
	}
	rec := recordFor(0, 1)
	long := bytes.Repeat([]byte("a"), 5000)
	rec.BackendURL = long
	r.Write(rec)
	copy(rec.URL, "XXXXXXXXXXXX")
	long[0] = 'Z'
	r.Read(0, 1, func(_ uint64, got *Record) {
		if string(got.URL) != "http://gw.example/w0/r1" {
			t.Errorf("stored Url changed with the caller's buffer: %q", got.URL)
		}
		if len(got.BackendURL) != maxURLBytes || got.BackendURL[0] != 'a' {
			t.Errorf("BackendUrl: %d bytes starting %q, want the first %d bytes of the original", len(got.BackendURL), got.BackendURL[:1], maxURLBytes)
		}
	})
}

// Many writers and a reader at once: every record comes out once, in
// order, intact, or is counted as lost. Run with -race.
func TestRingConcurrentWritersAndReader(t *testing.T) {
	t.Parallel()
	const writers, perWriter = 4, 5000
	r, err := NewRing(256)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				r.Write(recordFor(w, i))
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	var after, got, lost uint64
	seen := map[string]bool{}
	check := func() Page {
		prev := after
		p := r.Read(after, 100, func(seq uint64, rec *Record) {
			if seq <= prev {
				t.Errorf("sequence %d not after %d", seq, prev)
			}
			prev = seq
			u := string(rec.URL)
			var w, i int
			if _, err := fmt.Sscanf(u, "http://gw.example/w%d/r%d", &w, &i); err != nil || w >= writers || i >= perWriter {
				t.Errorf("torn record %d: Url %q", seq, u)
			}
			if seen[u] {
				t.Errorf("record %q returned twice", u)
			}
			seen[u] = true
		})
		if p.Next < after {
			t.Fatalf("next went back from %d to %d", after, p.Next)
		}
		if p.Next-after != uint64(p.Count)+p.Lost {
			t.Fatalf("page from %d to %d: %d records + %d lost do not add up", after, p.Next, p.Count, p.Lost)
		}
		after, got, lost = p.Next, got+uint64(p.Count), lost+p.Lost
		return p
	}
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
			check()
		}
	}
	for p := check(); p.Count > 0 || p.Lost > 0; p = check() {
	}
	if total := uint64(writers * perWriter); got+lost != total || after != total {
		t.Errorf("read %d + lost %d, next %d; want %d in all", got, lost, after, total)
	}
	if r.Dropped() > lost {
		t.Errorf("dropped %d, more than the %d the reader lost", r.Dropped(), lost)
	}
}

func TestAppendJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		rec    Record
		want   map[string]any
		absent []string
	}{
		{
			name: "forwarded request",
			rec: Record{
				Time: time.Date(2026, 11, 30, 1, 2, 3, 456789000, time.FixedZone("x", 3600)), CorrelationID: []byte("id-1"),
				Method: []byte("POST"), URL: []byte("https://gw/echo/x?subscription-key=***"), Hostname: []byte("gw"),
				ResponseCode: 201, ResponseSize: 12, RequestSize: 3, BackendMethod: []byte("PUT"), BackendURL: []byte("http://be/x"),
				BackendResponseCode: 201, Backend: true, BackendTime: 1600 * time.Microsecond, TotalTime: 2400 * time.Microsecond,
				ClientTime: 800 * time.Microsecond, Cache: CacheMiss, APIID: "echo", OperationID: "op", ProductID: "starter",
				SubscriptionID: "sub", APIRevision: "2", ClientProtocol: []byte("HTTP/1.1"), ClientTLSVersion: "TLS 1.3",
				CallerIP: []byte("10.0.0.1"),
				CustomMetrics: []CustomMetric{{Namespace: "shop", Name: "orders", Value: 2.5, Dimensions: []MetricDimension{{"Tier", "gold"}, {"API ID", "echo"}}},
					{Namespace: "shop", Name: "bad", Value: math.NaN()}},
			},
			want: map[string]any{
				"Sequence": 7.0, "TimeGenerated": "2026-11-30T00:02:03.456Z", "CorrelationId": "id-1", "Method": "POST",
				"Url": "https://gw/echo/x?subscription-key=***", "Hostname": "gw", "ResponseCode": 201.0, "ResponseSize": 12.0,
				"RequestSize": 3.0, "BackendMethod": "PUT", "BackendUrl": "http://be/x", "BackendResponseCode": 201.0,
				"BackendTime": 2.0, "TotalTime": 2.0, "ClientTime": 1.0, "Cache": "miss", "ApiId": "echo", "OperationId": "op",
				"ProductId": "starter", "ApimSubscriptionId": "sub", "ApiRevision": "2", "ClientProtocol": "HTTP/1.1",
				"ClientTlsVersion": "TLS 1.3", "CallerIpAddress": "10.0.0.1", "IsRequestSuccess": true,
				"CustomMetrics": []any{map[string]any{"Namespace": "shop", "Name": "orders", "Value": 2.5,
					"Dimensions": map[string]any{"Tier": "gold", "API ID": "echo"}}},
			},
			absent: []string{"LastErrorReason", "LastErrorMessage"},
		},
		{
			name: "gateway error without backend, hostile bytes",
			rec: Record{
				Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Method: []byte("GET"), URL: []byte("http://gw/\"a\\b\n\x01\xff"),
				ResponseCode: 401, ResponseSize: -1, RequestSize: -1, LastErrorReason: "SubscriptionKeyNotFound",
				LastErrorMessage: "Access denied", LastErrorSource: "authorization", LastErrorSection: "inbound", LastErrorScope: "api",
			},
			want: map[string]any{
				"Sequence": 7.0, "TimeGenerated": "2026-01-02T03:04:05.000Z", "Method": "GET", "Url": "http://gw/\"a\\b\n\x01\ufffd",
				"ResponseCode": 401.0, "TotalTime": 0.0, "ClientTime": 0.0, "Cache": "none", "IsRequestSuccess": false,
				"LastErrorReason": "SubscriptionKeyNotFound", "LastErrorMessage": "Access denied", "LastErrorSource": "authorization",
				"LastErrorSection": "inbound", "LastErrorScope": "api",
			},
			absent: []string{"BackendTime", "BackendResponseCode", "BackendUrl", "ResponseSize", "RequestSize", "ApiId", "CustomMetrics", "ClientTlsVersion"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := AppendJSON(nil, 7, &tc.rec)
			var got map[string]any
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, out)
			}
			for k, v := range tc.want {
				if fmt.Sprint(got[k]) != fmt.Sprint(v) {
					t.Errorf("%s = %#v, want %#v", k, got[k], v)
				}
			}
			for k := range got {
				if _, ok := tc.want[k]; !ok {
					t.Errorf("unexpected key %s = %v", k, got[k])
				}
			}
			for _, k := range tc.absent {
				if _, ok := got[k]; ok {
					t.Errorf("%s present, want it left out", k)
				}
			}
		})
	}
}

func TestParseLogsQuery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		query     string
		wantAfter uint64
		wantLimit int
		wantErr   string
	}{
		{query: "", wantAfter: 0, wantLimit: DefaultLimit},
		{query: "after=42", wantAfter: 42, wantLimit: DefaultLimit},
		{query: "after=18446744073709551615&limit=10000", wantAfter: math.MaxUint64, wantLimit: 10000},
		{query: "limit=1", wantLimit: 1},
		{query: "after=-1", wantErr: `after: "-1" is not a sequence number`},
		{query: "after=abc", wantErr: `after: "abc" is not a sequence number`},
		{query: "after=", wantErr: `after: "" is not`},
		{query: "limit=0", wantErr: `limit: "0" is not an integer between 1 and 10000`},
		{query: "limit=10001", wantErr: `limit: "10001" is not an integer between 1 and 10000`},
		{query: "limit=ten", wantErr: `limit: "ten"`},
		{query: "after=1&after=2", wantErr: "after: given more than once"},
		{query: "limit=1&limit=2", wantErr: "limit: given more than once"},
		{query: "afterr=1", wantErr: `"afterr": unknown parameter`},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			t.Parallel()
			var args fasthttp.Args
			args.Parse(tc.query)
			q, err := ParseLogsQuery(&args)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if q.After != tc.wantAfter || q.Limit != tc.wantLimit {
				t.Errorf("got after %d limit %d, want %d %d", q.After, q.Limit, tc.wantAfter, tc.wantLimit)
			}
		})
	}
}

func TestAppendString(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "plain", "quote\"back\\slash", "ctl\x00\x1f\t\r\n", "utf8 é ✓ \u2028", "bad \xff\xfe end", strings.Repeat("x", 300)} {
		out := AppendString(nil, s)
		var got string
		if err := json.Unmarshal(out, &got); err != nil {
			t.Errorf("%q: %s is not a JSON string: %v", s, out, err)
			continue
		}
		if want := strings.ToValidUTF8(s, "\ufffd"); got != want && !strings.Contains(s, "\xff\xfe") {
			t.Errorf("%q round-trips as %q", s, got)
		}
	}
	if got := string(AppendString(nil, "a\xff\xfeb")); got != `"a\ufffd\ufffdb"` {
		t.Errorf("invalid bytes: %s", got)
	}
}

// Writing a typical record, into a ring that fits in the CPU cache and
// into the default one, where every slot written is cold memory.
func BenchmarkRingWrite(b *testing.B) {
	for _, size := range []int{1024, DefaultRingSize} {
		b.Run(fmt.Sprintf("slots=%d", size), func(b *testing.B) {
			r, err := NewRing(size)
			if err != nil {
				b.Fatal(err)
			}
			rec := recordFor(1, 1)
			rec.BackendURL = []byte("http://backend.internal:8080/api/items/42?x=1")
			rec.BackendMethod = []byte("GET")
			for range size { // the first lap touches fresh pages
				r.Write(rec)
			}
			b.ReportAllocs()
			cpu := startCPU()
			for b.Loop() {
				r.Write(rec)
			}
			cpu.report(b)
		})
	}
}

func BenchmarkRingWriteParallel(b *testing.B) {
	r, err := NewRing(DefaultRingSize)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := startCPU()
	defer cpu.report(b)
	b.RunParallel(func(pb *testing.PB) {
		rec := recordFor(1, 1)
		for pb.Next() {
			r.Write(rec)
		}
	})
}

// A full page of 10,000 records encoded while the ring is written.
func BenchmarkRingReadPage(b *testing.B) {
	r, err := NewRing(DefaultRingSize)
	if err != nil {
		b.Fatal(err)
	}
	for i := range MaxLimit {
		r.Write(recordFor(1, i))
	}
	buf := make([]byte, 0, 4<<20)
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		buf = buf[:0]
		r.Read(0, MaxLimit, func(seq uint64, rec *Record) { buf = AppendJSON(buf, seq, rec) })
	}
	cpu.report(b)
	b.ReportMetric(float64(len(buf))/MaxLimit, "B/record")
}
