package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/bench/loadgen"
	"github.com/keygate/keygate/config"
	"github.com/keygate/keygate/keys"
)

func TestSumMetric(t *testing.T) {
	text := `# HELP keygate_store_lookups_total Key lookups in the store.
# TYPE keygate_store_lookups_total counter
keygate_store_lookups_total{result="found"} 12
keygate_store_lookups_total{result="not_found",note="a}b"} 30
keygate_store_lookups_total_other 1000
keygate_store_lookups 5
`
	tests := []struct {
		name, text string
		want       float64
		found      bool
	}{
		{"labelled samples add up", text, 42, true},
		{"no labels", "keygate_store_lookups_total 7\n", 7, true},
		{"absent", "keygate_requests_total 3\n", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, found := sumMetric(strings.NewReader(tt.text), storeLookupsMetric)
			if got != tt.want || found != tt.found {
				t.Fatalf("got %v, %v; want %v, %v", got, found, tt.want, tt.found)
			}
		})
	}
}

func TestTokens(t *testing.T) {
	tk, err := keys.NewTokens("kg")
	if err != nil {
		t.Fatal(err)
	}
	good, err := newTokens(200, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range good {
		if f, typ := tk.Check(tok); f != keys.FormatKeygate || typ != keys.TypePersonal {
			t.Fatalf("%s: want a well-formed personal token", tok)
		}
		bad := flipLast(tok)
		if bad == tok || len(bad) != len(tok) {
			t.Fatalf("flipLast(%s) = %s", tok, bad)
		}
		if f, _ := tk.Check(bad); f != keys.FormatMalformed {
			t.Fatalf("%s: want a checksum failure", bad)
		}
	}
}

func TestMedian(t *testing.T) {
	rs := []loadgen.Result{
		{Requests: 300, Elapsed: time.Second, P99: 3 * time.Millisecond},
		{Requests: 100, Elapsed: time.Second, P99: 9 * time.Millisecond},
		{Requests: 200, Elapsed: time.Second, P99: 1 * time.Millisecond},
	}
	m := median(rs)
	if m.RPS() != 200 || m.P99 != 3*time.Millisecond {
		t.Fatalf("median: %.0f req/s, p99 %v; want 200 and 3ms", m.RPS(), m.P99)
	}
}

func TestSample(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.txt")
	var lines []string
	for i := range 1000 {
		lines = append(lines, "tok"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+time.Duration(i).String())
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := sample(path, 100)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, s := range got {
		if seen[s] {
			t.Fatalf("%q picked twice", s)
		}
		seen[s] = true
	}
	if len(got) != 100 {
		t.Fatalf("got %d lines, want 100", len(got))
	}
	if _, err := sample(path, 1001); err == nil {
		t.Fatal("want an error when the file has too few lines")
	}
}

// TestKeygateConf checks that keygate's own config loader accepts the config
// the runner writes and reads from it what the runner means to set.
func TestKeygateConf(t *testing.T) {
	c := keygateConf{proxyAddr: "127.0.0.1:1", adminAddr: "127.0.0.1:2", upstream: "127.0.0.1:3",
		adminToken: "tok", dbPath: "/tmp/x y/keygate.db", negativeTTL: 7 * time.Second}
	got, err := config.Parse(c.yaml(), nil)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"proxy.listen", got.Proxy.Listen, "127.0.0.1:1"},
		{"proxy.upstreams", strings.Join(got.Proxy.Upstreams, ","), "http://127.0.0.1:3"},
		{"admin.listen", got.Admin.Listen, "127.0.0.1:2"},
		{"admin.token", got.Admin.Token, "tok"},
		{"store.path", got.Store.Path, "/tmp/x y/keygate.db"},
		{"cache.negative_ttl", got.Cache.NegativeTTL, 7 * time.Second},
		{"rate_limits.personal.limit", got.RateLimits.Personal.Limit, int64(1_000_000_000)},
		{"rate_limits.personal.window", got.RateLimits.Personal.Window, time.Minute},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %#v, want %#v", ck.name, ck.got, ck.want)
		}
	}
}

// TestPeerConfs checks the nginx and HAProxy configs the runner writes: they
// bind only the given loopback address, map every token, and the installed
// binaries (when there are any) accept them.
func TestPeerConfs(t *testing.T) {
	dir := t.TempDir()
	tokens := []string{"kg_p_aaa", "kg_p_bbb"}
	ng := nginxConf(dir, "127.0.0.1:18080", "127.0.0.1:18081", tokens, os.Geteuid() == 0)
	hp := haproxyConf(dir+"/keys.map", "127.0.0.1:18082", "127.0.0.1:18081")
	for _, want := range []string{"listen 127.0.0.1:18080;", `"Bearer kg_p_bbb" key-1;`, "server 127.0.0.1:18081;", "worker_processes 2;"} {
		if !strings.Contains(ng, want) {
			t.Errorf("nginx config lacks %q", want)
		}
	}
	for _, want := range []string{"bind 127.0.0.1:18082", "nbthread 2", "stick-table", "server echo 127.0.0.1:18081"} {
		if !strings.Contains(hp, want) {
			t.Errorf("HAProxy config lacks %q", want)
		}
	}
	if got := haproxyMap(tokens); got != "kg_p_aaa key-0\nkg_p_bbb key-1\n" {
		t.Errorf("HAProxy map = %q", got)
	}
	if err := os.MkdirAll(dir+"/nginx-tmp", 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir+"/keys.map", []byte(haproxyMap(tokens)), 0o600); err != nil {
		t.Fatal(err)
	}
	check := func(name, conf string, args ...string) {
		bin, err := exec.LookPath(name)
		if err != nil {
			if bin, err = exec.LookPath("/usr/sbin/" + name); err != nil {
				t.Logf("%s not installed: config not checked by it", name)
				return
			}
		}
		path := filepath.Join(dir, name+".conf")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(bin, append(args, path)...).CombinedOutput(); err != nil {
			t.Errorf("%s rejects its config: %v\n%s\n%s", name, err, out, conf)
		}
	}
	check("nginx", ng, "-t", "-p", dir, "-e", dir+"/nginx-error.log", "-c")
	check("haproxy", hp, "-c", "-f")
}

func TestParseStat(t *testing.T) {
	line := []byte("1234 (my (odd) proc) S 1 4321 4321 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0 100 0 0\n")
	pg, ticks, ok := parseStat(line)
	if !ok || pg != 4321 || ticks != 325 {
		t.Fatalf("parseStat = %d, %d, %v; want 4321, 325, true", pg, ticks, ok)
	}
	if _, _, ok := parseStat([]byte("garbage")); ok {
		t.Fatal("parsed garbage")
	}
	if groupCPU(os.Getpid()) < 0 {
		t.Fatal("negative CPU time")
	}
}
