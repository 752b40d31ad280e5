// Command bench is keygate's load benchmark. `go run ./bench` builds keygate
// and the helpers, starts an echo upstream, a minimal fasthttp proxy (the
// reference), a bare fasthttp proxy doing keygate's header work, nginx and
// HAProxy with key maps (when installed) and keygate on 127.0.0.1, drives
// them with the same load in rounds that rotate the order and prints
// throughput, latency percentiles and each one's ratio to the minimal proxy;
// then floods keygate with unknown and malformed keys. See bench/README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/keygate/keygate/bench/loadgen"
	"github.com/keygate/keygate/keys"
)

type options struct {
	duration    time.Duration
	warmup      time.Duration
	conns       int
	rounds      int
	load        string // auto, wrk or go
	perSecond   bool   // print each fixed-rate run's per-second p99s
	against     string // keygate, bare or echo
	keygateBin  string
	baseline    string // a second keygate binary, measured beside the first
	nKeys       int
	flood       time.Duration
	floodKeys   int
	negativeTTL time.Duration
	million     bool
	millionN    int
	touchN      int
	millionDB   string // sqlite or postgres
	postgres    string // server DSN for -million-store postgres
	stream      bool
	keep        bool
	forwardAuth bool    // also nginx alone vs nginx + keygate forward auth (forward.go)
	rate        float64 // fixed rate of the latency phase; 0 = rateShare of bare's req/s, < 0 = skip
	rateShare   float64 // percent
	rateDur     time.Duration
	peers       bool
	coldStart   bool
}

func main() {
	var o options
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of each measured run")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured run per target before round 1")
	flag.IntVar(&o.conns, "conns", 64, "connections, one request in flight each")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds; each runs every target once, rotating the order")
	flag.StringVar(&o.load, "load", "auto", "load generator: auto (wrk when installed, else go), wrk or go")
	flag.StringVar(&o.against, "against", "keygate", "what joins the minimal and bare proxies: keygate (and the peers), bare (a second bare proxy: harness self-test) or echo (the upstream, direct)")
	flag.StringVar(&o.keygateBin, "keygate-bin", "", "prebuilt keygate binary (default: go build the repository root)")
	flag.StringVar(&o.baseline, "baseline-bin", "", "another keygate binary (an earlier build) measured as target \"baseline\" in the same run, on the same database and keys")
	flag.IntVar(&o.nKeys, "keys", 1000, "valid keys (one per owner) in the pool")
	flag.DurationVar(&o.flood, "flood", 5*time.Second, "length of each bad-key flood (keygate only; 0 skips)")
	flag.IntVar(&o.floodKeys, "flood-keys", 1000, "distinct tokens in each flood")
	flag.DurationVar(&o.negativeTTL, "negative-ttl", 5*time.Second, "keygate cache.negative_ttl")
	flag.BoolVar(&o.million, "million", false, "also run the million-key test (keygate only)")
	flag.IntVar(&o.millionN, "million-n", 1_000_000, "keys seeded for -million")
	flag.IntVar(&o.touchN, "touch", 100_000, "distinct keys touched once each for -million")
	flag.StringVar(&o.millionDB, "million-store", "sqlite", "store of the -million test: sqlite or postgres (a database made on -postgres, dropped after)")
	flag.StringVar(&o.postgres, "postgres", defaultPostgres, "Postgres server for -million-store postgres")
	flag.Float64Var(&o.rate, "rate", 0, "req/s of the fixed-rate latency phase (0: -rate-share of the minimal proxy's median req/s; negative: skip)")
	flag.Float64Var(&o.rateShare, "rate-share", 50, "percent of the minimal proxy's throughput used as the fixed rate when -rate is 0")
	flag.DurationVar(&o.rateDur, "rate-duration", 0, "length of each fixed-rate run (0: -duration)")
	flag.BoolVar(&o.perSecond, "per-second", false, "print the p99 of every second of each fixed-rate run, not only the worst")
	flag.BoolVar(&o.coldStart, "cold-start", true, "restart keygate before each fixed-rate run, so that its first second is a cold start")
	flag.BoolVar(&o.peers, "peers", true, "also measure nginx and HAProxy (when installed; -against keygate only)")
	flag.BoolVar(&o.stream, "stream", false, "bare proxy streams every body (keygate streams only bodies over 64 KiB or of unknown length; the echo answers 2 bytes)")
	flag.BoolVar(&o.forwardAuth, "forward-auth", false, "also compare nginx alone with nginx + keygate forward auth (needs nginx; keygate only)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (configs, logs, databases)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C kills the runner at once; children get SIGKILL with it
	}()
	err := run(ctx, o)
	if ctx.Err() != nil {
		err = fmt.Errorf("interrupted")
	}
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// loader runs one load at a target with the chosen tool.
type loader struct {
	name string // for the report, e.g. "wrk debian/4.1.0-3+b2 (2 threads)"
	run  func(ctx context.Context, cfg loadgen.Config) (loadgen.Result, error)
}

func chooseLoader(kind string) (loader, error) {
	wrk := loadgen.FindWrk()
	switch {
	case kind == "wrk" && wrk == "":
		return loader{}, fmt.Errorf("-load wrk: wrk is not installed (apt-get install -y wrk)")
	case kind == "wrk" || kind == "auto" && wrk != "":
		threads := runtime.GOMAXPROCS(0)
		return loader{
			name: fmt.Sprintf("%s (%d threads, Lua script picking a random key per request)", loadgen.WrkVersion(wrk), threads),
			run: func(ctx context.Context, cfg loadgen.Config) (loadgen.Result, error) {
				cfg.Threads = threads
				return loadgen.RunWrk(ctx, wrk, cfg)
			},
		}, nil
	case kind == "go" || kind == "auto":
		name := "Go generator (bench/loadgen, fasthttp client, no pipelining)"
		if kind == "auto" {
			name += "; wrk not installed"
		}
		return loader{name: name, run: loadgen.RunGo}, nil
	}
	return loader{}, fmt.Errorf("-load %q: want auto, wrk or go", kind)
}

// env is what the stages of a run share.
type env struct {
	o      options
	root   string // repository root
	dir    string // temporary directory
	ps     *procs
	load   loader
	bins   map[string]string
	echo   string // upstream address
	tokens []string
}

func run(ctx context.Context, o options) error {
	switch {
	case o.duration <= 0 || o.conns <= 0 || o.rounds <= 0 || o.nKeys <= 0:
		return fmt.Errorf("-duration, -conns, -rounds and -keys must be positive")
	case o.against != "keygate" && o.against != "bare" && o.against != "echo":
		return fmt.Errorf("-against %q: want keygate, bare or echo", o.against)
	case o.million && o.against != "keygate":
		return fmt.Errorf("-million needs -against keygate")
	case o.forwardAuth && o.against != "keygate":
		return fmt.Errorf("-forward-auth needs -against keygate")
	}
	load, err := chooseLoader(o.load)
	if err != nil {
		return err
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "kgbench-")
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if o.keep || !ok && ctx.Err() == nil {
			fmt.Fprintln(os.Stderr, "# kept", dir, "(configs, logs, databases)")
			return
		}
		os.RemoveAll(dir)
	}()
	ps := &procs{}
	defer func() { ps.stopAll() }()
	e := &env{o: o, root: root, dir: dir, ps: ps, load: load, bins: map[string]string{}}

	if err := e.build(ctx); err != nil {
		return err
	}
	if e.echo, err = e.startEcho(ctx); err != nil {
		return err
	}
	minimal, err := e.startProxy(ctx, "minimal", "minproxy")
	if err != nil {
		return err
	}
	bare, err := e.startBare(ctx, "bare")
	if err != nil {
		return err
	}
	ts := []target{{name: "minimal", url: "http://" + minimal + "/", pgid: e.ps.pgid("minimal")}, {name: "bare", url: "http://" + bare + "/", pgid: e.ps.pgid("bare")}}
	var other target
	var kg *keygateRun
	switch o.against {
	case "keygate":
		if kg, err = e.startMainKeygate(ctx); err != nil {
			return err
		}
		other = target{name: "keygate", url: "http://" + kg.conf.proxyAddr + "/", pgid: kg.p.pid()}
		if o.coldStart {
			other.restart = func(ctx context.Context) (int, error) { return e.restartKeygate(ctx, kg) }
		}
		if o.baseline != "" {
			base, err := e.startBaseline(ctx, kg)
			if err != nil {
				return err
			}
			t := target{name: "baseline", url: "http://" + base.conf.proxyAddr + "/", pgid: base.p.pid()}
			if o.coldStart {
				t.restart = func(ctx context.Context) (int, error) { return e.restartKeygate(ctx, base) }
			}
			ts = append(ts, t)
		}
	case "bare":
		addr, err := e.startBare(ctx, "bare2")
		if err != nil {
			return err
		}
		other = target{name: "bare2", url: "http://" + addr + "/", pgid: e.ps.pgid("bare2")}
	case "echo":
		other = target{name: "echo", url: "http://" + e.echo + "/"}
	}
	if e.tokens == nil { // no keygate to issue keys: any well-formed tokens do
		if e.tokens, err = newTokens(o.nKeys, true); err != nil {
			return err
		}
	}

	var missing []string
	if kg != nil && o.peers {
		for _, name := range []string{"nginx", "haproxy"} {
			addr, why, err := e.startPeer(ctx, name)
			if err != nil {
				return err
			}
			if why != "" {
				missing = append(missing, name+": not measured: "+why)
				continue
			}
			ts = append(ts, target{name: name, url: "http://" + addr + "/", pgid: e.ps.pgid(name)})
		}
	}
	ts = append(ts, other)

	printHeader(e, ts)
	if err := e.compare(ctx, ts, missing); err != nil {
		return err
	}
	if kg != nil && o.flood > 0 {
		if err := e.floods(ctx, kg); err != nil {
			return err
		}
	}
	if kg != nil && o.forwardAuth {
		if err := e.forwardAuthCompare(ctx, kg); err != nil {
			return err
		}
	}
	if o.million {
		// Only the upstream stays up: the million-key keygate gets the machine.
		for _, p := range *ps {
			if p.name != "echo" {
				p.stop(5 * time.Second)
			}
		}
		if err := e.millionKeys(ctx); err != nil {
			return err
		}
	}
	ok = true
	return nil
}

// repoRoot is the directory of the main module's go.mod.
func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("run from inside the keygate repository")
	}
	return filepath.Dir(mod), nil
}

// build compiles the helpers and, when needed, keygate into the temp dir.
func (e *env) build(ctx context.Context) error {
	gobuild := func(out string, pkgs ...string) error {
		cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-o", out}, pkgs...)...)
		cmd.Dir = e.root
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w\n%s", strings.Join(pkgs, " "), err, b)
		}
		return nil
	}
	fmt.Fprintln(os.Stderr, "# building echo, minproxy and bareproxy")
	if err := gobuild(e.dir+"/", "./bench/echo", "./bench/minproxy", "./bench/bareproxy"); err != nil {
		return err
	}
	for _, b := range []string{"echo", "minproxy", "bareproxy"} {
		e.bins[b] = e.dir + "/" + b
	}
	if e.o.against != "keygate" {
		return nil
	}
	if e.o.keygateBin != "" {
		e.bins["keygate"] = e.o.keygateBin
		return nil
	}
	fmt.Fprintln(os.Stderr, "# building keygate")
	if err := gobuild(e.dir+"/keygate", "."); err != nil {
		return fmt.Errorf("%w\n(to test the harness without keygate: go run ./bench -against bare)", err)
	}
	e.bins["keygate"] = e.dir + "/keygate"
	return nil
}

func (e *env) startEcho(ctx context.Context) (string, error) {
	addr, err := freeAddr()
	if err != nil {
		return "", err
	}
	p, err := startProc("echo", e.dir+"/echo.log", e.bins["echo"], "-addr", addr)
	if err != nil {
		return "", err
	}
	e.ps.add(p)
	return addr, waitTCP(ctx, p, addr, 10*time.Second)
}

// startProxy starts a Go proxy helper (bin) in front of the upstream.
func (e *env) startProxy(ctx context.Context, name, bin string, args ...string) (string, error) {
	addr, err := freeAddr()
	if err != nil {
		return "", err
	}
	p, err := startProc(name, e.dir+"/"+name+".log", e.bins[bin], append([]string{"-listen", addr, "-upstream", "http://" + e.echo}, args...)...)
	if err != nil {
		return "", err
	}
	e.ps.add(p)
	return addr, waitTCP(ctx, p, addr, 10*time.Second)
}

func (e *env) startBare(ctx context.Context, name string) (string, error) {
	return e.startProxy(ctx, name, "bareproxy", fmt.Sprintf("-stream=%v", e.o.stream))
}

// keygateRun is a started keygate and how to reach it.
type keygateRun struct {
	name  string // process name: keygate or baseline
	bin   string
	p     *proc
	conf  keygateConf
	admin *admin
}

// newKeygateConf picks free ports and a fresh database path under sub.
func (e *env) newKeygateConf(sub string) (keygateConf, error) {
	proxyAddr, err := freeAddr()
	if err != nil {
		return keygateConf{}, err
	}
	adminAddr, err := freeAddr()
	if err != nil {
		return keygateConf{}, err
	}
	if err := os.MkdirAll(e.dir+"/"+sub, 0o700); err != nil {
		return keygateConf{}, err
	}
	return keygateConf{
		proxyAddr: proxyAddr, adminAddr: adminAddr, upstream: e.echo,
		adminToken: randomHex(16), dbPath: e.dir + "/" + sub + "/keygate.db", negativeTTL: e.o.negativeTTL,
	}, nil
}

// startMainKeygate starts keygate, seeds the key pool through the admin API
// and checks that a key gets through and an unknown one does not.
func (e *env) startMainKeygate(ctx context.Context) (*keygateRun, error) {
	c, err := e.newKeygateConf("main")
	if err != nil {
		return nil, err
	}
	p, up, ready, err := startKeygate(ctx, e.ps, "keygate", e.bins["keygate"], e.dir, c)
	if err != nil {
		return nil, err
	}
	kg := &keygateRun{name: "keygate", bin: e.bins["keygate"], p: p, conf: c, admin: newAdmin(c.adminAddr, c.adminToken)}
	fmt.Fprintf(os.Stderr, "# keygate serving in %v, ready in %v; seeding %d users with one personal key each\n", up.Round(time.Millisecond), ready.Round(time.Millisecond), e.o.nKeys)
	t0 := time.Now()
	if e.tokens, err = kg.admin.seedUsers(ctx, e.o.nKeys); err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "# seeded in %v\n", time.Since(t0).Round(time.Millisecond))
	if err := checkKeygate(ctx, "http://"+c.proxyAddr+"/", e.tokens[0]); err != nil {
		return nil, err
	}
	return kg, nil
}

// startBaseline starts the -baseline-bin keygate on main's database (SQLite
// takes two processes), on ports of its own, so that both builds serve the
// same keys.
func (e *env) startBaseline(ctx context.Context, main *keygateRun) (*keygateRun, error) {
	c, err := e.newKeygateConf("baseline")
	if err != nil {
		return nil, err
	}
	c.dbPath = main.conf.dbPath
	kg := &keygateRun{name: "baseline", bin: e.o.baseline, conf: c}
	if kg.p, _, _, err = startKeygate(ctx, e.ps, kg.name, kg.bin, e.dir, c); err != nil {
		return nil, err
	}
	if err := checkKeygate(ctx, "http://"+c.proxyAddr+"/", e.tokens[0]); err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	return kg, nil
}

// restartKeygate stops a keygate and starts it again on the same config and
// database: the same keys and ports, empty caches.
func (e *env) restartKeygate(ctx context.Context, kg *keygateRun) (int, error) {
	kg.p.stop(5 * time.Second)
	p, _, _, err := startKeygate(ctx, e.ps, kg.name, kg.bin, e.dir, kg.conf)
	if err != nil {
		return 0, err
	}
	kg.p = p
	return p.pid(), nil
}

// newTokens returns n random well-formed keygate personal tokens, unknown to
// any store; with valid false, each fails its checksum.
func newTokens(n int, valid bool) ([]string, error) {
	tk, err := keys.NewTokens("kg")
	if err != nil {
		return nil, err
	}
	out := make([]string, n)
	for i := range out {
		if out[i], err = tk.New(keys.TypePersonal); err != nil {
			return nil, err
		}
		if !valid {
			out[i] = flipLast(out[i])
		}
	}
	return out, nil
}

// flipLast changes a token's last character to another base62 one, which
// breaks its checksum.
func flipLast(tok string) string {
	c := tok[len(tok)-1]
	r := byte('0')
	if c == '0' {
		r = '1'
	}
	return tok[:len(tok)-1] + string(r)
}
