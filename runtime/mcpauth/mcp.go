package mcpauth

// The MCP endpoint: mcp-go's Streamable HTTP handler, mounted at /mcp behind
// the bearer middleware (bearer.go). Legacy-era sessions (protocol versions
// before 2026-07-28) are bound to the user who created them, on every
// method: another user's token presenting the same Mcp-Session-Id gets 404,
// as if the session did not exist, and so does a session id that was never
// issued. mcp-go checks POSTs itself (through the SessionIdManager below);
// GET (the event stream) and DELETE are checked here first, because mcp-go
// opens a stream for any id a GET names. Sessions are never used for
// authentication; every request carries and is checked for its own token.

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpgen/create-mcp-server/runtime/authstore"
)

// sessionIdleTTL is how long an unused legacy session is kept.
const sessionIdleTTL = 30 * time.Minute

func newMCPHandler(mcp *server.MCPServer, s *Server) *server.StreamableHTTPServer {
	return server.NewStreamableHTTPServer(mcp,
		// bearer.go does its own DNS-rebinding check, which also admits the
		// base URL's host behind a same-host reverse proxy.
		server.WithDisableLocalhostProtection(true),
		server.WithSessionIdManagerResolver(s.sessions),
		server.WithSessionIdleTTL(sessionIdleTTL),
		server.WithStreamableHTTPLogger(s.log),
	)
}

// sessionAllowed checks the legacy session a request on /mcp names against
// the caller, on every method: a GET or DELETE without a session id is 400;
// an id that was never issued, has ended or expired, or was issued to
// another user is 404; a database failure is 503 (each a *refusal). A POST
// without a session id is left to mcp-go (an initialize creates one;
// anything else is refused there). On success it returns the checked
// session id, if any, for the request's context (checkedSessionKey), so
// that mcp-go's own check does not ask the database again.
func (s *Server) sessionAllowed(r *http.Request, id *Identity) (checked string, err error) {
	if mcp.IsModernProtocol(r.Header.Get(mcp.HeaderProtocolVersion)) {
		return "", nil // no sessions since 2026-07-28; mcp-go refuses GET and DELETE
	}
	sid := r.Header.Get(server.HeaderKeySessionID)
	if sid == "" {
		if r.Method == http.MethodGet || r.Method == http.MethodDelete {
			return "", &refusal{status: http.StatusBadRequest, msg: "Bad Request: Mcp-Session-Id header required"}
		}
		return "", nil
	}
	owner, err := s.sessions.owner(r.Context(), sid)
	switch {
	case err != nil:
		s.log.ErrorContext(r.Context(), "mcp: session lookup", "error", err)
		return "", &refusal{status: http.StatusServiceUnavailable, msg: "Service Unavailable: try again", retry: true}
	case owner == "" || owner != id.User:
		return "", &refusal{status: http.StatusNotFound, msg: "Session not found"}
	}
	return sid, nil
}

// checkedSessionKey marks, in a request's context, the session id that
// sessionAllowed found to be the caller's.
type checkedSessionKey struct{}

// sessionOwners binds legacy MCP session ids to users, through the store
// (authstore.SessionStore), so that a session opened on one replica works
// on every other, for its owner only. Owners are cached per replica under
// the revocation lease (coherence.go): ending a session is a revoking
// write. It implements server.SessionIdManagerResolver.
type sessionOwners struct {
	s *Server

	mu    sync.Mutex
	gen   uint64
	cache map[string]cachedOwner // by session id (the store keeps only hashes)
}

type cachedOwner struct {
	user    string
	touched time.Time
}

// maxCachedSessions bounds the per-replica cache of session owners.
const maxCachedSessions = 1024

func newSessionOwners(s *Server) *sessionOwners {
	return &sessionOwners{s: s, cache: make(map[string]cachedOwner)}
}

// invalidate drops the cache.
func (o *sessionOwners) invalidate() {
	o.mu.Lock()
	o.gen++
	clear(o.cache)
	o.mu.Unlock()
}

// owner returns the user who owns session id, "" if it does not exist (or
// has ended or expired). It touches the session (at most once a minute).
func (o *sessionOwners) owner(ctx context.Context, id string) (string, error) {
	now := o.s.now()
	leased := o.s.fresh()
	o.mu.Lock()
	gen := o.gen
	c, ok := o.cache[id]
	o.mu.Unlock()
	if ok && leased && now.Sub(c.touched) < time.Minute {
		return c.user, nil
	}
	key := hashSecret(id)
	user, err := o.s.store.Session(ctx, key, now)
	if errors.Is(err, authstore.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if err := o.s.store.TouchSession(ctx, key, now); err != nil {
		return "", err
	}
	o.mu.Lock()
	if o.gen == gen {
		if len(o.cache) >= maxCachedSessions {
			clear(o.cache)
		}
		o.cache[id] = cachedOwner{user: user, touched: now}
	}
	o.mu.Unlock()
	return user, nil
}

// ResolveSessionIdManager returns a manager acting for the request's user; a
// nil request (mcp-go's idle sweeper) gets one that only forgets sessions
// locally: the store expires them itself, and another replica may still be
// serving them.
func (o *sessionOwners) ResolveSessionIdManager(r *http.Request) server.SessionIdManager {
	if r == nil {
		return userSessions{o: o, ctx: context.Background(), sweeper: true}
	}
	u := userSessions{o: o, ctx: r.Context()}
	if id, _ := r.Context().Value(identityKey{}).(*Identity); id != nil {
		u.user = id.User
	}
	u.checked, _ = r.Context().Value(checkedSessionKey{}).(string)
	return u
}

// userSessions is the session id manager of one request.
type userSessions struct {
	o       *sessionOwners
	ctx     context.Context
	user    string // "" matches nothing
	checked string // the id sessionAllowed checked for this request
	sweeper bool
}

var errNoSession = errors.New("unknown session")

// Generate creates a session for the request's user. A database failure
// cannot be reported through mcp-go's interface: it is logged, and the
// session id, unknown to the store, gets 404 on its next use, so the client
// starts a new session.
func (u userSessions) Generate() string {
	id := "mcp-session-" + rand.Text()
	if err := u.o.s.store.CreateSession(u.ctx, hashSecret(id), u.user, u.o.s.now()); err != nil {
		u.o.s.log.ErrorContext(u.ctx, "mcp: create session", "error", err)
	}
	return id
}

func (u userSessions) Validate(id string) (isTerminated bool, err error) {
	if u.user == "" || id == "" {
		return false, errNoSession
	}
	if id == u.checked {
		return false, nil
	}
	owner, err := u.o.owner(u.ctx, id)
	if err != nil || owner != u.user {
		return false, errNoSession
	}
	return false, nil
}

// Terminate ends a session (DELETE, after sessionAllowed checked the
// owner). Ending it is a revoking write: the answer waits until every
// replica has dropped its cached owner.
func (u userSessions) Terminate(id string) (isNotAllowed bool, err error) {
	if u.sweeper {
		return false, nil
	}
	if id == "" || id != u.checked {
		return true, nil
	}
	if _, err := u.o.s.store.EndSession(u.ctx, hashSecret(id)); err != nil {
		return false, err
	}
	u.o.s.revoked(u.ctx)
	return false, nil
}
