package proxy

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/limiter"
)

// revocation is one kind of change that must be visible at once.
type revocation struct {
	name string
	// setup creates what the round needs (ids made unique by n) and returns
	// the token and the change to make.
	setup func(t *testing.T, s *stack, n int) (token string, change func() error)
	// before and after check a validation's outcome before and after the change.
	before, after func(e *entry, err error) error
}

func wantValid(e *entry, err error) error {
	if err != nil {
		return fmt.Errorf("got %v, want a valid key", err)
	}
	return nil
}

func wantErr(want error) func(*entry, error) error {
	return func(_ *entry, err error) error {
		if !errors.Is(err, want) {
			return fmt.Errorf("got %v, want %v", err, want)
		}
		return nil
	}
}

func wantMetadata(meta string) func(*entry, error) error {
	return func(e *entry, err error) error {
		if err != nil {
			return fmt.Errorf("got %v, want a valid key", err)
		}
		if got := string(e.hdr[hdrMetadata]); got != meta {
			return fmt.Errorf("metadata %s, want %s", got, meta)
		}
		return nil
	}
}

var revocations = []revocation{
	{
		name: "archive key",
		setup: func(t *testing.T, s *stack, n int) (string, func() error) {
			k, tok := s.key(keys.CreateKeyInput{})
			return tok, func() error { _, err := s.svc.ArchiveKey(context.Background(), k.ID); return err }
		},
		before: wantValid, after: wantErr(keys.ErrInvalidKey),
	},
	{
		name: "delete key",
		setup: func(t *testing.T, s *stack, n int) (string, func() error) {
			k, tok := s.key(keys.CreateKeyInput{})
			return tok, func() error { return s.svc.DeleteKey(context.Background(), k.ID) }
		},
		before: wantValid, after: wantErr(keys.ErrInvalidKey),
	},
	{
		name: "block user",
		setup: func(t *testing.T, s *stack, n int) (string, func() error) {
			u := fmt.Sprintf("user%d", n)
			s.user(u, nil)
			_, tok := s.key(keys.CreateKeyInput{UserID: u})
			return tok, func() error { _, err := s.svc.SetUserEnabled(context.Background(), u, false); return err }
		},
		before: wantValid, after: wantErr(keys.ErrInvalidKey),
	},
	{
		name: "unblock user",
		setup: func(t *testing.T, s *stack, n int) (string, func() error) {
			u := fmt.Sprintf("user%d", n)
			s.user(u, nil)
			_, tok := s.key(keys.CreateKeyInput{UserID: u})
			if _, err := s.svc.SetUserEnabled(context.Background(), u, false); err != nil {
				t.Fatal(err)
			}
			return tok, func() error { _, err := s.svc.SetUserEnabled(context.Background(), u, true); return err }
		},
		before: wantErr(keys.ErrInvalidKey), after: wantValid,
	},
	{
		name: "delete user",
		setup: func(t *testing.T, s *stack, n int) (string, func() error) {
			u := fmt.Sprintf("user%d", n)
			s.user(u, nil)
			_, tok := s.key(keys.CreateKeyInput{UserID: u})
			return tok, func() error { return s.svc.DeleteUser(context.Background(), u) }
		},
		before: wantValid, after: wantErr(keys.ErrInvalidKey),
	},
	{
		name: "delete org",
		setup: func(t *testing.T, s *stack, n int) (string, func() error) {
			o := fmt.Sprintf("org%d", n)
			s.org(o, "Org", nil)
			_, tok := s.key(keys.CreateKeyInput{OrgID: o})
			return tok, func() error { return s.svc.DeleteOrg(context.Background(), o) }
		},
		before: wantValid, after: wantErr(keys.ErrInvalidKey),
	},
	{
		name: "creator leaves org",
		setup: func(t *testing.T, s *stack, n int) (string, func() error) {
			o, u := fmt.Sprintf("org%d", n), fmt.Sprintf("user%d", n)
			s.org(o, "Org", nil)
			s.user(u, nil)
			s.member(o, u, "Admin")
			_, tok := s.key(keys.CreateKeyInput{OrgID: o, UserID: u})
			return tok, func() error { return s.svc.RemoveMember(context.Background(), o, u) }
		},
		before: wantValid, after: wantErr(keys.ErrInvalidKey),
	},
	{
		name: "metadata update",
		setup: func(t *testing.T, s *stack, n int) (string, func() error) {
			k, tok := s.key(keys.CreateKeyInput{Metadata: []byte(`{"v":1}`)})
			return tok, func() error {
				_, err := s.svc.UpdateKey(context.Background(), k.ID, keys.KeyPatch{Metadata: []byte(`{"v": "é"}`)})
				return err
			}
		},
		before: wantMetadata(`{"v":1}`), after: wantMetadata(`{"v":"\u00e9"}`),
	},
	{
		name: "expiry set",
		setup: func(t *testing.T, s *stack, n int) (string, func() error) {
			k, tok := s.key(keys.CreateKeyInput{})
			return tok, func() error {
				at := s.clock.Now().Add(time.Second).Unix()
				_, err := s.svc.UpdateKey(context.Background(), k.ID, keys.KeyPatch{ExpiresAt: &at})
				s.clock.Advance(time.Hour) // alone, this would not expire a cached key that never expired
				return err
			}
		},
		before: wantValid, after: wantErr(keys.ErrExpiredKey),
	},
	{
		name: "expiry removed",
		setup: func(t *testing.T, s *stack, n int) (string, func() error) {
			at := s.clock.Now().Add(time.Minute).Unix()
			k, tok := s.key(keys.CreateKeyInput{ExpiresAt: &at})
			s.clock.Advance(time.Hour)
			return tok, func() error {
				_, err := s.svc.UpdateKey(context.Background(), k.ID, keys.KeyPatch{NeverExpire: true})
				return err
			}
		},
		before: wantErr(keys.ErrExpiredKey), after: wantValid,
	},
	{
		name: "import after negative (keygate token)",
		setup: func(t *testing.T, s *stack, n int) (string, func() error) {
			tok, err := s.tokens.New(keys.TypeGeneric)
			if err != nil {
				t.Fatal(err)
			}
			return tok, func() error {
				_, err := s.svc.ImportKeys(context.Background(), []keys.CreateKeyInput{{Token: tok}})
				return err
			}
		},
		before: wantErr(keys.ErrInvalidKey), after: wantValid,
	},
	{
		name: "import after negative (foreign token)",
		setup: func(t *testing.T, s *stack, n int) (string, func() error) {
			if !s.svc.HasImported() {
				// Foreign tokens are looked up only once imported keys exist.
				if _, err := s.svc.ImportKeys(context.Background(), []keys.CreateKeyInput{{Token: "legacy_first_token"}}); err != nil {
					t.Fatal(err)
				}
			}
			tok := fmt.Sprintf("legacy_%d_%d", n, time.Now().UnixNano())
			return tok, func() error {
				_, err := s.svc.ImportKeys(context.Background(), []keys.CreateKeyInput{{Token: tok}})
				return err
			}
		},
		before: wantErr(keys.ErrInvalidKey), after: wantValid,
	},
}

// TestRevocationIsImmediate checks SPEC §1's "immediate on this node": 32
// goroutines validate one token in a loop while a change is made; every
// validation that starts after the change returned must see it. It runs
// with a long TTL (cached entries must be dropped) and with a 1ms TTL on a
// clock that keeps moving (loads race the change and may land in the cache
// after it).
func TestRevocationIsImmediate(t *testing.T) {
	rounds := 4
	if testing.Short() {
		rounds = 2
	}
	for _, rv := range revocations {
		for _, churn := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/churn=%v", rv.name, churn), func(t *testing.T) {
				t.Parallel()
				ttl := time.Hour
				if churn {
					ttl = time.Millisecond
				}
				s := newStack(t, stackConfig{
					cache: CacheOptions{TTL: ttl, NegativeTTL: ttl},
					keys:  keys.Options{InvalidateOnCreatorLeave: true},
				})
				stop := make(chan struct{})
				defer close(stop)
				if churn {
					go func() {
						for {
							select {
							case <-stop:
								return
							default:
								s.clock.Advance(100 * time.Microsecond)
								time.Sleep(20 * time.Microsecond)
							}
						}
					}()
				}
				for n := 0; n < rounds; n++ {
					hammer(t, s, rv, n)
					if t.Failed() {
						return
					}
				}
			})
		}
	}
}

func hammer(t *testing.T, s *stack, rv revocation, n int) {
	t.Helper()
	token, change := rv.setup(t, s, n)
	tok := []byte(token)
	ctx := context.Background()
	if e, _, err := s.gate.check(ctx, tok, 1); rv.before(e, err) != nil {
		err = rv.before(e, err)
		t.Fatalf("before the change: %v", err)
	}
	const workers, minBefore, minAfter = 32, 200, 600
	var (
		changed       atomic.Bool
		before, after atomic.Int64
		failures      atomic.Int64
		firstFailure  atomic.Value
		wg            sync.WaitGroup
		stop          = make(chan struct{})
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				started := changed.Load()
				e, _, err := s.gate.check(ctx, tok, 1)
				if !started {
					before.Add(1)
					continue
				}
				if ferr := rv.after(e, err); ferr != nil {
					if failures.Add(1) == 1 {
						firstFailure.Store(ferr)
					}
				}
				after.Add(1)
			}
		}()
	}
	for before.Load() < minBefore {
		time.Sleep(100 * time.Microsecond)
	}
	if err := change(); err != nil {
		close(stop)
		wg.Wait()
		t.Fatalf("change: %v", err)
	}
	changed.Store(true)
	for after.Load() < minAfter {
		time.Sleep(100 * time.Microsecond)
	}
	close(stop)
	wg.Wait()
	if f := failures.Load(); f > 0 {
		t.Errorf("round %d: %d of %d validations started after the change missed it; first: %v", n, f, after.Load(), firstFailure.Load())
	}
}

// countingSource counts lookups through a real service.
type countingSource struct {
	svc *keys.Service
	n   atomic.Int64
	err error // returned instead of looking up, when set
}

func (c *countingSource) Lookup(ctx context.Context, h [32]byte) (*keys.Identity, error) {
	c.n.Add(1)
	if c.err != nil {
		return nil, c.err
	}
	return c.svc.Lookup(ctx, h)
}

func TestCacheNegativeEntries(t *testing.T) {
	s := newStack(t, stackConfig{cache: CacheOptions{TTL: time.Minute, NegativeTTL: 5 * time.Second}})
	src := &countingSource{svc: s.svc}
	tok, _ := s.tokens.New(keys.TypeGeneric)
	h := keys.Hash(tok)
	for i := 0; i < 100; i++ {
		e, _, err := s.cache.lookup(context.Background(), src, &h, s.clock.Now())
		if err != nil || e.id != nil {
			t.Fatalf("lookup: %v, %+v", err, e)
		}
		s.cache.rc.Wait()
	}
	if got := src.n.Load(); got != 1 {
		t.Errorf("store lookups = %d, want 1 (negatively cached)", got)
	}
	s.clock.Advance(6 * time.Second)
	if _, _, err := s.cache.lookup(context.Background(), src, &h, s.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if got := src.n.Load(); got != 2 {
		t.Errorf("store lookups = %d after the negative TTL, want 2", got)
	}
}

func TestCacheStoreErrorIsNotCached(t *testing.T) {
	s := newStack(t, stackConfig{})
	_, tok := s.key(keys.CreateKeyInput{})
	h := keys.Hash(tok)
	src := &countingSource{svc: s.svc, err: errors.New("disk on fire")}
	if _, _, err := s.cache.lookup(context.Background(), src, &h, s.clock.Now()); err == nil {
		t.Fatal("want the store error")
	}
	s.cache.rc.Wait()
	src.err = nil
	e, from, err := s.cache.lookup(context.Background(), src, &h, s.clock.Now())
	if hit := from == fromCache; err != nil || hit || e.id == nil {
		t.Fatalf("after the store recovered: %+v hit=%v err=%v; want a fresh positive lookup", e, hit, err)
	}
	if src.n.Load() != 2 {
		t.Errorf("lookups = %d, want 2", src.n.Load())
	}

	// Through the gate, the error says the store is unavailable.
	s.store.Close()
	unknown, _ := s.tokens.New(keys.TypeGeneric)
	_, _, err = s.gate.Check(context.Background(), unknown)
	if !errors.Is(err, ErrStoreUnavailable) {
		t.Errorf("gate error = %v, want ErrStoreUnavailable", err)
	}
}

func TestCacheIgnoresHashCollisions(t *testing.T) {
	s := newStack(t, stackConfig{})
	_, tok := s.key(keys.CreateKeyInput{})
	h := keys.Hash(tok)
	src := &countingSource{svc: s.svc}
	if e, _, err := s.cache.lookup(context.Background(), src, &h, s.clock.Now()); err != nil || e.id == nil {
		t.Fatalf("lookup: %v", err)
	}
	s.cache.rc.Wait()
	other := h
	other[31] ^= 1 // same cache key (first 8 bytes), another token
	e, from, err := s.cache.lookup(context.Background(), src, &other, s.clock.Now())
	if hit := from == fromCache; err != nil || hit || e.id != nil {
		t.Fatalf("colliding hash: entry %+v hit=%v err=%v; want a negative lookup", e, hit, err)
	}
}

func TestTombstonesArePruned(t *testing.T) {
	s := newStack(t, stackConfig{cache: CacheOptions{TTL: time.Minute, NegativeTTL: time.Second}})
	for i := 0; i < 100; i++ {
		s.cache.Invalidate(keys.Change{KeyIDs: []string{fmt.Sprint(i)}})
	}
	s.clock.Advance(3 * time.Minute) // twice the TTL, and then some
	s.cache.Invalidate(keys.Change{UserID: "u"})
	s.cache.mu.RLock()
	n := len(s.cache.tombs)
	s.cache.mu.RUnlock()
	if n != 1 {
		t.Errorf("%d tombstones after the TTL, want 1", n)
	}
}

func TestGateRules(t *testing.T) {
	s := newStack(t, stackConfig{})
	ctx := context.Background()
	_, generic := s.key(keys.CreateKeyInput{})

	// A type disabled in config fails validation (and passes when enabled).
	disabled, err := keys.NewService(ctx, s.store, s.tokens, keys.Options{Disabled: [4]bool{keys.TypeGeneric: true}, Now: s.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCache(CacheOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, _, err := NewGate(disabled, c, GateOptions{}).Check(ctx, generic); !errors.Is(err, keys.ErrInvalidKey) {
		t.Errorf("disabled type: %v, want ErrInvalidKey", err)
	}
	if _, _, err := s.gate.Check(ctx, generic); err != nil {
		t.Errorf("enabled type: %v", err)
	}

	before := storeLookups(t, s)
	for _, tok := range []string{"", "kgp_short", "kgg_" + generic[4:len(generic)-1] + "?", "has space", "legacy_unknown_token"} {
		if _, _, err := s.gate.Check(ctx, tok); !errors.Is(err, keys.ErrInvalidKey) {
			t.Errorf("%q: %v, want ErrInvalidKey", tok, err)
		}
	}
	if got := storeLookups(t, s) - before; got != 0 {
		t.Errorf("%v store lookups for malformed and foreign tokens, want none", got)
	}
	if _, err := s.svc.ImportKeys(ctx, []keys.CreateKeyInput{{Token: "legacy_known_token"}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.gate.Check(ctx, "legacy_known_token"); err != nil {
		t.Errorf("imported foreign token: %v", err)
	}
	if _, _, err := s.gate.Check(ctx, "legacy_unknown_token"); !errors.Is(err, keys.ErrInvalidKey) {
		t.Errorf("unknown foreign token: %v", err)
	}
	if got := storeLookups(t, s) - before; got != 2 {
		t.Errorf("%v store lookups once imported keys exist, want 2", got)
	}
}

func storeLookups(t *testing.T, s *stack) float64 {
	t.Helper()
	return metricValue(t, s, "keygate_store_lookups_total")
}

func TestGateRateLimitAndUsage(t *testing.T) {
	s := newStack(t, stackConfig{})
	s.org("acme", "Acme", &keys.RateLimit{Limit: 2, Window: time.Minute})
	_, tok1 := s.key(keys.CreateKeyInput{OrgID: "acme"})
	_, tok2 := s.key(keys.CreateKeyInput{OrgID: "acme"})
	ctx := context.Background()
	for i, tt := range []struct {
		tok     string
		allowed bool
	}{{tok1, true}, {tok2, true}, {tok1, false}, {tok2, false}} {
		id, res, err := s.gate.Check(ctx, tt.tok)
		if tt.allowed && (err != nil || id == nil || !res.Allowed || res.Limit != 2) {
			t.Fatalf("%d: %v %+v, want allowed", i, err, res)
		}
		if !tt.allowed && (!errors.Is(err, limiter.ErrLimited) || res.RetryAfter <= 0) {
			t.Fatalf("%d: %v %+v, want ErrLimited with RetryAfter", i, err, res)
		}
	}
	if got := metricValue(t, s, `keygate_requests_total{result="rate_limited"}`); got != 2 {
		t.Errorf("rate_limited = %v, want 2", got)
	}
}

// TestGateCheckDoesNotAllocate pins the cache-hit path at zero allocations.
func TestGateCheckDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	s := newStack(t, stackConfig{})
	s.user("alice", &keys.RateLimit{Limit: 1 << 40, Window: time.Minute})
	_, tok := s.key(keys.CreateKeyInput{UserID: "alice"})
	b := []byte(tok)
	ctx := context.Background()
	warm(t, s, b)
	if n := testing.AllocsPerRun(1000, func() { s.gate.check(ctx, b, 1) }); n != 0 {
		t.Errorf("%v allocations per check, want 0", n)
	}
	tokens := s.tokens
	if n := testing.AllocsPerRun(1000, func() { tokens.Check(tok) }); n != 0 {
		t.Errorf("%v allocations per Tokens.Check, want 0", n)
	}
}

// warm validates tok until it is served from the cache.
func warm(t testing.TB, s *stack, tok []byte) {
	t.Helper()
	h := sha256.Sum256(tok)
	for i := 0; ; i++ {
		if _, _, err := s.gate.check(context.Background(), tok, 1); err != nil {
			t.Fatal(err)
		}
		s.cache.rc.Wait()
		if _, from, _ := s.cache.lookup(context.Background(), s.svc, &h, s.clock.Now()); from == fromCache {
			return
		}
		if i == 100 {
			t.Fatal("the cache does not keep the key")
		}
	}
}

// TestGateLimiterErrors: when the limiter backend fails, its on_error policy
// decides and the failure is counted.
func TestGateLimiterErrors(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: freePort(t), MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { client.Close() })
	for _, tt := range []struct {
		onError limiter.OnError
		allowed bool
	}{{limiter.OnErrorAllow, true}, {limiter.OnErrorDeny, false}} {
		t.Run(tt.onError.String(), func(t *testing.T) {
			s := newStack(t, stackConfig{})
			s.user("alice", &keys.RateLimit{Limit: 5, Window: time.Minute})
			_, tok := s.key(keys.CreateKeyInput{UserID: "alice"})
			g := NewGate(s.svc, s.cache, GateOptions{
				Limiter: limiter.NewRedis(client, limiter.RedisOptions{OnError: tt.onError}),
				Metrics: s.m,
				Now:     s.clock.Now,
			})
			_, res, err := g.Check(context.Background(), tok)
			if tt.allowed && (err != nil || !res.Allowed) {
				t.Errorf("on_error allow: %v %+v", err, res)
			}
			if !tt.allowed && (!errors.Is(err, limiter.ErrLimited) || res.RetryAfter <= 0) {
				t.Errorf("on_error deny: %v %+v", err, res)
			}
			if got := metricValue(t, s, "keygate_limiter_errors_total"); got != 1 {
				t.Errorf("limiter errors = %v, want 1", got)
			}
		})
	}
}
