package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a server the runner started. Its output goes to a log file.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	started time.Time
	exited  chan struct{} // closed once the process has exited; err is set then
	err     error
}

// startProc starts bin with args, its output in logPath. The child gets its
// own process group, so a Ctrl-C reaches only the runner, which stops it, and
// SIGKILL when the runner dies, so nothing outlives a crashed run.
func startProc(name, logPath, bin string, args ...string) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	defer f.Close() // the child has its own copy
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &proc{name: name, cmd: cmd, logPath: logPath, started: time.Now(), exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM, waits up to grace, then kills the process group.
func (p *proc) stop(grace time.Duration) {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(grace):
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.exited
	}
}

// died returns an error with the log's tail if the process has exited.
func (p *proc) died() error {
	select {
	case <-p.exited:
		return fmt.Errorf("%s exited (%v); last log lines:\n%s", p.name, p.err, p.logTail(15))
	default:
		return nil
	}
}

func (p *proc) logTail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    " + strings.Join(lines, "\n    ")
}

// procs stops every started process, last started first.
type procs []*proc

func (ps *procs) add(p *proc) { *ps = append(*ps, p) }

// pgid returns the process group of the last process started by that name
// (its pid: each is started in a group of its own), or 0.
func (ps procs) pgid(name string) int {
	for i := len(ps) - 1; i >= 0; i-- {
		if ps[i].name == name {
			return ps[i].pid()
		}
	}
	return 0
}

func (ps procs) stopAll() {
	for i := len(ps) - 1; i >= 0; i-- {
		ps[i].stop(5 * time.Second)
	}
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitTCP waits until addr accepts connections, p exits, or timeout passes.
func waitTCP(ctx context.Context, p *proc, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if err := p.died(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %s not accepting after %v: %w", p.name, addr, timeout, err)
		}
		if err := sleep(ctx, 5*time.Millisecond); err != nil {
			return err
		}
	}
}

// waitHTTP polls url every 2 ms until it answers 200 and returns the time
// since p was started.
func waitHTTP(ctx context.Context, p *proc, url string, timeout time.Duration) (time.Duration, error) {
	hc := &http.Client{Timeout: 500 * time.Millisecond}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := hc.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(p.started), nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		if err := p.died(); err != nil {
			return 0, err
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%s: %s not ready after %v: %w", p.name, url, timeout, err)
		}
		if err := sleep(ctx, 2*time.Millisecond); err != nil {
			return 0, err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// rss returns a process's resident set size and its peak (VmRSS, VmHWM) in bytes.
func rss(pid int) (cur, peak int64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, fmt.Errorf("read rss: %w", err)
	}
	field := func(name string) int64 {
		i := bytes.Index(b, []byte(name+":"))
		if i < 0 {
			return -1
		}
		f := strings.Fields(string(b[i+len(name)+1:]))
		if len(f) < 2 || f[1] != "kB" {
			return -1
		}
		kb, _ := strconv.ParseInt(f[0], 10, 64)
		return kb << 10
	}
	cur, peak = field("VmRSS"), field("VmHWM")
	if cur < 0 {
		return 0, 0, errors.New("read rss: no VmRSS in /proc status")
	}
	return cur, peak, nil
}

// groupCPU returns the user and system CPU time used so far by the live
// processes of process group pgid (a server and its workers: each server is
// started in a group of its own), from /proc/<pid>/stat; 0 for pgid 0.
func groupCPU(pgid int) time.Duration {
	if pgid <= 0 {
		return 0
	}
	dirs, _ := os.ReadDir("/proc")
	var ticks int64
	for _, d := range dirs {
		if d.Name()[0] < '0' || d.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue
		}
		pg, t, ok := parseStat(b)
		if ok && pg == pgid {
			ticks += t
		}
	}
	return time.Duration(ticks) * time.Second / clockTicks
}

// clockTicks is the kernel's USER_HZ, 100 on Linux.
const clockTicks = 100

// parseStat returns the process group and utime+stime (in clock ticks) of a
// /proc/<pid>/stat line. The command name may hold spaces and parentheses,
// so fields are counted after its last ')'.
func parseStat(b []byte) (pgrp int, ticks int64, ok bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, 0, false
	}
	pg, err1 := strconv.Atoi(f[2])
	ut, err2 := strconv.ParseInt(f[11], 10, 64)
	st, err3 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, 0, false
	}
	return pg, ut + st, true
}
