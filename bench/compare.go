package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keygate/keygate/bench/loadgen"
)

// target is one server under load.
type target struct {
	name string
	url  string
	pgid int // process group of the server, for its CPU time; 0: not measured
	// restart, when set, starts the server afresh (empty caches) before each
	// of its fixed-rate runs, so that they include a cold start.
	restart func(context.Context) (pgid int, err error)
}

// runFunc runs one load at one target.
type runFunc func(context.Context, target) (loadgen.Result, error)

// Targets from issue 11: keygate against the minimal fasthttp proxy in the
// same run.
const (
	minRatio   = 0.95
	maxP99Over = 500 * time.Microsecond
)

func printHeader(e *env, ts []target) {
	var names []string
	for _, t := range ts {
		names = append(names, t.name)
	}
	fmt.Printf("keygate load benchmark: %s; %d CPUs, GOMAXPROCS %d, %s\n", strings.Join(names, ", "), runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version())
	fmt.Printf("load: %s\n", e.load.name)
	fmt.Printf("      %d connections, %v per run after a %v warm-up, %d rounds rotating the order\n", e.o.conns, e.o.duration, e.o.warmup, e.o.rounds)
	fmt.Printf("      each request: GET / with Authorization: Bearer <one of %d keys of %d owners, at random>\n", len(e.tokens), len(e.tokens))
	fmt.Println("      (the load generator shares the machine's CPUs with the servers, equally for every target)")
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		f := strings.Fields(string(b))
		fmt.Printf("load average before the run: %s", f[0])
		if v, _ := strconv.ParseFloat(f[0], 64); v > 0.5 {
			fmt.Print(" (other work is running: expect noisy numbers)")
		}
		fmt.Println()
	}
	fmt.Println()
}

// checkKeygate asks once with a valid key (want 200 and identity forwarded)
// and once with an unknown one (want 401) before measuring anything.
func checkKeygate(ctx context.Context, url, token string) error {
	get := func(tok string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, fmt.Errorf("check keygate: %w", err)
		}
		resp.Body.Close()
		return resp, nil
	}
	resp, err := get(token)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("check keygate: a seeded key got status %d, want 200", resp.StatusCode)
	}
	if resp.Header.Get("X-Echo") == "" {
		fmt.Fprintln(os.Stderr, "# warning: upstream did not see X-Keygate-Key-Id")
	}
	bad, err := newTokens(1, true)
	if err != nil {
		return err
	}
	if resp, err = get(bad[0]); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusUnauthorized {
		return fmt.Errorf("check keygate: an unknown key got status %d, want 401", resp.StatusCode)
	}
	return nil
}

// compare measures every target against the first (the minimal proxy), in
// rounds that rotate the order: first throughput, with every connection busy
// all the time; then latency at a fixed rate, a share of the minimal proxy's
// throughput. Latency under saturation is mostly time spent queueing, so the
// p99 target is judged on the second.
func (e *env) compare(ctx context.Context, ts []target, missing []string) error {
	base := ts[0]
	cfg := func(t target) loadgen.Config {
		return loadgen.Config{URL: t.url, Tokens: e.tokens, Conns: e.o.conns, Duration: e.o.duration}
	}
	if e.o.warmup > 0 {
		for _, t := range ts {
			fmt.Fprintf(os.Stderr, "# warm-up %s\n", t.name)
			c := cfg(t)
			c.Duration = e.o.warmup
			if _, err := e.load.run(ctx, c); err != nil {
				return fmt.Errorf("warm-up %s: %w", t.name, err)
			}
		}
	}

	fmt.Printf("throughput: %s, every connection always busy\n", e.load.name)
	med, per, err := e.rounds(ctx, ts, false, func(ctx context.Context, t target) (loadgen.Result, error) {
		return e.load.run(ctx, cfg(t))
	})
	if err != nil {
		return err
	}
	for _, m := range missing {
		fmt.Printf("%-7s %s\n", "-", m)
	}
	tw := newTable()
	fmt.Fprintf(tw, "req/s ÷ %s\tmedian\tper round\tp99 at saturation\n", base.name)
	for _, t := range ts {
		var ratios []string
		for i := range per[t.name] {
			ratios = append(ratios, fmt.Sprintf("%.2f", per[t.name][i].RPS()/per[base.name][i].RPS()))
		}
		fmt.Fprintf(tw, "%s\t%.3f\t%s\t%s\n", t.name, med[t.name].RPS()/med[base.name].RPS(), strings.Join(ratios, " "), fmtDur(med[t.name].P99))
	}
	tw.Flush()
	if k, ok := med["keygate"]; ok {
		fmt.Printf("target keygate ≥ %.2f× %s: %s\n", minRatio, base.name, verdict(k.RPS()/med[base.name].RPS() >= minRatio))
	}
	fmt.Println()

	if e.o.rate < 0 {
		return nil
	}
	rate := e.o.rate
	if rate == 0 {
		// A share of the minimal proxy's throughput, so that no target is saturated.
		rate = math.Max(100, math.Round(med[base.name].RPS()*e.o.rateShare/100/100)*100)
	}
	rd := e.o.rateDur
	if rd <= 0 {
		rd = e.o.duration
	}
	fmt.Printf("latency: Go generator, open loop at a fixed %.0f req/s over %d connections for %v per run, counted from when each request was due\n", rate, e.o.conns, rd)
	for i := range ts {
		if ts[i].restart != nil {
			fmt.Printf("(%s is restarted before each run: its first second is a cold start with %d distinct keys)\n", ts[i].name, len(e.tokens))
		}
	}
	med, per, err = e.rounds(ctx, ts, true, func(ctx context.Context, t target) (loadgen.Result, error) {
		c := cfg(t)
		c.Rate, c.Duration, c.PerSecond = rate, rd, true
		return loadgen.RunGo(ctx, c)
	})
	if err != nil {
		return err
	}
	fmt.Println("worst second's p99 in each run (second counted from the run's start):")
	for _, t := range ts {
		var parts []string
		for _, r := range per[t.name] {
			w, at := r.WorstSecond()
			parts = append(parts, fmt.Sprintf("%s at s%d", fmtDur(w), at))
		}
		fmt.Printf("  %-8s %s\n", t.name, strings.Join(parts, ", "))
	}
	if e.o.perSecond {
		fmt.Println("p99 of every second, in ms (one line per run):")
		for _, t := range ts {
			for i, r := range per[t.name] {
				var b strings.Builder
				for _, d := range r.Seconds {
					fmt.Fprintf(&b, " %.1f", ms(d))
				}
				fmt.Printf("  %-8s run %d:%s\n", t.name, i+1, b.String())
			}
		}
	}
	b := med[base.name]
	for _, t := range ts[1:] {
		o := med[t.name]
		fmt.Printf("latency %s − %s: p50 %+.3f ms, p99 %+.3f ms, p99.9 %+.3f ms\n", t.name, base.name, ms(o.P50-b.P50), ms(o.P99-b.P99), ms(o.P999-b.P999))
	}
	if k, ok := med["keygate"]; ok {
		fmt.Printf("target keygate p99 ≤ %s p99 + %.1f ms: %s\n", base.name, ms(maxP99Over), verdict(k.P99-b.P99 <= maxP99Over))
	}
	return nil
}

// rounds runs each target once per round, rotating the order so that each
// goes first in turn, prints every run and the medians, and returns the
// medians and each target's runs in round order.
func (e *env) rounds(ctx context.Context, ts []target, cold bool, run runFunc) (med map[string]loadgen.Result, per map[string][]loadgen.Result, err error) {
	fmt.Printf(rowFmt, "round", "target", "req/s", "p50", "p99", "p99.9", "max", "non-2xx", "errors", "CPU/req")
	per = map[string][]loadgen.Result{}
	cpu := map[string][]time.Duration{}
	suspect := false
	for r := range e.o.rounds {
		for i := range ts {
			t := ts[(i+r)%len(ts)]
			if err := sleep(ctx, time.Second); err != nil { // let GC and usage flushes settle
				return nil, nil, err
			}
			if cold && t.restart != nil {
				pg, err := t.restart(ctx)
				if err != nil {
					return nil, nil, fmt.Errorf("round %d, restart %s: %w", r+1, t.name, err)
				}
				t.pgid = pg
				ts[(i+r)%len(ts)].pgid = pg
			}
			before := groupCPU(t.pgid)
			res, err := run(ctx, t)
			if err != nil {
				return nil, nil, fmt.Errorf("round %d, %s: %w", r+1, t.name, err)
			}
			var c time.Duration
			if t.pgid > 0 && res.Requests > 0 {
				c = (groupCPU(t.pgid) - before) / time.Duration(res.Requests)
			}
			per[t.name] = append(per[t.name], res)
			cpu[t.name] = append(cpu[t.name], c)
			printRow(fmt.Sprint(r+1), t.name, res, c)
			suspect = suspect || res.Non2xx > 0 || res.Errors > 0
		}
	}
	med = map[string]loadgen.Result{}
	for _, t := range ts {
		med[t.name] = median(per[t.name])
		c := slices.Clone(cpu[t.name])
		slices.Sort(c)
		printRow("median", t.name, med[t.name], c[(len(c)-1)/2])
	}
	if suspect {
		fmt.Println("WARNING: some runs had non-2xx answers or errors; these numbers are suspect")
	}
	return med, per, nil
}

const rowFmt = "%-7s %-8s %9s %9s %9s %9s %9s %8s %7s %8s\n"

// printRow prints one run; cpu is the server's CPU time per request (its
// whole process group, user and system), 0 when not measured.
func printRow(round, name string, r loadgen.Result, cpu time.Duration) {
	c := "-"
	if cpu > 0 {
		c = fmt.Sprintf("%.1fµs", float64(cpu)/1e3)
	}
	fmt.Printf(rowFmt, round, name, fmt.Sprintf("%.0f", r.RPS()), fmtDur(r.P50), fmtDur(r.P99), fmtDur(r.P999), fmtDur(r.Max), fmt.Sprint(r.Non2xx), fmt.Sprint(r.Errors), c)
}

// median takes, field by field, the median over rounds (the lower middle one
// for an even count). Elapsed is set so that RPS gives the median req/s.
func median(rs []loadgen.Result) loadgen.Result {
	pick := func(f func(loadgen.Result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[(len(v)-1)/2]
	}
	d := func(f func(loadgen.Result) time.Duration) time.Duration {
		return time.Duration(pick(func(r loadgen.Result) float64 { return float64(f(r)) }))
	}
	return loadgen.Result{
		Tool:     rs[0].Tool,
		Requests: uint64(pick(loadgen.Result.RPS)),
		Elapsed:  time.Second,
		P50:      d(func(r loadgen.Result) time.Duration { return r.P50 }),
		P99:      d(func(r loadgen.Result) time.Duration { return r.P99 }),
		P999:     d(func(r loadgen.Result) time.Duration { return r.P999 }),
		Max:      d(func(r loadgen.Result) time.Duration { return r.Max }),
		Non2xx:   uint64(pick(func(r loadgen.Result) float64 { return float64(r.Non2xx) })),
		Errors:   uint64(pick(func(r loadgen.Result) float64 { return float64(r.Errors) })),
	}
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func fmtDur(d time.Duration) string { return fmt.Sprintf("%.3fms", ms(d)) }

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

// newTable returns a left-aligned table writer on stdout.
func newTable() *tabwriter.Writer { return tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0) }
