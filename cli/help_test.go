package cli

import (
	"bytes"
	"context"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// TestHelpEverywhere: --help on every command and group exits 0 and lists
// its subcommands, its flags and its positional arguments.
func TestHelpEverywhere(t *testing.T) {
	root := (&app{opts: Options{BuildInfo: func() (*debug.BuildInfo, bool) { return nil, false }}}).root()
	var walk func(c *cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" {
			return
		}
		n++
		path := strings.Fields(c.CommandPath())[1:]
		t.Run(strings.Join(append([]string{"keygate"}, path...), " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := Run(context.Background(), append(path, "--help"), Options{Stdout: &out, Stderr: &errOut})
			help := out.String()
			if code != 0 || errOut.Len() != 0 || !strings.Contains(help, "Usage:") {
				t.Fatalf("exit %d, stderr %q, stdout:\n%s", code, errOut.String(), help)
			}
			for _, sub := range c.Commands() {
				if sub.IsAvailableCommand() && !strings.Contains(help, "  "+sub.Name()+" ") {
					t.Errorf("help misses subcommand %s:\n%s", sub.Name(), help)
				}
			}
			c.Flags().VisitAll(func(f *pflag.Flag) {
				if !strings.Contains(help, "--"+f.Name) {
					t.Errorf("help misses flag --%s", f.Name)
				}
			})
			c.InheritedFlags().VisitAll(func(f *pflag.Flag) {
				if !strings.Contains(help, "--"+f.Name) {
					t.Errorf("help misses inherited flag --%s", f.Name)
				}
			})
			// Positional arguments are named in the usage line, as <id>.
			if use := c.Use; strings.Contains(use, "<") && !strings.Contains(help, use) {
				t.Errorf("help misses the usage line %q", use)
			}
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	if n < 30 {
		t.Fatalf("walked %d commands, want every one", n)
	}
}

func TestVersionLine(t *testing.T) {
	info := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "github.com/keygate/keygate", Version: "v1.2.3"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	for _, tt := range []struct {
		name, override string
		info           *debug.BuildInfo
		want           string
	}{
		{"full", "", info, "keygate v1.2.3 (github.com/keygate/keygate, revision abc123+dirty, 2026-12-01T10:00:00Z, go1.26.0)"},
		{"ldflags version wins", "v9", info, "keygate v9 (github.com/keygate/keygate, revision abc123+dirty, 2026-12-01T10:00:00Z, go1.26.0)"},
		{"dev does not", "dev", info, "keygate v1.2.3 (github.com/keygate/keygate, revision abc123+dirty, 2026-12-01T10:00:00Z, go1.26.0)"},
		{"no vcs", "", &debug.BuildInfo{Main: debug.Module{Path: "m", Version: "(devel)"}}, "keygate (devel) (m, revision unknown)"},
		{"no info", "", nil, "keygate (unknown)"},
	} {
		if got := versionLine(tt.override, tt.info); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[string]string{"24h": "24h", "1h30m": "1h30m", "0s": "0s", "90s": "1m30s", "2m": "2m"} {
		pd, _ := time.ParseDuration(d)
		if got := formatDuration(pd); got != want {
			t.Errorf("%s: %q", d, got)
		}
	}
}
