package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
)

// Import batches: the server takes at most 10,000 keys and 32 MiB a call.
const (
	maxBatchKeys  = 10_000
	maxBatchBytes = 24 << 20
	maxLineBytes  = 1 << 20
)

// csvColumns are the columns a CSV import may have, as in the JSON entries.
var csvColumns = []string{"token", "token_sha256", "type", "user_id", "org_id", "display_name", "metadata", "expires_at"}

func (a *app) keysImport() *cobra.Command {
	var format, onConflict string
	var dryRun bool
	var batchSize int
	c := &cobra.Command{
		Use:   "import <file>",
		Short: "Import existing keys from a JSON-lines or CSV file",
		Long: `Import existing keys (their tokens or the tokens' SHA-256) from another
system, in batches of at most 10,000 sent one after another.

The file is JSON lines (one object per line: token or token_sha256, and
optionally type, user_id, org_id, display_name, metadata, expires_at) or CSV
with a header row naming some of the columns
  token, token_sha256, type, user_id, org_id, display_name, metadata, expires_at
(metadata a JSON object, expires_at unix seconds or RFC 3339, an empty cell
meaning absent). The format follows the extension (.csv, else JSON lines)
unless --format says otherwise; "-" reads stdin.

Each batch is all or nothing. Every bad entry is reported with its line
number; after the first bad entry the rest of the file is only checked
(--dry-run), not written, so fix the lines and run again with
--on-conflict skip to pass over the keys already imported.`,
		Args: args("file"),
		RunE: a.action(func(cmd *cobra.Command, args []string) error {
			switch onConflict {
			case "fail", "skip":
			default:
				return usagef("--on-conflict: %q is not fail or skip", onConflict)
			}
			if batchSize < 1 || batchSize > maxBatchKeys {
				return usagef("--batch-size: must be 1–%d", maxBatchKeys)
			}
			name := args[0]
			if format == "" {
				format = "jsonl"
				if strings.EqualFold(filepath.Ext(name), ".csv") {
					format = "csv"
				}
			}
			if format != "jsonl" && format != "csv" {
				return usagef("--format: %q is not jsonl or csv", format)
			}
			c, err := a.ready(cmd, true) // a text summary unless -o json
			if err != nil {
				return err
			}
			var in io.Reader = cmd.InOrStdin()
			size := int64(-1)
			if name != "-" {
				f, err := os.Open(name)
				if err != nil {
					return err
				}
				defer f.Close()
				if st, err := f.Stat(); err == nil {
					size = st.Size()
				}
				in = f
			}
			im := &importer{
				c: c, name: name, dryRun: dryRun, onConflict: onConflict, batchSize: batchSize,
				stderr: cmd.ErrOrStderr(), progress: a.progress(cmd.ErrOrStderr(), size),
			}
			return im.run(cmd.Context(), in, format)
		}),
	}
	f := c.Flags()
	f.StringVar(&format, "format", "", "jsonl or csv (default: from the file's extension)")
	f.BoolVar(&dryRun, "dry-run", false, "have the server check every entry, writing nothing")
	f.StringVar(&onConflict, "on-conflict", "fail", "a token that is already stored: fail (its batch) or skip (the entry)")
	f.IntVar(&batchSize, "batch-size", maxBatchKeys, "keys per call (at most 10,000)")
	return c
}

// progress reports how far an import is: a bar on a terminal, a plain line
// per batch otherwise.
type progress interface {
	// update is called after each batch with the bytes read so far and the
	// keys sent so far.
	update(read int64, keys int)
	// clear makes room for other output (a bar redraws itself after).
	clear()
	finish()
}

func (a *app) progress(w io.Writer, size int64) progress {
	if a.opts.IsTerminal(w) {
		bar := progressbar.NewOptions64(size,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription("importing"),
			progressbar.OptionShowBytes(true),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionShowElapsedTimeOnFinish(),
			progressbar.OptionClearOnFinish(),
		)
		return &barProgress{bar: bar}
	}
	return &lineProgress{w: w, size: size}
}

type barProgress struct{ bar *progressbar.ProgressBar }

func (p *barProgress) update(read int64, keys int) {
	p.bar.Describe(fmt.Sprintf("%d keys", keys))
	p.bar.Set64(read)
}
func (p *barProgress) clear()  { p.bar.Clear() }
func (p *barProgress) finish() { p.bar.Finish() }

type lineProgress struct {
	w    io.Writer
	size int64
}

func (p *lineProgress) update(read int64, keys int) {
	if p.size > 0 {
		fmt.Fprintf(p.w, "progress: %d keys sent, %d%% of the file read\n", keys, read*100/p.size)
	} else {
		fmt.Fprintf(p.w, "progress: %d keys sent\n", keys)
	}
}
func (p *lineProgress) clear()  {}
func (p *lineProgress) finish() {}

// importer sends one file's entries in batches and reports as it goes.
type importer struct {
	c          *client
	name       string
	dryRun     bool
	onConflict string
	batchSize  int
	stderr     io.Writer
	progress   progress

	read *countingReader

	// The batch being filled: entries, their line numbers, their size, and
	// the bad lines found locally among them.
	entries  []json.RawMessage
	lines    []int
	bytes    int
	localBad []lineProblem

	sent, imported, checked, skipped, bad int
	failedAt                              int // line of the first bad entry, 0 if none
	unwrittenFrom                         int // first line of the first batch not written, 0 if none
}

type lineProblem struct {
	line int
	msg  string
}

// countingReader counts the bytes read through it, for the progress.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (im *importer) run(ctx context.Context, in io.Reader, format string) error {
	start := time.Now()
	im.read = &countingReader{r: in}
	var err error
	if format == "csv" {
		err = im.readCSV(ctx)
	} else {
		err = im.readJSONLines(ctx)
	}
	if err == nil {
		err = im.flush(ctx)
	}
	im.progress.finish()
	if err != nil {
		if im.sent > 0 || im.bad > 0 {
			im.summary(time.Since(start), true)
		}
		return err
	}
	im.summary(time.Since(start), false)
	if im.bad > 0 {
		return fmt.Errorf("%d bad entr%s in %s", im.bad, plural(im.bad, "y", "ies"), im.name)
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// add queues one entry, sending the batch when it is full.
func (im *importer) add(ctx context.Context, line int, entry []byte) error {
	if len(im.entries) > 0 && (len(im.entries) >= im.batchSize || im.bytes+len(entry) > maxBatchBytes) {
		if err := im.flush(ctx); err != nil {
			return err
		}
	}
	im.entries = append(im.entries, entry)
	im.lines = append(im.lines, line)
	im.bytes += len(entry) + 1
	return nil
}

func (im *importer) badLine(line int, format string, args ...any) {
	im.localBad = append(im.localBad, lineProblem{line, fmt.Sprintf(format, args...)})
}

func (im *importer) readJSONLines(ctx context.Context) error {
	sc := bufio.NewScanner(im.read)
	sc.Buffer(make([]byte, 64<<10), maxLineBytes)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		if b[0] != '{' || !json.Valid(b) {
			im.badLine(line, "not a JSON object")
			continue
		}
		if err := im.add(ctx, line, bytes.Clone(b)); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("%s: line %d: longer than %d bytes", im.name, line+1, maxLineBytes)
		}
		return fmt.Errorf("read %s: %w", im.name, err)
	}
	return nil
}

func (im *importer) readCSV(ctx context.Context) error {
	r := csv.NewReader(bufio.NewReader(im.read))
	r.ReuseRecord = true
	header, err := r.Read()
	if err == io.EOF {
		return fmt.Errorf("%s: empty: want a header row naming the columns (%s)", im.name, strings.Join(csvColumns, ", "))
	}
	if err != nil {
		return fmt.Errorf("%s: header: %w", im.name, err)
	}
	cols := slices.Clone(header)
	for i, h := range cols {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if !slices.Contains(csvColumns, h) {
			return fmt.Errorf("%s: header: unknown column %q (columns: %s)", im.name, h, strings.Join(csvColumns, ", "))
		}
		if slices.Contains(cols[:i], h) {
			return fmt.Errorf("%s: header: column %q given twice", im.name, h)
		}
		cols[i] = h
	}
	var buf bytes.Buffer
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return nil
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			if pe.Err == csv.ErrFieldCount {
				im.badLine(pe.StartLine, "%d fields, the header has %d", len(rec), len(cols))
				continue
			}
			return fmt.Errorf("%s: %w", im.name, err) // the quoting is broken: later lines cannot be trusted
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", im.name, err)
		}
		line, _ := r.FieldPos(0) // only valid for a record read without error
		buf.Reset()
		buf.WriteByte('{')
		var problems []string
		n := 0
		for i, v := range rec {
			if v == "" {
				continue
			}
			if n > 0 {
				buf.WriteByte(',')
			}
			n++
			buf.WriteString(strconv.Quote(cols[i]))
			buf.WriteByte(':')
			switch cols[i] {
			case "metadata":
				if !json.Valid([]byte(v)) || strings.TrimSpace(v)[0] != '{' {
					problems = append(problems, "metadata: not a JSON object")
					continue
				}
				buf.WriteString(v)
			case "expires_at":
				t, err := parseTime(strings.TrimSpace(v))
				if err != nil {
					problems = append(problems, "expires_at: "+err.Error())
					continue
				}
				buf.WriteString(strconv.FormatInt(t, 10))
			default:
				b, _ := json.Marshal(v)
				buf.Write(b)
			}
		}
		buf.WriteByte('}')
		if len(problems) > 0 {
			im.badLine(line, "%s", strings.Join(problems, "; "))
			continue
		}
		if err := im.add(ctx, line, bytes.Clone(buf.Bytes())); err != nil {
			return err
		}
	}
}

// importAnswer is the part of the import answer the client reads.
type importAnswer struct {
	Count   int   `json:"count"`
	Skipped []int `json:"skipped"`
}

// flush sends the queued batch. Once any entry was bad, batches are sent
// as dry runs: the rest of the file is checked but not written.
func (im *importer) flush(ctx context.Context) error {
	defer func() {
		im.entries, im.lines, im.bytes, im.localBad = im.entries[:0], im.lines[:0], 0, im.localBad[:0]
	}()
	problems := im.localBad
	first := 0 // the batch's first line
	if len(im.entries) > 0 {
		first = im.lines[0]
	}
	if len(problems) > 0 && (first == 0 || problems[0].line < first) {
		first = problems[0].line
	}
	if len(im.entries) > 0 {
		dry := im.dryRun || im.failedAt > 0 || len(im.localBad) > 0
		var body bytes.Buffer
		body.Grow(im.bytes + 64)
		fmt.Fprintf(&body, `{"dry_run":%t,"on_conflict":%q,"keys":[`, dry, im.onConflict)
		for i, e := range im.entries {
			if i > 0 {
				body.WriteByte(',')
			}
			body.Write(e)
		}
		body.WriteString("]}")
		b, err := im.c.do(ctx, "POST", "/v1/keys/import", nil, json.RawMessage(body.Bytes()))
		im.sent += len(im.entries)
		var apiErr *apiError
		switch {
		case err == nil:
			var ans importAnswer
			if err := json.Unmarshal(b, &ans); err != nil {
				return fmt.Errorf("read import answer: %w", err)
			}
			if dry {
				im.checked += ans.Count
			} else {
				im.imported += ans.Count
			}
			im.skipped += len(ans.Skipped)
		case errors.As(err, &apiErr) && len(apiErr.Fields) > 0 && (apiErr.Status == 400 || apiErr.Status == 409):
			entryProblems, ok := im.entryProblems(apiErr.Fields)
			if !ok {
				return err // not about entries: the request itself is wrong
			}
			problems = append(problems, entryProblems...)
		default:
			return err
		}
	}
	if len(problems) > 0 {
		slices.SortStableFunc(problems, func(a, b lineProblem) int { return a.line - b.line })
		im.progress.clear()
		last := 0
		for _, p := range problems {
			fmt.Fprintf(im.stderr, "%s:%d: %s\n", im.name, p.line, p.msg)
			if p.line != last {
				im.bad++
				last = p.line
			}
		}
		if im.failedAt == 0 {
			im.failedAt = problems[0].line
			im.unwrittenFrom = first
		}
	}
	im.progress.update(im.read.n, im.sent)
	return nil
}

// entryProblems turns an answer's fields ("keys[3].user_id") into problems
// on the entries' lines; ok is false when a field names no entry.
func (im *importer) entryProblems(fields map[string][]string) ([]lineProblem, bool) {
	var out []lineProblem
	for f, msgs := range fields {
		rest, found := strings.CutPrefix(f, "keys[")
		idx, field, _ := strings.Cut(rest, "]")
		i, err := strconv.Atoi(idx)
		if !found || err != nil || i < 0 || i >= len(im.lines) {
			return nil, false
		}
		field = strings.TrimPrefix(field, ".")
		for _, m := range msgs {
			if field != "" {
				m = field + ": " + m
			}
			out = append(out, lineProblem{im.lines[i], m})
		}
	}
	return out, true
}

// summary prints the closing line on stdout (a JSON object with -o json).
func (im *importer) summary(took time.Duration, interrupted bool) {
	if im.c.output == "json" {
		b, _ := json.Marshal(map[string]any{
			"file": im.name, "imported": im.imported, "checked": im.checked, "skipped": im.skipped,
			"bad": im.bad, "dry_run": im.dryRun, "complete": !interrupted, "first_bad_line": im.failedAt,
			"unwritten_from_line": im.unwrittenFrom,
			"seconds":             took.Seconds(),
		})
		fmt.Fprintf(im.c.stdout, "%s\n", b)
		return
	}
	var s string
	switch {
	case im.dryRun:
		s = fmt.Sprintf("dry run: %d keys would be imported, %d skipped as existing, %d bad; nothing was written", im.checked, im.skipped, im.bad)
	case im.failedAt > 0:
		s = fmt.Sprintf("imported %d keys, %d skipped as existing, %d bad (first on line %d); nothing from line %d on was written, only checked",
			im.imported, im.skipped, im.bad, im.failedAt, im.unwrittenFrom)
	default:
		s = fmt.Sprintf("imported %d keys, %d skipped as existing, %d bad", im.imported, im.skipped, im.bad)
	}
	if interrupted {
		s += "; stopped early"
	}
	fmt.Fprintf(im.c.stdout, "%s from %s in %s\n", s, im.name, took.Round(10*time.Millisecond))
}
