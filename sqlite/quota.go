package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/keygate/keygate/keys"
)

func quotaOf(limit, period sql.NullInt64) *keys.Quota {
	if !limit.Valid {
		return nil
	}
	return &keys.Quota{Limit: limit.Int64, Period: keys.QuotaPeriod(period.Int64)}
}

func quotaArgs(q *keys.Quota) (sql.NullInt64, sql.NullInt64) {
	if q == nil {
		return sql.NullInt64{}, sql.NullInt64{}
	}
	return sql.NullInt64{Int64: q.Limit, Valid: true}, sql.NullInt64{Int64: int64(q.Period), Valid: true}
}

func nullString(n sql.NullString) *string {
	if !n.Valid {
		return nil
	}
	v := n.String
	return &v
}

func stringNull(p *string) sql.NullString {
	if p == nil {
		return sql.NullString{}
	}
	return sql.NullString{String: *p, Valid: true}
}

// QuotaUsed returns the use stored for one owner's period.
func (s *Store) QuotaUsed(ctx context.Context, owner string, p keys.QuotaPeriod, start int64) (int64, error) {
	var n int64
	err := s.rdb.QueryRowContext(ctx, `SELECT used FROM quota_usage WHERE owner = ? AND period = ? AND start = ?`, owner, p, start).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("quota use of %s: %w", owner, err)
	}
	return n, nil
}

// quotaChunk bounds the rows of one multi-row upsert (4 parameters each).
const quotaChunk = 500

// AddQuotaUsage adds counts to the stored use in one transaction.
func (s *Store) AddQuotaUsage(ctx context.Context, counts []keys.QuotaCount) error {
	if len(counts) == 0 {
		return nil
	}
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		for len(counts) > 0 {
			n := min(len(counts), quotaChunk)
			args := make([]any, 0, 4*n)
			for _, c := range counts[:n] {
				args = append(args, c.Owner, c.Period, c.Start, c.Used)
			}
			q := `INSERT INTO quota_usage (owner, period, start, used) VALUES ` +
				strings.TrimSuffix(strings.Repeat("(?,?,?,?),", n), ",") +
				` ON CONFLICT(owner, period, start) DO UPDATE SET used = used + excluded.used`
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				return fmt.Errorf("add quota use: %w", err)
			}
			counts = counts[n:]
		}
		return nil
	})
}
