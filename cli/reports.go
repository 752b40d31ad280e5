package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func (a *app) usageCmd() *cobra.Command {
	var keyID, userID, orgID, interval string
	var from, to timeFlag
	c := &cobra.Command{
		Use:   "usage (--key-id ID | --user-id ID | --org-id ID)",
		Short: "Show request counts of a key, a user's personal keys or an org's keys",
		Args:  args(),
		RunE: a.action(func(cmd *cobra.Command, _ []string) error {
			c, err := a.ready(cmd, false)
			if err != nil {
				return err
			}
			q := url.Values{}
			for k, v := range map[string]string{"key_id": keyID, "user_id": userID, "org_id": orgID, "interval": interval} {
				if v != "" {
					q.Set(k, v)
				}
			}
			for k, t := range map[string]*timeFlag{"from": &from, "to": &to} {
				if t.unix != nil {
					q.Set(k, strconv.FormatInt(*t.unix, 10))
				}
			}
			b, err := c.do(cmd.Context(), "GET", "/v1/usage", q, nil)
			if err != nil {
				return err
			}
			if c.output == "json" {
				return c.print(b)
			}
			return c.usageTable(b)
		}),
	}
	f := c.Flags()
	f.StringVar(&keyID, "key-id", "", "one key")
	f.StringVar(&userID, "user-id", "", "all of a user's personal keys")
	f.StringVar(&orgID, "org-id", "", "all of an org's keys")
	f.StringVar(&interval, "interval", "", "minute, hour (default) or day")
	f.Var(&from, "from", "start: unix seconds or RFC 3339 (default: a day before --to)")
	f.Var(&to, "to", "end: unix seconds or RFC 3339 (default: now)")
	c.MarkFlagsOneRequired("key-id", "user-id", "org-id")
	c.MarkFlagsMutuallyExclusive("key-id", "user-id", "org-id")
	a.clientFlags(c)
	return c
}

// usageTable prints the points with traffic and the total.
func (c *client) usageTable(b []byte) error {
	var u struct {
		Interval string `json:"interval"`
		Points   []struct {
			T           int64 `json:"t"`
			Allowed     int64 `json:"allowed"`
			RateLimited int64 `json:"rate_limited"`
		} `json:"points"`
		Total int64 `json:"total"`
	}
	if err := json.Unmarshal(b, &u); err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	w := bufio.NewWriter(c.stdout)
	fmt.Fprintf(w, "%-21s %10s %12s\n", strings.ToUpper(u.Interval), "ALLOWED", "RATE LIMITED")
	for _, p := range u.Points {
		if p.Allowed+p.RateLimited > 0 {
			fmt.Fprintf(w, "%-21s %10d %12d\n", fmtUnix(p.T), p.Allowed, p.RateLimited)
		}
	}
	fmt.Fprintf(w, "total: %d\n", u.Total)
	return w.Flush()
}

func (a *app) auditCmd() *cobra.Command {
	params := map[string]*string{}
	c := &cobra.Command{
		Use:   "audit",
		Short: "Show the audit log, newest first",
		Args:  args(),
		RunE: a.action(func(cmd *cobra.Command, _ []string) error {
			c, err := a.ready(cmd, true)
			if err != nil {
				return err
			}
			q := url.Values{}
			for name, v := range params {
				if *v != "" {
					q.Set(strings.ReplaceAll(name, "-", "_"), *v)
				}
			}
			b, err := c.do(cmd.Context(), "GET", "/v1/audit", q, nil)
			if err != nil {
				return err
			}
			if c.output == "json" {
				return c.print(b)
			}
			var page struct {
				Events []json.RawMessage `json:"events"`
			}
			if err := json.Unmarshal(b, &page); err != nil {
				return fmt.Errorf("read answer: %w", err)
			}
			return c.table("events", page.Events)
		}),
	}
	for _, p := range [][2]string{
		{"key-id", "events of this key"}, {"user-id", "events of this user"}, {"org-id", "events of this org"},
		{"action", "one action, such as api_key.created"}, {"before", "events older than this event id (paging)"},
		{"limit", "events to show (default 100)"},
	} {
		params[p[0]] = c.Flags().String(p[0], "", p[1])
	}
	a.clientFlags(c)
	return c
}

func (a *app) validateCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "validate [api-key | -]",
		Short: "Check an API key as the proxy would (counts as a request)",
		Long: `Check an API key as the proxy would: it counts towards usage and rate limits.
Without an argument, or with "-", the key is read from stdin, which keeps it
out of the shell history and the process list.`,
		Args: func(cmd *cobra.Command, got []string) error {
			if len(got) > 1 {
				return fmt.Errorf("%s: want at most one <api-key>, got %d arguments", cmd.CommandPath(), len(got))
			}
			return nil
		},
	}
	c.RunE = a.action(func(cmd *cobra.Command, args []string) error {
		c, err := a.ready(cmd, false)
		if err != nil {
			return err
		}
		token := ""
		if len(args) == 1 && args[0] != "-" {
			token = args[0]
		} else {
			line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
			if err != nil && line == "" {
				return usagef("validate: no API key given (as an argument or on stdin)")
			}
			token = strings.TrimSpace(line)
		}
		b, err := c.do(cmd.Context(), "POST", "/v1/validate", nil, map[string]string{"api_key": token})
		if err != nil {
			return err
		}
		return c.print(b)
	})
	a.clientFlags(c)
	return c
}

func (a *app) portalLinksCmd() *cobra.Command {
	var userID, orgID string
	var ttl time.Duration
	create := &cobra.Command{
		Use:   "create --user-id ID [--org-id ID] [--ttl 15m]",
		Short: "Mint a single-use link to the self-service pages for a user",
		Args:  args(),
		RunE: a.call("POST", "/v1/portal-links", func(cmd *cobra.Command) (any, error) {
			body := map[string]any{"user_id": userID}
			if orgID != "" {
				body["org_id"] = orgID
			}
			if cmd.Flags().Changed("ttl") {
				if ttl < time.Second || ttl%time.Second != 0 {
					return nil, usagef("--ttl: must be whole seconds, at least 1s")
				}
				body["ttl_seconds"] = int64(ttl / time.Second)
			}
			return body, nil
		}),
	}
	create.Flags().StringVar(&userID, "user-id", "", "the user the link signs in (required)")
	create.Flags().StringVar(&orgID, "org-id", "", "also manage this org's keys (the user's role must allow it)")
	create.Flags().DurationVar(&ttl, "ttl", 0, "how long the link is valid (default: portal.link_ttl)")
	create.MarkFlagRequired("user-id")
	g := a.group("portal-links", "Mint links to the hosted self-service pages", create)
	a.clientFlags(g)
	return g
}
