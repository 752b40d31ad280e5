package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// storeLookupsMetric counts keygate's key lookups in the store; the flood
// tests read it from /metrics before and after.
const storeLookupsMetric = "keygate_store_lookups_total"

// keygateConf is what the runner varies in keygate's config (SPEC §8).
type keygateConf struct {
	proxyAddr, adminAddr, upstream string
	adminToken                     string
	dbPath                         string
	dsn                            string // postgres store when set, else sqlite at dbPath
	negativeTTL                    time.Duration
}

// yaml renders the config. Strings are JSON-quoted, which YAML accepts.
func (c keygateConf) yaml() string {
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	store := "store:\n  driver: sqlite\n  path: " + q(c.dbPath) + "\n"
	if c.dsn != "" {
		store = "store:\n  driver: postgres\n  dsn: " + q(c.dsn) + "\n"
	}
	return fmt.Sprintf(`# written by bench: keygate with auth, rate limits that never trigger, usage on
proxy:
  listen: %s
  upstreams: [%s]
admin:
  listen: %s
  token: %s
%scache:
  negative_ttl: %s
rate_limits:
  personal: {limit: 1000000000, window: 1m}
  org: {limit: 1000000000, window: 1m}
  generic: {limit: 1000000000, window: 1m}
limiter:
  backend: memory
usage:
  flush_interval: 1s
log:
  level: warn
shutdown_timeout: 5s
`, q(c.proxyAddr), q("http://"+c.upstream), q(c.adminAddr), q(c.adminToken), store, q(c.negativeTTL.String()))
}

// startKeygate writes a config into dir and starts `bin serve`, waiting until
// the admin port's /readyz answers 200. It returns two times from exec: to
// serving (the admin port's /healthz and the proxy port answering: requests
// are served from then on) and to ready (/readyz 200: the key cache warmed,
// see cache.warm_keys).
func startKeygate(ctx context.Context, ps *procs, name, bin, dir string, c keygateConf) (p *proc, serving, ready time.Duration, err error) {
	path := dir + "/" + name + ".yaml"
	if err := os.WriteFile(path, []byte(c.yaml()), 0o600); err != nil {
		return nil, 0, 0, fmt.Errorf("write keygate config: %w", err)
	}
	p, err = startProc(name, dir+"/"+name+".log", bin, "serve", "--config", path)
	if err != nil {
		return nil, 0, 0, err
	}
	ps.add(p)
	if serving, err = waitHTTP(ctx, p, "http://"+c.adminAddr+"/healthz", 60*time.Second); err != nil {
		return nil, 0, 0, err
	}
	if err := waitTCP(ctx, p, c.proxyAddr, 10*time.Second); err != nil {
		return nil, 0, 0, err
	}
	if ready, err = waitHTTP(ctx, p, "http://"+c.adminAddr+"/readyz", 60*time.Second); err != nil {
		return nil, 0, 0, err
	}
	return p, serving, ready, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// admin calls keygate's admin API (SPEC §4).
type admin struct {
	base  string // http://127.0.0.1:port
	token string
	hc    *http.Client
}

func newAdmin(addr, token string) *admin {
	return &admin{base: "http://" + addr, token: token, hc: &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 16},
	}}
}

// call sends body as JSON and decodes a want-status answer into out (if not nil).
func (a *admin) call(ctx context.Context, method, path string, body any, want int, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, bytes.TrimSpace(b))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

// seedUsers creates n users, bench-u-0000 …, each with one personal key, and
// returns the n tokens.
func (a *admin) seedUsers(ctx context.Context, n int) ([]string, error) {
	tokens := make([]string, n)
	errs := make(chan error, 1)
	next := make(chan int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				id := fmt.Sprintf("bench-u-%04d", i)
				err := a.call(ctx, http.MethodPut, "/v1/users/"+id, map[string]any{"email": id + "@example.com"}, http.StatusOK, nil)
				var key struct {
					Token string `json:"token"`
				}
				if err == nil {
					err = a.call(ctx, http.MethodPost, "/v1/keys", map[string]any{"type": "personal", "user_id": id}, http.StatusCreated, &key)
				}
				if err == nil && key.Token == "" {
					err = fmt.Errorf("POST /v1/keys: no token in the answer")
				}
				if err != nil {
					select {
					case errs <- err:
					default:
					}
					continue
				}
				tokens[i] = key.Token
			}
		}()
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case err := <-errs:
			errs <- err
			break feed
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		return nil, fmt.Errorf("seed users: %w", err)
	default:
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return tokens, nil
}

// metric returns the sum of every sample of the named metric in /metrics,
// and false when keygate does not export it.
func (a *admin) metric(ctx context.Context, name string) (float64, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+"/metrics", nil)
	if err != nil {
		return 0, false, err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := a.hc.Do(req)
	if err != nil {
		return 0, false, fmt.Errorf("GET /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, false, fmt.Errorf("GET /metrics: status %d", resp.StatusCode)
	}
	v, ok := sumMetric(resp.Body, name)
	return v, ok, nil
}

// sumMetric adds up the samples of name (any labels) in Prometheus text.
func sumMetric(r io.Reader, name string) (float64, bool) {
	var sum float64
	found := false
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		if rest[0] == '{' {
			end := strings.LastIndexByte(rest, '}')
			if end < 0 {
				continue
			}
			rest = rest[end+1:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		sum += v
		found = true
	}
	return sum, found
}
