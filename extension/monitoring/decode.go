package monitoring

import (
	"encoding/json"
	"errors"
	"strconv"
)

// errRecord reports a record that is not a JSON object.
var errRecord = errors.New("record is not a JSON object")

// decodeRecord fills r from raw, one record of a page that encoding/json
// already validated. It reads only the columns the aggregator needs and
// skips the rest without reflection: this runs 20,000 times a second, and
// encoding/json would validate each record a second time.
func decodeRecord(raw []byte, r *record) error {
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return errRecord
	}
	i++
	for {
		i = skipSpace(raw, i)
		if i >= len(raw) {
			return errRecord
		}
		switch raw[i] {
		case '}':
			return nil
		case ',':
			i++
			continue
		case '"':
		default:
			return errRecord
		}
		kEnd, _ := stringEnd(raw, i)
		key := raw[i+1 : kEnd-1]
		i = skipSpace(raw, kEnd)
		if i >= len(raw) || raw[i] != ':' {
			return errRecord
		}
		i = skipSpace(raw, i+1)
		vEnd := valueEnd(raw, i)
		if vEnd < 0 {
			return errRecord
		}
		val := raw[i:vEnd]
		var err error
		switch string(key) {
		case "Sequence":
			r.Sequence, err = strconv.ParseUint(string(val), 10, 64)
		case "TimeGenerated":
			r.TimeGenerated, err = decodeString(val)
		case "ApiId":
			r.ApiId, err = decodeString(val)
		case "OperationId":
			r.OperationId, err = decodeString(val)
		case "Hostname":
			r.Hostname, err = decodeString(val)
		case "LastErrorReason":
			r.LastErrorReason, err = decodeString(val)
		case "Cache":
			r.Cache, err = decodeString(val)
		case "ResponseCode":
			r.ResponseCode, err = decodeInt(val)
		case "BackendResponseCode":
			r.BackendResponseCode, err = decodeInt(val)
		case "TotalTime":
			if string(val) != "null" {
				r.TotalTime, err = strconv.ParseFloat(string(val), 64)
			}
		case "BackendTime":
			r.BackendTime, err = decodeFloatPtr(val)
		case "ClientTime":
			r.ClientTime, err = decodeFloatPtr(val)
		case "CustomMetrics":
			err = json.Unmarshal(val, &r.CustomMetrics)
		}
		if err != nil {
			return errors.New("record column " + strconv.Quote(string(key)) + ": " + err.Error())
		}
		i = vEnd
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index after the closing quote of the string
// starting at b[i] and whether it holds escapes.
func stringEnd(b []byte, i int) (int, bool) {
	esc := false
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			esc = true
			j++
		case '"':
			return j + 1, esc
		}
	}
	return len(b), esc
}

// valueEnd returns the index after the JSON value starting at b[i].
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		e, _ := stringEnd(b, i)
		return e
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				e, _ := stringEnd(b, j)
				j = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	default: // number, true, false, null
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\n' && b[j] != '\r' && b[j] != '\t' {
			j++
		}
		return j
	}
}

// decodeString decodes a JSON string value; null gives "".
func decodeString(v []byte) (string, error) {
	if string(v) == "null" {
		return "", nil
	}
	if len(v) < 2 || v[0] != '"' {
		return "", errors.New("not a string")
	}
	if _, esc := stringEnd(v, 0); !esc {
		return string(v[1 : len(v)-1]), nil
	}
	var s string
	err := json.Unmarshal(v, &s)
	return s, err
}

// decodeInt accepts integers written as JSON numbers (also 200.0).
func decodeInt(v []byte) (int, error) {
	if string(v) == "null" {
		return 0, nil
	}
	if n, err := strconv.Atoi(string(v)); err == nil {
		return n, nil
	}
	f, err := strconv.ParseFloat(string(v), 64)
	return int(f), err
}

// decodeFloatPtr decodes a number; null gives nil (column absent).
func decodeFloatPtr(v []byte) (*float64, error) {
	if string(v) == "null" {
		return nil, nil
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil {
		return nil, err
	}
	return &f, nil
}

// decodePage parses a GET /telemetry/logs answer into p. Records are
// slices of body (valid until body is reused). The body is validated once
// here, so the per-record decoder can trust it.
func decodePage(body []byte, p *page) error {
	if !json.Valid(body) {
		return errors.New("answer is not valid JSON")
	}
	p.Epoch, p.First, p.Next, p.Lost, p.Records = "", 0, 0, 0, p.Records[:0]
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return errors.New("answer is not a JSON object")
	}
	i++
	for {
		i = skipSpace(body, i)
		if i >= len(body) || body[i] == '}' {
			return nil
		}
		if body[i] == ',' {
			i++
			continue
		}
		kEnd, _ := stringEnd(body, i)
		key := string(body[i+1 : kEnd-1])
		i = skipSpace(body, skipSpace(body, kEnd)+1) // past ':'
		vEnd := valueEnd(body, i)
		val := body[i:vEnd]
		var err error
		switch key {
		case "epoch":
			p.Epoch, err = decodeString(val)
		case "first":
			p.First, err = strconv.ParseUint(string(val), 10, 64)
		case "next":
			p.Next, err = strconv.ParseUint(string(val), 10, 64)
		case "lost":
			p.Lost, err = strconv.ParseUint(string(val), 10, 64)
		case "records":
			err = splitArray(val, p)
		}
		if err != nil {
			return errors.New("field " + key + ": " + err.Error())
		}
		i = vEnd
	}
}

func splitArray(arr []byte, p *page) error {
	if string(arr) == "null" {
		return nil
	}
	if arr[0] != '[' {
		return errors.New("not an array")
	}
	i := 1
	for {
		i = skipSpace(arr, i)
		if i >= len(arr) || arr[i] == ']' {
			return nil
		}
		if arr[i] == ',' {
			i++
			continue
		}
		e := valueEnd(arr, i)
		p.Records = append(p.Records, arr[i:e])
		i = e
	}
}
