package proxy

import (
	"context"
	"testing"

	"github.com/keygate/keygate/keys"
)

// TestCacheReset: after Reset every entry, positive or negative, goes back
// to the store once; then it is cached again.
func TestCacheReset(t *testing.T) {
	s := newStack(t, stackConfig{})
	_, tok := s.key(keys.CreateKeyInput{})
	known := keys.Hash(tok)
	unknownTok, _ := s.tokens.New(keys.TypeGeneric)
	unknown := keys.Hash(unknownTok)
	src := &countingSource{svc: s.svc}
	look := func(h *[32]byte) {
		t.Helper()
		if _, _, err := s.cache.lookup(context.Background(), src, h, s.clock.Now()); err != nil {
			t.Fatal(err)
		}
		s.cache.rc.Wait()
	}
	look(&known)
	look(&unknown)
	look(&known)
	look(&unknown)
	if got := src.n.Load(); got != 2 {
		t.Fatalf("store lookups = %d before Reset, want 2", got)
	}
	s.cache.Reset()
	look(&known)
	look(&unknown)
	if got := src.n.Load(); got != 4 {
		t.Fatalf("store lookups = %d after Reset, want 4 (both reloaded)", got)
	}
	look(&known)
	look(&unknown)
	if got := src.n.Load(); got != 4 {
		t.Errorf("store lookups = %d, want 4 (cached again)", got)
	}
}
