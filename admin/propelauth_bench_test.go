package admin_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/keygate/keygate/admin"
	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/sqlite"
)

// BenchmarkPropelAuthListPage measures one PropelAuth list page (page_size
// 10) over n matching keys: numbered pages with a total cost a walk over
// every matching key (README, design notes).
func BenchmarkPropelAuthListPage(b *testing.B) {
	for _, n := range []int{100, 10_000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			ctx := context.Background()
			store, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "keygate.db"), sqlite.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			tokens, _ := keys.NewTokens("kg")
			svc, err := keys.NewService(ctx, store, tokens, keys.Options{})
			if err != nil {
				b.Fatal(err)
			}
			ins := make([]keys.CreateKeyInput, n)
			for i := range ins {
				ins[i] = keys.CreateKeyInput{Token: fmt.Sprintf("bench-token-%08d", i)}
			}
			if _, err := svc.ImportKeys(ctx, ins); err != nil {
				b.Fatal(err)
			}
			h := admin.New(admin.Options{Service: svc, Token: testToken}).Handler()
			req := httptest.NewRequest("GET", pa+"?page_size=10&page_number=3", nil)
			req.Header.Set("Authorization", "Bearer "+testToken)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
		})
	}
}
