package loadgen

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

//go:embed wrk.lua
var wrkScript []byte

// FindWrk returns the path of wrk, or "" when it is not installed.
func FindWrk() string {
	p, err := exec.LookPath("wrk")
	if err != nil {
		return ""
	}
	return p
}

// WrkVersion returns wrk's first line of `wrk -v`, such as "wrk debian/4.1.0".
func WrkVersion(wrk string) string {
	out, _ := exec.Command(wrk, "-v").CombinedOutput() // exits 1 after printing
	line, _, _ := strings.Cut(string(out), "\n")
	if f := strings.Fields(line); len(f) >= 2 {
		return f[0] + " " + f[1]
	}
	return "wrk"
}

// RunWrk drives cfg.URL with wrk at the path given. Its script and the token
// file go in a temporary directory that is removed afterwards. wrk stops by
// itself after Duration; it is killed if it has not 30 s later or ctx ends.
func RunWrk(ctx context.Context, wrk string, cfg Config) (Result, error) {
	if err := cfg.check(); err != nil {
		return Result{}, err
	}
	dir, err := os.MkdirTemp("", "kgbench-wrk-")
	if err != nil {
		return Result{}, fmt.Errorf("wrk: %w", err)
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(dir, "keys.lua")
	if err := os.WriteFile(script, wrkScript, 0o600); err != nil {
		return Result{}, fmt.Errorf("wrk: %w", err)
	}
	tokens := filepath.Join(dir, "tokens.txt")
	if err := os.WriteFile(tokens, []byte(strings.Join(cfg.Tokens, "\n")+"\n"), 0o600); err != nil {
		return Result{}, fmt.Errorf("wrk: %w", err)
	}
	threads := cfg.Threads
	if threads <= 0 {
		threads = min(runtime.GOMAXPROCS(0), cfg.Conns)
	}
	secs := max(1, int((cfg.Duration+time.Second-1)/time.Second)) // wrk takes whole seconds
	ctx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, wrk,
		"-t", strconv.Itoa(threads), "-c", strconv.Itoa(cfg.Conns),
		"-d", strconv.Itoa(secs)+"s", "--timeout", strconv.Itoa(max(1, int(cfg.timeout()/time.Second)))+"s",
		"-s", script, cfg.URL, "--", tokens)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the runner
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return Result{}, fmt.Errorf("wrk: %w: %s", err, strings.TrimSpace(out.String()))
	}
	res, err := parseWrk(out.Bytes())
	if err != nil {
		return Result{}, fmt.Errorf("wrk: %w: %s", err, strings.TrimSpace(out.String()))
	}
	return res, nil
}

// parseWrk reads the KGBENCH line that wrk.lua's done() prints.
func parseWrk(out []byte) (Result, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "KGBENCH ")
		if !ok {
			continue
		}
		v := map[string]uint64{}
		for _, f := range strings.Fields(line) {
			k, s, _ := strings.Cut(f, "=")
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return Result{}, fmt.Errorf("parse %q: %w", f, err)
			}
			v[k] = n
		}
		us := func(k string) time.Duration { return time.Duration(v[k]) * time.Microsecond }
		return Result{
			Tool:     "wrk",
			Requests: v["requests"],
			Non2xx:   v["status"],
			Errors:   v["connect"] + v["read"] + v["write"] + v["timeout"],
			Elapsed:  us("duration_us"),
			P50:      us("p50_us"),
			P99:      us("p99_us"),
			P999:     us("p999_us"),
			Max:      us("max_us"),
		}, nil
	}
	return Result{}, fmt.Errorf("no KGBENCH line in output")
}
