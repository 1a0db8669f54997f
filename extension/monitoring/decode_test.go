package monitoring

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// TestDecodeRecordMatchesEncodingJSON: the hand decoder reads the same
// values encoding/json does, on generated records and on tricky ones.
func TestDecodeRecordMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	inputs := []string{
		`{}`,
		` { "Sequence" : 3 , "ApiId" : "a\"b\\c\u00e9" , "TotalTime" : 1.5e1 , "Extra" : {"x":[1,{"ApiId":"no"}],"y":"}"} }`,
		`{"Url":"http://h/{]}\"","ApiId":"x","ResponseCode":200,"BackendTime":0,"ClientTime":null,"Cache":null}`,
		`{"CustomMetrics":[{"Namespace":"n","Name":"m","Value":2.5,"Dimensions":{"k":"v"}}],"Sequence":9}`,
		`{"LastErrorReason":"","OperationId":"op","Hostname":"h","BackendResponseCode":503,"IsRequestSuccess":false}`,
	}
	now := time.Now()
	for seq := uint64(1); seq <= 20; seq++ {
		inputs = append(inputs, string(genRecord(seq, "e", now)), string(benchRecord(seq, "e", now)))
	}
	for _, in := range inputs {
		var want, got record
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		// encoding/json leaves a null pointer field nil; so do we.
		if err := decodeRecord([]byte(in), &got); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s:\n got %+v\nwant %+v", in, got, want)
		}
	}
	for _, bad := range []string{`[]`, `"x"`, `{"Sequence":"x"}`, `{"ApiId":1}`} {
		var r record
		if err := decodeRecord([]byte(bad), &r); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func TestDecodePage(t *testing.T) {
	t.Parallel()
	var p page
	body := `{"epoch":"e\"1","first":3,"next":5,"lost":2,"records":[{"Sequence":4,"Url":"]"} , {"Sequence":5}]}`
	if err := decodePage([]byte(body), &p); err != nil {
		t.Fatal(err)
	}
	if p.Epoch != `e"1` || p.First != 3 || p.Next != 5 || p.Lost != 2 || len(p.Records) != 2 ||
		string(p.Records[0]) != `{"Sequence":4,"Url":"]"}` || string(p.Records[1]) != `{"Sequence":5}` {
		t.Fatalf("%+v %q", p, p.Records)
	}
	for _, bad := range []string{`{"records":[`, `[]`, `{"next":"x"}`, `{"records":{}}`} {
		if err := decodePage([]byte(bad), &p); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
