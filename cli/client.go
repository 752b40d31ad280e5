package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// defaultAdminURL is the admin port's default listener (SPEC §4).
const defaultAdminURL = "http://127.0.0.1:9080"

// client talks to the admin API. Its fields are set by the flags every
// API command takes (clientFlags) and completed by ready.
type client struct {
	baseURL string
	token   string
	output  string
	timeout time.Duration
	http    *http.Client
	stdout  io.Writer
}

// clientFlags adds the flags of every API command to cmd, a group, so its
// subcommands inherit them.
func (a *app) clientFlags(cmd *cobra.Command) {
	fs := cmd.PersistentFlags()
	fs.StringVar(&a.client.baseURL, "admin-url", "", "admin port base URL (env KEYGATE_ADMIN_URL, default "+defaultAdminURL+")")
	// The token is never a flag default, so help never prints it.
	fs.StringVar(&a.client.token, "token", "", "admin token (env KEYGATE_ADMIN_TOKEN)")
	fs.StringVarP(&a.client.output, "output", "o", "", "json or table (default: table for lists, json otherwise)")
	fs.DurationVar(&a.client.timeout, "timeout", 30*time.Second, "HTTP timeout of one call")
}

// ready completes the client from the environment (flags win) and checks
// it; list says whether the command prints a list (table by default).
func (a *app) ready(cmd *cobra.Command, list bool) (*client, error) {
	c := &a.client
	env := func(name string) string {
		for _, kv := range a.opts.Env {
			if v, ok := strings.CutPrefix(kv, name+"="); ok {
				return v
			}
		}
		return ""
	}
	if c.baseURL == "" {
		c.baseURL = env("KEYGATE_ADMIN_URL")
	}
	if c.baseURL == "" {
		c.baseURL = defaultAdminURL
	}
	if !cmd.Flags().Changed("token") {
		c.token = env("KEYGATE_ADMIN_TOKEN")
	}
	switch c.output {
	case "":
		c.output = "json"
		if list {
			c.output = "table"
		}
	case "json", "table":
	default:
		return nil, usagef("--output: %q is not json or table", c.output)
	}
	if c.token == "" {
		return nil, usagef("no admin token: use --token or set KEYGATE_ADMIN_TOKEN")
	}
	u, err := url.Parse(c.baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("--admin-url: %q is not an http(s) URL like %s", c.baseURL, defaultAdminURL)
	}
	c.baseURL = strings.TrimRight(c.baseURL, "/")
	c.http = &http.Client{Timeout: c.timeout}
	c.stdout = cmd.OutOrStdout()
	return c, nil
}

// call is a command that makes one API call and prints its answer.
func (a *app) call(method, pattern string, body func(cmd *cobra.Command) (any, error)) func(*cobra.Command, []string) error {
	return a.action(func(cmd *cobra.Command, args []string) error {
		c, err := a.ready(cmd, false)
		if err != nil {
			return err
		}
		var b any
		if body != nil {
			if b, err = body(cmd); err != nil {
				return err
			}
		}
		out, err := c.do(cmd.Context(), method, pathOf(pattern, args), nil, b)
		if err != nil {
			return err
		}
		return c.print(out)
	})
}

// pathOf fills a path pattern with escaped positional arguments.
func pathOf(pattern string, pos []string) string {
	args := make([]any, len(pos))
	for i, p := range pos {
		args[i] = url.PathEscape(p)
	}
	return fmt.Sprintf(pattern, args...)
}

// jsonFlag is a flag holding raw JSON, checked when set.
type jsonFlag struct{ raw json.RawMessage }

func (f *jsonFlag) String() string { return string(f.raw) }
func (f *jsonFlag) Type() string   { return "json" }
func (f *jsonFlag) Set(s string) error {
	if !json.Valid([]byte(s)) {
		return errors.New("not valid JSON")
	}
	f.raw = json.RawMessage(s)
	return nil
}

// timeFlag is a time given as unix seconds or RFC 3339.
type timeFlag struct{ unix *int64 }

func (f *timeFlag) Type() string { return "time" }
func (f *timeFlag) String() string {
	if f.unix == nil {
		return ""
	}
	return strconv.FormatInt(*f.unix, 10)
}

func (f *timeFlag) Set(s string) error {
	n, err := parseTime(s)
	if err != nil {
		return err
	}
	f.unix = &n
	return nil
}

func parseTime(s string) (int64, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return 0, errors.New("want unix seconds or an RFC 3339 time like 2030-01-02T15:04:05Z")
	}
	return t.Unix(), nil
}

// rateLimitFlag is "<limit>/<window>" such as 100/1m, or none to clear.
type rateLimitFlag struct{ raw json.RawMessage }

func (f *rateLimitFlag) String() string { return string(f.raw) }
func (f *rateLimitFlag) Type() string   { return "limit/window" }
func (f *rateLimitFlag) Set(s string) error {
	if s == "none" {
		f.raw = json.RawMessage("null")
		return nil
	}
	limit, window, ok := strings.Cut(s, "/")
	n, err := strconv.ParseInt(limit, 10, 64)
	if !ok || err != nil {
		return errors.New("want <limit>/<window> such as 100/1m, or none")
	}
	f.raw, _ = json.Marshal(map[string]any{"limit": n, "window": window})
	return nil
}

var (
	_ pflag.Value = (*jsonFlag)(nil)
	_ pflag.Value = (*timeFlag)(nil)
	_ pflag.Value = (*rateLimitFlag)(nil)
)

// apiError is an error answer of the admin API.
type apiError struct {
	Status  int                 `json:"-"`
	Code    string              `json:"error"`
	Message string              `json:"message"`
	Fields  map[string][]string `json:"fields"`
}

// Error reads "<code>: <message> (field: problem; field: problem)",
// leaving out what the message already says.
func (e *apiError) Error() string {
	var fields []string
	for n, problems := range e.Fields {
		if f := n + ": " + strings.Join(problems, ", "); !strings.Contains(e.Message, f) {
			fields = append(fields, f)
		}
	}
	if len(fields) == 0 {
		return e.Code + ": " + e.Message
	}
	sort.Strings(fields)
	return e.Code + ": " + e.Message + " (" + strings.Join(fields, "; ") + ")"
}

// do calls the API and returns the answer's body; answers other than 2xx
// are returned as *apiError.
func (c *client) do(ctx context.Context, method, path string, q url.Values, body any) ([]byte, error) {
	u := c.baseURL + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		return nil, &unreachableError{err}
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if res.StatusCode >= 200 && res.StatusCode < 300 {
		return b, nil
	}
	e := &apiError{Status: res.StatusCode}
	if json.Unmarshal(b, e) != nil || e.Code == "" {
		// Not the admin API answering (a proxy in between, a wrong URL).
		text := strings.TrimSpace(string(b))
		if len(text) > 200 {
			text = text[:200] + "…"
		}
		return nil, fmt.Errorf("%s %s: HTTP %d: %s", method, path, res.StatusCode, text)
	}
	return nil, e
}

// list prints a list answer, following next_cursor with all.
func (c *client) list(ctx context.Context, path, field string, q url.Values, all bool) error {
	var items []json.RawMessage
	next := ""
	for {
		b, err := c.do(ctx, "GET", path, q, nil)
		if err != nil {
			return err
		}
		var page map[string]json.RawMessage
		if err := json.Unmarshal(b, &page); err != nil {
			return fmt.Errorf("read answer: %w", err)
		}
		var got []json.RawMessage
		if err := json.Unmarshal(page[field], &got); err != nil {
			return fmt.Errorf("read answer: %s: %w", field, err)
		}
		items = append(items, got...)
		if err := json.Unmarshal(page["next_cursor"], &next); err != nil {
			next = ""
		}
		if !all || next == "" {
			break
		}
		q.Set("cursor", next)
	}
	if items == nil {
		items = []json.RawMessage{}
	}
	if c.output == "json" {
		b, err := json.Marshal(map[string]any{field: items, "next_cursor": next})
		if err != nil {
			return err
		}
		return c.print(b)
	}
	if err := c.table(field, items); err != nil {
		return err
	}
	if next != "" {
		fmt.Fprintf(c.stdout, "(more: --cursor %s, or --all)\n", next)
	}
	return nil
}

// print writes one answer: indented JSON, or field/value lines for table.
// An empty answer (204) prints nothing.
func (c *client) print(b []byte) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	if c.output == "table" {
		return c.vertical(b)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, bytes.TrimSpace(b), "", "  "); err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	out.WriteByte('\n')
	_, err := c.stdout.Write(out.Bytes())
	return err
}

// vertical prints an object's fields in the API's order, one per line.
func (c *client) vertical(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		_, err := c.stdout.Write(b)
		return err
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return fmt.Errorf("read answer: %w", err)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return fmt.Errorf("read answer: %w", err)
		}
		name, _ := k.(string)
		fmt.Fprintf(tw, "%s:\t%s\n", name, tableCell(name, v))
	}
	return tw.Flush()
}

// table prints list items as columns.
func (c *client) table(field string, items []json.RawMessage) error {
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	now := time.Now().Unix()
	switch field {
	case "keys":
		fmt.Fprintln(tw, "ID\tTYPE\tOWNER\tNAME\tDISPLAY\tSTATUS\tEXPIRES\tLAST USED")
		for _, raw := range items {
			var k struct {
				ID          string `json:"id"`
				Type        string `json:"type"`
				UserID      string `json:"user_id"`
				OrgID       string `json:"org_id"`
				DisplayName string `json:"display_name"`
				Display     string `json:"display"`
				ExpiresAt   *int64 `json:"expires_at"`
				ArchivedAt  *int64 `json:"archived_at"`
				LastUsedAt  *int64 `json:"last_used_at"`
			}
			if err := json.Unmarshal(raw, &k); err != nil {
				return fmt.Errorf("read answer: %w", err)
			}
			owner := "-"
			switch {
			case k.OrgID != "" && k.UserID != "":
				owner = k.OrgID + " (by " + k.UserID + ")"
			case k.OrgID != "":
				owner = k.OrgID
			case k.UserID != "":
				owner = k.UserID
			}
			status := "active"
			switch {
			case k.ArchivedAt != nil:
				status = "archived"
			case k.ExpiresAt != nil && *k.ExpiresAt <= now:
				status = "expired"
			}
			expires := "never"
			if k.ExpiresAt != nil {
				expires = fmtUnix(*k.ExpiresAt)
			}
			used := "-"
			if k.LastUsedAt != nil {
				used = fmtUnix(*k.LastUsedAt)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Type, owner, orDash(k.DisplayName), k.Display, status, expires, used)
		}
	case "users":
		fmt.Fprintln(tw, "USER ID\tEMAIL\tENABLED\tCREATED")
		for _, raw := range items {
			var u struct {
				UserID    string `json:"user_id"`
				Email     string `json:"email"`
				Enabled   bool   `json:"enabled"`
				CreatedAt int64  `json:"created_at"`
			}
			if err := json.Unmarshal(raw, &u); err != nil {
				return fmt.Errorf("read answer: %w", err)
			}
			fmt.Fprintf(tw, "%s\t%s\t%t\t%s\n", u.UserID, orDash(u.Email), u.Enabled, fmtUnix(u.CreatedAt))
		}
	case "orgs":
		fmt.Fprintln(tw, "ORG ID\tNAME\tCREATED")
		for _, raw := range items {
			var o struct {
				OrgID     string `json:"org_id"`
				Name      string `json:"name"`
				CreatedAt int64  `json:"created_at"`
			}
			if err := json.Unmarshal(raw, &o); err != nil {
				return fmt.Errorf("read answer: %w", err)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", o.OrgID, orDash(o.Name), fmtUnix(o.CreatedAt))
		}
	case "members":
		fmt.Fprintln(tw, "USER ID\tROLE\tSINCE")
		for _, raw := range items {
			var m struct {
				UserID    string `json:"user_id"`
				Role      string `json:"role"`
				CreatedAt int64  `json:"created_at"`
			}
			if err := json.Unmarshal(raw, &m); err != nil {
				return fmt.Errorf("read answer: %w", err)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", m.UserID, orDash(m.Role), fmtUnix(m.CreatedAt))
		}
	case "events":
		fmt.Fprintln(tw, "ID\tAT\tACTION\tACTOR\tKEY\tUSER\tORG\tDETAILS")
		for _, raw := range items {
			var e struct {
				ID      int64           `json:"id"`
				At      int64           `json:"at"`
				Action  string          `json:"action"`
				Actor   string          `json:"actor"`
				KeyID   string          `json:"key_id"`
				UserID  string          `json:"user_id"`
				OrgID   string          `json:"org_id"`
				Details json.RawMessage `json:"details"`
			}
			if err := json.Unmarshal(raw, &e); err != nil {
				return fmt.Errorf("read answer: %w", err)
			}
			details := tableCell("details", e.Details)
			if len(details) > 80 {
				details = details[:77] + "..."
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, fmtUnix(e.At), e.Action, e.Actor, orDash(e.KeyID), orDash(e.UserID), orDash(e.OrgID), details)
		}
	}
	return tw.Flush()
}

// cell formats one JSON value for a table: strings bare, times readable,
// null as "-", anything else as compact JSON.
func tableCell(name string, v json.RawMessage) string {
	if string(v) == "null" {
		return "-"
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		return orDash(s)
	}
	if strings.HasSuffix(name, "_at") {
		if n, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return fmtUnix(n) + " (" + string(v) + ")"
		}
	}
	var out bytes.Buffer
	if json.Compact(&out, v) != nil {
		return string(v)
	}
	return out.String()
}

func fmtUnix(unix int64) string { return time.Unix(unix, 0).UTC().Format("2006-01-02 15:04:05Z") }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
