package sqlite

import (
	"context"
	"testing"

	"github.com/keygate/keygate/keys"
)

// BenchmarkLookupHash measures the store half of a cache miss: one
// prepared four-table lookup by token hash among 20,000 personal keys.
func BenchmarkLookupHash(b *testing.B) {
	ctx := context.Background()
	st := openTest(b)
	tok, err := keys.NewTokens("kg")
	if err != nil {
		b.Fatal(err)
	}
	const n = 20_000
	users := make([]keys.User, n)
	ks := make([]*keys.Key, n)
	hashes := make([][32]byte, n)
	for i := range n {
		users[i] = keys.User{ID: "u" + keys.NewID()[:12], Enabled: true}
		t, _ := tok.New(keys.TypePersonal)
		hashes[i] = keys.Hash(t)
		ks[i] = &keys.Key{ID: keys.NewID(), Type: keys.TypePersonal, UserID: users[i].ID, Display: tok.Hint(t), Metadata: []byte(`{"plan":"pro"}`), Hash: hashes[i]}
	}
	err = st.Update(ctx, func(tx keys.Tx) error {
		for i := range users {
			if err := tx.PutUser(ctx, &users[i]); err != nil {
				return err
			}
		}
		return tx.InsertKeys(ctx, ks)
	})
	if err != nil {
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
