package keys

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// MaxMetadataBytes bounds a metadata object (SPEC §4).
const MaxMetadataBytes = 4096

// Expiration is one expiration choice offered to users, such as "1mo".
type Expiration struct {
	Name   string
	After  time.Duration // ignored when Never or Months > 0
	Months int           // calendar months ("6mo" is 6, "1y" is 12); see Expiration.From
	Never  bool
}

// Service is keygate's key lifecycle and validation core. It checks input,
// applies every lifecycle rule of SPEC §1 and builds every audit event, out
// of the primitive writes of a Store's Tx, so that all stores behave alike.
// It calls OnChange after every change that can affect validation, before
// returning. Safe for concurrent use.
type Service struct {
	store    Store
	tokens   *Tokens
	opts     Options
	imported atomic.Int64 // count of imported keys, to skip lookups of foreign tokens
}

// Options configure a Service. Zero values mean: every type enabled, no
// expiration choices but "never", time.Now, no change hook.
type Options struct {
	// Disabled key types fail validation and cannot be created.
	Disabled [4]bool
	// InvalidateOnCreatorLeave archives org keys whose creator leaves the org.
	InvalidateOnCreatorLeave bool
	Expirations              []Expiration
	DefaultExpiration        string
	Now                      func() time.Time
	// OnChange, when set, is called synchronously after a change that can
	// affect what a token validates to, so a cache can drop stale entries.
	OnChange func(Change)
	// Events, when set, gets every audit event inside the transaction that
	// writes it (the webhook outbox).
	Events EventSink
}

// NewService returns a Service over store. It counts imported keys once;
// changes made elsewhere reach it through Apply.
func NewService(ctx context.Context, store Store, tokens *Tokens, opts Options) (*Service, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Service{store: store, tokens: tokens, opts: opts}
	n, err := store.CountImported(ctx)
	if err != nil {
		return nil, err
	}
	s.imported.Store(n)
	return s, nil
}

// Tokens returns the token format in use.
func (s *Service) Tokens() *Tokens { return s.tokens }

// Update runs fn in one store transaction with the same audit hooks as the
// Service's own changes: audit events fn writes reach the event sink. For
// features that write their own events (quotas, the expiry scheduler).
func (s *Service) Update(ctx context.Context, fn func(tx Tx) error) error {
	return s.update(ctx, fn)
}

// Store returns the underlying store.
func (s *Service) Store() Store { return s.store }

// Enabled reports whether keys of type t are enabled in config.
func (s *Service) Enabled(t Type) bool {
	return t >= TypePersonal && t <= TypeGeneric && !s.opts.Disabled[t]
}

// HasImported reports whether any imported key exists, so that tokens
// without a keygate prefix are worth looking up.
func (s *Service) HasImported() bool { return s.imported.Load() > 0 }

// Expirations returns the configured expiration choices.
func (s *Service) Expirations() []Expiration { return s.opts.Expirations }

// Apply takes in a change committed by another node (or by this one):
// it updates the node's own state (the count of imported keys) and passes
// the change to OnChange, so the cache drops what it names.
func (s *Service) Apply(c Change) {
	if c.Imported != 0 {
		s.imported.Add(c.Imported)
	}
	if s.opts.OnChange != nil {
		s.opts.OnChange(c)
	}
}

// update runs fn in one store transaction. The changes fn records with
// tx.Notify go to other nodes with the commit (if the store spans nodes)
// and, once it has committed, to this node's Apply.
func (s *Service) update(ctx context.Context, fn func(tx Tx) error) error {
	var changes []Change
	err := s.store.Update(ctx, func(tx Tx) error {
		rec := &recordingTx{Tx: tx, sink: s.opts.Events}
		if err := fn(rec); err != nil {
			return err
		}
		changes = rec.changes // only the attempt that commits counts
		return nil
	})
	if err != nil {
		return err
	}
	for _, c := range changes {
		s.Apply(c)
	}
	return nil
}

// recordingTx keeps the changes notified in a transaction.
type recordingTx struct {
	Tx
	changes []Change
	sink    EventSink
}

// InsertAudit writes events and hands them to the event sink in the same
// transaction: an event goes out if and only if its change commits.
func (r *recordingTx) InsertAudit(ctx context.Context, events ...AuditEvent) error {
	if err := r.Tx.InsertAudit(ctx, events...); err != nil {
		return err
	}
	if r.sink == nil || len(events) == 0 {
		return nil
	}
	return r.sink.Enqueue(ctx, r.Tx, events)
}

func (r *recordingTx) Notify(c Change) {
	r.changes = append(r.changes, c)
	r.Tx.Notify(c)
}

// audit returns an event of action by ctx's actor at now.
func (s *Service) audit(ctx context.Context, action string) AuditEvent {
	return AuditEvent{At: s.opts.Now().Unix(), Action: action, Actor: ActorFrom(ctx)}
}

// Lookup resolves a token hash through the store: ErrNotFound when unknown.
// It applies no rule; callers run Identity.Check (and may cache in between).
func (s *Service) Lookup(ctx context.Context, hash [32]byte) (*Identity, error) {
	return s.store.LookupHash(ctx, hash)
}

// RecentIdentities returns up to n identities of the keys most likely to be
// used next, for warming a cache at start: the unarchived keys used most
// recently, then the newest never used (see KeyReader.RecentIdentities).
// Like Lookup it applies no rule; archived keys are left out only because
// they can never validate again.
func (s *Service) RecentIdentities(ctx context.Context, n int) ([]*Identity, error) {
	return s.store.RecentIdentities(ctx, n)
}

// Validate checks a token without any cache: shape, store, then the rules.
// It returns ErrInvalidKey or ErrExpiredKey for a rejected token, or a
// wrapped store error.
func (s *Service) Validate(ctx context.Context, token string) (*Identity, error) {
	switch f, _ := s.tokens.Check(token); f {
	case FormatMalformed:
		return nil, ErrInvalidKey
	case FormatForeign:
		if !s.HasImported() {
			return nil, ErrInvalidKey
		}
	}
	id, err := s.store.LookupHash(ctx, Hash(token))
	if errors.Is(err, ErrNotFound) {
		return nil, ErrInvalidKey
	}
	if err != nil {
		return nil, err
	}
	if err := id.Check(s.opts.Now(), s.Enabled); err != nil {
		return nil, err
	}
	return id, nil
}

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
