package main

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/keygate/keygate/admin"
)

// warmReadyWait is the longest a node reports not ready while its cache
// warms up: a slow or failing store must not keep it out of rotation.
const warmReadyWait = 5 * time.Second

// errWarming is the cache_warm check's answer while the warm-up runs.
var errWarming = errors.New("cache warm-up under way: loading the most recently used keys into the cache")

// cacheWarm is the cache warm-up at start (cache.warm_keys): it runs in the
// background so that start-up is not slower, and holds readiness until it
// ends or warmReadyWait has passed, so that a load balancer sends traffic
// to a warm node.
type cacheWarm struct {
	ready     chan struct{} // closed when the node may report ready
	readyOnce sync.Once
	cancel    context.CancelFunc
	done      chan struct{} // closed when the warm-up goroutine has returned
}

// startWarm starts warming the cache with cache.warm_keys keys, through
// fill (the gate's Warm, in serve); nothing when it is 0. Readiness waits for it at most readyWait. The
// Cache and (for Postgres) the cluster listener must be up, so that no
// change made meanwhile is missed.
func (a *App) startWarm(fill func(ctx context.Context, n int) (int, error), readyWait time.Duration) {
	n := a.Config.Cache.WarmKeys
	if n <= 0 {
		return
	}
	// Entries loaded later than one TTL after the read began are already
	// expired: there is no point in waiting longer.
	ctx, cancel := context.WithTimeout(context.Background(), a.Config.Cache.TTL)
	w := &cacheWarm{ready: make(chan struct{}), cancel: cancel, done: make(chan struct{})}
	a.warm = w
	timer := time.AfterFunc(readyWait, w.markReady)
	go func() {
		defer close(w.done)
		defer cancel()
		defer w.markReady()
		defer timer.Stop()
		start := time.Now()
		stored, err := fill(ctx, n)
		if err != nil {
			a.Logger.Warn("cache warm-up failed; keys not loaded are looked up on first use",
				"keys", stored, "duration", time.Since(start).Round(time.Millisecond), "err", err)
			return
		}
		a.Logger.Info("cache warmed", "keys", stored, "duration", time.Since(start).Round(time.Millisecond))
	}()
}

func (w *cacheWarm) markReady() { w.readyOnce.Do(func() { close(w.ready) }) }

// check is the cache_warm readiness check.
func (w *cacheWarm) check(context.Context) error {
	select {
	case <-w.ready:
		return nil
	default:
		return errWarming
	}
}

// warmReadyCheck returns the cache_warm check, and false when warm-up is off.
func (a *App) warmReadyCheck() (admin.ReadyCheck, bool) {
	if a.warm == nil {
		return admin.ReadyCheck{}, false
	}
	return admin.ReadyCheck{Name: "cache_warm", Check: a.warm.check}, true
}

// warmReady is closed once the node no longer waits for the warm-up
// (closed at once when warm-up is off). Tests wait on it.
func (a *App) warmReady() <-chan struct{} {
	if a.warm == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return a.warm.ready
}

// stopWarm cancels a warm-up under way and waits for it, so the cache and
// the store can be closed.
func (a *App) stopWarm() {
	if a.warm == nil {
		return
	}
	a.warm.cancel()
	<-a.warm.done
}
