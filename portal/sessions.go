package portal

import (
	"context"
	"errors"
	"time"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/web"
)

// link is an unused portal link.
type link struct {
	userID, orgID string
	expires       time.Time
}

// session is a signed-in portal visitor.
type session struct {
	userID, orgID string
	csrf          string // per-session token every form carries
	flash         string // one-time message for the next page
}

// sessions keeps links and sessions in the store (web.Sessions), so that a
// link made on one node is redeemed once on any node and a session works
// on every node. A store error is returned as such: the caller answers 500,
// not "your link has expired".
type sessions struct {
	web *web.Sessions
}

func newSessions(store keys.SessionStore) *sessions {
	return &sessions{web: web.NewSessions(store, keys.SessionPortal)}
}

// addLink stores a new link and returns its token.
func (s *sessions) addLink(ctx context.Context, l link) (string, error) {
	return s.web.NewLink(ctx, l.userID, l.orgID, l.expires)
}

// linkState says why takeLink gave no link.
type linkState int

const (
	linkUnknown linkState = iota // never made, mistyped, or long gone
	linkUsed
	linkExpired
)

// takeLink uses up the link of token, so it can never be used twice. When
// ok is false, state says whether it was used already, expired or unknown.
func (s *sessions) takeLink(ctx context.Context, token string, now time.Time) (l link, ok bool, state linkState, err error) {
	pl, err := s.web.TakeLink(ctx, token, now)
	switch {
	case errors.Is(err, keys.ErrLinkUsed):
		return link{}, false, linkUsed, nil
	case errors.Is(err, keys.ErrLinkExpired):
		return link{}, false, linkExpired, nil
	case web.IsNotFound(err):
		return link{}, false, linkUnknown, nil
	case err != nil:
		return link{}, false, linkUnknown, err
	}
	return link{userID: pl.UserID, orgID: pl.OrgID, expires: time.Unix(pl.ExpiresAt, 0)}, true, 0, nil
}

// start opens a session for l and returns its token.
func (s *sessions) start(ctx context.Context, l link, expires time.Time) (string, error) {
	token, _, err := s.web.Start(ctx, l.userID, l.orgID, expires)
	return token, err
}

// get returns the live session of token, taking its flash message when
// takeFlash is set. ok is false when there is none.
func (s *sessions) get(ctx context.Context, token string, now time.Time, takeFlash bool) (session, bool, error) {
	ss, err := s.web.Get(ctx, token, now, takeFlash)
	if web.IsNotFound(err) {
		return session{}, false, nil
	}
	if err != nil {
		return session{}, false, err
	}
	return session{userID: ss.UserID, orgID: ss.OrgID, csrf: ss.CSRF, flash: ss.Flash}, true, nil
}

// setFlash leaves a message for the session's next page.
func (s *sessions) setFlash(ctx context.Context, token, msg string) error {
	return s.web.SetFlash(ctx, token, msg)
}

// end removes the session of token.
func (s *sessions) end(ctx context.Context, token string) error {
	return s.web.End(ctx, token)
}

// sweep drops expired links and sessions.
func (s *sessions) sweep(ctx context.Context, now time.Time) error {
	return s.web.Sweep(ctx, now)
}
