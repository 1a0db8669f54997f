// Package counters holds the stores behind API Management's rate-limit,
// quota and limit-concurrency policies: an in-memory store for one gateway
// instance and a Redis store that several replicas share.
//
// Algorithm. Counters count in fixed windows: the window holding an
// instant t is [Origin + k·Period, Origin + (k+1)·Period), k an integer,
// and each window has its own counter, so a count renews all at once when
// its window ends. A hit adds n to the counter only when the sum stays
// within the limit; a refused hit adds nothing. This is cheaper than API
// Management's sliding window (classic tiers) and allows, at worst, twice
// the limit across a window boundary; the documentation warns that rate
// limiting "is never completely accurate" anyway.
//
// Concurrency slots (limit-concurrency) are always local to one gateway
// instance, also with Redis: a slot is held only while a request runs, and
// a crashed replica must not leak slots in a shared store.
package counters

import (
	"math"
	"time"
)

// Window says how a counter renews.
type Window struct {
	// Period is the window length; 0 means one window that never ends (a
	// lifetime quota).
	Period time.Duration
	// Origin is where windows are counted from; the zero time means the
	// Unix epoch.
	Origin time.Time
}

// At returns the number of the window holding now and when it ends (the
// zero time for a window that never ends). It counts in milliseconds, so
// origins centuries away (first-period-start defaults to year 1) work.
func (w Window) At(now time.Time) (id int64, end time.Time) {
	if w.Period <= 0 {
		return 0, time.Time{}
	}
	var origin int64 // Unix milliseconds
	if !w.Origin.IsZero() {
		origin = w.Origin.UnixMilli()
	}
	period := w.Period.Milliseconds()
	if period < 1 {
		period = 1
	}
	id = floorDiv(now.UnixMilli()-origin, period)
	return id, time.UnixMilli(origin + (id+1)*period)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// Result is the outcome of a hit.
type Result struct {
	// Allowed is false when the hit would have taken the counter above
	// the limit; the counter did not change then.
	Allowed bool
	// Count is the counter's value after the hit.
	Count int64
	// Remaining is what is left under the limit, never negative.
	Remaining int64
	// Reset is the time left until the window renews; 0 when it never
	// does.
	Reset time.Duration
}

func result(allowed bool, count, limit int64, now, end time.Time) Result {
	r := Result{Allowed: allowed, Count: count, Remaining: limit - count}
	if r.Remaining < 0 {
		r.Remaining = 0
	}
	if !end.IsZero() {
		r.Reset = end.Sub(now)
	}
	return r
}

// Unlimited is a limit no counter reaches: Hit with it only adds.
const Unlimited = math.MaxInt64
