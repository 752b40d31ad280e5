package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/keygate/keygate/keys"
)

func quotaOf(limit, period *int64) *keys.Quota {
	if limit == nil {
		return nil
	}
	q := &keys.Quota{Limit: *limit}
	if period != nil {
		q.Period = keys.QuotaPeriod(*period)
	}
	return q
}

func quotaArgs(q *keys.Quota) (*int64, *int64) {
	if q == nil {
		return nil, nil
	}
	l, p := q.Limit, int64(q.Period)
	return &l, &p
}

// QuotaUsed returns the use stored for one owner's period.
func (db *DB) QuotaUsed(ctx context.Context, owner string, p keys.QuotaPeriod, start int64) (int64, error) {
	var n int64
	err := db.pool.QueryRow(ctx, `SELECT used FROM quota_usage WHERE owner = $1 AND period = $2 AND start = $3`, owner, int64(p), start).Scan(&n)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("quota use of %s: %w", owner, unavailable(err))
	}
	return n, nil
}

// AddQuotaUsage adds counts to the stored use in one statement. Counts are
// summed per row and sorted first, so that concurrent flushes from several
// nodes lock rows in one order and cannot deadlock.
func (db *DB) AddQuotaUsage(ctx context.Context, counts []keys.QuotaCount) error {
	if len(counts) == 0 {
		return nil
	}
	type row struct {
		owner         string
		period, start int64
	}
	sum := make(map[row]int64, len(counts))
	for _, c := range counts {
		sum[row{c.Owner, int64(c.Period), c.Start}] += c.Used
	}
	rows := make([]row, 0, len(sum))
	for r := range sum {
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b row) int {
		return cmp.Or(cmp.Compare(a.owner, b.owner), cmp.Compare(a.period, b.period), cmp.Compare(a.start, b.start))
	})
	owners := make([]string, len(rows))
	periods, starts, used := make([]int64, len(rows)), make([]int64, len(rows)), make([]int64, len(rows))
	for i, r := range rows {
		owners[i], periods[i], starts[i], used[i] = r.owner, r.period, r.start, sum[r]
	}
	_, err := db.pool.Exec(ctx, `INSERT INTO quota_usage (owner, period, start, used)
		SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[])
		ON CONFLICT (owner, period, start) DO UPDATE SET used = quota_usage.used + excluded.used`, owners, periods, starts, used)
	err = unavailable(err)
	db.noteWrite(err)
	if err != nil {
		return fmt.Errorf("add quota use: %w", err)
	}
	return nil
}
