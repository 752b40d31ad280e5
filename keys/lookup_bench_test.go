package keys

import (
	"context"
	"testing"
)

// BenchmarkLookupHash measures the store half of a cache miss: one
// prepared four-table lookup by token hash among 20,000 personal keys.
func BenchmarkLookupHash(b *testing.B) {
	ctx := context.Background()
	st, err := OpenSQLite(ctx, b.TempDir()+"/k.db")
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	tok := mustTokens(b, "kg")
	const n = 20_000
	users := make([]User, n)
	ks := make([]*Key, n)
	hashes := make([][32]byte, n)
	for i := range n {
		users[i] = User{ID: "u" + NewID()[:12], Enabled: true}
		t, _ := tok.New(TypePersonal)
		hashes[i] = Hash(t)
		ks[i] = &Key{ID: NewID(), Type: TypePersonal, UserID: users[i].ID, Display: tok.Hint(t), Metadata: []byte(`{"plan":"pro"}`), Hash: hashes[i]}
	}
	if err := st.InsertUsers(ctx, users, "system"); err != nil {
		b.Fatal(err)
	}
	if err := st.InsertKeys(ctx, ks, nil); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if _, err := st.LookupHash(ctx, hashes[i%n]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
