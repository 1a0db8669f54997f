package telemetry

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/valyala/fasthttp"
)

// Paths of the telemetry API (schemas/telemetry-api.openapi.yaml).
const (
	LogsPath   = "/telemetry/logs"
	StatusPath = "/telemetry/status"
)

// Page size limits of GET /telemetry/logs.
const (
	DefaultLimit = 1000
	MaxLimit     = 10000
)

// LogsQuery is a parsed GET /telemetry/logs query.
type LogsQuery struct {
	After uint64
	Limit int
}

// ParseLogsQuery reads after (default 0) and limit (default DefaultLimit,
// at most MaxLimit). The error names the parameter at fault; unknown and
// repeated parameters are errors too, so a misspelt one is not silently
// ignored.
func ParseLogsQuery(args *fasthttp.Args) (LogsQuery, error) {
	q := LogsQuery{Limit: DefaultLimit}
	var seenAfter, seenLimit bool
	var err error
	for k, v := range args.All() {
		if err != nil {
			break
		}
		switch string(k) {
		case "after":
			if seenAfter {
				err = errors.New("after: given more than once")
				break
			}
			seenAfter = true
			n, perr := strconv.ParseUint(string(v), 10, 64)
			if perr != nil {
				err = fmt.Errorf("after: %s is not a sequence number (a non-negative integer)", quote(v))
				break
			}
			q.After = n
		case "limit":
			if seenLimit {
				err = errors.New("limit: given more than once")
				break
			}
			seenLimit = true
			n, perr := strconv.Atoi(string(v))
			if perr != nil || n < 1 || n > MaxLimit {
				err = fmt.Errorf("limit: %s is not an integer between 1 and %d", quote(v), MaxLimit)
				break
			}
			q.Limit = n
		default:
			err = fmt.Errorf("%s: unknown parameter (expected after and limit)", quote(k))
		}
	}
	return q, err
}

// quote renders a client-supplied value for an error message, cut short.
func quote(v []byte) string {
	if len(v) > 64 {
		return strconv.Quote(string(v[:64]) + "...")
	}
	return strconv.Quote(string(v))
}

// ServeLogs answers GET /telemetry/logs with a page of records:
// {"epoch","records":[...],"first","next","lost"}.
func (r *Ring) ServeLogs(ctx *fasthttp.RequestCtx) {
	if !ctx.IsGet() && !ctx.IsHead() {
		ctx.Response.Header.Set("Allow", "GET, HEAD")
		WriteError(ctx, fasthttp.StatusMethodNotAllowed, "method not allowed: use GET")
		return
	}
	q, err := ParseLogsQuery(ctx.QueryArgs())
	if err != nil {
		WriteError(ctx, fasthttp.StatusBadRequest, err.Error())
		return
	}
	// Records are encoded while each one's slot is held, so they are not
	// copied first; first, next and lost are only known after the read,
	// so they follow the records (JSON objects are unordered).
	b := make([]byte, 0, 64<<10)
	b = append(b, `{"epoch":`...)
	b = AppendString(b, r.epoch)
	b = append(b, `,"records":[`...)
	n := 0
	p := r.Read(q.After, q.Limit, func(seq uint64, rec *Record) {
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = AppendJSON(b, seq, rec)
	})
	b = append(b, `],"first":`...)
	b = strconv.AppendUint(b, p.First, 10)
	b = append(b, `,"next":`...)
	b = strconv.AppendUint(b, p.Next, 10)
	b = append(b, `,"lost":`...)
	b = strconv.AppendUint(b, p.Lost, 10)
	b = append(b, "}\n"...)
	ctx.SetContentType("application/json")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.Response.SetBodyRaw(b)
}

// WriteError answers status with {"error": message}.
func WriteError(ctx *fasthttp.RequestCtx, status int, message string) {
	b := append([]byte(`{"error":`), AppendString(nil, message)...)
	b = append(b, "}\n"...)
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.Response.SetBodyRaw(b)
}
