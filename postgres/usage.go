package postgres

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/keygate/keygate/keys"
)

const (
	minuteSeconds = 60
	hourSeconds   = 3600
	daySeconds    = 86400
)

func alignDown(t, step int64) int64 {
	r := t % step
	if r < 0 {
		r += step
	}
	return t - r
}

// AddUsage adds counts to the minute buckets and raises last_used_at, in one
// transaction. Several nodes flush concurrently: the upsert adds, the
// update only raises, and rows are written in key order so that two flushes
// never deadlock.
func (db *DB) AddUsage(ctx context.Context, counts []keys.UsageCount) error {
	type bucket struct {
		key string
		t   int64
	}
	sum := make(map[bucket]*keys.UsageCount, len(counts))
	latest := make(map[string]int64, len(counts))
	for _, c := range counts {
		if c.Allowed == 0 && c.RateLimited == 0 {
			continue
		}
		c.Minute = alignDown(c.Minute, minuteSeconds)
		b := bucket{c.KeyID, c.Minute}
		if s, ok := sum[b]; ok {
			s.Allowed += c.Allowed
			s.RateLimited += c.RateLimited
		} else {
			sum[b] = &c
		}
		if t, ok := latest[c.KeyID]; !ok || c.Minute > t {
			latest[c.KeyID] = c.Minute
		}
	}
	if len(sum) == 0 {
		return nil
	}
	rows := make([]*keys.UsageCount, 0, len(sum))
	for _, c := range sum {
		rows = append(rows, c)
	}
	slices.SortFunc(rows, func(a, b *keys.UsageCount) int {
		return cmp.Or(cmp.Compare(a.KeyID, b.KeyID), cmp.Compare(a.Minute, b.Minute))
	})
	ids := make([]string, 0, len(rows))
	ts := make([]int64, 0, len(rows))
	allowed := make([]int64, 0, len(rows))
	limited := make([]int64, 0, len(rows))
	for _, c := range rows {
		ids, ts, allowed, limited = append(ids, c.KeyID), append(ts, c.Minute), append(allowed, c.Allowed), append(limited, c.RateLimited)
	}
	lids := make([]string, 0, len(latest))
	for id := range latest {
		lids = append(lids, id)
	}
	slices.Sort(lids)
	lts := make([]int64, len(lids))
	for i, id := range lids {
		lts[i] = latest[id]
	}
	// Two statements whatever the batch size: arrays unnest into rows. The
	// EXISTS guard drops counts of deleted keys rather than leaving usage
	// rows nobody can delete.
	err := retry(ctx, func() error {
		return pgx.BeginFunc(ctx, db.pool.Pool, func(tx pgx.Tx) error {
			b := &pgx.Batch{}
			b.Queue(`INSERT INTO usage_minute (key_id, t, allowed, rate_limited)
				SELECT v.k, v.t, v.a, v.r FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[]) AS v(k, t, a, r)
				WHERE EXISTS (SELECT 1 FROM api_keys WHERE id = v.k)
				ON CONFLICT (key_id, t) DO UPDATE SET
					allowed = usage_minute.allowed + excluded.allowed,
					rate_limited = usage_minute.rate_limited + excluded.rate_limited`, ids, ts, allowed, limited)
			// Minute buckets start before a key made mid-minute: never before created_at.
			b.Queue(`UPDATE api_keys SET last_used_at = GREATEST(v.t, api_keys.created_at)
				FROM unnest($1::text[], $2::bigint[]) AS v(k, t)
				WHERE api_keys.id = v.k AND (api_keys.last_used_at IS NULL OR api_keys.last_used_at < GREATEST(v.t, api_keys.created_at))`, lids, lts)
			return tx.SendBatch(ctx, b).Close()
		})
	})
	err = unavailable(err)
	db.noteWrite(err)
	if err != nil {
		return fmt.Errorf("add usage: %w", err)
	}
	return nil
}

// compactLock lets one node at a time roll usage up.
const compactLock = 0x6b67_0002

// CompactUsage rolls whole hours of minute buckets older than
// minuteRetention into hour buckets and drops hours past retention, in one
// transaction. A node that finds another compacting skips its turn: the
// other does the same work.
func (db *DB) CompactUsage(ctx context.Context, now time.Time, minuteRetention, retention time.Duration) error {
	cut := alignDown(now.Add(-minuteRetention).Unix(), hourSeconds)
	oldest := now.Add(-retention).Unix()
	err := pgx.BeginFunc(ctx, db.pool.Pool, func(tx pgx.Tx) error {
		var got bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, compactLock).Scan(&got); err != nil {
			return err
		}
		if !got {
			return nil
		}
		if _, err := tx.Exec(ctx, `INSERT INTO usage_hour (key_id, t, allowed, rate_limited)
			SELECT key_id, (t / 3600) * 3600 AS h, SUM(allowed), SUM(rate_limited)
			FROM usage_minute WHERE t < $1 GROUP BY key_id, h ORDER BY key_id, h
			ON CONFLICT (key_id, t) DO UPDATE SET
				allowed = usage_hour.allowed + excluded.allowed,
				rate_limited = usage_hour.rate_limited + excluded.rate_limited`, cut); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM usage_minute WHERE t < $1`, cut); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM usage_hour WHERE t < $1`, oldest)
		return err
	})
	if err != nil {
		return fmt.Errorf("compact usage: %w", unavailable(err))
	}
	return nil
}

// usageKeys returns the condition on key_id selecting q's keys, using $1.
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
		return `$1::text = ''`, "", nil
	case q.KeyID != "":
		return `key_id = $1`, q.KeyID, nil
	case q.UserID != "":
		return fmt.Sprintf(`key_id IN (SELECT id FROM api_keys WHERE user_id = $1 AND type = %d)`, keys.TypePersonal), q.UserID, nil
	default:
		return fmt.Sprintf(`key_id IN (SELECT id FROM api_keys WHERE org_id = $1 AND type = %d)`, keys.TypeOrg), q.OrgID, nil
	}
}

// Usage returns q's traffic per interval, oldest first, and its total.
// Minutes and hours are read in one statement, so in one snapshot.
func (db *DB) Usage(ctx context.Context, q keys.UsageQuery) ([]keys.UsagePoint, int64, error) {
	var step int64
	switch q.Interval {
	case "minute":
		step = minuteSeconds
	case "hour":
		step = hourSeconds
	case "day":
		step = daySeconds
	default:
		return nil, 0, keys.Errorf(keys.EInvalid, "usage: interval %q is not minute, hour or day", q.Interval)
	}
	cond, arg, err := usageKeys(q)
	if err != nil {
		return nil, 0, err
	}
	from := alignDown(q.From, step)
	points := []keys.UsagePoint{}
	if q.To <= from {
		return points, 0, nil
	}
	to := alignDown(q.To-1, step) + step
	src := fmt.Sprintf(`SELECT t, allowed, rate_limited FROM usage_minute WHERE %s AND t >= $2 AND t < $3`, cond)
	if step > minuteSeconds {
		src += fmt.Sprintf(` UNION ALL SELECT t, allowed, rate_limited FROM usage_hour WHERE %s AND t >= $2 AND t < $3`, cond)
	}
	// floor division: t is never negative here, but keep it exact anyway.
	query := fmt.Sprintf(`SELECT (t - ((t %% %[1]d) + %[1]d) %% %[1]d) AS b, SUM(allowed)::bigint, SUM(rate_limited)::bigint
		FROM (%[2]s) s GROUP BY b ORDER BY b`, step, src)
	rows, err := db.pool.Query(ctx, query, arg, from, to)
	if err != nil {
		return nil, 0, fmt.Errorf("usage: %w", err)
	}
	points, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (keys.UsagePoint, error) {
		var p keys.UsagePoint
		return p, r.Scan(&p.T, &p.Allowed, &p.RateLimited)
	})
	if err != nil {
		return nil, 0, fmt.Errorf("usage: %w", err)
	}
	if points == nil {
		points = []keys.UsagePoint{}
	}
	var total int64
	for _, p := range points {
		total += p.Allowed + p.RateLimited
	}
	return points, total, nil
}

const usageSince = `WITH u AS (
	SELECT key_id, SUM(allowed)::bigint AS a, SUM(rate_limited)::bigint AS r FROM (
		SELECT key_id, allowed, rate_limited FROM usage_minute WHERE t >= $1
		UNION ALL
		SELECT key_id, allowed, rate_limited FROM usage_hour WHERE t >= $1
	) s GROUP BY key_id
) `

// TopKeys returns the n keys with the most traffic since since.
func (db *DB) TopKeys(ctx context.Context, since int64, n int) ([]keys.UsageTop, error) {
	return db.top(ctx, "top keys", usageSince+`SELECT key_id, a, r FROM u ORDER BY a + r DESC, key_id LIMIT $2`, since, n)
}

// TopUsers is TopKeys summed over each user's personal keys.
func (db *DB) TopUsers(ctx context.Context, since int64, n int) ([]keys.UsageTop, error) {
	return db.top(ctx, "top users", usageSince+fmt.Sprintf(`SELECT k.user_id, SUM(u.a)::bigint AS a, SUM(u.r)::bigint AS r
		FROM u JOIN api_keys k ON k.id = u.key_id WHERE k.type = %d
		GROUP BY k.user_id ORDER BY SUM(u.a) + SUM(u.r) DESC, k.user_id LIMIT $2`, keys.TypePersonal), since, n)
}

// TopOrgs is TopKeys summed over each org's org keys.
func (db *DB) TopOrgs(ctx context.Context, since int64, n int) ([]keys.UsageTop, error) {
	return db.top(ctx, "top orgs", usageSince+fmt.Sprintf(`SELECT k.org_id, SUM(u.a)::bigint AS a, SUM(u.r)::bigint AS r
		FROM u JOIN api_keys k ON k.id = u.key_id WHERE k.type = %d
		GROUP BY k.org_id ORDER BY SUM(u.a) + SUM(u.r) DESC, k.org_id LIMIT $2`, keys.TypeOrg), since, n)
}

func (db *DB) top(ctx context.Context, what, query string, since int64, n int) ([]keys.UsageTop, error) {
	out := []keys.UsageTop{}
	if n <= 0 {
		return out, nil
	}
	rows, err := db.pool.Query(ctx, query, since, n)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (keys.UsageTop, error) {
		var u keys.UsageTop
		return u, r.Scan(&u.ID, &u.Allowed, &u.RateLimited)
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if out == nil {
		out = []keys.UsageTop{}
	}
	return out, nil
}
