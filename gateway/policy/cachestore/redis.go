package cachestore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/policy/counters"
)

// RedisOptions tune a Redis store.
type RedisOptions struct {
	// Prefix starts every key (default "apim-gw:cache:"); replicas that
	// share a cache use the same prefix.
	Prefix string
	// Timeout bounds one operation (default 500 ms); past it a lookup is a
	// miss and a store is dropped.
	Timeout time.Duration
	// Log receives the store's errors, at most one line per ten seconds
	// with the count of errors since the last line. The zero Logger logs
	// nothing.
	Log zerolog.Logger
}

// Redis is a cache in a Redis server shared by several gateway replicas
// (API Management's external cache). Entries expire by Redis TTL.
//
// When Redis cannot be reached or answers an error, a lookup is a miss and
// a store or delete is dropped: the error is counted (Errors), logged at a
// bounded rate and returned, and the request goes on without the cache.
type Redis struct {
	client  redis.UniversalClient
	prefix  string
	timeout time.Duration
	log     zerolog.Logger

	failures counters.FailureLog
}

// NewRedis connects to the Redis server named by conn, a redis:// or
// rediss:// URL or an Azure-style connection string, as counters.ParseRedis
// reads them. Connections are made lazily.
func NewRedis(conn string, opts RedisOptions) (*Redis, error) {
	ro, err := counters.ParseRedis(conn)
	if err != nil {
		return nil, err
	}
	// Honour the per-operation deadline on the socket too.
	ro.ContextTimeoutEnabled = true
	return NewRedisClient(redis.NewClient(ro), opts), nil
}

// NewRedisClient wraps an existing client.
func NewRedisClient(c redis.UniversalClient, opts RedisOptions) *Redis {
	r := &Redis{client: c, prefix: opts.Prefix, timeout: opts.Timeout, log: opts.Log}
	if r.prefix == "" {
		r.prefix = "apim-gw:cache:"
	}
	if r.timeout <= 0 {
		r.timeout = 500 * time.Millisecond
	}
	return r
}

// External reports that the store is API Management's external cache.
func (r *Redis) External() bool { return true }

// Get returns key's value; false when absent, expired or on an error.
func (r *Redis) Get(key string) ([]byte, bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	b, err := r.client.Get(ctx, r.prefix+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		r.failed(err)
		return nil, false, fmt.Errorf("redis cache: %w", err)
	}
	return b, true, nil
}

// Set stores value under key for ttl (0 or less: no expiry; Redis counts
// in milliseconds, so a shorter positive ttl is one millisecond).
func (r *Redis) Set(key string, value []byte, ttl time.Duration) error {
	if ttl > 0 && ttl < time.Millisecond {
		ttl = time.Millisecond
	}
	if ttl < 0 {
		ttl = 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	if err := r.client.Set(ctx, r.prefix+key, value, ttl).Err(); err != nil {
		r.failed(err)
		return fmt.Errorf("redis cache: %w", err)
	}
	return nil
}

// Delete removes key.
func (r *Redis) Delete(key string) error {
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	if err := r.client.Del(ctx, r.prefix+key).Err(); err != nil {
		r.failed(err)
		return fmt.Errorf("redis cache: %w", err)
	}
	return nil
}

// failed counts an error and logs it, at most once per ten seconds.
func (r *Redis) failed(err error) {
	r.failures.Fail(r.log, err, "cache store unavailable: lookups miss and stores are dropped")
}

// Errors returns how many operations failed since the store was made.
func (r *Redis) Errors() uint64 { return r.failures.Count() }

// Ping checks the connection.
func (r *Redis) Ping(ctx context.Context) error { return r.client.Ping(ctx).Err() }

// Close closes the connections.
func (r *Redis) Close() error { return r.client.Close() }
