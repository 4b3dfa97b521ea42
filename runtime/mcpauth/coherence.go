package mcpauth

// Revocation coherence across replicas: no replica accepts a token (or an
// MCP session) after the request that revoked it, on any replica, has been
// answered, while the bearer check of a cached token costs no database
// round trip.
//
// The protocol is authstore.Replica's: the store keeps a revocation epoch
// that every revoking write increments (token and grant revocations, a
// code replay, a refresh token's reuse, deleted grants, ended sessions).
// Each serving process syncs every second (at once when PostgreSQL
// notifies a new epoch): it reads the epoch, drops its caches if the epoch
// moved (invalidateCaches), and acknowledges it. A replica uses its caches
// only under a lease: while its last successful sync started less than 3 s
// ago (fresh). A revoking request, after its write commits, drops its own
// caches and waits until every other live replica has acknowledged the new
// epoch, at most the lease (revoked). Only then does it answer.
//
// The users file is not part of this: each replica checks the stamp of
// every token's user against its own copy of the file on every request.
// When the file changes, each replica deletes, for good, the grants of the
// users who are gone or whose password changed (idempotent, so every
// replica may do it).

import (
	"context"
	"sync"
	"time"

	"github.com/mcpgen/create-mcp-server/runtime/authstore"
)

// usersCheckInterval is how often a replica looks for a new version of the
// users file whose removals it has not applied.
const usersCheckInterval = time.Second

// coherence is this process's part in the protocol: the store's replica,
// and the users-file version whose removals were applied.
type coherence struct {
	rep *authstore.Replica // nil until New starts it (tests of parts)

	mu        sync.Mutex
	usersSeen uint64
}

// fresh reports whether the caches may be used now: the replica holds its
// lease.
func (s *Server) fresh() bool {
	return s.coh.rep != nil && s.coh.rep.Fresh()
}

// invalidateCaches drops every cached validation (tokens, sessions). It is
// the replica's Drop: a lookup that started before it cannot store its
// result after it (both caches have a generation counter).
func (s *Server) invalidateCaches() {
	s.cache.invalidate()
	s.sessions.invalidate()
}

// startReplica registers this process as a replica of the store and syncs
// once.
func (s *Server) startReplica(ctx context.Context) error {
	rep, err := authstore.StartReplica(ctx, s.store, authstore.ReplicaOptions{Drop: s.invalidateCaches})
	if err != nil {
		return err
	}
	s.coh.rep = rep
	return nil
}

// revoked is called after a revoking write committed: it returns once no
// replica accepts what was revoked. It drops this replica's caches and
// waits until every other live replica has acknowledged the new epoch (at
// most the lease). If the store cannot tell, it waits out the lease of
// every replica.
func (s *Server) revoked(ctx context.Context) {
	committed := time.Now()
	s.invalidateCaches()
	if s.coh.rep == nil {
		return
	}
	if err := waitReplicas(ctx, s.coh.rep, committed); err != nil {
		s.log.Warn("mcpauth: could not confirm that every replica saw a revocation; waited out their lease", "error", err)
	}
}

// waitReplicas returns once every other live replica has acknowledged the
// epoch of a revoking write committed at committed. If the store cannot
// tell, it waits until the lease of every replica that may have missed the
// write has run out (a replica without a lease checks every token against
// the database), and returns the error that made it wait.
func waitReplicas(ctx context.Context, rep *authstore.Replica, committed time.Time) error {
	err := rep.Revoked(context.WithoutCancel(ctx))
	if err != nil {
		time.Sleep(time.Until(committed.Add(authstore.DefaultLease)))
	}
	return err
}

// Revoked is for programs that write to a server's database without
// serving, such as the operator's grants and user commands: called after
// a revoking write (authstore.GrantStore's RevokeGrants or
// DeleteUserGrants, say) has committed, it returns once no running
// replica, on any machine, accepts what the write revoked: the same wait
// as a revocation answered by a server. It joins the replicas for the
// wait and leaves them before it returns.
//
// A non-nil error means the database could not confirm that every replica
// saw the write; Revoked has then waited until each one's lease ran out,
// so the revocation holds everywhere all the same.
func Revoked(ctx context.Context, st authstore.Store) error {
	committed := time.Now()
	rep, err := authstore.StartReplica(ctx, st, authstore.ReplicaOptions{})
	if err != nil {
		time.Sleep(time.Until(committed.Add(authstore.DefaultLease)))
		return err
	}
	defer rep.Close()
	return waitReplicas(ctx, rep, committed)
}

// usersLoop applies removals from the users file every usersCheckInterval
// until Close.
func (s *Server) usersLoop() {
	defer close(s.coherenceDone)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	t := time.NewTicker(usersCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.applyUserRemovals(ctx)
		}
	}
}

// applyUserRemovals deletes, for good, the grants (and codes and sessions)
// of users no longer in the users file, or whose password changed, once
// per version of the file. A user restored later must sign in again.
func (s *Server) applyUserRemovals(ctx context.Context) {
	users, version := s.users.Stamps()
	s.coh.mu.Lock()
	done := version == s.coh.usersSeen
	s.coh.mu.Unlock()
	if done {
		return
	}
	n, err := s.store.DeleteGrantsExcept(ctx, users)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("mcpauth: deleting the grants of removed users failed; will retry", "error", err)
		}
		return
	}
	s.coh.mu.Lock()
	s.coh.usersSeen = version
	s.coh.mu.Unlock()
	if n > 0 {
		s.log.Warn("mcpauth: deleted the grants of users removed from the users file (or whose password changed)",
			"grants", n, "users", len(users))
		// A revoking write like any other: once it returns, no replica
		// has the grants' tokens cached, so restoring the user's line
		// brings nothing back.
		s.revoked(ctx)
	}
}
