package configsync

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Backoff computes capped, jittered exponential delays between retries.
type Backoff struct {
	// Base is the delay scale of the first retry (default 1s).
	Base time.Duration
	// Max caps the exponential delay (default 5m).
	Max time.Duration
	// MaxRetryAfter caps how long a server's Retry-After may hold the agent
	// back (default 15m), so a bad header cannot park it for days.
	MaxRetryAfter time.Duration
	// Rand returns a value in [0, 1); nil uses math/rand/v2.
	Rand func() float64
}

func (b Backoff) withDefaults() Backoff {
	if b.Base <= 0 {
		b.Base = time.Second
	}
	if b.Max <= 0 {
		b.Max = 5 * time.Minute
	}
	if b.Max < b.Base {
		b.Max = b.Base
	}
	if b.MaxRetryAfter <= 0 {
		b.MaxRetryAfter = 15 * time.Minute
	}
	if b.Rand == nil {
		b.Rand = rand.Float64
	}
	return b
}

// Delay returns the wait before retry number attempt (0 for the first
// retry). The exponential step d = min(Max, Base*2^attempt) is jittered to
// [d/2, d). A positive retryAfter from the server is honoured: the delay is
// at least retryAfter (capped at MaxRetryAfter).
func (b Backoff) Delay(attempt int, retryAfter time.Duration) time.Duration {
	b = b.withDefaults()
	if attempt < 0 {
		attempt = 0
	}
	d := b.Max
	if attempt < 62 {
		if step := b.Base << uint(attempt); step > 0 && step < b.Max && step>>uint(attempt) == b.Base {
			d = step
		}
	}
	half := d / 2
	delay := half + time.Duration(b.Rand()*float64(d-half))
	if retryAfter > 0 {
		retryAfter = min(retryAfter, b.MaxRetryAfter)
		delay = max(delay, retryAfter)
	}
	return delay
}

// ParseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date
// (relative to now). It returns 0 when the header is absent, malformed or in
// the past.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(365*24*time.Hour/time.Second) {
			secs = int64(365 * 24 * time.Hour / time.Second)
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
