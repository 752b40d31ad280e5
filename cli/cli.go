// Package cli is keygate's command line: serve, the admin API client,
// key imports, config check, version and shell completion, on spf13/cobra.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// Exit statuses of Run.
const (
	ExitOK          = 0 // success
	ExitRefused     = 1 // the admin API refused (4xx/5xx), or another failure
	ExitUsage       = 2 // bad usage: unknown command or flag, wrong arguments
	ExitUnreachable = 3 // the admin port cannot be reached
)

// Options are what Run needs from its process. Nil readers and writers
// read nothing and discard.
type Options struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Env is the environment, in os.Environ form.
	Env []string
	// Serve runs the gateway with the config file at path ("" for the
	// default) until ctx is done. main wires it; nil refuses serve.
	Serve func(ctx context.Context, configPath string) error
	// Version overrides the module version from the build info when not
	// "" or "dev" (set by -ldflags "-X main.version=…").
	Version string
	// BuildInfo returns the build info; nil means debug.ReadBuildInfo.
	BuildInfo func() (*debug.BuildInfo, bool)
	// IsTerminal reports whether w is a terminal, for the import progress
	// bar; nil checks whether w is an *os.File on a terminal.
	IsTerminal func(w io.Writer) bool
}

// Run runs the command line args (without the program name) and returns
// the process's exit status. Errors are printed on Stderr.
func Run(ctx context.Context, args []string, o Options) int {
	if o.Stdin == nil {
		o.Stdin = strings.NewReader("")
	}
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	if o.BuildInfo == nil {
		o.BuildInfo = debug.ReadBuildInfo
	}
	if o.IsTerminal == nil {
		o.IsTerminal = isTerminal
	}
	a := &app{opts: o}
	root := a.root()
	root.SetArgs(args)
	root.SetIn(o.Stdin)
	root.SetOut(o.Stdout)
	root.SetErr(o.Stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	code := a.exitCode(err)
	fmt.Fprintf(o.Stderr, "error: %v\n", err)
	if code == ExitUsage && !a.ran {
		fmt.Fprintln(o.Stderr, "Run 'keygate --help' (or add --help to the command) for usage.")
	}
	return code
}

// app is one run of the command line.
type app struct {
	opts   Options
	client client // set by the API commands' flags
	// ran is set once a command's own code starts: an error before that
	// is cobra refusing the command line, which is bad usage.
	ran bool
}

// usageError is bad usage found by a command's own checks.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// unreachableError is a call that never got an HTTP answer.
type unreachableError struct{ err error }

func (e *unreachableError) Error() string {
	return "cannot reach the admin port: " + e.err.Error()
}
func (e *unreachableError) Unwrap() error { return e.err }

func (a *app) exitCode(err error) int {
	var (
		ue *usageError
		un *unreachableError
	)
	switch {
	case errors.As(err, &ue), !a.ran:
		return ExitUsage
	case errors.As(err, &un):
		return ExitUnreachable
	}
	return ExitRefused
}

// action wraps a command's code so that Run tells its errors from cobra's.
func (a *app) action(fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		a.ran = true
		return fn(cmd, args)
	}
}

// args is a positional-argument check that names the arguments wanted.
func args(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, got []string) error {
		if len(got) == len(names) {
			return nil
		}
		want := "no arguments"
		if len(names) > 0 {
			want = "<" + strings.Join(names, "> <") + ">"
		}
		return fmt.Errorf("%s: want %s, got %d argument(s)", cmd.CommandPath(), want, len(got))
	}
}

// group returns a command that only holds subcommands: run bare, or with
// an unknown subcommand, it is bad usage (cobra would print help and exit 0).
func (a *app) group(use, short string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use:   use + " <command>",
		Short: short,
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("%s: missing command (one of: %s)", cmd.CommandPath(), subNames(cmd))
			}
			return usagef("unknown command %q for %q (one of: %s)", args[0], cmd.CommandPath(), subNames(cmd))
		},
	}
	c.AddCommand(subs...)
	return c
}

func subNames(cmd *cobra.Command) string {
	var names []string
	for _, c := range cmd.Commands() {
		if c.IsAvailableCommand() {
			names = append(names, c.Name())
		}
	}
	return strings.Join(names, ", ")
}

func (a *app) root() *cobra.Command {
	root := &cobra.Command{
		Use:   "keygate",
		Short: "keygate — an API-key gateway",
		Long: `keygate — an API-key gateway.

"keygate serve" runs the gateway. The keys, users, orgs, members, usage,
audit, validate and portal-links commands talk to a running admin port
(--admin-url or KEYGATE_ADMIN_URL, --token or KEYGATE_ADMIN_TOKEN).

Exit status: 0 success, 1 the API refused (4xx/5xx) or another failure,
2 bad usage, 3 cannot reach the admin port.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return usagef("missing command (one of: %s)", subNames(cmd))
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	// --version, as before the move to cobra, prints what "version" prints.
	info, _ := a.opts.BuildInfo()
	root.Version = versionLine(a.opts.Version, info)
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &usageError{err}
	})
	root.AddCommand(
		a.serveCmd(),
		a.keysCmd(),
		a.usersCmd(),
		a.orgsCmd(),
		a.membersCmd(),
		a.usageCmd(),
		a.auditCmd(),
		a.validateCmd(),
		a.portalLinksCmd(),
		a.configCmd(),
		a.versionCmd(),
		a.completionCmd(),
	)
	return root
}

func (a *app) serveCmd() *cobra.Command {
	var path string
	c := &cobra.Command{
		Use:   "serve [--config keygate.yaml]",
		Short: "Run the gateway",
		Long: `Run the gateway: the proxy port and the admin port, until SIGTERM or SIGINT.

The config file defaults to keygate.yaml when it exists; every key can be
overridden by env KEYGATE_<SECTION>_<KEY>. Unknown KEYGATE_ variables are
warned about (see "keygate config check").`,
		Args: args(),
		RunE: a.action(func(cmd *cobra.Command, _ []string) error {
			if a.opts.Serve == nil {
				return errors.New("serve is not available in this build")
			}
			return a.opts.Serve(cmd.Context(), path)
		}),
	}
	c.Flags().StringVar(&path, "config", "", "YAML config file (default keygate.yaml, if it exists)")
	return c
}

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and VCS revision of this binary",
		Args:  args(),
		RunE: a.action(func(cmd *cobra.Command, _ []string) error {
			info, _ := a.opts.BuildInfo()
			fmt.Fprintln(cmd.OutOrStdout(), versionLine(a.opts.Version, info))
			return nil
		}),
	}
}

// versionLine is "keygate <version> (<module>, revision <rev>[+dirty], <time>, <go>)"
// from the build info; what the build does not record is left out.
func versionLine(override string, info *debug.BuildInfo) string {
	version := "(unknown)"
	var parts []string
	if info != nil {
		if v := info.Main.Version; v != "" {
			version = v
		}
		if info.Main.Path != "" {
			parts = append(parts, info.Main.Path)
		}
		var rev, at, modified string
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
		if rev != "" {
			if modified == "true" {
				rev += "+dirty"
			}
			parts = append(parts, "revision "+rev)
		} else {
			parts = append(parts, "revision unknown")
		}
		if at != "" {
			parts = append(parts, at)
		}
		if info.GoVersion != "" {
			parts = append(parts, info.GoVersion)
		}
	}
	if override != "" && override != "dev" {
		version = override
	}
	if len(parts) == 0 {
		return "keygate " + version
	}
	return "keygate " + version + " (" + strings.Join(parts, ", ") + ")"
}

func (a *app) completionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Print a shell completion script",
		Long: `Print a completion script for bash, zsh or fish. For example:

  keygate completion bash > /etc/bash_completion.d/keygate
  keygate completion zsh > "${fpath[1]}/_keygate"
  keygate completion fish > ~/.config/fish/completions/keygate.fish`,
		ValidArgs: []string{"bash", "zsh", "fish"},
		Args:      args("shell"),
		RunE: a.action(func(cmd *cobra.Command, args []string) error {
			out, root := cmd.OutOrStdout(), cmd.Root()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(out, true)
			case "zsh":
				return root.GenZshCompletion(out)
			case "fish":
				return root.GenFishCompletion(out, true)
			}
			return usagef("completion: %q is not bash, zsh or fish", args[0])
		}),
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && termIsTerminal(int(f.Fd()))
}
