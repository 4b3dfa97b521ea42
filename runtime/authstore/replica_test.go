package authstore

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestReplicaRevoked: when Revoked returns on the revoking replica, every
// other live replica has dropped its caches.
func TestReplicaRevoked(t *testing.T) {
	forEachEngineDSN(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		a, b := openDSN(t, dsn, Options{}), openDSN(t, dsn, Options{})
		var dropsA, dropsB atomic.Int32
		// b learns of the revocation by notification (PostgreSQL) or by
		// polling (SQLite); either way a's Revoked waits for its ack.
		opts := func(drops *atomic.Int32) ReplicaOptions {
			return ReplicaOptions{Lease: 10 * time.Second, Interval: 50 * time.Millisecond, Drop: func() { drops.Add(1) }}
		}
		ra, err := StartReplica(ctx, a, opts(&dropsA))
		if err != nil {
			t.Fatal(err)
		}
		defer ra.Close()
		rb, err := StartReplica(ctx, b, opts(&dropsB))
		if err != nil {
			t.Fatal(err)
		}
		defer rb.Close()
		if !ra.Fresh() || !rb.Fresh() {
			t.Fatal("a started replica holds no lease")
		}
		before := dropsB.Load()

		g, _ := seedGrant(t, a, "g", "app", "alice", "s", time.Now())
		if err := a.RevokeGrant(ctx, g.ID, time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := ra.Revoked(ctx); err != nil {
			t.Fatal(err)
		}
		if dropsB.Load() == before {
			t.Fatal("Revoked returned before the other replica dropped its caches")
		}
		if dropsA.Load() == 0 {
			t.Fatal("the revoking replica kept its caches")
		}
	})
}

// TestReplicaWaitBounded: a replica that stopped acknowledging is waited
// for at most the lease, and one that left is not waited for at all.
func TestReplicaWaitBounded(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		r, err := StartReplica(ctx, s, ReplicaOptions{Lease: 300 * time.Millisecond, Interval: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		// A replica that acknowledged once and then hung.
		if err := s.Ack(ctx, "hung", 0); err != nil {
			t.Fatal(err)
		}
		s.RevokeGrant(ctx, "g", time.Now())
		if err := r.Revoked(ctx); err != nil {
			t.Fatal(err)
		}
		if n, _ := s.Lagging(ctx, r.ID(), 1<<62, 0); n != 0 {
			t.Fatal("Lagging with no lease counts replicas")
		}
		if err := s.LeaveReplica(ctx, "hung"); err != nil {
			t.Fatal(err)
		}
	})
}

// TestReplicaLease: a replica that cannot sync loses its lease.
func TestReplicaLease(t *testing.T) {
	forEachEngineDSN(t, func(t *testing.T, dsn string) {
		s, err := Open(t.Context(), dsn, Options{})
		if err != nil {
			t.Fatal(err)
		}
		r, err := StartReplica(t.Context(), s, ReplicaOptions{Lease: 2 * time.Second, Interval: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if !r.Fresh() {
			t.Fatal("no lease after start")
		}
		s.Close() // every sync fails from now on
		deadline := time.Now().Add(time.Minute)
		for r.Fresh() {
			if time.Now().After(deadline) {
				t.Fatal("the lease outlived the database connection")
			}
			time.Sleep(20 * time.Millisecond)
		}
		r.Close()
	})
}
