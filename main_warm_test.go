package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/config"
	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/proxy"
)

// TestEndToEndCacheWarm (issue 11): a restarted node loads the keys in use
// before it says it is ready, so their first requests are cache hits, not
// a storm of store lookups; an archived key is not loaded and still fails.
func TestEndToEndCacheWarm(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "keygate.db")
	up := echoUpstream(t)
	first := startApp(t, dbPath, up.URL, "")
	c := newClient(t, first)
	c.must(200, "PUT", "/v1/users/alice", map[string]any{"email": "alice@example.com"})
	var used []string
	for i := range 3 {
		body := map[string]any{}
		if i == 0 {
			body["user_id"] = "alice"
		}
		used = append(used, c.must(201, "POST", "/v1/keys", body)["token"].(string))
	}
	archived := c.must(201, "POST", "/v1/keys", map[string]any{})
	for _, tok := range append(used, archived["token"].(string)) {
		if code, _ := c.get(tok, "/x"); code != 200 {
			t.Fatalf("request before restart = %d", code)
		}
	}
	c.must(200, "POST", "/v1/keys/"+archived["id"].(string)+"/archive", nil)
	if err := first.Close(); err != nil { // flushes usage: last_used_at is set
		t.Fatal(err)
	}

	logs := &lockedBuffer{}
	second := startAppLogging(t, dbPath, up.URL, logs)
	c = newClient(t, second)
	code, _, body := fetch(t, c.admin+"/readyz", "")
	if code != 200 || !strings.Contains(body, `"cache_warm":"ok"`) {
		t.Fatalf("/readyz after warm-up = %d %s, want 200 with cache_warm ok", code, body)
	}
	if !strings.Contains(logs.String(), "cache warmed") || !strings.Contains(logs.String(), "keys=3") {
		t.Errorf("no info line with 3 keys warmed:\n%s", logs)
	}
	for _, tok := range used {
		if strings.Contains(logs.String(), tok) {
			t.Errorf("the log carries a token")
		}
	}

	m0 := scrapeMetrics(t, []*client{c})
	for _, tok := range used {
		if code, echo := c.get(tok, "/x"); code != 200 {
			t.Fatalf("first request after restart = %d", code)
		} else if tok == used[0] && header(echo, "X-Keygate-User-Email") != "alice@example.com" {
			t.Errorf("warmed personal key forwarded without its owner's email: %v", echo)
		}
	}
	m1 := scrapeMetrics(t, []*client{c})
	const hits, lookups = `keygate_cache_total{kind="positive",outcome="hit"}`, "keygate_store_lookups_total"
	if got := m1[hits] - m0[hits]; got != int64(len(used)) {
		t.Errorf("cache hits = %d for the first requests after restart, want %d", got, len(used))
	}
	if got := m1[lookups] - m0[lookups]; got != 0 {
		t.Errorf("store lookups = %d for the first requests after restart, want 0", got)
	}

	// The archived key was not warmed: it is looked up, and refused.
	if code, _ := c.get(archived["token"].(string), "/x"); code != 401 {
		t.Errorf("archived key after restart = %d, want 401", code)
	}
	if got := scrapeMetrics(t, []*client{c})[lookups] - m1[lookups]; got != 1 {
		t.Errorf("store lookups for the archived key = %d, want 1", got)
	}
}

// startAppLogging is startApp with info logs written to w.
func startAppLogging(t *testing.T, dbPath, upstream string, w io.Writer) *App {
	t.Helper()
	cfg, err := config.Parse(fmt.Sprintf(`
proxy: {listen: "127.0.0.1:0", upstreams: [%q]}
admin: {listen: "127.0.0.1:0", token: %q}
%s`, upstream, testAdminToken, testStoreYAML(t, dbPath)), nil)
	if err != nil {
		t.Fatal(err)
	}
	app := NewApp(cfg, w)
	if err := app.Open(context.Background()); err != nil {
		app.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	select {
	case <-app.warmReady():
	case <-time.After(10 * time.Second):
		t.Fatal("warm-up never ended")
	}
	return app
}

// blockedSource is a warm-up source that answers when released.
type blockedSource struct{ release chan struct{} }

func (b blockedSource) RecentIdentities(ctx context.Context, n int) ([]*keys.Identity, error) {
	select {
	case <-b.release:
		return nil, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// TestWarmReadiness: the node is not ready while its cache warms up, and
// ready when the warm-up ends, or when the wait runs out however slow the
// store, or at once when warm-up is off.
func TestWarmReadiness(t *testing.T) {
	for _, tc := range []struct {
		name      string
		warmKeys  int
		readyWait time.Duration
		release   bool // let the warm-up finish
	}{
		{name: "ready when warm", warmKeys: 10, readyWait: time.Hour, release: true},
		{name: "ready after the wait", warmKeys: 10, readyWait: 100 * time.Millisecond},
		{name: "off", warmKeys: 0, readyWait: time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Cache.WarmKeys = tc.warmKeys
			cache, err := proxy.NewCache(proxy.CacheOptions{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(cache.Close)
			a := &App{Config: &cfg, Logger: slog.New(slog.DiscardHandler), Cache: cache}
			src := blockedSource{release: make(chan struct{})}
			a.startWarm(func(ctx context.Context, n int) (int, error) { return cache.Warm(ctx, src, n) }, tc.readyWait)
			t.Cleanup(a.stopWarm)
			c, on := a.warmReadyCheck()
			if !on {
				if tc.warmKeys != 0 {
					t.Fatal("no cache_warm check")
				}
				select {
				case <-a.warmReady():
				default:
					t.Error("warm-up off, but the node waits for it")
				}
				return
			}
			if c.Name != "cache_warm" {
				t.Errorf("check named %q", c.Name)
			}
			if err := c.Check(context.Background()); err == nil {
				t.Fatal("ready while warming up")
			}
			if tc.release {
				close(src.release)
			}
			select {
			case <-a.warmReady():
			case <-time.After(10 * time.Second):
				t.Fatal("never ready")
			}
			if err := c.Check(context.Background()); err != nil {
				t.Errorf("after the warm-up: %v", err)
			}
		})
	}
}
