package portal

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"sync"
	"time"
)

// tokenLen is the length of a link or session token: 32 random bytes
// (256 bits) in unpadded base64url.
const tokenLen = 43

// newToken returns a random 256-bit token, URL- and cookie-safe.
func newToken() string {
	var b [32]byte
	rand.Read(b[:]) // never fails (crypto/rand panics instead)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// tokenHash is what the maps are keyed by: a leaked memory dump or a
// timing side channel on map lookups reveals no usable token.
func tokenHash(token string) [32]byte { return sha256.Sum256([]byte(token)) }

// link is an unused portal link.
type link struct {
	userID, orgID string
	expires       time.Time
}

// session is a signed-in portal visitor.
type session struct {
	userID, orgID string
	csrf          string // per-session token every form carries
	expires       time.Time
	flash         string // one-time message for the next page
}

// sessions keeps links and sessions in memory, keyed by token hash. A
// restart signs everyone out, which is fine for short-lived pages. Safe for
// concurrent use.
type sessions struct {
	mu       sync.Mutex
	links    map[[32]byte]link
	sessions map[[32]byte]*session
}

func newSessions() *sessions {
	return &sessions{links: map[[32]byte]link{}, sessions: map[[32]byte]*session{}}
}

// addLink stores a new link and returns its token.
func (s *sessions) addLink(l link) string {
	token := newToken()
	s.mu.Lock()
	s.links[tokenHash(token)] = l
	s.mu.Unlock()
	return token
}

// takeLink consumes the link of token: it is removed whether or not it has
// expired, so it can never be used twice.
func (s *sessions) takeLink(token string, now time.Time) (link, bool) {
	if len(token) != tokenLen {
		return link{}, false
	}
	h := tokenHash(token)
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.links[h]
	delete(s.links, h)
	if !ok || !now.Before(l.expires) {
		return link{}, false
	}
	return l, true
}

// start opens a session for l and returns its token.
func (s *sessions) start(l link, expires time.Time) string {
	token := newToken()
	s.mu.Lock()
	s.sessions[tokenHash(token)] = &session{userID: l.userID, orgID: l.orgID, csrf: newToken(), expires: expires}
	s.mu.Unlock()
	return token
}

// get returns a copy of the live session of token, taking its flash
// message when takeFlash is set.
func (s *sessions) get(token string, now time.Time, takeFlash bool) (session, bool) {
	if len(token) != tokenLen {
		return session{}, false
	}
	h := tokenHash(token)
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.sessions[h]
	if !ok {
		return session{}, false
	}
	if !now.Before(ss.expires) {
		delete(s.sessions, h)
		return session{}, false
	}
	out := *ss
	if takeFlash {
		ss.flash = ""
	}
	return out, true
}

// setFlash leaves a message for the session's next page.
func (s *sessions) setFlash(token, msg string) {
	s.mu.Lock()
	if ss, ok := s.sessions[tokenHash(token)]; ok {
		ss.flash = msg
	}
	s.mu.Unlock()
}

// end removes the session of token.
func (s *sessions) end(token string) {
	s.mu.Lock()
	delete(s.sessions, tokenHash(token))
	s.mu.Unlock()
}

// sweep drops expired links and sessions.
func (s *sessions) sweep(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for h, l := range s.links {
		if !now.Before(l.expires) {
			delete(s.links, h)
		}
	}
	for h, ss := range s.sessions {
		if !now.Before(ss.expires) {
			delete(s.sessions, h)
		}
	}
}

// counts returns how many links and sessions are held, for tests.
func (s *sessions) counts() (links, sessions int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.links), len(s.sessions)
}
