package monitoring

import (
	"encoding/json"
	"testing"
	"time"
)

func TestAppendLogRow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, raw, timeField, want string
	}{
		{"ingestion keeps TimeGenerated", `{"TimeGenerated":"2026-11-30T00:00:01.000Z","Sequence":7}`, "TimeGenerated",
			`{"RecordId":"ep-7","TimeGenerated":"2026-11-30T00:00:01.000Z","Sequence":7}`},
		{"data collector renames the top-level key only",
			`{"Url":"http://h/?q=\"TimeGenerated\":1","CustomMetrics":[{"Dimensions":{"TimeGenerated":"x"}}],"TimeGenerated":"2026-11-30T00:00:01Z","Sequence":7}`,
			"EventTime",
			`{"RecordId":"ep-7","Url":"http://h/?q=\"TimeGenerated\":1","CustomMetrics":[{"Dimensions":{"TimeGenerated":"x"}}],"EventTime":"2026-11-30T00:00:01Z","Sequence":7}`},
		{"record without time", `{"Sequence":7}`, "EventTime", `{"RecordId":"ep-7","Sequence":7}`},
		{"empty object", `{}`, "EventTime", `{"RecordId":"ep-7"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := string(appendLogRow(nil, []byte(tc.raw), "ep", 7, tc.timeField))
			if got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
			if !json.Valid([]byte(got)) {
				t.Fatalf("invalid JSON: %s", got)
			}
		})
	}
}

func TestRecordIDEscapesEpoch(t *testing.T) {
	t.Parallel()
	row := appendLogRow(nil, []byte(`{"Sequence":1}`), jsonEscape(`a"b\c`), 1, "TimeGenerated")
	var m map[string]any
	if err := json.Unmarshal(row, &m); err != nil {
		t.Fatalf("%s: %v", row, err)
	}
	if m["RecordId"] != `a"b\c-1` {
		t.Fatalf("RecordId %q", m["RecordId"])
	}
}

func TestMinuteOf(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 30, 1, 2, 3, 0, time.UTC)
	var mc minuteCache
	tests := []struct{ in, want string }{
		{"2026-11-30T00:00:59.999Z", "2026-11-30T00:00:00Z"},
		{"2026-11-30T00:00:01.000Z", "2026-11-30T00:00:00Z"}, // from the cache
		{"2026-11-30T00:01:00.000Z", "2026-11-30T00:01:00Z"},
		{"2026-11-30T01:01:30+01:00", "2026-11-30T00:01:00Z"}, // offsets are converted
		{"not a time", "2026-11-30T01:02:00Z"},                // counts when read
	}
	for _, tc := range tests {
		if got := mc.minuteOf(tc.in, now).Format(time.RFC3339); got != tc.want {
			t.Errorf("minuteOf(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}
