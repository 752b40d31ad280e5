package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/spf13/cobra"
)

func (a *app) usersCmd() *cobra.Command {
	g := a.group("users", "Create, change, block and delete users",
		a.usersUpsert(),
		&cobra.Command{Use: "get <id>", Short: "Show a user and their orgs", Args: args("id"), RunE: a.call("GET", "/v1/users/%s", nil)},
		a.ownersList("/v1/users", "users"),
		&cobra.Command{Use: "block <id>", Short: "Block a user: their keys stop working until unblocked", Args: args("id"), RunE: a.call("POST", "/v1/users/%s/block", nil)},
		&cobra.Command{Use: "unblock <id>", Short: "Unblock a user", Args: args("id"), RunE: a.call("POST", "/v1/users/%s/unblock", nil)},
		&cobra.Command{Use: "delete <id>", Short: "Delete a user: personal keys archived, memberships removed", Args: args("id"), RunE: a.call("DELETE", "/v1/users/%s", nil)},
	)
	a.clientFlags(g)
	return g
}

func (a *app) orgsCmd() *cobra.Command {
	g := a.group("orgs", "Create, change and delete orgs (members: see keygate members)",
		a.orgsUpsert(),
		&cobra.Command{Use: "get <id>", Short: "Show an org and its members", Args: args("id"), RunE: a.call("GET", "/v1/orgs/%s", nil)},
		a.ownersList("/v1/orgs", "orgs"),
		&cobra.Command{Use: "delete <id>", Short: "Delete an org: its keys are archived", Args: args("id"), RunE: a.call("DELETE", "/v1/orgs/%s", nil)},
	)
	a.clientFlags(g)
	return g
}

func (a *app) membersCmd() *cobra.Command {
	var role string
	add := &cobra.Command{
		Use:   "add <org> <user>",
		Short: "Add a user to an org, or change their role",
		Args:  args("org", "user"),
		RunE: a.call("PUT", "/v1/orgs/%s/members/%s", func(*cobra.Command) (any, error) {
			return map[string]string{"role": role}, nil
		}),
	}
	add.Flags().StringVar(&role, "role", "Member", "role in the org")
	list := &cobra.Command{
		Use:   "list <org>",
		Short: "List an org's members",
		Args:  args("org"),
		RunE: a.action(func(cmd *cobra.Command, args []string) error {
			c, err := a.ready(cmd, true)
			if err != nil {
				return err
			}
			b, err := c.do(cmd.Context(), "GET", pathOf("/v1/orgs/%s", args), nil, nil)
			if err != nil {
				return err
			}
			var org struct {
				Members []json.RawMessage `json:"members"`
			}
			if err := json.Unmarshal(b, &org); err != nil {
				return fmt.Errorf("read answer: %w", err)
			}
			if org.Members == nil {
				org.Members = []json.RawMessage{}
			}
			if c.output == "json" {
				out, _ := json.Marshal(map[string]any{"members": org.Members})
				return c.print(out)
			}
			return c.table("members", org.Members)
		}),
	}
	g := a.group("members", "Add, change and remove org members",
		add, list,
		&cobra.Command{Use: "remove <org> <user>", Short: "Remove a user from an org", Args: args("org", "user"), RunE: a.call("DELETE", "/v1/orgs/%s/members/%s", nil)},
	)
	a.clientFlags(g)
	return g
}

func (a *app) ownersList(path, field string) *cobra.Command {
	var pageSize, cur string
	var all bool
	c := &cobra.Command{
		Use:   "list",
		Short: "List " + field,
		Args:  args(),
		RunE: a.action(func(cmd *cobra.Command, _ []string) error {
			c, err := a.ready(cmd, true)
			if err != nil {
				return err
			}
			q := url.Values{}
			if pageSize != "" {
				q.Set("page_size", pageSize)
			}
			if cur != "" {
				q.Set("cursor", cur)
			}
			return c.list(cmd.Context(), path, field, q, all)
		}),
	}
	c.Flags().StringVar(&pageSize, "page-size", "", "items per page (1–1000, default 100)")
	c.Flags().StringVar(&cur, "cursor", "", "next_cursor of the previous page")
	c.Flags().BoolVar(&all, "all", false, "follow next_cursor through every page")
	return c
}

// usersUpsert upserts a user. The API replaces the email on every upsert,
// so without --email the stored one (if any) is sent back.
func (a *app) usersUpsert() *cobra.Command {
	var email string
	var enabled bool
	var meta jsonFlag
	var rl rateLimitFlag
	c := &cobra.Command{
		Use:   "upsert <id>",
		Short: "Create or change a user",
		Args:  args("id"),
		RunE: a.action(func(cmd *cobra.Command, args []string) error {
			c, err := a.ready(cmd, false)
			if err != nil {
				return err
			}
			set := cmd.Flags().Changed
			path := pathOf("/v1/users/%s", args)
			body := map[string]any{"email": email}
			if !set("email") {
				b, err := c.do(cmd.Context(), "GET", path, nil, nil)
				var apiErr *apiError
				switch {
				case err == nil:
					var u struct{ Email string }
					if err := json.Unmarshal(b, &u); err != nil {
						return fmt.Errorf("read user: %w", err)
					}
					body["email"] = u.Email
				case errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound:
				default:
					return err
				}
			}
			if set("enabled") {
				body["enabled"] = enabled
			}
			if meta.raw != nil {
				body["metadata"] = meta.raw
			}
			if rl.raw != nil {
				body["rate_limit"] = rl.raw
			}
			b, err := c.do(cmd.Context(), "PUT", path, nil, body)
			if err != nil {
				return err
			}
			return c.print(b)
		}),
	}
	f := c.Flags()
	f.StringVar(&email, "email", "", "email (default: keep the stored one)")
	f.BoolVar(&enabled, "enabled", true, "false blocks the user")
	f.Var(&meta, "metadata", "metadata as a JSON object")
	f.Var(&rl, "rate-limit", "own rate limit such as 100/1m, or none to clear")
	return c
}

func (a *app) orgsUpsert() *cobra.Command {
	var name string
	var meta jsonFlag
	var rl rateLimitFlag
	c := &cobra.Command{
		Use:   "upsert <id>",
		Short: "Create or change an org",
		Args:  args("id"),
		RunE: a.call("PUT", "/v1/orgs/%s", func(*cobra.Command) (any, error) {
			body := map[string]any{"name": name}
			if meta.raw != nil {
				body["metadata"] = meta.raw
			}
			if rl.raw != nil {
				body["rate_limit"] = rl.raw
			}
			return body, nil
		}),
	}
	c.Flags().StringVar(&name, "name", "", "org name (required)")
	c.Flags().Var(&meta, "metadata", "metadata as a JSON object")
	c.Flags().Var(&rl, "rate-limit", "own rate limit such as 100/1m, or none to clear")
	c.MarkFlagRequired("name")
	return c
}
