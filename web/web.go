// Package web holds what the dashboard and the portal share: random
// tokens, sessions kept in the store (so that they work on every node and
// survive restarts), CSRF checks and the Secure-cookie rule.
package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/keygate/keygate/keys"
)

// TokenLen is the length of a token from NewToken: 32 random bytes
// (256 bits) in unpadded base64url.
const TokenLen = 43

// NewToken returns a random 256-bit token, URL- and cookie-safe.
func NewToken() string {
	var b [32]byte
	rand.Read(b[:]) // never fails (crypto/rand panics instead)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// TokenHash is what the store keeps of a link or session token: a dump of
// the store or a timing side channel on its lookups reveals no usable
// token.
func TokenHash(token string) [32]byte { return sha256.Sum256([]byte(token)) }

// CheckCSRF reports whether a form's token matches the session's, in
// constant time; an empty session token matches nothing.
func CheckCSRF(form, session string) bool {
	return session != "" && subtle.ConstantTimeCompare([]byte(form), []byte(session)) == 1
}

// Secure reports whether cookies set in answer to r should be Secure: the
// request came over TLS, through a proxy that says so, or the pages' public
// URL is https.
func Secure(r *http.Request, publicURL string) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") ||
		strings.HasPrefix(strings.ToLower(publicURL), "https://")
}

// Sessions keeps the sessions of one kind (keys.SessionDashboard or
// keys.SessionPortal) and, for the portal, its links, in a
// keys.SessionStore by token hash. Safe for concurrent use.
type Sessions struct {
	store keys.SessionStore
	kind  string
}

// NewSessions returns the sessions of kind in store.
func NewSessions(store keys.SessionStore, kind string) *Sessions {
	return &Sessions{store: store, kind: kind}
}

// Start opens a session until expires and returns its token, shown only
// now, and the session (with a fresh CSRF token).
func (s *Sessions) Start(ctx context.Context, userID, orgID string, expires time.Time) (string, *keys.Session, error) {
	token := NewToken()
	ss := keys.Session{Hash: TokenHash(token), Kind: s.kind, UserID: userID, OrgID: orgID, CSRF: NewToken(), ExpiresAt: expires.Unix()}
	if err := s.store.CreateSession(ctx, ss); err != nil {
		return "", nil, fmt.Errorf("start %s session: %w", s.kind, err)
	}
	return token, &ss, nil
}

// Get returns the live session of token, or keys.ErrNotFound. With
// takeFlash, its one-time message is returned and cleared.
func (s *Sessions) Get(ctx context.Context, token string, now time.Time, takeFlash bool) (*keys.Session, error) {
	if len(token) != TokenLen {
		return nil, keys.ErrNotFound
	}
	ss, err := s.store.GetSession(ctx, s.kind, TokenHash(token), now.Unix())
	if err != nil {
		return nil, err
	}
	if takeFlash && ss.Flash != "" {
		if err := s.store.SetSessionFlash(ctx, ss.Hash, ""); err != nil {
			return nil, fmt.Errorf("take flash: %w", err)
		}
	}
	return ss, nil
}

// SetFlash leaves a message for the session's next page.
func (s *Sessions) SetFlash(ctx context.Context, token, msg string) error {
	return s.store.SetSessionFlash(ctx, TokenHash(token), msg)
}

// End ends the session of token; ending an unknown session is no error.
func (s *Sessions) End(ctx context.Context, token string) error {
	return s.store.DeleteSession(ctx, TokenHash(token))
}

// NewLink stores a single-use link until expires and returns its token.
func (s *Sessions) NewLink(ctx context.Context, userID, orgID string, expires time.Time) (string, error) {
	token := NewToken()
	if err := s.store.CreatePortalLink(ctx, keys.PortalLink{Hash: TokenHash(token), UserID: userID, OrgID: orgID, ExpiresAt: expires.Unix()}); err != nil {
		return "", fmt.Errorf("create link: %w", err)
	}
	return token, nil
}

// PeekLink returns the live link of token without using it up, or
// keys.ErrNotFound.
func (s *Sessions) PeekLink(ctx context.Context, token string, now time.Time) (*keys.PortalLink, error) {
	if len(token) != TokenLen {
		return nil, keys.ErrNotFound
	}
	return s.store.GetPortalLink(ctx, TokenHash(token), now.Unix())
}

// TakeLink uses up the link of token: on any number of nodes at once, one
// caller gets it; the others, and anyone after, get keys.ErrNotFound.
func (s *Sessions) TakeLink(ctx context.Context, token string, now time.Time) (*keys.PortalLink, error) {
	if len(token) != TokenLen {
		return nil, keys.ErrNotFound
	}
	return s.store.TakePortalLink(ctx, TokenHash(token), now.Unix())
}

// Sweep deletes expired links and sessions (of every kind).
func (s *Sessions) Sweep(ctx context.Context, now time.Time) error {
	return s.store.SweepSessions(ctx, now.Unix())
}

// IsNotFound reports whether err means "no such live session or link".
func IsNotFound(err error) bool { return errors.Is(err, keys.ErrNotFound) }
