// Command load drives one target with bench/loadgen and prints req/s and
// latency percentiles: the benchmark's load on its own, for ad-hoc runs.
//
//	go run ./bench/load -url http://127.0.0.1:8080/ -keys tokens.txt -c 64 -d 10s
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/keygate/keygate/bench/loadgen"
)

func main() {
	var cfg loadgen.Config
	var keysPath, tool string
	flag.StringVar(&cfg.URL, "url", "http://127.0.0.1:8080/", "target URL (loopback only)")
	flag.StringVar(&keysPath, "keys", "", "file of tokens, one a line, sent as Authorization: Bearer <random one>")
	flag.IntVar(&cfg.Conns, "c", 64, "connections, one request in flight each")
	flag.DurationVar(&cfg.Duration, "d", 10*time.Second, "duration (always bounds the run)")
	flag.Uint64Var(&cfg.Requests, "n", 0, "stop after this many requests (go only; 0: duration only)")
	flag.Float64Var(&cfg.Rate, "rate", 0, "open loop at this many req/s in all (go only; 0: closed loop)")
	flag.BoolVar(&cfg.PerSecond, "per-second", false, "also print the p99 of every second (go only)")
	flag.DurationVar(&cfg.Timeout, "timeout", 5*time.Second, "per-request timeout")
	flag.StringVar(&tool, "tool", "go", "go or wrk")
	flag.Parse()
	if err := run(cfg, keysPath, tool); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

func run(cfg loadgen.Config, keysPath, tool string) error {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-url %q: only loopback IP addresses are allowed", cfg.URL)
	}
	if keysPath != "" {
		b, err := os.ReadFile(keysPath)
		if err != nil {
			return err
		}
		cfg.Tokens = strings.Fields(string(b))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var res loadgen.Result
	switch tool {
	case "go":
		res, err = loadgen.RunGo(ctx, cfg)
	case "wrk":
		wrk := loadgen.FindWrk()
		if wrk == "" {
			return fmt.Errorf("wrk is not installed (apt-get install -y wrk)")
		}
		res, err = loadgen.RunWrk(ctx, wrk, cfg)
	default:
		return fmt.Errorf("-tool %q: want go or wrk", tool)
	}
	if err != nil && res.Requests == 0 {
		return err
	}
	fmt.Printf("tool %s: %d requests in %v, %.0f req/s, non-2xx %d, errors %d\n", res.Tool, res.Requests, res.Elapsed.Round(time.Millisecond), res.RPS(), res.Non2xx, res.Errors)
	fmt.Printf("latency p50 %v  p99 %v  p99.9 %v  max %v\n", res.P50, res.P99, res.P999, res.Max)
	if len(res.Seconds) > 0 {
		fmt.Print("p99 of every second, ms:")
		for _, d := range res.Seconds {
			fmt.Printf(" %.1f", float64(d)/float64(time.Millisecond))
		}
		fmt.Println()
	}
	return nil
}
