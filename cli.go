package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// errReported is wrapped into what runClient returns once it has printed
// the error on stderr itself: callers should only set the exit status.
var errReported = errors.New("error reported")

const clientUsage = `Usage: keygate keys|users|orgs <command> [flags] [args]

  keys create [--type T] [--user-id U] [--org-id O] [--display-name N]
              [--metadata JSON] [--expires-in 1mo | --expires-at UNIX|RFC3339]
  keys list [--user-id U] [--org-id O] [--type T] [--status active|archived|expired|all]
            [--search S] [--page-size N] [--cursor C] [--all]
  keys get|archive|delete <id>
  keys update <id> [--display-name N] [--metadata JSON] [--expires-at T] [--never-expire]
  keys import <file.json>          body of POST /v1/keys/import: {"keys": [...]}
  users upsert <id> [--email E] [--enabled=false] [--metadata JSON] [--rate-limit 100/1m|none]
  users get|block|unblock|delete <id>
  users list [--page-size N] [--cursor C] [--all]
  orgs upsert <id> --name N [--metadata JSON] [--rate-limit 100/1m|none]
  orgs get|delete <id>
  orgs list [--page-size N] [--cursor C] [--all]
  orgs add-member <org> <user> [--role Member]
  orgs remove-member <org> <user>

Flags of every command:
  --admin-url URL   admin port (env KEYGATE_ADMIN_URL, default http://127.0.0.1:9080)
  --token T         admin token (env KEYGATE_ADMIN_TOKEN)
  --output F        json or table (default: table for list, json otherwise)
  --timeout D       HTTP timeout (default 30s)

Answers are printed as the API sends them (json) or as a table; calls that
answer nothing (delete, remove-member) print nothing. Errors go to stderr as
"error: <code>: <message> (field: problem)".
`

// runClient runs a keys, users or orgs command (args[0]) against a running
// admin port. It prints answers on stdout and errors on stderr; a returned
// error wraps errReported unless it is flag.ErrHelp.
func runClient(ctx context.Context, args, env []string, stdout, stderr io.Writer) error {
	err := runClientCmd(ctx, args, env, stdout, stderr)
	if err == nil || errors.Is(err, flag.ErrHelp) || errors.Is(err, errReported) {
		return err
	}
	fmt.Fprintf(stderr, "error: %v\n", err)
	return fmt.Errorf("%w: %w", errReported, err)
}

// adminClient talks to the admin API.
type adminClient struct {
	baseURL string
	token   string
	output  string
	timeout time.Duration
	http    *http.Client
	stdout  io.Writer
}

// register adds the flags every command takes; their defaults are the
// values c holds, so flags given before the command carry over.
func (c *adminClient) register(fs *flag.FlagSet) {
	fs.StringVar(&c.baseURL, "admin-url", c.baseURL, "admin port base URL")
	fs.Var(secretFlag{&c.token}, "token", "admin token (default: env KEYGATE_ADMIN_TOKEN)")
	fs.StringVar(&c.output, "output", c.output, "json or table")
	fs.DurationVar(&c.timeout, "timeout", c.timeout, "HTTP timeout")
}

// secretFlag is a string flag whose value usage never prints.
type secretFlag struct{ p *string }

func (f secretFlag) String() string { return "" }
func (f secretFlag) Set(s string) error {
	*f.p = s
	return nil
}

// clientCommand is one client command: setup registers its flags and returns
// what runs it with the positional arguments.
type clientCommand struct {
	args  []string // names of the positional arguments
	list  bool     // answers a list: table output by default
	setup func(fs *flag.FlagSet) func(ctx context.Context, c *adminClient, pos []string) error
}

func runClientCmd(ctx context.Context, args, env []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, clientUsage)
		return flag.ErrHelp
	}
	c := &adminClient{baseURL: "http://127.0.0.1:9080", timeout: 30 * time.Second, stdout: stdout}
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "KEYGATE_ADMIN_URL="); ok && v != "" {
			c.baseURL = v
		}
		if v, ok := strings.CutPrefix(kv, "KEYGATE_ADMIN_TOKEN="); ok {
			c.token = v
		}
	}
	group := args[0]
	gfs := newFlagSet(group, stderr)
	c.register(gfs)
	if err := gfs.Parse(args[1:]); err != nil {
		return flagError(err)
	}
	rest := gfs.Args()
	if len(rest) == 0 {
		fmt.Fprint(stderr, clientUsage)
		return fmt.Errorf("%s: missing command", group)
	}
	cmds, ok := clientCommands[group]
	if !ok {
		return fmt.Errorf("unknown command group %q (want keys, users or orgs)", group)
	}
	name := group + " " + rest[0]
	cmd, ok := cmds[rest[0]]
	if !ok {
		fmt.Fprint(stderr, clientUsage)
		return fmt.Errorf("unknown command %q", name)
	}
	fs := newFlagSet(name, stderr)
	c.register(fs)
	run := cmd.setup(fs)
	pos, err := parseInterspersed(fs, rest[1:])
	if err != nil {
		return flagError(err)
	}
	if len(pos) != len(cmd.args) {
		want := "no arguments"
		if len(cmd.args) > 0 {
			want = "<" + strings.Join(cmd.args, "> <") + ">"
		}
		return fmt.Errorf("%s: want %s, got %d argument(s)", name, want, len(pos))
	}
	switch c.output {
	case "":
		c.output = "json"
		if cmd.list {
			c.output = "table"
		}
	case "json", "table":
	default:
		return fmt.Errorf("--output: %q is not json or table", c.output)
	}
	if c.token == "" {
		return errors.New("no admin token: use --token or set KEYGATE_ADMIN_TOKEN")
	}
	c.baseURL = strings.TrimRight(c.baseURL, "/")
	c.http = &http.Client{Timeout: c.timeout}
	return run(ctx, c, pos)
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage of keygate %s:\n", name)
		fs.PrintDefaults()
	}
	return fs
}

// flagError marks a flag parse error as reported: the flag package has
// printed it with the usage already.
func flagError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	return fmt.Errorf("%w: %w", errReported, err)
}

// parseInterspersed parses flags given before, between and after the
// positional arguments, which it returns.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil // "--" ends the flags
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// clientCommands are the client commands by group and name.
var clientCommands = map[string]map[string]clientCommand{
	"keys": {
		"create":  {setup: keysCreate},
		"list":    {list: true, setup: keysList},
		"get":     {args: []string{"id"}, setup: simpleCmd("GET", "/v1/keys/%s")},
		"update":  {args: []string{"id"}, setup: keysUpdate},
		"archive": {args: []string{"id"}, setup: simpleCmd("POST", "/v1/keys/%s/archive")},
		"delete":  {args: []string{"id"}, setup: simpleCmd("DELETE", "/v1/keys/%s")},
		"import":  {args: []string{"file"}, setup: keysImport},
	},
	"users": {
		"upsert":  {args: []string{"id"}, setup: usersUpsert},
		"get":     {args: []string{"id"}, setup: simpleCmd("GET", "/v1/users/%s")},
		"block":   {args: []string{"id"}, setup: simpleCmd("POST", "/v1/users/%s/block")},
		"unblock": {args: []string{"id"}, setup: simpleCmd("POST", "/v1/users/%s/unblock")},
		"delete":  {args: []string{"id"}, setup: simpleCmd("DELETE", "/v1/users/%s")},
		"list":    {list: true, setup: ownersList("/v1/users", "users")},
	},
	"orgs": {
		"upsert":        {args: []string{"id"}, setup: orgsUpsert},
		"get":           {args: []string{"id"}, setup: simpleCmd("GET", "/v1/orgs/%s")},
		"delete":        {args: []string{"id"}, setup: simpleCmd("DELETE", "/v1/orgs/%s")},
		"list":          {list: true, setup: ownersList("/v1/orgs", "orgs")},
		"add-member":    {args: []string{"org", "user"}, setup: orgsAddMember},
		"remove-member": {args: []string{"org", "user"}, setup: simpleCmd("DELETE", "/v1/orgs/%s/members/%s")},
	},
}

type runFunc = func(ctx context.Context, c *adminClient, pos []string) error

// pathOf fills a path pattern with escaped positional arguments.
func pathOf(pattern string, pos []string) string {
	args := make([]any, len(pos))
	for i, p := range pos {
		args[i] = url.PathEscape(p)
	}
	return fmt.Sprintf(pattern, args...)
}

// simpleCmd is a command without flags or body: one call, its answer printed.
func simpleCmd(method, pattern string) func(fs *flag.FlagSet) runFunc {
	return func(fs *flag.FlagSet) runFunc {
		return func(ctx context.Context, c *adminClient, pos []string) error {
			b, err := c.do(ctx, method, pathOf(pattern, pos), nil, nil)
			if err != nil {
				return err
			}
			return c.print(b)
		}
	}
}

// jsonFlag is a flag holding raw JSON, checked when set.
type jsonFlag struct{ raw json.RawMessage }

func (f *jsonFlag) String() string { return string(f.raw) }
func (f *jsonFlag) Set(s string) error {
	if !json.Valid([]byte(s)) {
		return errors.New("not valid JSON")
	}
	f.raw = json.RawMessage(s)
	return nil
}

// timeFlag is a time given as unix seconds or RFC 3339.
type timeFlag struct{ unix *int64 }

func (f *timeFlag) String() string {
	if f.unix == nil {
		return ""
	}
	return strconv.FormatInt(*f.unix, 10)
}

func (f *timeFlag) Set(s string) error {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		f.unix = &n
		return nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return errors.New("want unix seconds or an RFC 3339 time like 2030-01-02T15:04:05Z")
	}
	n := t.Unix()
	f.unix = &n
	return nil
}

// rateLimitFlag is "<limit>/<window>" such as 100/1m, or none to clear.
type rateLimitFlag struct{ raw json.RawMessage }

func (f *rateLimitFlag) String() string { return string(f.raw) }
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

// setFlags returns the names of the flags given on the command line.
func setFlags(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

func keysCreate(fs *flag.FlagSet) runFunc {
	typ := fs.String("type", "", "personal, org or generic (default: from the owner)")
	user := fs.String("user-id", "", "owner (personal) or creator (org)")
	org := fs.String("org-id", "", "owning org")
	name := fs.String("display-name", "", "display name")
	expiresIn := fs.String("expires-in", "", "one of the configured expiration choices, such as 1mo")
	var meta jsonFlag
	fs.Var(&meta, "metadata", "metadata as a JSON object")
	var expiresAt timeFlag
	fs.Var(&expiresAt, "expires-at", "exact expiry: unix seconds or RFC 3339")
	return func(ctx context.Context, c *adminClient, pos []string) error {
		body := map[string]any{}
		for k, v := range map[string]string{"type": *typ, "user_id": *user, "org_id": *org, "display_name": *name, "expires_in": *expiresIn} {
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
		b, err := c.do(ctx, "POST", "/v1/keys", nil, body)
		if err != nil {
			return err
		}
		return c.print(b)
	}
}

func keysUpdate(fs *flag.FlagSet) runFunc {
	name := fs.String("display-name", "", "new display name")
	never := fs.Bool("never-expire", false, "remove the expiry")
	var meta jsonFlag
	fs.Var(&meta, "metadata", "new metadata (replaces the old) as a JSON object")
	var expiresAt timeFlag
	fs.Var(&expiresAt, "expires-at", "new expiry: unix seconds or RFC 3339")
	return func(ctx context.Context, c *adminClient, pos []string) error {
		set := setFlags(fs)
		body := map[string]any{}
		if set["display-name"] {
			body["display_name"] = *name
		}
		if set["metadata"] {
			body["metadata"] = meta.raw
		}
		if expiresAt.unix != nil {
			body["expires_at"] = *expiresAt.unix
		}
		if set["never-expire"] {
			body["never_expire"] = *never
		}
		b, err := c.do(ctx, "PATCH", pathOf("/v1/keys/%s", pos), nil, body)
		if err != nil {
			return err
		}
		return c.print(b)
	}
}

func keysImport(fs *flag.FlagSet) runFunc {
	return func(ctx context.Context, c *adminClient, pos []string) error {
		raw, err := os.ReadFile(pos[0])
		if err != nil {
			return err
		}
		if !json.Valid(raw) {
			return fmt.Errorf("%s: not valid JSON", pos[0])
		}
		b, err := c.do(ctx, "POST", "/v1/keys/import", nil, json.RawMessage(raw))
		if err != nil {
			return err
		}
		return c.print(b)
	}
}

func keysList(fs *flag.FlagSet) runFunc {
	params := map[string]*string{}
	for _, p := range [][2]string{
		{"user-id", "keys of this user"}, {"org-id", "keys of this org"}, {"type", "personal, org or generic"},
		{"status", "active (default), archived, expired or all"}, {"search", "a key id, display hint or name fragment"},
		{"page-size", "keys per page (1–1000, default 100)"}, {"cursor", "next_cursor of the previous page"},
	} {
		params[p[0]] = fs.String(p[0], "", p[1])
	}
	all := fs.Bool("all", false, "follow next_cursor through every page")
	return func(ctx context.Context, c *adminClient, pos []string) error {
		q := url.Values{}
		for name, v := range params {
			if *v != "" {
				q.Set(strings.ReplaceAll(name, "-", "_"), *v)
			}
		}
		return c.list(ctx, "/v1/keys", "keys", q, *all)
	}
}

func ownersList(path, field string) func(fs *flag.FlagSet) runFunc {
	return func(fs *flag.FlagSet) runFunc {
		pageSize := fs.String("page-size", "", "items per page (1–1000, default 100)")
		cur := fs.String("cursor", "", "next_cursor of the previous page")
		all := fs.Bool("all", false, "follow next_cursor through every page")
		return func(ctx context.Context, c *adminClient, pos []string) error {
			q := url.Values{}
			if *pageSize != "" {
				q.Set("page_size", *pageSize)
			}
			if *cur != "" {
				q.Set("cursor", *cur)
			}
			return c.list(ctx, path, field, q, *all)
		}
	}
}

// usersUpsert upserts a user. The API replaces the email on every upsert,
// so without --email the stored one (if any) is sent back.
func usersUpsert(fs *flag.FlagSet) runFunc {
	email := fs.String("email", "", "email (default: keep the stored one)")
	enabled := fs.Bool("enabled", true, "false blocks the user")
	var meta jsonFlag
	fs.Var(&meta, "metadata", "metadata as a JSON object")
	var rl rateLimitFlag
	fs.Var(&rl, "rate-limit", "own rate limit such as 100/1m, or none to clear")
	return func(ctx context.Context, c *adminClient, pos []string) error {
		set := setFlags(fs)
		path := pathOf("/v1/users/%s", pos)
		body := map[string]any{"email": *email}
		if !set["email"] {
			b, err := c.do(ctx, "GET", path, nil, nil)
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
		if set["enabled"] {
			body["enabled"] = *enabled
		}
		if meta.raw != nil {
			body["metadata"] = meta.raw
		}
		if rl.raw != nil {
			body["rate_limit"] = rl.raw
		}
		b, err := c.do(ctx, "PUT", path, nil, body)
		if err != nil {
			return err
		}
		return c.print(b)
	}
}

func orgsUpsert(fs *flag.FlagSet) runFunc {
	name := fs.String("name", "", "org name (required)")
	var meta jsonFlag
	fs.Var(&meta, "metadata", "metadata as a JSON object")
	var rl rateLimitFlag
	fs.Var(&rl, "rate-limit", "own rate limit such as 100/1m, or none to clear")
	return func(ctx context.Context, c *adminClient, pos []string) error {
		body := map[string]any{"name": *name}
		if meta.raw != nil {
			body["metadata"] = meta.raw
		}
		if rl.raw != nil {
			body["rate_limit"] = rl.raw
		}
		b, err := c.do(ctx, "PUT", pathOf("/v1/orgs/%s", pos), nil, body)
		if err != nil {
			return err
		}
		return c.print(b)
	}
}

func orgsAddMember(fs *flag.FlagSet) runFunc {
	role := fs.String("role", "Member", "role in the org")
	return func(ctx context.Context, c *adminClient, pos []string) error {
		b, err := c.do(ctx, "PUT", pathOf("/v1/orgs/%s/members/%s", pos), nil, map[string]string{"role": *role})
		if err != nil {
			return err
		}
		return c.print(b)
	}
}

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
func (c *adminClient) do(ctx context.Context, method, path string, q url.Values, body any) ([]byte, error) {
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
		return nil, err
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
func (c *adminClient) list(ctx context.Context, path, field string, q url.Values, all bool) error {
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
func (c *adminClient) print(b []byte) error {
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
func (c *adminClient) vertical(b []byte) error {
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
func (c *adminClient) table(field string, items []json.RawMessage) error {
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
