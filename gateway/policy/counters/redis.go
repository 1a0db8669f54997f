package counters

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// hitScript is one hit, atomically: refuse when the counter would pass
// the limit, else INCRBY and (re)arm the key's expiry. Each window has its
// own key, so expiry is only cleanup; keys of never-ending windows (TTL
// 0) do not expire.
//
// KEYS[1] counter; ARGV[1] n; ARGV[2] limit; ARGV[3] TTL in ms (0: none).
// Returns {allowed (0|1), count}.
var hitScript = redis.NewScript(`
local n = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if cur + n > limit then
  return {0, cur}
end
if n == 0 then
  return {1, cur}
end
cur = redis.call('INCRBY', KEYS[1], n)
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return {1, cur}
`)

// RedisOptions tune a Redis store.
type RedisOptions struct {
	// Prefix starts every key (default "apim-gw:"); replicas that must
	// share limits use the same prefix.
	Prefix string
	// Timeout bounds one hit (default 500 ms); past it the hit fails open.
	Timeout time.Duration
	// Log receives the store's errors, at most one line per ten seconds
	// with the count of errors since the last line. The zero Logger logs
	// nothing.
	Log zerolog.Logger
	// Now is the clock (nil: time.Now). Replicas compute windows from
	// their own clocks: keep them in sync (NTP).
	Now func() time.Time
}

// Redis counts in a Redis server shared by several gateway replicas, so
// that they enforce one limit together. Window algorithm as in the package
// comment; the window number is part of the key.
//
// When Redis cannot be reached or answers an error, a hit fails open: it
// is allowed, the error is counted (Errors) and logged, and returned to the
// caller, which lets the request through. API Management does the same:
// traffic keeps flowing when its counter store is unavailable, limits are
// simply not enforced until it is back.
type Redis struct {
	client  redis.UniversalClient
	prefix  string
	timeout time.Duration
	log     zerolog.Logger
	now     func() time.Time
	local   *Memory // concurrency slots stay per instance

	failures FailureLog
}

// NewRedis connects to the Redis server named by conn: a redis:// or
// rediss:// URL, or an Azure-style connection string
// ("host:6380,password=…,ssl=True,abortConnect=False"). Connections are
// made lazily: an unreachable server shows as failed-open hits, not as an
// error here.
func NewRedis(conn string, opts RedisOptions) (*Redis, error) {
	ro, err := ParseRedis(conn)
	if err != nil {
		return nil, err
	}
	return NewRedisClient(redis.NewClient(ro), opts), nil
}

// NewRedisClient wraps an existing client.
func NewRedisClient(c redis.UniversalClient, opts RedisOptions) *Redis {
	r := &Redis{client: c, prefix: opts.Prefix, timeout: opts.Timeout, log: opts.Log, now: opts.Now}
	if r.prefix == "" {
		r.prefix = "apim-gw:"
	}
	if r.timeout <= 0 {
		r.timeout = 500 * time.Millisecond
	}
	if r.now == nil {
		r.now = time.Now
	}
	r.local = NewMemory(r.now)
	return r
}

// ParseRedis reads a redis:// URL or an Azure-style connection string.
func ParseRedis(conn string) (*redis.Options, error) {
	conn = strings.TrimSpace(conn)
	if conn == "" {
		return nil, errors.New("redis: empty connection string")
	}
	if strings.HasPrefix(conn, "redis://") || strings.HasPrefix(conn, "rediss://") || strings.HasPrefix(conn, "unix://") {
		o, err := redis.ParseURL(conn)
		if err != nil {
			// The URL may carry a password: do not echo it.
			return nil, errors.New("redis: the connection URL cannot be parsed")
		}
		return o, nil
	}
	parts := strings.Split(conn, ",")
	o := &redis.Options{Addr: strings.TrimSpace(parts[0])}
	if !strings.Contains(o.Addr, ":") {
		o.Addr += ":6379"
	}
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "password":
			o.Password = v
		case "user":
			o.Username = v
		case "ssl":
			if strings.EqualFold(v, "true") {
				o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: hostOf(o.Addr)}
			}
		case "defaultdatabase":
			n, err := strconv.Atoi(v)
			if err != nil {
				return nil, fmt.Errorf("redis: defaultDatabase %q is not a number", v)
			}
			o.DB = n
		}
	}
	return o, nil
}

func hostOf(addr string) string {
	if i := strings.LastIndexByte(addr, ':'); i >= 0 {
		return addr[:i]
	}
	return addr
}

// Hit adds n to key's counter in the current window of w unless the sum
// would exceed limit. On a Redis failure it fails open (see Redis).
func (r *Redis) Hit(key string, n int64, w Window, limit int64) (Result, error) {
	now := r.now()
	id, end := w.At(now)
	var ttl int64
	if !end.IsZero() {
		// Keep the key a little past its window: clocks of replicas
		// differ slightly.
		ttl = end.Sub(now).Milliseconds() + 5000
	}
	k := r.prefix + key
	if !end.IsZero() {
		k += ":" + strconv.FormatInt(id, 10)
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	vals, err := hitScript.Run(ctx, r.client, []string{k}, n, limit, ttl).Int64Slice()
	cancel()
	if err == nil && len(vals) != 2 {
		err = fmt.Errorf("unexpected reply %v", vals)
	}
	if err != nil {
		r.failed(err)
		return result(true, 0, limit, now, end), fmt.Errorf("redis counter: %w", err)
	}
	return result(vals[0] == 1, vals[1], limit, now, end), nil
}

// failed counts an error and logs it, at most once per ten seconds.
func (r *Redis) failed(err error) {
	r.failures.Fail(r.log, err, "rate limit store unavailable: limits not enforced (failing open)")
}

// Errors returns how many hits failed open since the store was made.
func (r *Redis) Errors() uint64 { return r.failures.Count() }

// Ping checks the connection.
func (r *Redis) Ping(ctx context.Context) error { return r.client.Ping(ctx).Err() }

// Close closes the connections.
func (r *Redis) Close() error { return r.client.Close() }

// Acquire takes a concurrency slot in this instance (see the package
// comment).
func (r *Redis) Acquire(key string, max int64) bool { return r.local.Acquire(key, max) }

// Release returns a slot taken by Acquire.
func (r *Redis) Release(key string) { r.local.Release(key) }
