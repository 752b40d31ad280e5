package limiter

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const redisAddr = "127.0.0.1:6379"

// testRedis returns a client for the local Redis and a key prefix unique to
// this test, whose keys are deleted afterwards. Without Redis the test is
// skipped, or fails when CI=true.
func testRedis(t testing.TB) (*redis.Client, string) {
	t.Helper()
	client := redis.NewClient(&redis.Options{Addr: redisAddr, ContextTimeoutEnabled: true})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		client.Close()
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis not reachable at %s: %v", redisAddr, err)
		}
		t.Skipf("redis not reachable at %s: %v", redisAddr, err)
	}
	prefix := "keygate:test:" + rand.Text() + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		iter := client.Scan(ctx, 0, prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			client.Del(ctx, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("clean up %s*: %v", prefix, err)
		}
		client.Close()
	})
	return client, prefix
}

func TestRedisChecks(t *testing.T) {
	runCheckCases(t, func(t *testing.T) checker {
		client, prefix := testRedis(t)
		r := NewRedis(client, RedisOptions{KeyPrefix: prefix, Timeout: 5 * time.Second})
		return checker{
			allow: func(owner string, l Limit) (Result, error) { return r.Allow(context.Background(), owner, l) },
			tol:   30 * time.Second,
		}
	})
}

func TestRedisKeyExpiresWhenFull(t *testing.T) {
	client, prefix := testRedis(t)
	r := NewRedis(client, RedisOptions{KeyPrefix: prefix, Timeout: 5 * time.Second})
	ctx := context.Background()
	if _, err := r.Allow(ctx, "o:acme", perHour(3)); err != nil {
		t.Fatal(err)
	}
	ttl, err := client.PTTL(ctx, prefix+"o:acme").Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 19*time.Minute || ttl > 20*time.Minute {
		t.Fatalf("TTL %v, want just under 20m", ttl)
	}
	if _, err := r.Allow(ctx, "o:none", Limit{}); err != nil {
		t.Fatal(err)
	}
	if n, err := client.Exists(ctx, prefix+"o:none").Result(); err != nil || n != 0 {
		t.Fatalf("unlimited owner has a key: %d, %v", n, err)
	}
}

func TestRedisExactUnderConcurrency(t *testing.T) {
	client, prefix := testRedis(t)
	var failures atomic.Int64
	r := NewRedis(client, RedisOptions{
		KeyPrefix: prefix,
		Timeout:   10 * time.Second,
		OnError:   OnErrorDeny,
		Errors:    func() { failures.Add(1) },
	})
	var ok atomic.Int64
	var wg sync.WaitGroup
	for range 1000 {
		wg.Go(func() {
			if res, _ := r.Allow(context.Background(), "hot", perHour(100)); res.Allowed {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	if n := failures.Load(); n != 0 {
		t.Fatalf("%d checks failed", n)
	}
	if n := ok.Load(); n != 100 {
		t.Fatalf("allowed %d, want 100", n)
	}
}

// lockedBuffer is an io.Writer safe for the logger.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestRedisDown(t *testing.T) {
	tests := []struct {
		onError OnError
		want    Result
	}{
		// No limit while Redis is down: the real state is unknown, and
		// Limit 0 tells the proxy to send no RateLimit-* headers.
		{OnErrorAllow, Result{Allowed: true}},
		{OnErrorDeny, Result{RetryAfter: time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.onError.String(), func(t *testing.T) {
			// Nothing listens on port 1.
			client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, ContextTimeoutEnabled: true})
			defer client.Close()
			var logs lockedBuffer
			var failures atomic.Int64
			now := t0
			r := NewRedis(client, RedisOptions{
				OnError: tt.onError,
				Logger:  slog.New(slog.NewTextHandler(&logs, nil)),
				Errors:  func() { failures.Add(1) },
				Now:     func() time.Time { return now },
			})
			ctx := context.Background()

			got, err := r.Allow(ctx, "u:alice", perHour(4))
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("err %v, want ErrUnavailable", err)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			if failures.Load() != 1 {
				t.Fatalf("Errors called %d times, want 1", failures.Load())
			}
			if l := logs.String(); !strings.Contains(l, "owner=u:alice") || !strings.Contains(l, "on_error="+tt.onError.String()) {
				t.Fatalf("log %q", l)
			}

			// A second failure within the second is counted but not logged...
			r.Allow(ctx, "u:bob", perHour(4))
			if failures.Load() != 2 || strings.Contains(logs.String(), "u:bob") {
				t.Fatalf("second failure: Errors called %d times, log %q", failures.Load(), logs.String())
			}
			// ...and reported with the next line.
			now = now.Add(time.Second)
			r.Allow(ctx, "u:carol", perHour(4))
			if l := logs.String(); !strings.Contains(l, "owner=u:carol") || !strings.Contains(l, "suppressed=1") {
				t.Fatalf("third failure: log %q", l)
			}

			// Unlimited needs no round trip, so it cannot fail.
			if got, err := r.Allow(ctx, "u:dave", Limit{}); err != nil || !got.Allowed {
				t.Fatalf("unlimited: %+v, %v", got, err)
			}
		})
	}
}

func TestRedisTimeout(t *testing.T) {
	// A listener that accepts and never answers stands in for a hung Redis.
	// Without ContextTimeoutEnabled the client would wait its ReadTimeout (5s).
	client := redis.NewClient(&redis.Options{Addr: hungServer(t), MaxRetries: -1, ContextTimeoutEnabled: true})
	defer client.Close()
	r := NewRedis(client, RedisOptions{Timeout: 20 * time.Millisecond, OnError: OnErrorDeny})
	got, err := r.Allow(context.Background(), "k:1", perHour(4))
	var ne net.Error
	if !errors.Is(err, ErrUnavailable) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err %v, want ErrUnavailable and a timeout", err)
	}
	if got.Allowed {
		t.Fatalf("got %+v", got)
	}
}

func BenchmarkRedisAllow(b *testing.B) {
	client, prefix := testRedis(b)
	r := NewRedis(client, RedisOptions{KeyPrefix: prefix, Timeout: time.Second})
	owners := make([]string, 1000)
	for i := range owners {
		owners[i] = "u:" + hex.EncodeToString([]byte{byte(i >> 8), byte(i)})
	}
	ctx := context.Background()
	l := Limit{Limit: 1000, Window: time.Second}
	var next atomic.Int64
	var failed atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1)) * 7919
		for pb.Next() {
			if _, err := r.Allow(ctx, owners[i%len(owners)], l); err != nil {
				failed.Add(1)
			}
			i++
		}
	})
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d checks failed", n)
	}
}

// hungServer returns the address of a TCP listener that accepts connections
// and never writes.
func hungServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}
