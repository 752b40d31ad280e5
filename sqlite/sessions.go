package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/keygate/keygate/keys"
)

// CreatePortalLink stores an unused link.
func (s *Store) CreatePortalLink(ctx context.Context, l keys.PortalLink) error {
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO portal_links (hash, user_id, org_id, expires_at) VALUES (?,?,?,?)`, l.Hash[:], l.UserID, l.OrgID, l.ExpiresAt)
		if isUnique(err) {
			return fmt.Errorf("portal link: %w", keys.ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("create portal link: %w", err)
		}
		return nil
	})
}

// GetPortalLink returns a live link without using it up.
func (s *Store) GetPortalLink(ctx context.Context, hash [32]byte, now int64) (*keys.PortalLink, error) {
	l := &keys.PortalLink{Hash: hash}
	err := s.rdb.QueryRowContext(ctx, `SELECT user_id, org_id, expires_at FROM portal_links WHERE hash = ? AND expires_at > ?`, hash[:], now).Scan(&l.UserID, &l.OrgID, &l.ExpiresAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("portal link: %w", keys.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get portal link: %w", err)
	}
	return l, nil
}

// TakePortalLink marks a live link used (its expires_at negated, which
// no live-link query matches) and returns it; the UPDATE … RETURNING runs
// under the write lock, so one caller gets it. A link that is not live is
// looked up to say why.
func (s *Store) TakePortalLink(ctx context.Context, hash [32]byte, now int64) (*keys.PortalLink, error) {
	l := &keys.PortalLink{Hash: hash}
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `UPDATE portal_links SET expires_at = -expires_at WHERE hash = ? AND expires_at > ? RETURNING user_id, org_id, -expires_at`,
			hash[:], now).Scan(&l.UserID, &l.OrgID, &l.ExpiresAt)
		if errors.Is(err, sql.ErrNoRows) {
			var exp int64
			err = tx.QueryRowContext(ctx, `SELECT expires_at FROM portal_links WHERE hash = ?`, hash[:]).Scan(&exp)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				return fmt.Errorf("take portal link: %w", keys.ErrNotFound)
			case err != nil:
			case exp < 0:
				return fmt.Errorf("take portal link: %w", keys.ErrLinkUsed)
			default:
				return fmt.Errorf("take portal link: %w", keys.ErrLinkExpired)
			}
		}
		if err != nil {
			return fmt.Errorf("take portal link: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}

// CreateSession stores a new session.
func (s *Store) CreateSession(ctx context.Context, ss keys.Session) error {
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO sessions (hash, kind, user_id, org_id, csrf, flash, expires_at) VALUES (?,?,?,?,?,?,?)`,
			ss.Hash[:], ss.Kind, ss.UserID, ss.OrgID, ss.CSRF, ss.Flash, ss.ExpiresAt)
		if isUnique(err) {
			return fmt.Errorf("session: %w", keys.ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("create session: %w", err)
		}
		return nil
	})
}

// GetSession returns a live session of kind.
func (s *Store) GetSession(ctx context.Context, kind string, hash [32]byte, now int64) (*keys.Session, error) {
	ss := &keys.Session{Hash: hash, Kind: kind}
	err := s.rdb.QueryRowContext(ctx, `SELECT user_id, org_id, csrf, flash, expires_at FROM sessions WHERE hash = ? AND kind = ? AND expires_at > ?`, hash[:], kind, now).
		Scan(&ss.UserID, &ss.OrgID, &ss.CSRF, &ss.Flash, &ss.ExpiresAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("session: %w", keys.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get session: %w", err)
	}
	return ss, nil
}

// SetSessionFlash replaces a session's one-time message.
func (s *Store) SetSessionFlash(ctx context.Context, hash [32]byte, flash string) error {
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE sessions SET flash = ? WHERE hash = ?`, flash, hash[:]); err != nil {
			return fmt.Errorf("set session flash: %w", err)
		}
		return nil
	})
}

// DeleteSession ends a session.
func (s *Store) DeleteSession(ctx context.Context, hash [32]byte) error {
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE hash = ?`, hash[:]); err != nil {
			return fmt.Errorf("delete session: %w", err)
		}
		return nil
	})
}

// SweepSessions deletes expired links and sessions.
func (s *Store) SweepSessions(ctx context.Context, now int64) error {
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM portal_links WHERE abs(expires_at) <= ?`, now-keys.LinkMemory); err != nil {
			return fmt.Errorf("sweep portal links: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= ?`, now); err != nil {
			return fmt.Errorf("sweep sessions: %w", err)
		}
		return nil
	})
}
