package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/keygate/keygate/keys"
)

func rateLimitOf(limit, windowMS *int64) *keys.RateLimit {
	if limit == nil {
		return nil
	}
	var w int64
	if windowMS != nil {
		w = *windowMS
	}
	return &keys.RateLimit{Limit: *limit, Window: time.Duration(w) * time.Millisecond}
}

func rateLimitArgs(r *keys.RateLimit) (*int64, *int64) {
	if r == nil {
		return nil, nil
	}
	l, w := r.Limit, r.Window.Milliseconds()
	return &l, &w
}

const userColumns = `id, email, enabled, metadata, rl_limit, rl_window_ms, created_at, updated_at, q_limit, q_period`

func scanUser(r pgx.Row) (*keys.User, error) {
	var u keys.User
	var meta string
	var limit, win, ql, qp *int64
	if err := r.Scan(&u.ID, &u.Email, &u.Enabled, &meta, &limit, &win, &u.CreatedAt, &u.UpdatedAt, &ql, &qp); err != nil {
		return nil, err
	}
	u.Metadata = json.RawMessage(meta)
	u.RateLimit = rateLimitOf(limit, win)
	u.Quota = quotaOf(ql, qp)
	return &u, nil
}

const orgColumns = `id, name, metadata, rl_limit, rl_window_ms, created_at, updated_at, q_limit, q_period`

func scanOrg(r pgx.Row) (*keys.Org, error) {
	var o keys.Org
	var meta string
	var limit, win, ql, qp *int64
	if err := r.Scan(&o.ID, &o.Name, &meta, &limit, &win, &o.CreatedAt, &o.UpdatedAt, &ql, &qp); err != nil {
		return nil, err
	}
	o.Metadata = json.RawMessage(meta)
	o.RateLimit = rateLimitOf(limit, win)
	o.Quota = quotaOf(ql, qp)
	return &o, nil
}

// GetUser returns a user with the orgs they belong to.
func (db *DB) GetUser(ctx context.Context, id string) (*keys.User, error) {
	u, err := scanUser(db.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
	if err != nil {
		return nil, fmt.Errorf("get user: %w", notFound(err))
	}
	rows, err := db.pool.Query(ctx, `SELECT o.id, o.name, m.role FROM memberships m JOIN orgs o ON o.id = m.org_id WHERE m.user_id = $1 ORDER BY o.id`, id)
	if err != nil {
		return nil, fmt.Errorf("get user orgs: %w", err)
	}
	u.Orgs, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (keys.UserOrg, error) {
		var o keys.UserOrg
		return o, r.Scan(&o.OrgID, &o.Name, &o.Role)
	})
	if err != nil {
		return nil, fmt.Errorf("get user orgs: %w", err)
	}
	if u.Orgs == nil {
		u.Orgs = []keys.UserOrg{}
	}
	return u, nil
}

// ListUsers returns up to limit users with id > cursor, by id.
func (db *DB) ListUsers(ctx context.Context, cursor string, limit int) ([]keys.User, string, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := db.pool.Query(ctx, `SELECT `+userColumns+` FROM users WHERE id > $1 ORDER BY id LIMIT $2`, cursor, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list users: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (keys.User, error) {
		u, err := scanUser(r)
		if err != nil {
			return keys.User{}, err
		}
		return *u, nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("list users: %w", err)
	}
	if out == nil {
		out = []keys.User{}
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ID
	}
	return out, next, nil
}

// GetOrg returns an org with its members.
func (db *DB) GetOrg(ctx context.Context, id string) (*keys.Org, error) {
	o, err := scanOrg(db.pool.QueryRow(ctx, `SELECT `+orgColumns+` FROM orgs WHERE id = $1`, id))
	if err != nil {
		return nil, fmt.Errorf("get org: %w", notFound(err))
	}
	rows, err := db.pool.Query(ctx, `SELECT org_id, user_id, role, created_at FROM memberships WHERE org_id = $1 ORDER BY user_id`, id)
	if err != nil {
		return nil, fmt.Errorf("get org members: %w", err)
	}
	o.Members, err = pgx.CollectRows(rows, scanMember)
	if err != nil {
		return nil, fmt.Errorf("get org members: %w", err)
	}
	if o.Members == nil {
		o.Members = []keys.Member{}
	}
	return o, nil
}

// ListOrgs returns up to limit orgs with id > cursor, by id.
func (db *DB) ListOrgs(ctx context.Context, cursor string, limit int) ([]keys.Org, string, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := db.pool.Query(ctx, `SELECT `+orgColumns+` FROM orgs WHERE id > $1 ORDER BY id LIMIT $2`, cursor, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list orgs: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (keys.Org, error) {
		o, err := scanOrg(r)
		if err != nil {
			return keys.Org{}, err
		}
		return *o, nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("list orgs: %w", err)
	}
	if out == nil {
		out = []keys.Org{}
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ID
	}
	return out, next, nil
}

func scanMember(r pgx.CollectableRow) (keys.Member, error) {
	var m keys.Member
	return m, r.Scan(&m.OrgID, &m.UserID, &m.Role, &m.CreatedAt)
}

func getMember(ctx context.Context, q querier, orgID, userID string, lock bool) (*keys.Member, error) {
	sql := `SELECT org_id, user_id, role, created_at FROM memberships WHERE org_id = $1 AND user_id = $2`
	if lock {
		sql += ` FOR UPDATE`
	}
	var m keys.Member
	if err := q.QueryRow(ctx, sql, orgID, userID).Scan(&m.OrgID, &m.UserID, &m.Role, &m.CreatedAt); err != nil {
		return nil, fmt.Errorf("get member: %w", notFound(err))
	}
	return &m, nil
}

// GetMember returns the membership of user in org.
func (db *DB) GetMember(ctx context.Context, orgID, userID string) (*keys.Member, error) {
	return getMember(ctx, db.pool, orgID, userID, false)
}

// GetUser reads a user (without Orgs) inside the transaction.
func (t *tx) GetUser(ctx context.Context, id string) (*keys.User, error) {
	u, err := scanUser(t.tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1 FOR UPDATE`, id))
	if err != nil {
		return nil, fmt.Errorf("get user: %w", notFound(err))
	}
	return u, nil
}

// GetOrg reads an org (without Members) inside the transaction.
func (t *tx) GetOrg(ctx context.Context, id string) (*keys.Org, error) {
	o, err := scanOrg(t.tx.QueryRow(ctx, `SELECT `+orgColumns+` FROM orgs WHERE id = $1 FOR UPDATE`, id))
	if err != nil {
		return nil, fmt.Errorf("get org: %w", notFound(err))
	}
	return o, nil
}

// GetMember reads a membership inside the transaction.
func (t *tx) GetMember(ctx context.Context, orgID, userID string) (*keys.Member, error) {
	return getMember(ctx, t.tx, orgID, userID, true)
}

// PutUser inserts u or replaces every field but CreatedAt.
func (t *tx) PutUser(ctx context.Context, u *keys.User) error {
	limit, win := rateLimitArgs(u.RateLimit)
	ql, qp := quotaArgs(u.Quota)
	if _, err := t.tx.Exec(ctx, `INSERT INTO users (`+userColumns+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)
		ON CONFLICT (id) DO UPDATE SET email = excluded.email, enabled = excluded.enabled, metadata = excluded.metadata,
		rl_limit = excluded.rl_limit, rl_window_ms = excluded.rl_window_ms, updated_at = excluded.updated_at,
		q_limit = excluded.q_limit, q_period = excluded.q_period`,
		u.ID, u.Email, u.Enabled, jsonText(u.Metadata), limit, win, u.CreatedAt, u.UpdatedAt, ql, qp); err != nil {
		return fmt.Errorf("put user: %w", err)
	}
	return nil
}

// DeleteUser removes the user row only.
func (t *tx) DeleteUser(ctx context.Context, id string) error {
	tag, err := t.tx.Exec(ctx, `DELETE FROM users WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("delete user: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delete user: %w", keys.ErrNotFound)
	}
	return nil
}

// PutOrg inserts o or replaces every field but CreatedAt.
func (t *tx) PutOrg(ctx context.Context, o *keys.Org) error {
	limit, win := rateLimitArgs(o.RateLimit)
	ql, qp := quotaArgs(o.Quota)
	if _, err := t.tx.Exec(ctx, `INSERT INTO orgs (`+orgColumns+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)
		ON CONFLICT (id) DO UPDATE SET name = excluded.name, metadata = excluded.metadata,
		rl_limit = excluded.rl_limit, rl_window_ms = excluded.rl_window_ms, updated_at = excluded.updated_at,
		q_limit = excluded.q_limit, q_period = excluded.q_period`,
		o.ID, o.Name, jsonText(o.Metadata), limit, win, o.CreatedAt, o.UpdatedAt, ql, qp); err != nil {
		return fmt.Errorf("put org: %w", err)
	}
	return nil
}

// DeleteOrg removes the org row and, by cascade, its memberships.
func (t *tx) DeleteOrg(ctx context.Context, id string) error {
	tag, err := t.tx.Exec(ctx, `DELETE FROM orgs WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("delete org: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delete org: %w", keys.ErrNotFound)
	}
	return nil
}

// PutMember inserts a membership or changes its role.
func (t *tx) PutMember(ctx context.Context, m keys.Member) (*keys.Member, error) {
	var out keys.Member
	err := t.tx.QueryRow(ctx, `INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1,$2,$3,$4)
		ON CONFLICT (org_id, user_id) DO UPDATE SET role = excluded.role
		RETURNING org_id, user_id, role, created_at`, m.OrgID, m.UserID, m.Role, m.CreatedAt).Scan(&out.OrgID, &out.UserID, &out.Role, &out.CreatedAt)
	if isForeignKey(err) {
		return nil, fmt.Errorf("put member: %w", keys.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("put member: %w", err)
	}
	return &out, nil
}

// DeleteMemberships removes the memberships matching org and user.
func (t *tx) DeleteMemberships(ctx context.Context, orgID, userID string) ([]keys.Member, error) {
	if orgID == "" && userID == "" {
		return nil, fmt.Errorf("delete memberships: no org or user named")
	}
	rows, err := t.tx.Query(ctx, `WITH d AS (DELETE FROM memberships WHERE ($1 = '' OR org_id = $1) AND ($2 = '' OR user_id = $2)
		RETURNING org_id, user_id, role, created_at)
		SELECT * FROM d ORDER BY org_id, user_id`, orgID, userID)
	if err != nil {
		return nil, fmt.Errorf("delete memberships: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanMember)
	if err != nil {
		return nil, fmt.Errorf("delete memberships: %w", err)
	}
	if out == nil {
		out = []keys.Member{}
	}
	return out, nil
}
