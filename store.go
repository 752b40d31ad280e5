package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/keygate/keygate/config"
	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/sqlite"
)

// openStore opens the store cfg names. Everything else in keygate sees
// only the keys.Store contract.
func openStore(ctx context.Context, cfg config.Store, logger *slog.Logger) (keys.Store, error) {
	switch cfg.Driver {
	case "sqlite":
		st, err := sqlite.Open(ctx, cfg.Path, sqlite.Options{Logger: logger})
		if err != nil {
			return nil, explainSQLiteOpen(cfg.Path, err) // ops.go
		}
		return st, nil
	case "postgres":
		return openPostgres(ctx, cfg)
	}
	return nil, fmt.Errorf("store.driver: %q is not available in this build (use sqlite)", cfg.Driver)
}
