package keys

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"strings"
	"unsafe"
)

const (
	base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	// randomLen base62 characters carry 31 × log2(62) ≈ 184.6 bits.
	randomLen = 31
	// checksumLen base62 characters hold any CRC32 (62^6 > 2^32).
	checksumLen = 6
)

// Tokens makes and checks key tokens of the form
// <prefix><type letter>_<31 base62 random><6 base62 CRC32 of what precedes>.
// The zero value is not usable; use NewTokens. Safe for concurrent use.
type Tokens struct {
	prefixes [4]string // by Type
	length   [4]int
	base     string // e.g. "kg"
}

// NewTokens returns Tokens for a prefix base such as "kg" (kgp_, kgo_, kgg_).
func NewTokens(base string) (*Tokens, error) {
	if base == "" || len(base) > 16 {
		return nil, fmt.Errorf("keys.prefix: must be 1–16 characters")
	}
	for i := 0; i < len(base); i++ {
		if strings.IndexByte(base62, base[i]) < 0 {
			return nil, fmt.Errorf("keys.prefix: %q must use only A-Z, a-z and 0-9", base)
		}
	}
	t := &Tokens{base: base}
	for _, typ := range Types {
		p := base + string("pog"[typ-1]) + "_"
		t.prefixes[typ] = p
		t.length[typ] = len(p) + randomLen + checksumLen
	}
	return t, nil
}

// Prefix returns the token prefix for a key type, such as "kgp_".
func (t *Tokens) Prefix(typ Type) string { return t.prefixes[typ] }

// New returns a fresh random token for typ.
func (t *Tokens) New(typ Type) (string, error) {
	p := t.prefixes[typ]
	b := make([]byte, len(p)+randomLen+checksumLen)
	copy(b, p)
	if err := randomBase62(b[len(p) : len(p)+randomLen]); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	putChecksum(b[len(p)+randomLen:], crc32.ChecksumIEEE(b[:len(p)+randomLen]))
	return string(b), nil
}

// Format is what a token's shape says about it, learned without any I/O.
type Format uint8

const (
	// FormatMalformed: it carries a keygate prefix but has the wrong length,
	// alphabet or checksum, or it is empty or absurd. Reject it.
	FormatMalformed Format = iota
	// FormatKeygate: a well-formed keygate token of the returned Type.
	FormatKeygate
	// FormatForeign: no keygate prefix; it can only be an imported key.
	FormatForeign
)

// maxForeignLen bounds what is even looked up as an imported key.
const maxForeignLen = 512

// Check classifies token by its shape alone. It does not allocate.
func (t *Tokens) Check(token string) (Format, Type) {
	if len(token) == 0 || len(token) > maxForeignLen {
		return FormatMalformed, 0
	}
	if !strings.HasPrefix(token, t.base) {
		return foreign(token), 0
	}
	for _, typ := range Types {
		p := t.prefixes[typ]
		if !strings.HasPrefix(token, p) {
			continue
		}
		if len(token) != t.length[typ] {
			return FormatMalformed, 0
		}
		body := token[len(p) : len(p)+randomLen]
		for i := 0; i < len(body); i++ {
			if !isBase62(body[i]) {
				return FormatMalformed, 0
			}
		}
		sum, ok := parseChecksum(token[len(p)+randomLen:])
		if !ok || sum != crcString(token[:len(p)+randomLen]) {
			return FormatMalformed, 0
		}
		return FormatKeygate, typ
	}
	return foreign(token), 0
}

// foreign accepts printable ASCII without spaces as a possible imported key.
func foreign(token string) Format {
	for i := 0; i < len(token); i++ {
		if c := token[i]; c <= ' ' || c > '~' {
			return FormatMalformed
		}
	}
	return FormatForeign
}

// Hash returns the SHA-256 of a token, the only form in which tokens are stored.
func Hash(token string) [32]byte {
	// Copying into a stack buffer avoids the heap allocation of []byte(token)
	// for keygate tokens and most imported ones.
	var buf [96]byte
	if len(token) <= len(buf) {
		n := copy(buf[:], token)
		return sha256.Sum256(buf[:n])
	}
	return sha256.Sum256([]byte(token))
}

// Hint returns the display hint of a token: its keygate prefix, if any,
// and its last 4 characters, but only when the token is at least
// MinHintLength long, so a hint never shows more than a quarter of a
// token. A shorter (imported) token's hint shows nothing of it.
func (t *Tokens) Hint(token string) string {
	for _, typ := range Types {
		if strings.HasPrefix(token, t.prefixes[typ]) {
			return t.prefixes[typ] + "…" + last4(token)
		}
	}
	return "…" + last4(token)
}

// MinHintLength is the shortest token whose hint shows its last 4 characters.
const MinHintLength = 16

func last4(s string) string {
	if len(s) < MinHintLength {
		return ""
	}
	return s[len(s)-4:]
}

// NewID returns a random key id: 32 lowercase hex characters.
func NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("keys: crypto/rand failed: " + err.Error()) // never returns an error on Go ≥ 1.24
	}
	return hex.EncodeToString(b[:])
}

// ValidKeyID reports whether s has the shape of a key id.
func ValidKeyID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// crcString is crc32.ChecksumIEEE for a string. It hands crc32 the string's
// own bytes, which crc32 only reads: converting to a []byte would allocate
// for tokens over 32 bytes, and a byte-at-a-time loop here would forgo
// crc32's word-at-a-time and CLMUL code, several times faster.
func crcString(s string) uint32 {
	return crc32.ChecksumIEEE(unsafe.Slice(unsafe.StringData(s), len(s)))
}

func isBase62(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

func base62Value(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'Z':
		return int(c-'A') + 10
	case c >= 'a' && c <= 'z':
		return int(c-'a') + 36
	}
	return -1
}

// randomBase62 fills b uniformly from the base62 alphabet by rejection sampling.
func randomBase62(b []byte) error {
	var buf [64]byte
	n := 0
	for n < len(b) {
		if _, err := rand.Read(buf[:]); err != nil {
			return err
		}
		for _, r := range buf {
			if r >= 248 { // 248 = 4 × 62: keeps the distribution uniform
				continue
			}
			b[n] = base62[r%62]
			n++
			if n == len(b) {
				break
			}
		}
	}
	return nil
}

func putChecksum(dst []byte, sum uint32) {
	v := uint64(sum)
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = base62[v%62]
		v /= 62
	}
}

func parseChecksum(s string) (uint32, bool) {
	var v uint64
	for i := 0; i < len(s); i++ {
		d := base62Value(s[i])
		if d < 0 {
			return 0, false
		}
		v = v*62 + uint64(d)
	}
	if v > 0xFFFFFFFF {
		return 0, false
	}
	return uint32(v), true
}

// ValidOwnerID reports whether s is a valid user or org id:
// 1–128 characters from [A-Za-z0-9._:@-].
func ValidOwnerID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isBase62(c) || c == '.' || c == '_' || c == ':' || c == '@' || c == '-') {
			return false
		}
	}
	return true
}
