package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/keygate/keygate/keys"
)

// CreatePortalLink stores an unused link.
func (db *DB) CreatePortalLink(ctx context.Context, l keys.PortalLink) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO portal_links (hash, user_id, org_id, expires_at) VALUES ($1,$2,$3,$4)`,
		l.Hash[:], l.UserID, l.OrgID, l.ExpiresAt)
	if isUnique(err) {
		return fmt.Errorf("create portal link: %w", keys.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create portal link: %w", err)
	}
	return nil
}

// GetPortalLink returns an unused, unexpired link without using it.
func (db *DB) GetPortalLink(ctx context.Context, hash [32]byte, now int64) (*keys.PortalLink, error) {
	l := keys.PortalLink{Hash: hash}
	err := db.pool.QueryRow(ctx, `SELECT user_id, org_id, expires_at FROM portal_links WHERE hash = $1 AND expires_at > $2`,
		hash[:], now).Scan(&l.UserID, &l.OrgID, &l.ExpiresAt)
	if err != nil {
		return nil, fmt.Errorf("get portal link: %w", notFound(err))
	}
	return &l, nil
}

// TakePortalLink uses up a link: DELETE … RETURNING lets exactly one of any
// number of concurrent callers, on any node, see the row.
func (db *DB) TakePortalLink(ctx context.Context, hash [32]byte, now int64) (*keys.PortalLink, error) {
	l := keys.PortalLink{Hash: hash}
	// Used links stay, their expires_at negated (no live-link query
	// matches it), so a second visit can be told "already used".
	err := db.pool.QueryRow(ctx, `UPDATE portal_links SET expires_at = -expires_at WHERE hash = $1 AND expires_at > $2 RETURNING user_id, org_id, -expires_at`,
		hash[:], now).Scan(&l.UserID, &l.OrgID, &l.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		var exp int64
		err = db.pool.QueryRow(ctx, `SELECT expires_at FROM portal_links WHERE hash = $1`, hash[:]).Scan(&exp)
		switch {
		case err != nil:
			return nil, fmt.Errorf("take portal link: %w", notFound(err))
		case exp < 0:
			return nil, fmt.Errorf("take portal link: %w", keys.ErrLinkUsed)
		default:
			return nil, fmt.Errorf("take portal link: %w", keys.ErrLinkExpired)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("take portal link: %w", notFound(err))
	}
	return &l, nil
}

// CreateSession stores a new session.
func (db *DB) CreateSession(ctx context.Context, s keys.Session) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO sessions (hash, kind, user_id, org_id, csrf, flash, expires_at) VALUES ($1,$2,$3,$4,$5,$6,$7)`,
		s.Hash[:], s.Kind, s.UserID, s.OrgID, s.CSRF, s.Flash, s.ExpiresAt)
	if isUnique(err) {
		return fmt.Errorf("create session: %w", keys.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// GetSession returns the live session of hash and kind.
func (db *DB) GetSession(ctx context.Context, kind string, hash [32]byte, now int64) (*keys.Session, error) {
	s := keys.Session{Hash: hash, Kind: kind}
	err := db.pool.QueryRow(ctx, `SELECT user_id, org_id, csrf, flash, expires_at FROM sessions WHERE hash = $1 AND kind = $2 AND expires_at > $3`,
		hash[:], kind, now).Scan(&s.UserID, &s.OrgID, &s.CSRF, &s.Flash, &s.ExpiresAt)
	if err != nil {
		return nil, fmt.Errorf("get session: %w", notFound(err))
	}
	return &s, nil
}

// SetSessionFlash replaces the session's one-time message.
func (db *DB) SetSessionFlash(ctx context.Context, hash [32]byte, flash string) error {
	if _, err := db.pool.Exec(ctx, `UPDATE sessions SET flash = $1 WHERE hash = $2`, flash, hash[:]); err != nil {
		return fmt.Errorf("set session flash: %w", err)
	}
	return nil
}

// DeleteSession ends a session.
func (db *DB) DeleteSession(ctx context.Context, hash [32]byte) error {
	if _, err := db.pool.Exec(ctx, `DELETE FROM sessions WHERE hash = $1`, hash[:]); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// SweepSessions deletes links and sessions expired at now.
func (db *DB) SweepSessions(ctx context.Context, now int64) error {
	if _, err := db.pool.Exec(ctx, `DELETE FROM portal_links WHERE abs(expires_at) <= $1`, now-keys.LinkMemory); err != nil {
		return fmt.Errorf("sweep portal links: %w", err)
	}
	if _, err := db.pool.Exec(ctx, `DELETE FROM sessions WHERE expires_at <= $1`, now); err != nil {
		return fmt.Errorf("sweep sessions: %w", err)
	}
	return nil
}
