package main

import (
	"context"
	"fmt"
	"time"

	"github.com/keygate/keygate/bench/loadgen"
)

// floods sends keygate two floods of bad keys and counts the store lookups
// each caused, from keygate_store_lookups_total on /metrics:
//   - well-formed unknown tokens (valid checksum): each distinct one may reach
//     the store at most once per negative_ttl;
//   - the same tokens with their last character changed, failing the checksum:
//     none may reach the store.
func (e *env) floods(ctx context.Context, kg *keygateRun) error {
	unknown, err := newTokens(e.o.floodKeys, true)
	if err != nil {
		return err
	}
	malformed := make([]string, len(unknown))
	for i, t := range unknown {
		malformed[i] = flipLast(t)
	}
	fmt.Printf("\nbad-key floods: %d distinct tokens each, %v, %d connections; cache.negative_ttl %v\n", len(unknown), e.o.flood, e.o.conns, e.o.negativeTTL)
	const rowFmt = "%-22s %10s %9s %8s %6s %13s %9s  %s\n"
	fmt.Printf(rowFmt, "flood", "rejected/s", "p99", "accepted", "errors", "store lookups", "limit", "verdict")
	for _, f := range []struct {
		name   string
		tokens []string
		// bound gives the most lookups allowed for a flood that lasted d.
		bound func(d time.Duration) int
	}{
		{"unknown, well-formed", unknown, func(d time.Duration) int {
			return len(unknown) * (int(d/e.o.negativeTTL) + 1)
		}},
		{"checksum-failing", malformed, func(time.Duration) int { return 0 }},
	} {
		before, found, err := kg.admin.metric(ctx, storeLookupsMetric)
		if err != nil {
			return err
		}
		res, err := e.load.run(ctx, loadgen.Config{URL: "http://" + kg.conf.proxyAddr + "/", Tokens: f.tokens, Conns: e.o.conns, Duration: e.o.flood})
		if err != nil {
			return fmt.Errorf("flood %s: %w", f.name, err)
		}
		after, _, err := kg.admin.metric(ctx, storeLookupsMetric)
		if err != nil {
			return err
		}
		rejected := float64(res.Non2xx) / res.Elapsed.Seconds()
		accepted := res.Requests - res.Non2xx
		lookups, v := "n/a", "n/a: no "+storeLookupsMetric
		bound := f.bound(res.Elapsed)
		if found {
			n := int(after - before)
			lookups = fmt.Sprint(n)
			v = verdict(n <= bound && accepted == 0)
		}
		fmt.Printf(rowFmt, f.name, fmt.Sprintf("%.0f", rejected), fmtDur(res.P99), fmt.Sprint(accepted), fmt.Sprint(res.Errors), lookups, fmt.Sprintf("≤ %d", bound), v)
		if err := sleep(ctx, time.Second); err != nil {
			return err
		}
	}
	return nil
}
