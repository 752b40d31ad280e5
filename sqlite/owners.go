package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/keygate/keygate/keys"
)

func rateLimitOf(limit, windowMS sql.NullInt64) *keys.RateLimit {
	if !limit.Valid {
		return nil
	}
	return &keys.RateLimit{Limit: limit.Int64, Window: time.Duration(windowMS.Int64) * time.Millisecond}
}

func rateLimitArgs(r *keys.RateLimit) (sql.NullInt64, sql.NullInt64) {
	if r == nil {
		return sql.NullInt64{}, sql.NullInt64{}
	}
	return sql.NullInt64{Int64: r.Limit, Valid: true}, sql.NullInt64{Int64: r.Window.Milliseconds(), Valid: true}
}

const userColumns = `id, email, enabled, metadata, rl_limit, rl_window_ms, created_at, updated_at, q_limit, q_period`

func scanUser(r scanner) (*keys.User, error) {
	var u keys.User
	var meta string
	var limit, win, ql, qp sql.NullInt64
	if err := r.Scan(&u.ID, &u.Email, &u.Enabled, &meta, &limit, &win, &u.CreatedAt, &u.UpdatedAt, &ql, &qp); err != nil {
		return nil, err
	}
	u.Metadata = json.RawMessage(meta)
	u.RateLimit = rateLimitOf(limit, win)
	u.Quota = quotaOf(ql, qp)
	return &u, nil
}

const orgColumns = `id, name, metadata, rl_limit, rl_window_ms, created_at, updated_at, q_limit, q_period`

func scanOrg(r scanner) (*keys.Org, error) {
	var o keys.Org
	var meta string
	var limit, win, ql, qp sql.NullInt64
	if err := r.Scan(&o.ID, &o.Name, &meta, &limit, &win, &o.CreatedAt, &o.UpdatedAt, &ql, &qp); err != nil {
		return nil, err
	}
	o.Metadata = json.RawMessage(meta)
	o.RateLimit = rateLimitOf(limit, win)
	o.Quota = quotaOf(ql, qp)
	return &o, nil
}

func getUser(ctx context.Context, q querier, id string) (*keys.User, error) {
	u, err := scanUser(q.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("user %q: %w", id, keys.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get user: %w", err)
	}
	return u, nil
}

func getOrg(ctx context.Context, q querier, id string) (*keys.Org, error) {
	o, err := scanOrg(q.QueryRowContext(ctx, `SELECT `+orgColumns+` FROM orgs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("org %q: %w", id, keys.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get org: %w", err)
	}
	return o, nil
}

func getMember(ctx context.Context, q querier, orgID, userID string) (*keys.Member, error) {
	m := &keys.Member{}
	err := q.QueryRowContext(ctx, `SELECT org_id, user_id, role, created_at FROM memberships WHERE org_id = ? AND user_id = ?`, orgID, userID).Scan(&m.OrgID, &m.UserID, &m.Role, &m.CreatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("member %q of org %q: %w", userID, orgID, keys.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get member: %w", err)
	}
	return m, nil
}

// GetUser returns a user with the orgs they belong to.
func (s *Store) GetUser(ctx context.Context, id string) (*keys.User, error) {
	u, err := getUser(ctx, s.rdb, id)
	if err != nil {
		return nil, err
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT o.id, o.name, m.role FROM memberships m JOIN orgs o ON o.id = m.org_id WHERE m.user_id = ? ORDER BY o.id`, id)
	if err != nil {
		return nil, fmt.Errorf("get user orgs: %w", err)
	}
	defer rows.Close()
	u.Orgs = []keys.UserOrg{}
	for rows.Next() {
		var o keys.UserOrg
		if err := rows.Scan(&o.OrgID, &o.Name, &o.Role); err != nil {
			return nil, fmt.Errorf("get user orgs: %w", err)
		}
		u.Orgs = append(u.Orgs, o)
	}
	return u, rows.Err()
}

// ListUsers returns a page of users ordered by id.
func (s *Store) ListUsers(ctx context.Context, cursor string, limit int) ([]keys.User, string, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+userColumns+` FROM users WHERE id > ? ORDER BY id LIMIT ?`, cursor, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	out := []keys.User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, "", fmt.Errorf("list users: %w", err)
		}
		out = append(out, *u)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list users: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ID
	}
	return out, next, nil
}

// GetOrg returns an org with its members.
func (s *Store) GetOrg(ctx context.Context, id string) (*keys.Org, error) {
	o, err := getOrg(ctx, s.rdb, id)
	if err != nil {
		return nil, err
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT org_id, user_id, role, created_at FROM memberships WHERE org_id = ? ORDER BY user_id`, id)
	if err != nil {
		return nil, fmt.Errorf("get org members: %w", err)
	}
	defer rows.Close()
	o.Members = []keys.Member{}
	for rows.Next() {
		var m keys.Member
		if err := rows.Scan(&m.OrgID, &m.UserID, &m.Role, &m.CreatedAt); err != nil {
			return nil, fmt.Errorf("get org members: %w", err)
		}
		o.Members = append(o.Members, m)
	}
	return o, rows.Err()
}

// ListOrgs returns a page of orgs ordered by id.
func (s *Store) ListOrgs(ctx context.Context, cursor string, limit int) ([]keys.Org, string, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+orgColumns+` FROM orgs WHERE id > ? ORDER BY id LIMIT ?`, cursor, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list orgs: %w", err)
	}
	defer rows.Close()
	out := []keys.Org{}
	for rows.Next() {
		o, err := scanOrg(rows)
		if err != nil {
			return nil, "", fmt.Errorf("list orgs: %w", err)
		}
		out = append(out, *o)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list orgs: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ID
	}
	return out, next, nil
}

// GetMember returns a membership, or ErrNotFound.
func (s *Store) GetMember(ctx context.Context, orgID, userID string) (*keys.Member, error) {
	return getMember(ctx, s.rdb, orgID, userID)
}

// GetUser reads a user (without orgs) inside the transaction.
func (t *tx) GetUser(ctx context.Context, id string) (*keys.User, error) {
	return getUser(ctx, t.tx, id)
}

// GetOrg reads an org (without members) inside the transaction.
func (t *tx) GetOrg(ctx context.Context, id string) (*keys.Org, error) {
	return getOrg(ctx, t.tx, id)
}

// GetMember reads a membership inside the transaction.
func (t *tx) GetMember(ctx context.Context, orgID, userID string) (*keys.Member, error) {
	return getMember(ctx, t.tx, orgID, userID)
}

// PutUser inserts or replaces a user, keeping an existing CreatedAt.
func (t *tx) PutUser(ctx context.Context, u *keys.User) error {
	st, err := t.stmt(ctx, `INSERT INTO users (`+userColumns+`) VALUES (?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT(id) DO UPDATE SET email = excluded.email, enabled = excluded.enabled, metadata = excluded.metadata,
		rl_limit = excluded.rl_limit, rl_window_ms = excluded.rl_window_ms, updated_at = excluded.updated_at,
		q_limit = excluded.q_limit, q_period = excluded.q_period`)
	if err != nil {
		return err
	}
	limit, win := rateLimitArgs(u.RateLimit)
	ql, qp := quotaArgs(u.Quota)
	if _, err := st.ExecContext(ctx, u.ID, u.Email, u.Enabled, metaText(u.Metadata), limit, win, u.CreatedAt, u.UpdatedAt, ql, qp); err != nil {
		return fmt.Errorf("put user %q: %w", u.ID, err)
	}
	return nil
}

// DeleteUser removes the user row.
func (t *tx) DeleteUser(ctx context.Context, id string) error {
	res, err := t.tx.ExecContext(ctx, `DELETE FROM users WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete user: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("user %q: %w", id, keys.ErrNotFound)
	}
	return nil
}

// PutOrg inserts or replaces an org, keeping an existing CreatedAt.
func (t *tx) PutOrg(ctx context.Context, o *keys.Org) error {
	limit, win := rateLimitArgs(o.RateLimit)
	ql, qp := quotaArgs(o.Quota)
	if _, err := t.tx.ExecContext(ctx, `INSERT INTO orgs (`+orgColumns+`) VALUES (?,?,?,?,?,?,?,?,?)
		ON CONFLICT(id) DO UPDATE SET name = excluded.name, metadata = excluded.metadata,
		rl_limit = excluded.rl_limit, rl_window_ms = excluded.rl_window_ms, updated_at = excluded.updated_at,
		q_limit = excluded.q_limit, q_period = excluded.q_period`,
		o.ID, o.Name, metaText(o.Metadata), limit, win, o.CreatedAt, o.UpdatedAt, ql, qp); err != nil {
		return fmt.Errorf("put org %q: %w", o.ID, err)
	}
	return nil
}

// DeleteOrg removes the org row; its memberships cascade.
func (t *tx) DeleteOrg(ctx context.Context, id string) error {
	res, err := t.tx.ExecContext(ctx, `DELETE FROM orgs WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete org: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("org %q: %w", id, keys.ErrNotFound)
	}
	return nil
}

// PutMember inserts a membership or changes its role.
func (t *tx) PutMember(ctx context.Context, m keys.Member) (*keys.Member, error) {
	var orgs, users int
	if err := t.tx.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM orgs WHERE id = ?), (SELECT COUNT(*) FROM users WHERE id = ?)`, m.OrgID, m.UserID).Scan(&orgs, &users); err != nil {
		return nil, fmt.Errorf("check member: %w", err)
	}
	if orgs == 0 {
		return nil, fmt.Errorf("org %q: %w", m.OrgID, keys.ErrNotFound)
	}
	if users == 0 {
		return nil, fmt.Errorf("user %q: %w", m.UserID, keys.ErrNotFound)
	}
	if err := t.tx.QueryRowContext(ctx, `INSERT INTO memberships (org_id, user_id, role, created_at) VALUES (?,?,?,?)
		ON CONFLICT(org_id, user_id) DO UPDATE SET role = excluded.role RETURNING created_at`, m.OrgID, m.UserID, m.Role, m.CreatedAt).Scan(&m.CreatedAt); err != nil {
		return nil, fmt.Errorf("put member: %w", err)
	}
	return &m, nil
}

// DeleteMemberships removes the memberships matching org and user.
func (t *tx) DeleteMemberships(ctx context.Context, orgID, userID string) ([]keys.Member, error) {
	var cond string
	var args []any
	switch {
	case orgID != "" && userID != "":
		cond, args = `org_id = ? AND user_id = ?`, []any{orgID, userID}
	case orgID != "":
		cond, args = `org_id = ?`, []any{orgID}
	case userID != "":
		cond, args = `user_id = ?`, []any{userID}
	default:
		return nil, fmt.Errorf("delete memberships: neither org nor user: %w", errCaller)
	}
	rows, err := t.tx.QueryContext(ctx, `SELECT org_id, user_id, role, created_at FROM memberships WHERE `+cond+` ORDER BY org_id, user_id`, args...)
	if err != nil {
		return nil, fmt.Errorf("find memberships: %w", err)
	}
	var out []keys.Member
	for rows.Next() {
		var m keys.Member
		if err := rows.Scan(&m.OrgID, &m.UserID, &m.Role, &m.CreatedAt); err != nil {
			rows.Close()
			return nil, fmt.Errorf("find memberships: %w", err)
		}
		out = append(out, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find memberships: %w", err)
	}
	if _, err := t.tx.ExecContext(ctx, `DELETE FROM memberships WHERE `+cond, args...); err != nil {
		return nil, fmt.Errorf("remove memberships: %w", err)
	}
	return out, nil
}
