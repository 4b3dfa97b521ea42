package authstore

// Revocation coherence across replicas.
//
// A server caches what it validated (access tokens, MCP session owners) so
// that a bearer check costs no database round trip. With several replicas
// on one database, a token revoked through one replica must stop working
// on all of them before the revocation is answered. The protocol:
//
//  1. Every revoking write increments the revocation epoch in its own
//     transaction (the store does this), and on PostgreSQL NOTIFYs it.
//  2. Each serving process runs a Replica. It syncs about once a second,
//     and at once when notified: read the epoch; if it moved, drop the
//     caches (Drop); then acknowledge the epoch, which also records that
//     the replica is alive (by the database's clock).
//  3. A replica may answer from its caches only while it holds a lease
//     (Fresh): its last successful sync started less than Lease ago, by
//     its own monotonic clock. A replica that cannot reach the database
//     loses its lease and checks everything against the database.
//  4. After a revoking write, the revoking process calls Revoked: it syncs
//     itself, then waits until every other replica seen within Lease has
//     acknowledged the new epoch (bounded by Lease: a replica that has not
//     been seen for that long has lost its own lease too).
//
// So when a revocation has been answered, no replica accepts the revoked
// token any more. On SQLite (one server and the command-line tools on one
// file) the same protocol runs by polling.

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"time"
)

// Defaults of ReplicaOptions.
const (
	DefaultLease        = 3 * time.Second
	DefaultSyncInterval = time.Second
)

// ReplicaOptions configures StartReplica.
type ReplicaOptions struct {
	// ID names this process among the replicas (default: random).
	ID string
	// Lease is how long after a successful sync the caches may be used
	// (default DefaultLease), and so also the longest Revoked waits.
	Lease time.Duration
	// Interval is how often the replica syncs without a notification
	// (default DefaultSyncInterval). It must be well below Lease.
	Interval time.Duration
	// Drop is called when the epoch moved, before it is acknowledged: it
	// must drop every cached validation, including ones being computed
	// concurrently (a cache with a generation counter does this: a lookup
	// that started before Drop must not be stored after it).
	Drop func()
}

// Replica runs the coherence protocol for one serving process. Its methods
// are safe for concurrent use.
type Replica struct {
	s    Store
	opts ReplicaOptions

	mu         sync.Mutex
	epoch      uint64    // last acknowledged
	leaseStart time.Time // start of the last successful sync (monotonic)
	syncMu     sync.Mutex

	cancel context.CancelFunc
	done   chan struct{}
}

// StartReplica registers this process as a replica of s, syncs once (an
// error here means the database is unusable) and keeps syncing in the
// background until Close.
func StartReplica(ctx context.Context, s Store, opts ReplicaOptions) (*Replica, error) {
	if opts.ID == "" {
		opts.ID = "replica-" + rand.Text()[:12]
	}
	if opts.Lease <= 0 {
		opts.Lease = DefaultLease
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultSyncInterval
	}
	if opts.Interval >= opts.Lease {
		return nil, fmt.Errorf("authstore: replica sync interval %v must be shorter than its lease %v", opts.Interval, opts.Lease)
	}
	if opts.Drop == nil {
		opts.Drop = func() {}
	}
	r := &Replica{s: s, opts: opts, done: make(chan struct{})}
	if err := r.sync(ctx); err != nil {
		return nil, err
	}
	loopCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.cancel = cancel
	notes, err := s.WatchEpochs(loopCtx)
	if err != nil {
		notes = nil // poll only; the loop still works
	}
	go r.loop(loopCtx, notes)
	return r, nil
}

// ID returns the replica's id.
func (r *Replica) ID() string { return r.opts.ID }

// Fresh reports whether the replica holds a lease: caches may be used.
func (r *Replica) Fresh() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.leaseStart.IsZero() && time.Since(r.leaseStart) < r.opts.Lease
}

// Revoked is called after a revoking write has committed. It drops this
// process's caches, then waits until every other live replica has
// acknowledged the new epoch, or until Lease has passed. An error means
// the wait could not be completed (the database is unreachable): the
// caller should report the revocation as not yet certain everywhere.
func (r *Replica) Revoked(ctx context.Context) error {
	if err := r.sync(ctx); err != nil {
		return err
	}
	r.mu.Lock()
	epoch := r.epoch
	r.mu.Unlock()
	deadline := time.Now().Add(r.opts.Lease)
	wait := 2 * time.Millisecond
	for {
		n, err := r.s.Lagging(ctx, r.opts.ID, epoch, r.opts.Lease)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return nil // whoever has not acknowledged has lost its lease
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
		wait = min(wait*2, 50*time.Millisecond)
	}
}

// Close stops syncing and removes the replica, so that nobody waits for
// it. The caches must not be used afterwards.
func (r *Replica) Close() error {
	r.cancel()
	<-r.done
	r.mu.Lock()
	r.leaseStart = time.Time{}
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return r.s.LeaveReplica(ctx, r.opts.ID)
}

// sync reads the epoch, drops the caches if it moved, and acknowledges it.
// The lease starts when the epoch was read, not when the ack returned.
func (r *Replica) sync(ctx context.Context) error {
	r.syncMu.Lock()
	defer r.syncMu.Unlock()
	start := time.Now()
	epoch, err := r.s.Epoch(ctx)
	if err != nil {
		return err
	}
	r.mu.Lock()
	moved := epoch != r.epoch
	r.mu.Unlock()
	if moved {
		r.opts.Drop()
	}
	if err := r.s.Ack(ctx, r.opts.ID, epoch); err != nil {
		return err
	}
	r.mu.Lock()
	r.epoch, r.leaseStart = epoch, start
	r.mu.Unlock()
	return nil
}

func (r *Replica) loop(ctx context.Context, notes <-chan struct{}) {
	defer close(r.done)
	t := time.NewTicker(r.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case _, ok := <-notes:
			if !ok {
				notes = nil // the watcher ended; keep polling
			}
		}
		// A failed sync keeps the old lease, which then runs out.
		r.sync(ctx)
	}
}
