package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/keygate/keygate/keys"
)

const deliveryColumns = `seq, id, endpoint, type, payload, created_at, status, attempts, next_at, last_error, delivered_at`

func scanDelivery(r pgx.Row, d *keys.Delivery) error {
	var payload string
	if err := r.Scan(&d.Seq, &d.ID, &d.Endpoint, &d.Type, &payload, &d.CreatedAt, &d.Status, &d.Attempts, &d.NextAt, &d.LastError, &d.DeliveredAt); err != nil {
		return err
	}
	d.Payload = json.RawMessage(payload)
	return nil
}

func collectDeliveries(rows pgx.Rows) ([]keys.Delivery, error) {
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (keys.Delivery, error) {
		var d keys.Delivery
		err := scanDelivery(r, &d)
		return d, err
	})
	if out == nil {
		out = []keys.Delivery{}
	}
	return out, err
}

// InsertDeliveries writes new pending deliveries in one round trip.
func (t *tx) InsertDeliveries(ctx context.Context, ds []keys.Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, d := range ds {
		b.Queue(`INSERT INTO webhook_deliveries (id, endpoint, type, payload, created_at, next_at) VALUES ($1,$2,$3,$4,$5,$6)`,
			d.ID, d.Endpoint, d.Type, string(d.Payload), d.CreatedAt, d.NextAt)
	}
	if err := t.tx.SendBatch(ctx, b).Close(); err != nil {
		if isUnique(err) {
			return fmt.Errorf("insert deliveries: %w", keys.ErrConflict)
		}
		return fmt.Errorf("insert deliveries: %w", err)
	}
	return nil
}

// KeysExpiring returns the unarchived keys with after < expires_at ≤ upTo.
func (t *tx) KeysExpiring(ctx context.Context, after, upTo int64) ([]keys.Key, error) {
	rows, err := t.tx.Query(ctx, `SELECT `+keyColumns+` FROM api_keys
		WHERE expires_at IS NOT NULL AND archived_at IS NULL AND expires_at > $1 AND expires_at <= $2 ORDER BY expires_at, id`, after, upTo)
	if err != nil {
		return nil, fmt.Errorf("keys expiring: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (keys.Key, error) {
		var k keys.Key
		err := scanKey(r, &k)
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("keys expiring: %w", err)
	}
	return out, nil
}

// Mark returns the scheduler mark name, 0 when unset.
func (t *tx) Mark(ctx context.Context, name string) (int64, error) {
	var v int64
	err := t.tx.QueryRow(ctx, `SELECT at FROM webhook_marks WHERE name = $1`, name).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read mark %s: %w", name, err)
	}
	return v, nil
}

// SetMark stores the scheduler mark name.
func (t *tx) SetMark(ctx context.Context, name string, v int64) error {
	if _, err := t.tx.Exec(ctx, `INSERT INTO webhook_marks (name, at) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET at = excluded.at`, name, v); err != nil {
		return fmt.Errorf("set mark %s: %w", name, err)
	}
	return nil
}

// ClaimDeliveries leases due deliveries: FOR UPDATE SKIP LOCKED lets the
// nodes claim at once without waiting for or taking each other's rows, and
// the lease keeps a claimed row from every other node until it runs out.
func (db *DB) ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]keys.Delivery, error) {
	nowMs := now.UnixMilli()
	rows, err := db.pool.Query(ctx, `UPDATE webhook_deliveries SET lease_until = $1
		WHERE seq IN (SELECT seq FROM webhook_deliveries WHERE status = 'pending' AND next_at <= $2 AND lease_until <= $2
			ORDER BY seq LIMIT $3 FOR UPDATE SKIP LOCKED)
		RETURNING `+deliveryColumns, nowMs+lease.Milliseconds(), nowMs, limit)
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	out, err := collectDeliveries(rows)
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", unavailable(err))
	}
	sortBySeq(out)
	return out, nil
}

// FinishDelivery stores an attempt's outcome and releases the lease.
func (db *DB) FinishDelivery(ctx context.Context, d *keys.Delivery) error {
	_, err := db.pool.Exec(ctx, `UPDATE webhook_deliveries SET status = $1, attempts = $2, next_at = $3, last_error = $4, delivered_at = $5, lease_until = 0 WHERE id = $6`,
		d.Status, d.Attempts, d.NextAt, d.LastError, d.DeliveredAt, d.ID)
	if err != nil {
		return fmt.Errorf("finish delivery: %w", err)
	}
	return nil
}

// RetryDelivery makes a delivery pending again, due now.
func (db *DB) RetryDelivery(ctx context.Context, id string, now time.Time) (*keys.Delivery, error) {
	var d keys.Delivery
	err := scanDelivery(db.pool.QueryRow(ctx, `UPDATE webhook_deliveries SET status = 'pending', next_at = $1, lease_until = 0, delivered_at = NULL
		WHERE id = $2 RETURNING `+deliveryColumns, now.UnixMilli(), id), &d)
	if err != nil {
		return nil, fmt.Errorf("retry delivery %s: %w", id, notFound(err))
	}
	return &d, nil
}

// ListDeliveries returns deliveries newest first; the cursor is the seq of
// the last one returned.
func (db *DB) ListDeliveries(ctx context.Context, f keys.DeliveryFilter) ([]keys.Delivery, string, error) {
	where, args := []string{"TRUE"}, []any{}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.Status != "" {
		where = append(where, "status = "+arg(f.Status))
	}
	if f.Endpoint != "" {
		where = append(where, "endpoint = "+arg(f.Endpoint))
	}
	if f.Cursor != "" {
		seq, err := strconv.ParseInt(f.Cursor, 10, 64)
		if err != nil || seq <= 0 {
			return nil, "", keys.FieldError("cursor", "not a cursor returned by this API")
		}
		where = append(where, "seq < "+arg(seq))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	rows, err := db.pool.Query(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries WHERE `+strings.Join(where, " AND ")+
		` ORDER BY seq DESC LIMIT `+strconv.Itoa(limit+1), args...)
	if err != nil {
		return nil, "", fmt.Errorf("list deliveries: %w", err)
	}
	out, err := collectDeliveries(rows)
	if err != nil {
		return nil, "", fmt.Errorf("list deliveries: %w", unavailable(err))
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = strconv.FormatInt(out[limit-1].Seq, 10)
	}
	return out, next, nil
}

// DeliveryStats counts deliveries by status.
func (db *DB) DeliveryStats(ctx context.Context) (keys.DeliveryStats, error) {
	st := keys.DeliveryStats{Count: map[string]int64{keys.DeliveryPending: 0, keys.DeliveryDelivered: 0, keys.DeliveryFailed: 0}}
	rows, err := db.pool.Query(ctx, `SELECT status, COUNT(*) FROM webhook_deliveries GROUP BY status`)
	if err != nil {
		return st, fmt.Errorf("delivery stats: %w", err)
	}
	for rows.Next() {
		var status string
		var n int64
		if err := rows.Scan(&status, &n); err != nil {
			rows.Close()
			return st, fmt.Errorf("delivery stats: %w", err)
		}
		st.Count[status] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("delivery stats: %w", err)
	}
	var oldest *int64
	if err := db.pool.QueryRow(ctx, `SELECT MIN(created_at) FROM webhook_deliveries WHERE status = 'pending'`).Scan(&oldest); err != nil {
		return st, fmt.Errorf("delivery stats: %w", err)
	}
	if oldest != nil {
		st.OldestPending = *oldest
	}
	return st, nil
}

// NextExpiry returns the next expires_at after after, on the expires_at index.
func (db *DB) NextExpiry(ctx context.Context, after int64) (int64, bool, error) {
	var at *int64
	err := db.pool.QueryRow(ctx, `SELECT MIN(expires_at) FROM api_keys
		WHERE expires_at IS NOT NULL AND archived_at IS NULL AND expires_at > $1`, after).Scan(&at)
	if err != nil {
		return 0, false, fmt.Errorf("next expiry: %w", err)
	}
	if at == nil {
		return 0, false, nil
	}
	return *at, true, nil
}

func sortBySeq(ds []keys.Delivery) {
	for i := 1; i < len(ds); i++ {
		for j := i; j > 0 && ds[j].Seq < ds[j-1].Seq; j-- {
			ds[j], ds[j-1] = ds[j-1], ds[j]
		}
	}
}
