// Package lafake holds TLS fakes of the Log Analytics ingestion endpoints
// for tests: the HTTP Data Collector API (which recomputes and checks the
// SharedKey signature as Azure does) and the Logs Ingestion API together
// with the Entra authority that issues its tokens. They speak the
// documented wire formats (reference/azure-io.md sections 1, 2 and 3.2);
// nothing else in the repository may fake Azure.
package lafake

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Attempt is one request the fake answered.
type Attempt struct {
	Date       string // x-ms-date (Data Collector) or "" (Logs Ingestion)
	Auth       string // Authorization
	LogType    string // Log-Type, or the stream name
	TimeField  string // time-generated-field
	ResourceID string // x-ms-AzureResourceId
	Encoding   string // Content-Encoding
	Bytes      int    // body bytes as sent
	Rows       int
	Status     int
}

// failures injects errors: an outage answers every request with 503 until
// lifted; FailNext answers the next n requests with a status.
type failures struct {
	mu         sync.Mutex
	outage     bool
	next       int
	status     int
	retryAfter string
	lose       int
}

// LoseAnswers stores the next n accepted batches but answers 503, as when
// a response is lost after the service kept the data: the client sends
// them again and the rows arrive twice.
func (f *failures) LoseAnswers(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lose = n
}

func (f *failures) loseAnswer() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lose > 0 {
		f.lose--
		return true
	}
	return false
}

// SetOutage starts (true) or ends an outage: every request gets 503.
func (f *failures) SetOutage(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.outage = on
}

// FailNext answers the next n requests with status (and Retry-After when
// retryAfter is not "").
func (f *failures) FailNext(n, status int, retryAfter string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next, f.status, f.retryAfter = n, status, retryAfter
}

func (f *failures) injected() (status int, retryAfter string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.outage {
		return http.StatusServiceUnavailable, ""
	}
	if f.next > 0 {
		f.next--
		return f.status, f.retryAfter
	}
	return 0, ""
}

// store keeps what was accepted.
type store struct {
	mu       sync.Mutex
	keepRows bool
	rows     map[string][]map[string]any
	counts   map[string]int
	ids      map[string]map[string]bool // table -> RecordId values seen
	attempts []Attempt
}

func newStore(keep bool) store {
	return store{keepRows: keep, rows: map[string][]map[string]any{}, counts: map[string]int{}, ids: map[string]map[string]bool{}}
}

// Rows returns the accepted rows of a Log-Type (or stream), in order.
func (s *store) Rows(table string) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]any(nil), s.rows[table]...)
}

// RowCount is the number of accepted rows of a Log-Type (or stream).
func (s *store) RowCount(table string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[table]
}

// DistinctRecordIDs is the number of distinct RecordId values among the
// accepted rows of a table (kept rows only).
func (s *store) DistinctRecordIDs(table string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ids[table])
}

// Attempts returns every request answered, accepted or not.
func (s *store) Attempts() []Attempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Attempt(nil), s.attempts...)
}

func (s *store) record(a Attempt) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts = append(s.attempts, a)
}

func (s *store) accept(table string, rows []json.RawMessage) error {
	var decoded []map[string]any
	if s.keepRows {
		decoded = make([]map[string]any, 0, len(rows))
		for _, r := range rows {
			var m map[string]any
			d := json.NewDecoder(strings.NewReader(string(r)))
			d.UseNumber()
			if err := d.Decode(&m); err != nil {
				return err
			}
			decoded = append(decoded, m)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts[table] += len(rows)
	s.rows[table] = append(s.rows[table], decoded...)
	if s.ids[table] == nil {
		s.ids[table] = map[string]bool{}
	}
	for _, m := range decoded {
		if id, ok := m["RecordId"].(string); ok {
			s.ids[table][id] = true
		}
	}
	return nil
}

// DataCollector fakes https://{workspace}.ods.opinsights.azure.com/api/logs.
type DataCollector struct {
	*httptest.Server
	failures
	store

	workspaceID string
	key         []byte
	now         func() time.Time
}

var logTypeRE = regexp.MustCompile(`^[A-Za-z0-9_]{1,100}$`)

// reserved property names of the Data Collector API.
var reserved = []string{"tenant", "TimeGenerated", "RawData"}

// NewDataCollector starts a TLS fake for a workspace id and its base64
// shared key. keepRows decodes and keeps every accepted row (tests);
// without it only counts are kept and rows are not checked one by one
// (benchmarks).
func NewDataCollector(workspaceID, sharedKey string, keepRows bool) (*DataCollector, error) {
	key, err := base64.StdEncoding.DecodeString(sharedKey)
	if err != nil {
		return nil, fmt.Errorf("lafake: shared key is not base64: %w", err)
	}
	d := &DataCollector{store: newStore(keepRows), workspaceID: workspaceID, key: key, now: time.Now}
	d.Server = httptest.NewTLSServer(http.HandlerFunc(d.serve))
	return d, nil
}

// URL of the API (pass it as monitoring.dataCollector.endpoint).
func (d *DataCollector) Endpoint() string { return d.Server.URL + "/api/logs?api-version=2016-04-01" }

func dcError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"Error": code, "Message": msg})
}

func (d *DataCollector) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 32<<20))
	a := Attempt{Date: r.Header.Get("x-ms-date"), Auth: r.Header.Get("Authorization"), LogType: r.Header.Get("Log-Type"),
		TimeField: r.Header.Get("time-generated-field"), ResourceID: r.Header.Get("x-ms-AzureResourceId"), Bytes: len(body)}
	status, rows := d.check(w, r, body)
	a.Status, a.Rows = status, rows
	d.record(a)
}

func (d *DataCollector) check(w http.ResponseWriter, r *http.Request, body []byte) (int, int) {
	if r.Method != http.MethodPost || r.URL.Path != "/api/logs" {
		http.NotFound(w, r)
		return http.StatusNotFound, 0
	}
	if v := r.URL.Query().Get("api-version"); v != "2016-04-01" {
		code := "InvalidApiVersion"
		if v == "" {
			code = "MissingApiVersion"
		}
		dcError(w, http.StatusBadRequest, code, "api-version must be 2016-04-01")
		return http.StatusBadRequest, 0
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		dcError(w, http.StatusBadRequest, "MissingContentType", "Content-Type is required")
		return http.StatusBadRequest, 0
	}
	lt := r.Header.Get("Log-Type")
	if lt == "" {
		dcError(w, http.StatusBadRequest, "MissingLogType", "Log-Type is required")
		return http.StatusBadRequest, 0
	}
	if !logTypeRE.MatchString(lt) {
		dcError(w, http.StatusBadRequest, "InvalidLogType", "Log-Type: letters, digits and _ only")
		return http.StatusBadRequest, 0
	}
	// The signature covers the byte length, the content type exactly as
	// sent and the date: recompute it from what arrived.
	date := r.Header.Get("x-ms-date")
	t, err := time.Parse(http.TimeFormat, date)
	if err != nil || !strings.HasSuffix(date, " GMT") || d.now().Sub(t).Abs() > 15*time.Minute {
		dcError(w, http.StatusForbidden, "InvalidAuthorization", "x-ms-date missing, not RFC 1123 or out of range")
		return http.StatusForbidden, 0
	}
	sts := "POST\n" + strconv.Itoa(len(body)) + "\n" + ct + "\nx-ms-date:" + date + "\n/api/logs"
	m := hmac.New(sha256.New, d.key)
	m.Write([]byte(sts))
	want := "SharedKey " + d.workspaceID + ":" + base64.StdEncoding.EncodeToString(m.Sum(nil))
	if !hmac.Equal([]byte(r.Header.Get("Authorization")), []byte(want)) || ct != "application/json" {
		dcError(w, http.StatusForbidden, "InvalidAuthorization", "An invalid scheme was specified in the Authorization header")
		return http.StatusForbidden, 0
	}
	if status, retryAfter := d.injected(); status != 0 {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		dcError(w, status, http.StatusText(status), "injected")
		return status, 0
	}
	if len(body) > 30<<20 {
		// The documented answer to an oversized post.
		http.NotFound(w, r)
		return http.StatusNotFound, 0
	}
	var rows []json.RawMessage
	if err := json.Unmarshal(body, &rows); err != nil {
		dcError(w, http.StatusBadRequest, "InvalidDataFormat", "body must be a JSON array")
		return http.StatusBadRequest, 0
	}
	tf := r.Header.Get("time-generated-field")
	for _, row := range rows {
		if !d.keepRows {
			break // benchmarks: the array was checked, rows are only counted
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(row, &fields); err != nil {
			dcError(w, http.StatusBadRequest, "InvalidDataFormat", "rows must be JSON objects")
			return http.StatusBadRequest, 0
		}
		for _, name := range reserved {
			if _, ok := fields[name]; ok {
				dcError(w, http.StatusBadRequest, "InvalidDataFormat", "reserved property "+name)
				return http.StatusBadRequest, 0
			}
		}
		if tf != "" {
			var ts string
			if json.Unmarshal(fields[tf], &ts) != nil {
				dcError(w, http.StatusBadRequest, "InvalidDataFormat", "time-generated-field "+tf+" missing from a row")
				return http.StatusBadRequest, 0
			}
			if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
				dcError(w, http.StatusBadRequest, "InvalidDataFormat", "time-generated-field "+tf+" is not ISO 8601")
				return http.StatusBadRequest, 0
			}
		}
	}
	if err := d.accept(lt, rows); err != nil {
		dcError(w, http.StatusBadRequest, "InvalidDataFormat", err.Error())
		return http.StatusBadRequest, 0
	}
	if d.loseAnswer() {
		dcError(w, http.StatusServiceUnavailable, "ServiceUnavailable", "injected after the rows were stored")
		return http.StatusServiceUnavailable, len(rows)
	}
	w.WriteHeader(http.StatusOK)
	return http.StatusOK, len(rows)
}
