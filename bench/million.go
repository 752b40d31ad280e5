package main

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"github.com/keygate/keygate/bench/loadgen"
	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/sqlite"
)

// Targets from the issue for a million keys in SQLite.
const (
	maxStartup = time.Second
	maxRSS     = 200 << 20
	maxMissP99 = 500 * time.Microsecond
	// A Postgres lookup is a network round trip, on loopback here (issue 9).
	maxMissP99Postgres = time.Millisecond
)

// seed fills a fresh keygate SQLite store at dbPath with n users
// (bench-m-0000000 …), each owning one personal key, and writes the n
// tokens, one a line, to tokensPath. It is timed, so it must be the fast bulk
// path, not n admin calls. keygateBin is the keygate binary, for a CLI path.
//
// It writes through the store's primitive writes (users, then keys with
// their audit events), 50,000 rows a transaction.
func seed(ctx context.Context, keygateBin, dbPath string, n int, tokensPath string) error {
	st, err := sqlite.Open(ctx, dbPath, sqlite.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	tokens, err := keys.NewTokens("kg")
	if err != nil {
		return err
	}
	f, err := os.Create(tokensPath)
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	now := time.Now().Unix()
	const batch = 50_000
	for start := 0; start < n; start += batch {
		m := min(batch, n-start)
		users := make([]keys.User, m)
		ks := make([]*keys.Key, m)
		events := make([]keys.AuditEvent, m)
		for i := range m {
			uid := fmt.Sprintf("bench-m-%07d", start+i)
			users[i] = keys.User{ID: uid, Email: uid + "@example.com", Enabled: true, CreatedAt: now, UpdatedAt: now}
			tok, err := tokens.New(keys.TypePersonal)
			if err != nil {
				return err
			}
			w.WriteString(tok)
			w.WriteByte('\n')
			k := &keys.Key{ID: keys.NewID(), Type: keys.TypePersonal, UserID: uid, Display: tokens.Hint(tok),
				Metadata: []byte(`{}`), CreatedAt: now, Hash: keys.Hash(tok)}
			ks[i] = k
			events[i] = keys.AuditEvent{At: now, Action: keys.ActionKeyCreated, Actor: "system", KeyID: k.ID, UserID: uid}
		}
		err := st.Update(ctx, func(tx keys.Tx) error {
			for i := range users {
				if err := tx.PutUser(ctx, &users[i]); err != nil {
					return err
				}
			}
			if err := tx.InsertKeys(ctx, ks); err != nil {
				return err
			}
			return tx.InsertAudit(ctx, events...)
		})
		if err != nil {
			return err
		}
	}
	return w.Flush()
}

// millionKeys seeds a million keys, starts keygate on them and measures
// start-up time, RSS, and the latency of validations that miss the cache.
func (e *env) millionKeys(ctx context.Context) error {
	c, err := e.newKeygateConf("million")
	if err != nil {
		return err
	}
	n := e.o.millionN
	if e.o.touchN <= 0 || e.o.touchN > n {
		return fmt.Errorf("-touch %d: want 1 to -million-n (%d)", e.o.touchN, n)
	}
	storeName := "SQLite"
	if e.o.millionDB == "postgres" {
		storeName = "Postgres"
		dsn, drop, err := createBenchDatabase(ctx, e.o.postgres)
		if err != nil {
			return err
		}
		if !e.o.keep {
			defer drop()
		}
		c.dsn = dsn
	}
	fmt.Printf("\nmillion keys: %d users with one personal key each, %s\n", n, storeName)
	tokensPath := e.dir + "/million/tokens.txt"
	t0 := time.Now()
	var dbSize int64
	if c.dsn != "" {
		if dbSize, err = seedPostgres(ctx, c.dsn, n, tokensPath); err != nil {
			return fmt.Errorf("seed %d keys: %w", n, err)
		}
	} else {
		if err := seed(ctx, e.bins["keygate"], c.dbPath, n, tokensPath); err != nil {
			return fmt.Errorf("seed %d keys: %w", n, err)
		}
		for _, suffix := range []string{"", "-wal"} {
			if fi, err := os.Stat(c.dbPath + suffix); err == nil {
				dbSize += fi.Size()
			}
		}
	}
	seedTime := time.Since(t0)
	touch, err := sample(tokensPath, e.o.touchN)
	if err != nil {
		return err
	}

	lookup, target, maxMiss := lookupLatency, c.dbPath, maxMissP99
	if c.dsn != "" {
		lookup, target, maxMiss = lookupLatencyPostgres, c.dsn, maxMissP99Postgres
	}
	store, err := lookup(ctx, target, touch[:min(len(touch), 20_000)])
	if err != nil {
		return err
	}

	p, startup, ready, err := startKeygate(ctx, e.ps, "keygate-million", e.bins["keygate"], e.dir, c)
	if err != nil {
		return err
	}
	rssStart, _, err := rss(p.pid())
	if err != nil {
		return err
	}
	// One connection, each key once: every validation misses the cache and
	// goes to SQLite, so the latency is the cache-miss path end to end.
	url := "http://" + c.proxyAddr + "/"
	miss, err := loadgen.Sequence(ctx, url, touch, 5*time.Second)
	if err != nil {
		return err
	}
	// The reference: the last keys touched, which are in the cache, over and
	// over: the proxy-and-upstream share of the miss latency.
	recent := touch[len(touch)-min(1000, len(touch)):]
	var again []string
	for range 20 {
		again = append(again, recent...)
	}
	hit, err := loadgen.Sequence(ctx, url, again, 5*time.Second)
	if err != nil {
		return err
	}
	rssTouched, peak, err := rss(p.pid())
	if err != nil {
		return err
	}

	tw := newTable()
	fmt.Fprintf(tw, "seed time\t%v\t(%s on disk)\n", seedTime.Round(time.Millisecond), mib(dbSize))
	fmt.Fprintf(tw, "start-up (exec to serving: /healthz 200, proxy port open)\t%v\ttarget ≤ %v: %s\n", startup.Round(time.Millisecond), maxStartup, verdict(startup <= maxStartup))
	fmt.Fprintf(tw, "ready (exec to /readyz 200: cache warm-up done)\t%v\t\n", ready.Round(time.Millisecond))
	fmt.Fprintf(tw, "RSS after start\t%s\t\n", mib(rssStart))
	fmt.Fprintf(tw, "RSS after touching %d keys\t%s\ttarget ≤ %s: %s (peak %s)\n", len(touch), mib(rssTouched), mib(maxRSS), verdict(rssTouched <= maxRSS), mib(peak))
	fmt.Fprintf(tw, "cache-miss latency p50 / p99\t%s / %s\ttarget p99 ≤ %s: %s\n", fmtDur(miss.P50), fmtDur(miss.P99), fmtDur(maxMiss), verdict(miss.P99 <= maxMiss))
	fmt.Fprintf(tw, "cache-hit reference p50 / p99\t%s / %s\t(%d recently touched keys, 20 times each)\n", fmtDur(hit.P50), fmtDur(hit.P99), len(recent))
	fmt.Fprintf(tw, "store lookup alone p50 / p99\t%s / %s\t(%s LookupHash in process, %d distinct keys; target p99 ≤ %s: %s)\n",
		fmtDur(store.P50), fmtDur(store.P99), storeName, store.Count(), fmtDur(maxMiss), verdict(store.Quantile(0.99) <= maxMiss))
	tw.Flush()
	if bad := miss.Non2xx + miss.Errors + hit.Non2xx + hit.Errors; bad > 0 {
		fmt.Printf("WARNING: %d of the touches were not 200; the latencies above are suspect\n", bad)
	}
	return nil
}

// sample returns k distinct lines of the file at path chosen uniformly at
// random (reservoir sampling, so a million tokens need not sit in memory),
// in random order.
func sample(path string, k int) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read tokens: %w", err)
	}
	defer f.Close()
	out := make([]string, 0, k)
	sc := bufio.NewScanner(f)
	seen := 0
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		seen++
		if len(out) < k {
			out = append(out, line)
		} else if j := rand.IntN(seen); j < k {
			out[j] = line
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read tokens: %w", err)
	}
	if len(out) < k {
		return nil, fmt.Errorf("read tokens: %s has %d, want at least %d", path, len(out), k)
	}
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out, nil
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// lookupLatency times the SQLite store's LookupHash for each token, in process and
// one at a time: the store's share of a cache miss, without HTTP around it.
func lookupLatency(ctx context.Context, dbPath string, tokens []string) (*storeLatency, error) {
	st, err := sqlite.Open(ctx, dbPath, sqlite.Options{})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	var h loadgen.Histogram
	for _, tok := range tokens {
		t0 := time.Now()
		if _, err := st.LookupHash(ctx, keys.Hash(tok)); err != nil {
			return nil, fmt.Errorf("look up a seeded key: %w", err)
		}
		h.Record(time.Since(t0))
	}
	return &storeLatency{Histogram: &h, P50: h.Quantile(0.5), P99: h.Quantile(0.99)}, nil
}

type storeLatency struct {
	*loadgen.Histogram
	P50, P99 time.Duration
}
