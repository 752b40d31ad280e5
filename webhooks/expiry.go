package webhooks

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/keygate/keygate/keys"
)

// ExpiryOptions configure an Expiry scheduler.
type ExpiryOptions struct {
	Store  keys.Store
	Outbox *Outbox
	// Notices are how long before expires_at an api_key.expiring event goes
	// out (SPEC §13 webhooks.expiry_notice).
	Notices []time.Duration
	// MaxSleep caps a wait for the next due time, so that a node also sees
	// expiries set on other nodes of a cluster. Default 30s.
	MaxSleep time.Duration
	Now      func() time.Time
	Logger   *slog.Logger
}

// Expiry sends api_key.expiring (once per notice per key) and
// api_key.expired. For each notice it keeps a durable mark in the store:
// every key that expires at or before mark+notice has had its event. A tick
// moves each mark up to now, in one transaction with the events of the keys
// it passes, which it reads by a range on the expires_at index; so an event
// is written exactly once, by whichever node ticks first, and never by
// walking every key. Between ticks it sleeps until the next due time (the
// next expires_at after a mark, also from the index), or until the outbox
// sees a key change.
//
// A notice whose time had already passed when the key got its expires_at is
// not sent (a key created to expire in 3 days gets no 7-day notice).
type Expiry struct {
	o    ExpiryOptions
	wake chan struct{}
}

// NewExpiry returns the scheduler and hooks it to the outbox's key events.
func NewExpiry(o ExpiryOptions) *Expiry {
	if o.MaxSleep <= 0 {
		o.MaxSleep = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Expiry{o: o, wake: make(chan struct{}, 1)}
	o.Outbox.wake = e.Wake
	return e
}

// Wake makes the scheduler recompute its next due time. It never blocks.
func (e *Expiry) Wake() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// notice is one mark: an offset before expires_at and its event.
type notice struct {
	name   string
	before time.Duration
	typ    string
}

func (e *Expiry) notices() []notice {
	ns := []notice{{"expired", 0, EventKeyExpired}}
	for _, d := range e.o.Notices {
		ns = append(ns, notice{"expiring:" + strconv.FormatInt(int64(d/time.Second), 10), d, EventKeyExpiring})
	}
	return ns
}

// Run ticks until ctx ends.
func (e *Expiry) Run(ctx context.Context) {
	for {
		wait := e.o.MaxSleep
		if now, err := e.Tick(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			e.o.Logger.Warn("webhook expiry events", "err", err)
			wait = time.Second
		} else if due, ok, err := e.NextDue(ctx, now); err != nil {
			e.o.Logger.Warn("webhook expiry events: next due time", "err", err)
			wait = time.Second
		} else if ok {
			wait = min(wait, max(due.Sub(e.o.Now()), 0))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-e.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// Tick writes the events due at now that were not written yet, and
// returns now (unix seconds) for NextDue.
func (e *Expiry) Tick(ctx context.Context) (int64, error) {
	now := e.o.Now().Unix()
	return now, e.o.Store.Update(ctx, func(tx keys.Tx) error {
		for _, n := range e.notices() {
			upTo := now + int64(n.before/time.Second)
			mark, err := tx.Mark(ctx, n.name)
			if err != nil {
				return err
			}
			if mark == 0 {
				// First run: start from now, rather than sending every
				// notice of the past at once.
				if err := tx.SetMark(ctx, n.name, upTo); err != nil {
					return err
				}
				continue
			}
			if upTo <= mark {
				continue
			}
			ks, err := tx.KeysExpiring(ctx, mark, upTo)
			if err != nil {
				return err
			}
			for i := range ks {
				if err := e.o.Outbox.Publish(ctx, tx, n.typ, expiryData(&ks[i], n.before)); err != nil {
					return err
				}
			}
			if err := tx.SetMark(ctx, n.name, upTo); err != nil {
				return err
			}
		}
		return nil
	})
}

// expiryData is the data of an expiry event: the key record, and for
// api_key.expiring how long before expiry the notice is.
func expiryData(k *keys.Key, before time.Duration) any {
	if before == 0 {
		return k
	}
	return struct {
		*keys.Key
		NoticeSeconds int64 `json:"notice_seconds"`
	}{k, int64(before / time.Second)}
}

// NextDue returns when the next event is due after a Tick at now, from
// the store's expires_at index; ok is false when no key will expire.
func (e *Expiry) NextDue(ctx context.Context, now int64) (time.Time, bool, error) {
	var best int64
	found := false
	for _, n := range e.notices() {
		// After a Tick, each mark is now+before.
		after := now + int64(n.before/time.Second)
		at, ok, err := e.o.Store.NextExpiry(ctx, after)
		if err != nil {
			return time.Time{}, false, err
		}
		if due := at - int64(n.before/time.Second); ok && (!found || due < best) {
			best, found = due, true
		}
	}
	return time.Unix(best, 0), found, nil
}
