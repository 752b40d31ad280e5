package cli

import (
	"errors"
	"fmt"

	"github.com/keygate/keygate/config"
	"github.com/spf13/cobra"
)

// ClientEnv returns the KEYGATE_ variables the client reads that are not
// configuration keys (KEYGATE_ADMIN_TOKEN is both), so that they are not
// reported as unknown.
func ClientEnv() []string { return []string{"KEYGATE_ADMIN_URL"} }

func (a *app) configCmd() *cobra.Command {
	var path string
	check := &cobra.Command{
		Use:   "check [--config keygate.yaml]",
		Short: "Validate the config file and the KEYGATE_ environment",
		Long: `Validate the config file (default keygate.yaml, if it exists) with the
environment's KEYGATE_ overrides, as "keygate serve" would, and report every
problem. KEYGATE_ variables that set no configuration key are errors here
(serve only warns about them). Exits 0 when all is well, 1 otherwise.`,
		Args: args(),
		RunE: a.action(func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			var problems []string
			cfg, err := config.Load(path, a.opts.Env)
			var ce *config.Error
			switch {
			case errors.As(err, &ce):
				for _, p := range ce.Problems {
					problems = append(problems, p.Error())
				}
			case err != nil:
				problems = append(problems, err.Error())
			}
			for _, p := range config.UnknownEnv(a.opts.Env, ClientEnv()...) {
				problems = append(problems, "env "+p.Error())
			}
			file := path
			if cfg != nil {
				file = cfg.File
			}
			if file == "" {
				file = "(no file: defaults and environment)"
			}
			if len(problems) > 0 {
				for _, p := range problems {
					fmt.Fprintln(cmd.ErrOrStderr(), p)
				}
				return fmt.Errorf("config %s: %d problem(s)", file, len(problems))
			}
			fmt.Fprintf(out, "config %s: OK\n", file)
			return nil
		}),
	}
	check.Flags().StringVar(&path, "config", "", "YAML config file (default keygate.yaml, if it exists)")
	return a.group("config", "Check the configuration", check)
}
