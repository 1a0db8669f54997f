package monitoring

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
)

// page is one answer of GET /telemetry/logs (contract 1).
type page struct {
	Epoch   string            `json:"epoch"`
	First   uint64            `json:"first"`
	Next    uint64            `json:"next"`
	Lost    uint64            `json:"lost"`
	Records []json.RawMessage `json:"records"`
}

// record holds the fields of a request-log record the aggregator needs; the
// raw JSON is uploaded as it came.
type record struct {
	Sequence            uint64
	TimeGenerated       string
	ApiId               string // Log Analytics column name
	OperationId         string // Log Analytics column name
	Hostname            string
	ResponseCode        int
	BackendResponseCode int
	LastErrorReason     string
	Cache               string
	TotalTime           float64
	BackendTime         *float64
	ClientTime          *float64
	CustomMetrics       []customMetric
}

type customMetric struct {
	Namespace  string
	Name       string
	Value      float64
	Dimensions map[string]string
}

// minuteOf returns the start of the minute of an RFC 3339 time. The gateway
// writes UTC with a Z, so the minute is the first 16 characters; the cache
// skips parsing for every record of the same minute.
type minuteCache struct {
	prefix string
	minute time.Time
}

func (m *minuteCache) minuteOf(ts string, now time.Time) time.Time {
	if len(ts) >= 16 && ts[len(ts)-1] == 'Z' && ts[:16] == m.prefix {
		return m.minute
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		// A record without a usable time counts in the minute it was read.
		return now.UTC().Truncate(time.Minute)
	}
	min := t.UTC().Truncate(time.Minute)
	if len(ts) >= 16 && ts[len(ts)-1] == 'Z' {
		m.prefix, m.minute = ts[:16], min
	}
	return min
}

// recordID is the unique id of a log row: the gateway process's epoch and
// the record's sequence number within it.
func appendRecordID(b []byte, epoch string, seq uint64) []byte {
	b = append(b, epoch...)
	b = append(b, '-')
	return strconv.AppendUint(b, seq, 10)
}

// appendLogRow appends raw (a JSON object) with a RecordId member first and,
// when timeField is not TimeGenerated, the top-level TimeGenerated key
// renamed to timeField (the Data Collector API reserves TimeGenerated).
// epoch must already be escaped for a JSON string (see jsonEscape).
func appendLogRow(dst []byte, raw []byte, epoch string, seq uint64, timeField string) []byte {
	raw = bytes.TrimSpace(raw)
	dst = append(dst, `{"RecordId":"`...)
	dst = appendRecordID(dst, epoch, seq)
	dst = append(dst, '"')
	body := raw[1:]                     // after '{'
	if len(bytes.TrimSpace(body)) > 1 { // not "}"
		dst = append(dst, ',')
	}
	if timeField != "TimeGenerated" {
		if s, e := topLevelKey(raw, "TimeGenerated"); s >= 0 {
			dst = append(dst, raw[1:s]...)
			dst = append(dst, '"')
			dst = append(dst, timeField...)
			dst = append(dst, '"')
			return append(dst, raw[e:]...)
		}
	}
	return append(dst, body...)
}

// topLevelKey finds the quoted key name among the members of the JSON
// object obj (which must be valid JSON) and returns the byte span of the
// key including its quotes, or -1. Keys of nested objects are skipped.
func topLevelKey(obj []byte, name string) (start, end int) {
	depth := 0
	expectKey := false
	for i := 0; i < len(obj); i++ {
		switch c := obj[i]; c {
		case '{':
			depth++
			expectKey = depth == 1
		case '[':
			depth++
		case '}', ']':
			depth--
		case ',':
			expectKey = depth == 1
		case '"':
			j := i + 1
			for j < len(obj) && obj[j] != '"' {
				if obj[j] == '\\' {
					j++
				}
				j++
			}
			if depth == 1 && expectKey {
				if string(obj[i+1:j]) == name {
					return i, j + 1
				}
				expectKey = false
			}
			i = j
		}
	}
	return -1, -1
}

// jsonEscape returns s escaped for use inside a JSON string.
func jsonEscape(s string) string {
	b := appendString(nil, s)
	return string(b[1 : len(b)-1])
}
