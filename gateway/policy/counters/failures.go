package counters

import (
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// FailureLog counts a store's failures and logs them at most once per ten
// seconds, with the number of failures since the last line: a Redis
// outage must be visible without one log line per request.
type FailureLog struct {
	errors  atomic.Uint64
	logged  atomic.Uint64 // failures already reported
	lastLog atomic.Int64  // unix nanos of the last log line
}

// Fail counts err and logs it with msg unless a line was written lately.
func (f *FailureLog) Fail(log zerolog.Logger, err error, msg string) {
	total := f.errors.Add(1)
	now := time.Now().UnixNano()
	last := f.lastLog.Load()
	if now-last < int64(10*time.Second) || !f.lastLog.CompareAndSwap(last, now) {
		return
	}
	since := total - f.logged.Swap(total)
	log.Error().Err(err).Uint64("errors", since).Msg(msg)
}

// Count returns how many failures there were.
func (f *FailureLog) Count() uint64 { return f.errors.Load() }
