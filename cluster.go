package main

import (
	"context"
	"fmt"
	"time"

	"github.com/keygate/keygate/config"
	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/postgres"
)

// openPostgres opens the store a cluster of nodes shares (SPEC §9). It
// returns a keys.Store so that a failure is a nil interface, not a nil
// *postgres.DB that App.Close would call.
func openPostgres(ctx context.Context, c config.Store) (keys.Store, error) {
	db, err := postgres.Open(ctx, postgres.Options{DSN: c.DSN, MaxConns: c.MaxConns})
	if err != nil {
		return nil, fmt.Errorf("store.driver postgres: %w", err)
	}
	return db, nil
}

// joinCluster makes this node follow the changes other nodes make: each
// reaches the Service (so the count of imported keys follows too) and the
// key cache; after the channel was lost the whole cache goes, because what
// was missed cannot be known. It runs before the ports serve, so that a
// node honours every change from its first request.
func (a *App) joinCluster(ctx context.Context, db *postgres.DB) error {
	if a.Config.Limiter.Backend != "redis" {
		a.Logger.Warn("store.driver is postgres but limiter.backend is memory: rate limits are per node, " +
			"so each node allows the full limit; use limiter.backend: redis to share them exactly")
	}
	// The DB's Close stops the listener.
	_, err := db.Listen(ctx, postgres.ListenOptions{
		Apply: a.Service.Apply,
		Reset: func() {
			a.Cache.Reset()
			a.recountImported()
		},
		Logger: a.Logger,
	})
	if err != nil {
		return err
	}
	// Imports committed between NewService's count and LISTEN.
	a.recountImported()
	return nil
}

// recountImported tells the Service of imported keys it may have missed
// while not listening. Only whether there are any matters to it.
func (a *App) recountImported() {
	if a.Service.HasImported() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := a.Service.Store().CountImported(ctx)
	if err != nil {
		a.Logger.Warn("count imported keys", "err", err)
		return
	}
	if n > 0 {
		a.Service.Apply(keys.Change{Imported: n})
	}
}
