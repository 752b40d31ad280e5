package keys

import (
	"errors"
	"testing"
	"time"
)

// TestIdentityCheck pins the automatic-invalidation rules, through
// Identity.Check and through a Precheck made once and checked later.
func TestIdentityCheck(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	at := func(d time.Duration) *int64 { v := now.Add(d).Unix(); return &v }
	enabled := func(Type) bool { return true }
	noGeneric := func(t Type) bool { return t != TypeGeneric }
	alice := &User{ID: "alice", Enabled: true}
	blocked := &User{ID: "bob"}
	acme := &Org{ID: "acme"}
	tests := []struct {
		name    string
		id      Identity
		enabled func(Type) bool
		want    error
	}{
		{"generic", Identity{Key: Key{Type: TypeGeneric}}, enabled, nil},
		{"enabled nil means all", Identity{Key: Key{Type: TypeGeneric}}, nil, nil},
		{"type disabled", Identity{Key: Key{Type: TypeGeneric}}, noGeneric, ErrInvalidKey},
		{"archived", Identity{Key: Key{Type: TypeGeneric, ArchivedAt: at(-time.Hour)}}, enabled, ErrInvalidKey},
		{"archived and expired", Identity{Key: Key{Type: TypeGeneric, ArchivedAt: at(-time.Hour), ExpiresAt: at(-time.Hour)}}, enabled, ErrInvalidKey},
		{"personal", Identity{Key: Key{Type: TypePersonal}, User: alice}, enabled, nil},
		{"personal, user blocked", Identity{Key: Key{Type: TypePersonal}, User: blocked}, enabled, ErrInvalidKey},
		{"personal, user deleted", Identity{Key: Key{Type: TypePersonal}}, enabled, ErrInvalidKey},
		{"personal, user blocked and expired", Identity{Key: Key{Type: TypePersonal, ExpiresAt: at(-time.Hour)}, User: blocked}, enabled, ErrInvalidKey},
		{"org", Identity{Key: Key{Type: TypeOrg}, Org: acme}, enabled, nil},
		{"org, creator gone", Identity{Key: Key{Type: TypeOrg}, Org: acme, User: blocked}, enabled, nil},
		{"org deleted", Identity{Key: Key{Type: TypeOrg}}, enabled, ErrInvalidKey},
		{"expires later", Identity{Key: Key{Type: TypeGeneric, ExpiresAt: at(time.Second)}}, enabled, nil},
		{"expires now", Identity{Key: Key{Type: TypeGeneric, ExpiresAt: at(0)}}, enabled, ErrExpiredKey},
		{"expired", Identity{Key: Key{Type: TypeGeneric, ExpiresAt: at(-time.Second)}}, enabled, ErrExpiredKey},
		{"expired, type disabled", Identity{Key: Key{Type: TypeGeneric, ExpiresAt: at(-time.Second)}}, noGeneric, ErrInvalidKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.id.Check(now, tt.enabled); !errors.Is(err, tt.want) {
				t.Errorf("Check = %v, want %v", err, tt.want)
			}
			p := tt.id.Precheck()
			if err := p.Check(now, tt.enabled); !errors.Is(err, tt.want) {
				t.Errorf("Precheck.Check = %v, want %v", err, tt.want)
			}
		})
	}
}
