package cli

import (
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func (a *app) keysCmd() *cobra.Command {
	g := a.group("keys", "Create, list, change, roll, import and delete API keys",
		a.keysCreate(), a.keysList(),
		&cobra.Command{Use: "get <id>", Short: "Show a key", Args: args("id"), RunE: a.call("GET", "/v1/keys/%s", nil)},
		a.keysUpdate(),
		&cobra.Command{Use: "archive <id>", Short: "Archive a key: it stops working at once (idempotent)", Args: args("id"), RunE: a.call("POST", "/v1/keys/%s/archive", nil)},
		&cobra.Command{Use: "delete <id>", Short: "Delete a key and its usage; its audit events stay", Args: args("id"), RunE: a.call("DELETE", "/v1/keys/%s", nil)},
		a.keysRoll(),
		a.keysImport(),
	)
	a.clientFlags(g)
	return g
}

func (a *app) keysCreate() *cobra.Command {
	var typ, user, org, name, expiresIn string
	var meta jsonFlag
	var expiresAt timeFlag
	c := &cobra.Command{
		Use:   "create",
		Short: "Create a key and print it with its token (shown only once)",
		Args:  args(),
		RunE: a.call("POST", "/v1/keys", func(cmd *cobra.Command) (any, error) {
			body := map[string]any{}
			for k, v := range map[string]string{"type": typ, "user_id": user, "org_id": org, "display_name": name, "expires_in": expiresIn} {
				if v != "" {
					body[k] = v
				}
			}
			if meta.raw != nil {
				body["metadata"] = meta.raw
			}
			if expiresAt.unix != nil {
				body["expires_at"] = *expiresAt.unix
			}
			return body, nil
		}),
	}
	f := c.Flags()
	f.StringVar(&typ, "type", "", "personal, org or generic (default: from the owner)")
	f.StringVar(&user, "user-id", "", "owner (personal) or creator (org)")
	f.StringVar(&org, "org-id", "", "owning org")
	f.StringVar(&name, "display-name", "", "display name")
	f.StringVar(&expiresIn, "expires-in", "", "one of the configured expiration choices, such as 1mo")
	f.Var(&meta, "metadata", "metadata as a JSON object")
	f.Var(&expiresAt, "expires-at", "exact expiry: unix seconds or RFC 3339")
	c.MarkFlagsMutuallyExclusive("expires-in", "expires-at")
	return c
}

func (a *app) keysList() *cobra.Command {
	params := map[string]*string{}
	var all bool
	c := &cobra.Command{
		Use:   "list",
		Short: "List keys, newest first",
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
			return c.list(cmd.Context(), "/v1/keys", "keys", q, all)
		}),
	}
	for _, p := range [][2]string{
		{"user-id", "keys of this user"}, {"org-id", "keys of this org"}, {"type", "personal, org or generic"},
		{"status", "active (default), archived, expired or all"}, {"search", "a key id, display hint or name fragment"},
		{"page-size", "keys per page (1–1000, default 100)"}, {"cursor", "next_cursor of the previous page"},
	} {
		params[p[0]] = c.Flags().String(p[0], "", p[1])
	}
	c.Flags().BoolVar(&all, "all", false, "follow next_cursor through every page")
	return c
}

func (a *app) keysUpdate() *cobra.Command {
	var name string
	var never bool
	var meta jsonFlag
	var expiresAt timeFlag
	c := &cobra.Command{
		Use:   "update <id>",
		Short: "Change a key's display name, metadata or expiry",
		Args:  args("id"),
		RunE: a.call("PATCH", "/v1/keys/%s", func(cmd *cobra.Command) (any, error) {
			set := cmd.Flags().Changed
			body := map[string]any{}
			if set("display-name") {
				body["display_name"] = name
			}
			if set("metadata") {
				body["metadata"] = meta.raw
			}
			if expiresAt.unix != nil {
				body["expires_at"] = *expiresAt.unix
			}
			if set("never-expire") {
				body["never_expire"] = never
			}
			if len(body) == 0 {
				return nil, usagef("keys update: nothing to change (give --display-name, --metadata, --expires-at or --never-expire)")
			}
			return body, nil
		}),
	}
	f := c.Flags()
	f.StringVar(&name, "display-name", "", "new display name")
	f.BoolVar(&never, "never-expire", false, "remove the expiry")
	f.Var(&meta, "metadata", "new metadata (replaces the old) as a JSON object")
	f.Var(&expiresAt, "expires-at", "new expiry: unix seconds or RFC 3339")
	c.MarkFlagsMutuallyExclusive("never-expire", "expires-at")
	return c
}

// keysRoll rolls a key (SPEC §11): a new token with the same owner and
// metadata; the old one keeps working for the grace period.
func (a *app) keysRoll() *cobra.Command {
	var grace time.Duration
	c := &cobra.Command{
		Use:   "roll <id>",
		Short: "Replace a key's token; the old one works for --grace more",
		Long: `Roll a key: a new key with a new token (shown only once), the same owner,
name and metadata. The old key keeps working for --grace, then stops.`,
		Args: args("id"),
		RunE: a.call("POST", "/v1/keys/%s/roll", func(cmd *cobra.Command) (any, error) {
			if grace < 0 {
				return nil, usagef("--grace: must not be negative")
			}
			return map[string]string{"grace_period": formatDuration(grace)}, nil
		}),
	}
	c.Flags().DurationVar(&grace, "grace", 0, "how long the old token keeps working, such as 24h (default 0: stops at once)")
	return c
}

// formatDuration writes d as it would be written by hand: 24h, not 24h0m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
