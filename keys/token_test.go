package keys

import (
	"hash/crc32"
	"strings"
	"testing"
)

func mustTokens(t testing.TB, base string) *Tokens {
	t.Helper()
	tok, err := NewTokens(base)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestTokenFormat(t *testing.T) {
	tok := mustTokens(t, "kg")
	for _, typ := range Types {
		s, err := tok.New(typ)
		if err != nil {
			t.Fatal(err)
		}
		prefix := map[Type]string{TypePersonal: "kgp_", TypeOrg: "kgo_", TypeGeneric: "kgg_"}[typ]
		if !strings.HasPrefix(s, prefix) || len(s) != len(prefix)+randomLen+checksumLen {
			t.Fatalf("%v token %q: wrong prefix or length", typ, s)
		}
		if f, got := tok.Check(s); f != FormatKeygate || got != typ {
			t.Fatalf("Check(%q) = %v, %v", s, f, got)
		}
		if hint := tok.Hint(s); hint != prefix+"…"+s[len(s)-4:] {
			t.Fatalf("hint = %q", hint)
		}
	}
}

func TestTokensUnique(t *testing.T) {
	tok := mustTokens(t, "kg")
	seen := map[string]bool{}
	for i := 0; i < 2000; i++ {
		s, _ := tok.New(TypeGeneric)
		if seen[s] {
			t.Fatalf("duplicate token after %d", i)
		}
		seen[s] = true
	}
}

func TestTokenCheck(t *testing.T) {
	tok := mustTokens(t, "kg")
	good, _ := tok.New(TypePersonal)
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	tests := []struct {
		name  string
		token string
		want  Format
	}{
		{"good", good, FormatKeygate},
		{"empty", "", FormatMalformed},
		{"checksum flipped", flip(good, len(good)-1), FormatMalformed},
		{"random flipped", flip(good, 10), FormatMalformed},
		{"too short", good[:len(good)-1], FormatMalformed},
		{"too long", good + "a", FormatMalformed},
		{"bad alphabet", good[:10] + "-" + good[11:], FormatMalformed},
		{"other type prefix", "kgo_" + good[4:], FormatMalformed},
		{"foreign", "sk_live_abcdef123", FormatForeign},
		{"kg but unknown letter", "kgx_abc", FormatForeign},
		{"foreign with space", "abc def", FormatMalformed},
		{"foreign non-ascii", "clé", FormatMalformed},
		{"huge", strings.Repeat("a", 600), FormatMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, _ := tok.Check(tt.token); got != tt.want {
				t.Fatalf("Check(%q) = %v, want %v", tt.token, got, tt.want)
			}
		})
	}
}

func TestCustomPrefix(t *testing.T) {
	tok := mustTokens(t, "acme")
	s, _ := tok.New(TypeOrg)
	if !strings.HasPrefix(s, "acmeo_") {
		t.Fatalf("token %q", s)
	}
	if f, _ := mustTokens(t, "kg").Check(s); f != FormatForeign {
		t.Fatalf("another prefix's token is %v, want foreign", f)
	}
	for _, bad := range []string{"", "k_g", "toolongprefix1234"} {
		if _, err := NewTokens(bad); err == nil {
			t.Errorf("NewTokens(%q) succeeded", bad)
		}
	}
}

func TestCRCString(t *testing.T) {
	for _, s := range []string{"", "a", "kgp_0123456789abcdefghijklmnopqrstu"} {
		if got, want := crcString(s), crcTableSum([]byte(s)); got != want {
			t.Fatalf("crcString(%q) = %x, want %x", s, got, want)
		}
	}
}

func TestIDs(t *testing.T) {
	id := NewID()
	if !ValidKeyID(id) || len(id) != 32 {
		t.Fatalf("NewID() = %q", id)
	}
	for _, bad := range []string{"", "ABCDEF0123456789abcdef0123456789", id + "0", "../../etc/passwd"} {
		if ValidKeyID(bad) {
			t.Errorf("ValidKeyID(%q) = true", bad)
		}
	}
	for _, tt := range []struct {
		id string
		ok bool
	}{{"alice", true}, {"user:42@acme.io", true}, {"a_b-c.d", true}, {"", false}, {"a b", false}, {"é", false}, {strings.Repeat("a", 128), true}, {strings.Repeat("a", 129), false}, {"a/b", false}} {
		if ValidOwnerID(tt.id) != tt.ok {
			t.Errorf("ValidOwnerID(%q) = %v", tt.id, !tt.ok)
		}
	}
}

// FuzzCheck: Check never panics, and whatever it accepts as a keygate token
// round-trips: right length, right prefix, valid checksum.
func FuzzCheck(f *testing.F) {
	tok := mustTokens(f, "kg")
	good, _ := tok.New(TypePersonal)
	for _, s := range []string{good, "", "kgp_", "kgp_" + strings.Repeat("0", 37), "sk_live_x", good[:20], "kgo_" + good[4:]} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		f, typ := tok.Check(s)
		if f != FormatKeygate {
			return
		}
		p := tok.Prefix(typ)
		if !strings.HasPrefix(s, p) || len(s) != len(p)+randomLen+checksumLen {
			t.Fatalf("accepted %q as %v", s, typ)
		}
		sum, ok := parseChecksum(s[len(s)-checksumLen:])
		if !ok || sum != crcTableSum([]byte(s[:len(s)-checksumLen])) {
			t.Fatalf("accepted %q with a bad checksum", s)
		}
	})
}

func BenchmarkTokenCheck(b *testing.B) {
	tok := mustTokens(b, "kg")
	s, _ := tok.New(TypePersonal)
	b.ReportAllocs()
	for b.Loop() {
		if f, _ := tok.Check(s); f != FormatKeygate {
			b.Fatal("rejected")
		}
	}
}

func BenchmarkHash(b *testing.B) {
	tok := mustTokens(b, "kg")
	s, _ := tok.New(TypePersonal)
	b.ReportAllocs()
	for b.Loop() {
		_ = Hash(s)
	}
}

func crcTableSum(b []byte) uint32 { return crc32.ChecksumIEEE(b) }
