package proxy

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/keygate/keygate/keys"
)

// WarmSource lists the identities worth caching before traffic arrives;
// *keys.Service is one. Each identity must be what Source.Lookup returns
// for its Key.Hash.
type WarmSource interface {
	RecentIdentities(ctx context.Context, n int) ([]*keys.Identity, error)
}

// warmWaitEvery is how many entries Warm hands to ristretto between
// waits for its buffer to drain: its Set drops entries when the buffer is
// full, which a few hundred thousand entries in a row would do.
const warmWaitEvery = 4096

// Warm fills the cache with up to n identities from src (at most the
// cache's capacity), as if each had just been looked up, so that a node
// that starts, or restarts, under traffic does not send every key to the
// store at once. It returns how many entries it stored. n ≤ 0 does nothing.
//
// Entries are the same as a lookup's (TTL with jitter, background refresh,
// stale-while-revalidate) and carry the generation read before src is
// asked: an Invalidate or Reset that runs while Warm does wins, and a key
// it names is looked up again on its next use. Hashes already cached (a
// request loaded them meanwhile) are left alone. Safe to call while the
// cache serves; a cancelled ctx stops the read, and the filling within
// warmWaitEvery entries.
func (c *Cache) Warm(ctx context.Context, src WarmSource, n int) (int, error) {
	return c.warm(ctx, src, n, nil)
}

// Warm is Cache.Warm for the gate's cache, with entries made for g (their
// usage and limiter hashes computed, as g's lookups make them).
func (g *Gate) Warm(ctx context.Context, src WarmSource, n int) (int, error) {
	return g.cache.warm(ctx, src, n, g.src.hs)
}

func (c *Cache) warm(ctx context.Context, src WarmSource, n int, hs *hashers) (int, error) {
	n = min(n, int(c.rc.MaxCost()))
	if n <= 0 {
		return 0, nil
	}
	// As in loadNow: the time and generation are read before the store, so
	// the TTL counts from before the read and any change committed after it
	// began makes the entries stale.
	start := c.now().UnixNano()
	g := c.gen.Load()
	ids, err := src.RecentIdentities(ctx, n)
	if err != nil {
		return 0, fmt.Errorf("warm key cache: %w", err)
	}
	stored := 0
	for i, id := range ids {
		if i%warmWaitEvery == 0 && i > 0 {
			if err := ctx.Err(); err != nil {
				return stored, fmt.Errorf("warm key cache: %w", err)
			}
			c.rc.Wait()
		}
		if c.warmOne(id, g, start, hs) {
			stored++
		}
	}
	// Visible once Warm returns, like a completed lookup.
	c.rc.Wait()
	return stored, nil
}

// warmOne caches id as loadNow would have at start with generation g. It
// reports whether the entry was stored.
func (c *Cache) warmOne(id *keys.Identity, g uint64, start int64, hs *hashers) bool {
	hash := id.Key.Hash
	k := binary.LittleEndian.Uint64(hash[:8])
	if e, ok := c.rc.Get(k); ok && e.hash == hash {
		return false // loaded by a request since Warm began: as new as this
	}
	e, keep := c.timedEntry(&hash, id, g, start, hs)
	if c.store(e, keep) {
		return true
	}
	// The set buffer was full: let it drain and try once more.
	c.rc.Wait()
	return c.store(e, keep)
}
