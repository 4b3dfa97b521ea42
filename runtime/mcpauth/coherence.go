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
// every token's user, on every request, against the version of its own
// copy of the file that it last read (it rereads it every
// userfile.PollInterval). When the file changes, each replica deletes, for
// good, the grants of the users who are gone or whose password changed
// (idempotent, so every replica may do it). The user commands of package
// mcpserver delete them at once themselves, through this protocol
// (Revoked), so that no replica waits for its next look at the file.

import (
	"context"
	"sync"
	"time"

	"github.com/mcpgen/create-mcp-server/runtime/authstore"
)

// usersCheckInterval is how often a replica looks for a new version of the
// users file whose removals it has not applied. A version is acted on only
// once it has stayed the same for a whole interval, so that a file caught
// half-written by an editor deletes nothing.
const usersCheckInterval = time.Second

// coherence is this process's part in the protocol: the store's replica,
// and the users file as this replica last acted on it.
type coherence struct {
	rep *authstore.Replica // nil until New starts it (tests of parts)

	mu sync.Mutex
	// users and usersSeen are the users (name to stamp) and the version
	// of the file whose changes were applied; pending is the version seen
	// at the previous check, not yet applied.
	users     map[string]string
	usersSeen uint64
	pending   uint64
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
	every := usersCheckInterval
	if s.cfg.usersCheckInterval > 0 {
		every = s.cfg.usersCheckInterval
	}
	t := time.NewTicker(every)
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

// watchUsers records the users file as it is when the server starts: the
// changes this replica will act on are those made from now on. Grants of
// users removed while no server ran are refused all the same (their stamp
// no longer matches), and the user commands delete them in the database.
func (s *Server) watchUsers() {
	users, version := s.users.Stamps()
	s.coh.mu.Lock()
	defer s.coh.mu.Unlock()
	s.coh.users, s.coh.usersSeen, s.coh.pending = users, version, version
}

// applyUserRemovals deletes, for good, the grants (and codes and web
// sessions) of the users who left the users file or whose password changed
// between the version this replica last acted on and the current one, once
// the current one has stayed the same for a check. A user restored later
// must sign in again.
//
// It never acts on a file without users: an emptied file (an editor's
// truncate-then-write, a mount being replaced) refuses every token while it
// lasts, but deletes nothing, so restoring it brings the grants back. Nor
// does it compare with users other replicas may have: each acts only on
// the changes it read itself, so a replica given a stale file deletes
// nothing of the users the newer file added.
func (s *Server) applyUserRemovals(ctx context.Context) {
	users, version := s.users.Stamps()
	s.coh.mu.Lock()
	prev, seen, pending := s.coh.users, s.coh.usersSeen, s.coh.pending
	s.coh.pending = version
	s.coh.mu.Unlock()
	if version == seen || version != pending {
		return // nothing new, or new and not yet settled
	}
	if len(users) == 0 {
		s.log.Warn("mcpauth: the users file has no users: every token is refused, but no grant is deleted until a version with users removes them")
		s.coh.mu.Lock()
		s.coh.usersSeen = version
		s.coh.mu.Unlock()
		return
	}
	var total int
	for name, stamp := range prev {
		if users[name] == stamp {
			continue
		}
		n, err := s.store.DeleteStampGrants(ctx, name, stamp)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("mcpauth: deleting the grants of removed users failed; will retry", "error", err)
			}
			return
		}
		total += n
	}
	s.coh.mu.Lock()
	s.coh.users, s.coh.usersSeen = users, version
	s.coh.mu.Unlock()
	if total > 0 {
		s.log.Warn("mcpauth: deleted the grants of users removed from the users file (or whose password changed)",
			"grants", total, "users", len(users))
		// A revoking write like any other: once it returns, no replica
		// has the grants' tokens cached, so restoring the user's line
		// brings nothing back.
		s.revoked(ctx)
	}
}
