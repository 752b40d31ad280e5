package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"time"

	"github.com/keygate/keygate/keys"
)

// Bucket sizes in seconds.
const (
	minuteSeconds = 60
	hourSeconds   = 3600
)

// AddUsage adds counts to the minute buckets and raises each key's
// last_used_at to the latest minute it had traffic in (it never goes back).
// The whole batch is one transaction. Counts for keys that do not exist
// (deleted since the request) are dropped silently; empty counts are skipped.
func (s *Store) AddUsage(ctx context.Context, counts []keys.UsageCount) error {
	// The counts go in as one JSON text, [["id",minute,allowed,limited],…],
	// read back with json_each: two statements whatever the batch, and two
	// allocations (the text) instead of a boxed argument per value. A
	// flush every second of a thousand keys' counts was most of what the
	// gateway allocated, and so what set the pace of its GC cycles.
	buf := make([]byte, 0, 64*len(counts))
	buf = append(buf, '[')
	n := 0
	for _, c := range counts {
		if c.Allowed == 0 && c.RateLimited == 0 {
			continue
		}
		if n > 0 {
			buf = append(buf, ',')
		}
		n++
		buf = append(buf, '[')
		buf = appendJSONString(buf, c.KeyID)
		buf = append(buf, ',')
		buf = strconv.AppendInt(buf, keys.AlignDown(c.Minute, minuteSeconds), 10)
		buf = append(buf, ',')
		buf = strconv.AppendInt(buf, c.Allowed, 10)
		buf = append(buf, ',')
		buf = strconv.AppendInt(buf, c.RateLimited, 10)
		buf = append(buf, ']')
	}
	if n == 0 {
		return nil
	}
	buf = append(buf, ']')
	doc := string(buf) // text, not a blob: SQLite reads a blob as JSONB
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		// The EXISTS guard drops counts for deleted keys instead of
		// resurrecting usage rows nobody can ever delete. Rows for the same
		// key and minute add up, one after the other.
		if _, err := tx.ExecContext(ctx, `INSERT INTO usage_minute (key_id, t, allowed, rate_limited)
			SELECT json_extract(j.value, '$[0]'), json_extract(j.value, '$[1]'), json_extract(j.value, '$[2]'), json_extract(j.value, '$[3]')
			FROM json_each(?) AS j
			WHERE EXISTS (SELECT 1 FROM api_keys WHERE id = json_extract(j.value, '$[0]'))
			ON CONFLICT (key_id, t) DO UPDATE SET
				allowed = allowed + excluded.allowed,
				rate_limited = rate_limited + excluded.rate_limited`, doc); err != nil {
			return err
		}
		// Counts are per minute, so a key made at 12:00:40 and used at once
		// has the 12:00 bucket: last_used_at takes created_at then, never a
		// time before the key existed.
		_, err := tx.ExecContext(ctx, `UPDATE api_keys SET last_used_at = max(v.t, api_keys.created_at)
			FROM (SELECT json_extract(value, '$[0]') AS id, max(json_extract(value, '$[1]')) AS t FROM json_each(?) GROUP BY 1) AS v
			WHERE api_keys.id = v.id AND (api_keys.last_used_at IS NULL OR api_keys.last_used_at < max(v.t, api_keys.created_at))`, doc)
		return err
	})
	if err != nil {
		return fmt.Errorf("add usage: %w", err)
	}
	return nil
}

// appendJSONString appends s as a JSON string. Key ids are hex, but
// imported ones are not ours to vouch for.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// usageKeys returns the SQL condition on key_id selecting q's keys and its
// argument.
func usageKeys(q keys.UsageQuery) (string, string, error) {
	n := 0
	for _, v := range [...]string{q.KeyID, q.UserID, q.OrgID} {
		if v != "" {
			n++
		}
	}
	if n > 1 {
		return "", "", keys.Errorf(keys.EInvalid, "usage: name at most one of key_id, user_id and org_id")
	}
	switch {
	case n == 0:
		return `? = ''`, "", nil // every key: the dashboard's overview
	case q.KeyID != "":
		return `key_id = ?`, q.KeyID, nil
	case q.UserID != "":
		return fmt.Sprintf(`key_id IN (SELECT id FROM api_keys WHERE user_id = ? AND type = %d)`, keys.TypePersonal), q.UserID, nil
	default:
		return fmt.Sprintf(`key_id IN (SELECT id FROM api_keys WHERE org_id = ? AND type = %d)`, keys.TypeOrg), q.OrgID, nil
	}
}

// Usage returns the traffic of q's keys per interval, oldest first, and its
// total (allowed plus rate limited). A point covers [T, T+interval) with T
// aligned to the interval in UTC; the points returned are those with
// align(q.From) ≤ T < q.To, so a partial first or last bucket is reported
// whole. Only buckets with traffic are returned (never nil); FillUsage adds
// the empty ones.
//
// Minute points exist for the minute retention only (older minutes are rolled
// up into hours); hour and day points combine rolled-up hours with minutes
// not yet rolled up, read in one snapshot, so nothing is counted twice.
func (s *Store) Usage(ctx context.Context, q keys.UsageQuery) ([]keys.UsagePoint, int64, error) {
	step, ok := keys.UsageStep(q.Interval)
	if !ok {
		return nil, 0, keys.Errorf(keys.EInvalid, "usage: interval %q is not minute, hour or day", q.Interval)
	}
	cond, arg, err := usageKeys(q)
	if err != nil {
		return nil, 0, err
	}
	from := keys.AlignDown(q.From, step)
	points := []keys.UsagePoint{}
	if q.To <= from {
		return points, 0, nil
	}
	// Every row of [from, to) belongs to a bucket starting before q.To.
	to := keys.AlignDown(q.To-1, step) + step
	rows := fmt.Sprintf(`SELECT t, allowed, rate_limited FROM usage_minute WHERE %s AND t >= ? AND t < ?`, cond)
	args := []any{arg, from, to}
	if step > minuteSeconds {
		rows += fmt.Sprintf(` UNION ALL SELECT t, allowed, rate_limited FROM usage_hour WHERE %s AND t >= ? AND t < ?`, cond)
		args = append(args, arg, from, to)
	}
	query := fmt.Sprintf(`SELECT (t / %[1]d) * %[1]d AS b, SUM(allowed), SUM(rate_limited)
		FROM (%[2]s) GROUP BY b ORDER BY b`, step, rows)
	r, err := s.rdb.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("usage: %w", err)
	}
	defer r.Close()
	var total int64
	for r.Next() {
		var p keys.UsagePoint
		if err := r.Scan(&p.T, &p.Allowed, &p.RateLimited); err != nil {
			return nil, 0, fmt.Errorf("usage: %w", err)
		}
		total += p.Allowed + p.RateLimited
		points = append(points, p)
	}
	if err := r.Err(); err != nil {
		return nil, 0, fmt.Errorf("usage: %w", err)
	}
	return points, total, nil
}

// CompactUsage rolls the minute buckets of hours that ended minuteRetention
// before now into hour buckets (adding to what is there) and deletes them,
// then deletes the hour buckets that started retention before now. Only
// whole hours are rolled up. It is one transaction, so readers see either
// the minutes or the hours, never both or neither.
func (s *Store) CompactUsage(ctx context.Context, now time.Time, minuteRetention, retention time.Duration) error {
	cut := keys.AlignDown(now.Add(-minuteRetention).Unix(), hourSeconds)
	oldest := now.Add(-retention).Unix()
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO usage_hour (key_id, t, allowed, rate_limited)
			SELECT key_id, (t / 3600) * 3600 AS h, SUM(allowed), SUM(rate_limited)
			FROM usage_minute WHERE t < ? GROUP BY key_id, h
			ON CONFLICT (key_id, t) DO UPDATE SET
				allowed = allowed + excluded.allowed,
				rate_limited = rate_limited + excluded.rate_limited`, cut); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM usage_minute WHERE t < ?`, cut); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM usage_hour WHERE t < ?`, oldest)
		return err
	})
	if err != nil {
		return fmt.Errorf("compact usage: %w", err)
	}
	return nil
}

// usageSince sums traffic per key in the buckets starting at or after ?1.
const usageSince = `WITH u AS (
	SELECT key_id, SUM(allowed) AS a, SUM(rate_limited) AS r FROM (
		SELECT key_id, allowed, rate_limited FROM usage_minute WHERE t >= ?1
		UNION ALL
		SELECT key_id, allowed, rate_limited FROM usage_hour WHERE t >= ?1
	) GROUP BY key_id
) `

// TopKeys returns the n keys with the most traffic (allowed plus rate
// limited) in the buckets starting at or after since (unix seconds), most
// first. Never nil.
func (s *Store) TopKeys(ctx context.Context, since int64, n int) ([]keys.UsageTop, error) {
	return s.top(ctx, "top keys", usageSince+`SELECT key_id, a, r FROM u ORDER BY a + r DESC, key_id LIMIT ?2`, since, n)
}

// TopUsers is TopKeys summed over each user's personal keys.
func (s *Store) TopUsers(ctx context.Context, since int64, n int) ([]keys.UsageTop, error) {
	return s.top(ctx, "top users", usageSince+fmt.Sprintf(`SELECT k.user_id, SUM(u.a) AS a, SUM(u.r) AS r
		FROM u JOIN api_keys k ON k.id = u.key_id WHERE k.type = %d
		GROUP BY k.user_id ORDER BY SUM(u.a) + SUM(u.r) DESC, k.user_id LIMIT ?2`, keys.TypePersonal), since, n)
}

// TopOrgs is TopKeys summed over each org's org keys.
func (s *Store) TopOrgs(ctx context.Context, since int64, n int) ([]keys.UsageTop, error) {
	return s.top(ctx, "top orgs", usageSince+fmt.Sprintf(`SELECT k.org_id, SUM(u.a) AS a, SUM(u.r) AS r
		FROM u JOIN api_keys k ON k.id = u.key_id WHERE k.type = %d
		GROUP BY k.org_id ORDER BY SUM(u.a) + SUM(u.r) DESC, k.org_id LIMIT ?2`, keys.TypeOrg), since, n)
}

func (s *Store) top(ctx context.Context, what, query string, since int64, n int) ([]keys.UsageTop, error) {
	out := []keys.UsageTop{}
	if n <= 0 {
		return out, nil
	}
	rows, err := s.rdb.QueryContext(ctx, query, since, n)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		var u keys.UsageTop
		if err := rows.Scan(&u.ID, &u.Allowed, &u.RateLimited); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}
