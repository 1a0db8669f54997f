package telemetry

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"
)

// timeLayout is TimeGenerated's: RFC 3339, UTC, milliseconds.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// AppendJSON appends rec as one JSON object whose keys are the
// ApiManagementGatewayLogs column names, plus Sequence and CustomMetrics.
// Empty strings, unknown sizes and absent backend values are left out.
// Times are whole milliseconds, as the table's long columns hold them.
func AppendJSON(b []byte, seq uint64, rec *Record) []byte {
	b = append(b, `{"Sequence":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"TimeGenerated":"`...)
	b = rec.Time.UTC().AppendFormat(b, timeLayout)
	b = append(b, '"')
	b = appendBytesField(b, "CorrelationId", rec.CorrelationID)
	b = appendBytesField(b, "Method", rec.Method)
	b = appendBytesField(b, "Url", rec.URL)
	b = appendBytesField(b, "Hostname", rec.Hostname)
	b = appendIntField(b, "ResponseCode", int64(rec.ResponseCode))
	if rec.ResponseSize >= 0 {
		b = appendIntField(b, "ResponseSize", rec.ResponseSize)
	}
	if rec.RequestSize >= 0 {
		b = appendIntField(b, "RequestSize", rec.RequestSize)
	}
	b = appendBytesField(b, "BackendMethod", rec.BackendMethod)
	b = appendBytesField(b, "BackendUrl", rec.BackendURL)
	if rec.BackendResponseCode != 0 {
		b = appendIntField(b, "BackendResponseCode", int64(rec.BackendResponseCode))
	}
	if rec.Backend {
		b = appendIntField(b, "BackendTime", millis(rec.BackendTime))
	}
	b = appendIntField(b, "TotalTime", millis(rec.TotalTime))
	b = appendIntField(b, "ClientTime", millis(rec.ClientTime))
	b = AppendStringField(b, "Cache", rec.Cache.String())
	b = AppendStringField(b, "ApiId", rec.APIID)
	b = AppendStringField(b, "OperationId", rec.OperationID)
	b = AppendStringField(b, "ProductId", rec.ProductID)
	b = AppendStringField(b, "ApimSubscriptionId", rec.SubscriptionID)
	b = AppendStringField(b, "ApiRevision", rec.APIRevision)
	b = appendBytesField(b, "ClientProtocol", rec.ClientProtocol)
	b = AppendStringField(b, "ClientTlsVersion", rec.ClientTLSVersion)
	b = appendBytesField(b, "CallerIpAddress", rec.CallerIP)
	b = append(b, `,"IsRequestSuccess":`...)
	b = strconv.AppendBool(b, rec.IsRequestSuccess())
	b = AppendStringField(b, "LastErrorReason", rec.LastErrorReason)
	b = AppendStringField(b, "LastErrorMessage", rec.LastErrorMessage)
	b = AppendStringField(b, "LastErrorSource", rec.LastErrorSource)
	b = AppendStringField(b, "LastErrorSection", rec.LastErrorSection)
	b = AppendStringField(b, "LastErrorScope", rec.LastErrorScope)
	b = appendCustomMetrics(b, rec.CustomMetrics)
	return append(b, '}')
}

func appendCustomMetrics(b []byte, cms []CustomMetric) []byte {
	first := true
	for i := range cms {
		cm := &cms[i]
		if math.IsNaN(cm.Value) || math.IsInf(cm.Value, 0) {
			// JSON has no NaN or infinity; such a value cannot be
			// aggregated either.
			continue
		}
		if first {
			b = append(b, `,"CustomMetrics":[`...)
			first = false
		} else {
			b = append(b, ',')
		}
		b = append(b, `{"Namespace":`...)
		b = AppendString(b, cm.Namespace)
		b = append(b, `,"Name":`...)
		b = AppendString(b, cm.Name)
		b = append(b, `,"Value":`...)
		b = strconv.AppendFloat(b, cm.Value, 'g', -1, 64)
		b = append(b, `,"Dimensions":{`...)
		for j, d := range cm.Dimensions {
			if j > 0 {
				b = append(b, ',')
			}
			b = AppendString(b, d.Name)
			b = append(b, ':')
			b = AppendString(b, d.Value)
		}
		b = append(b, "}}"...)
	}
	if !first {
		b = append(b, ']')
	}
	return b
}

func millis(d time.Duration) int64 { return (d + time.Millisecond/2).Milliseconds() }

func appendIntField(b []byte, name string, v int64) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return strconv.AppendInt(b, v, 10)
}

// AppendStringField appends `,"name":"v"`, nothing when v is empty: the
// shape of every optional text column of a record or an uploaded row.
func AppendStringField(b []byte, name, v string) []byte {
	if v == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return AppendString(b, v)
}

func appendBytesField(b []byte, name string, v []byte) []byte {
	return AppendStringField(b, name, unsafe.String(unsafe.SliceData(v), len(v)))
}

// AppendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// so the output is always valid JSON whatever a client sent.
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"
