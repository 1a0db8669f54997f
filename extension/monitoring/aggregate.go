package monitoring

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MetricRow is one row shaped like Log Analytics' AzureMetrics: the
// aggregate of one metric over one minute for one combination of
// dimensions.
type MetricRow struct {
	RecordID      string // deterministic: same records in, same id out
	TimeGenerated time.Time
	MetricName    string
	Namespace     string // emit-metric namespace; "" for the gateway's own
	UnitName      string
	Total         float64
	Count         int64
	Minimum       float64
	Maximum       float64
	Average       float64
	ResourceID    string

	ApiId                       string // Log Analytics column name
	OperationId                 string // Log Analytics column name
	Hostname                    string
	GatewayResponseCode         int
	BackendResponseCode         int
	LastErrorReason             string
	Cache                       string
	Dimensions                  map[string]string // emit-metric dimensions
	GatewayResponseCodeCategory string
	BackendResponseCodeCategory string
}

// dims are the APIM metric dimensions of the Requests metric.
type dims struct {
	ApiId, OperationId, Hostname         string // Log Analytics column name
	GatewayResponseCode, BackendResponse int
	LastErrorReason, Cache               string
}

type stat struct {
	total, min, max float64
	count           int64
}

func (s *stat) add(v float64) {
	if s.count == 0 || v < s.min {
		s.min = v
	}
	if s.count == 0 || v > s.max {
		s.max = v
	}
	s.total += v
	s.count++
}

type series struct {
	requests, duration, backend, client stat
}

type customKey struct{ namespace, name, dims string }

type customSeries struct {
	dims map[string]string
	stat stat
}

type bucket struct {
	minute   time.Time
	firstSeq uint64
	std      map[dims]*series
	custom   map[customKey]*customSeries
}

func (b *bucket) size() int { return len(b.std) + len(b.custom) }

// aggregator turns request-log records into per-minute metric rows. It is
// used by one goroutine.
type aggregator struct {
	epoch      string
	resourceID string
	maxSeries  int
	buckets    map[time.Time]*bucket
	dropped    uint64 // records (or custom values) beyond maxSeries
	dimBuf     []string
}

func newAggregator(resourceID string, maxSeries int) *aggregator {
	return &aggregator{resourceID: resourceID, maxSeries: maxSeries, buckets: map[time.Time]*bucket{}}
}

// add counts one record in the minute it started.
func (a *aggregator) add(r *record, minute time.Time) {
	b := a.buckets[minute]
	if b == nil {
		b = &bucket{minute: minute, firstSeq: r.Sequence, std: map[dims]*series{}, custom: map[customKey]*customSeries{}}
		a.buckets[minute] = b
	}
	b.firstSeq = min(b.firstSeq, r.Sequence)
	k := dims{r.ApiId, r.OperationId, r.Hostname, r.ResponseCode, r.BackendResponseCode, r.LastErrorReason, r.Cache}
	s := b.std[k]
	if s == nil {
		if b.size() >= a.maxSeries {
			a.dropped++
			return
		}
		s = &series{}
		b.std[k] = s
	}
	s.requests.add(1)
	s.duration.add(r.TotalTime)
	if r.BackendTime != nil {
		s.backend.add(*r.BackendTime)
	}
	if r.ClientTime != nil {
		s.client.add(*r.ClientTime)
	}
	for i := range r.CustomMetrics {
		m := &r.CustomMetrics[i]
		ck := customKey{m.Namespace, m.Name, a.dimsKey(m.Dimensions)}
		cs := b.custom[ck]
		if cs == nil {
			if b.size() >= a.maxSeries {
				a.dropped++
				continue
			}
			cs = &customSeries{dims: m.Dimensions}
			b.custom[ck] = cs
		}
		cs.stat.add(m.Value)
	}
}

// dimsKey renders emit-metric dimensions in a canonical order.
func (a *aggregator) dimsKey(d map[string]string) string {
	if len(d) == 0 {
		return ""
	}
	a.dimBuf = a.dimBuf[:0]
	for k := range d {
		a.dimBuf = append(a.dimBuf, k)
	}
	slices.Sort(a.dimBuf)
	var sb strings.Builder
	for _, k := range a.dimBuf {
		sb.WriteString(strconv.Quote(k))
		sb.WriteByte('=')
		sb.WriteString(strconv.Quote(d[k]))
		sb.WriteByte(';')
	}
	return sb.String()
}

// closeBefore emits the rows of every minute that ended at or before t, in
// minute order, and forgets them.
func (a *aggregator) closeBefore(t time.Time, emit func([]MetricRow)) {
	mins := slices.SortedFunc(maps.Keys(a.buckets), func(x, y time.Time) int { return x.Compare(y) })
	for _, m := range mins {
		if m.Add(time.Minute).After(t) {
			break
		}
		emit(a.rows(a.buckets[m]))
		delete(a.buckets, m)
	}
}

// closeAll emits every open minute (epoch change, shutdown).
func (a *aggregator) closeAll(emit func([]MetricRow)) {
	a.closeBefore(time.Unix(1<<40, 0), emit)
}

// safeThrough is the highest sequence whose records are all in closed
// minutes; ok is false when no minute is open.
func (a *aggregator) safeThrough() (seq uint64, ok bool) {
	for _, b := range a.buckets {
		if !ok || b.firstSeq-1 < seq {
			seq, ok = b.firstSeq-1, true
		}
	}
	return seq, ok
}

func category(code int) string {
	if code <= 0 {
		return ""
	}
	return strconv.Itoa(code/100) + "xx"
}

func (a *aggregator) rows(b *bucket) []MetricRow {
	rows := make([]MetricRow, 0, 4*len(b.std)+len(b.custom))
	keys := slices.SortedFunc(maps.Keys(b.std), compareDims)
	for _, k := range keys {
		s := b.std[k]
		base := MetricRow{
			TimeGenerated: b.minute, ResourceID: a.resourceID,
			ApiId: k.ApiId, OperationId: k.OperationId, Hostname: k.Hostname,
			GatewayResponseCode: k.GatewayResponseCode, GatewayResponseCodeCategory: category(k.GatewayResponseCode),
			BackendResponseCode: k.BackendResponse, BackendResponseCodeCategory: category(k.BackendResponse),
			LastErrorReason: k.LastErrorReason, Cache: k.Cache,
		}
		for _, m := range []struct {
			name, unit string
			st         *stat
		}{
			{"Requests", "Count", &s.requests},
			{"Duration", "Milliseconds", &s.duration},
			{"BackendDuration", "Milliseconds", &s.backend},
			{"ClientDuration", "Milliseconds", &s.client},
		} {
			if m.st.count == 0 {
				continue
			}
			r := base
			r.MetricName, r.UnitName = m.name, m.unit
			fill(&r, m.st)
			r.RecordID = a.metricID(b, m.name, "", dimsString(k))
			rows = append(rows, r)
		}
	}
	ckeys := slices.SortedFunc(maps.Keys(b.custom), func(x, y customKey) int {
		return strings.Compare(x.namespace+"\x00"+x.name+"\x00"+x.dims, y.namespace+"\x00"+y.name+"\x00"+y.dims)
	})
	for _, k := range ckeys {
		cs := b.custom[k]
		r := MetricRow{TimeGenerated: b.minute, ResourceID: a.resourceID, MetricName: k.name, Namespace: k.namespace, Dimensions: cs.dims}
		fill(&r, &cs.stat)
		r.RecordID = a.metricID(b, k.name, k.namespace, k.dims)
		rows = append(rows, r)
	}
	return rows
}

func fill(r *MetricRow, s *stat) {
	r.Total, r.Count, r.Minimum, r.Maximum = s.total, s.count, s.min, s.max
	r.Average = s.total / float64(s.count)
}

func dimsString(k dims) string {
	return strings.Join([]string{k.ApiId, k.OperationId, k.Hostname, strconv.Itoa(k.GatewayResponseCode),
		strconv.Itoa(k.BackendResponse), k.LastErrorReason, k.Cache}, "\x00")
}

func compareDims(x, y dims) int { return strings.Compare(dimsString(x), dimsString(y)) }

// metricID is deterministic: the gateway epoch, the first record sequence of
// the minute (a minute re-read after an agent restart starts at the same
// record), the minute, the metric and its dimensions. Rows of different
// gateway processes never share an id.
func (a *aggregator) metricID(b *bucket, name, namespace, dimKey string) string {
	h := sha256.New()
	h.Write([]byte(a.epoch))
	h.Write([]byte{0})
	h.Write(strconv.AppendUint(nil, b.firstSeq, 10))
	h.Write([]byte{0})
	h.Write(strconv.AppendInt(nil, b.minute.Unix(), 10))
	h.Write([]byte{0})
	h.Write([]byte(namespace))
	h.Write([]byte{0})
	h.Write([]byte(name))
	h.Write([]byte{0})
	h.Write([]byte(dimKey))
	return hex.EncodeToString(h.Sum(nil)[:16])
}
