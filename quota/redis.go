package quota

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// useScript counts ARGV[2] (cost) on KEYS[1] unless that would pass ARGV[1]
// (limit), atomically: Redis runs one script at a time, so concurrent
// checks from every node see each other's counts. A missing counter (first
// use of the period, or Redis lost its data) is created from ARGV[4], the
// use the store knows; when ARGV[4] is -1 the script asks for it by
// returning {-1, 0}. ARGV[3] is the counter's lifetime in ms (0: forever).
// It returns {allowed, used}.
var useScript = redis.NewScript(`
local used = redis.call('GET', KEYS[1])
local limit = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
if used then
  used = tonumber(used)
else
  local seed = tonumber(ARGV[4])
  if seed < 0 then return {-1, 0} end
  used = seed
  local ttl = tonumber(ARGV[3])
  if ttl > 0 then
    redis.call('SET', KEYS[1], used, 'PX', ttl)
  else
    redis.call('SET', KEYS[1], used)
  end
end
if used + cost > limit then return {0, used} end
return {1, redis.call('INCRBY', KEYS[1], cost)}
`)

// redisKey names k's counter; the period's start is part of it, so a new
// period starts from a new (missing, hence zero) counter.
func (e *Engine) redisKey(k countKey) string {
	return e.prefix + k.owner + ":" + k.period.String() + ":" + strconv.FormatInt(k.start, 10)
}

func (e *Engine) useRedis(ctx context.Context, k countKey, limit, cost, end int64, now time.Time) (int64, bool, error) {
	var ttl int64 // counters outlive their period by an hour, for clock skew between nodes
	if end > 0 {
		ttl = max(time.Unix(end, 0).Sub(now).Milliseconds(), 0) + time.Hour.Milliseconds()
	}
	key := []string{e.redisKey(k)}
	v, err := e.runUse(ctx, key, limit, cost, ttl, -1)
	if err == nil && v[0] == -1 {
		var base int64
		if base, err = e.load(ctx, k); err == nil {
			v, err = e.runUse(ctx, key, limit, cost, ttl, base)
		}
	}
	if err != nil {
		return 0, false, err
	}
	if v[0] == 1 {
		e.addPending(k, cost)
	}
	return v[1], v[0] == 1, nil
}

func (e *Engine) runUse(ctx context.Context, key []string, limit, cost, ttl, seed int64) ([]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	v, err := useScript.Run(ctx, e.redis, key, limit, cost, ttl, seed).Int64Slice()
	if err == nil && len(v) != 2 {
		err = fmt.Errorf("script returned %d values, want 2", len(v))
	}
	if err != nil {
		return nil, fmt.Errorf("%w: redis: %w", ErrUnavailable, err)
	}
	return v, nil
}

func (e *Engine) peekRedis(ctx context.Context, k countKey) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	c, ok := e.redis.(interface {
		Get(ctx context.Context, key string) *redis.StringCmd
	})
	if !ok {
		return e.load(ctx, k)
	}
	n, err := c.Get(ctx, e.redisKey(k)).Int64()
	if err == redis.Nil {
		return e.load(ctx, k)
	}
	if err != nil {
		return 0, fmt.Errorf("%w: redis: %w", ErrUnavailable, err)
	}
	return n, nil
}
