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
// The store keeps at most authstore.Limits.SessionsPerUser sessions per
// user, and each replica holds mcp-go's state for no more (below).

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
// that mcp-go's own check does not ask the database again, and records
// that mcp-go is about to hold state for it here (heldSessions).
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
	if forget := s.sessions.held.see(id.User, sid); forget != "" {
		s.forgetLocally(r.Context(), forget)
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
// write. (The store evicting a user's least recently used session, at the
// cap, is not: an evicted session's owner may keep using it on a replica
// that has its owner cached, for at most a minute; nobody else can.) It
// implements server.SessionIdManagerResolver.
type sessionOwners struct {
	s    *Server
	held *heldSessions // the sessions mcp-go holds state for here

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
	return &sessionOwners{
		s:     s,
		held:  newHeldSessions(sessionsPerUser(s.cfg.storeLimits)),
		cache: make(map[string]cachedOwner),
	}
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
// nil request (mcp-go's idle sweeper), or the DELETE of forgetLocally,
// gets one that only forgets sessions locally: the store expires them
// itself, and another replica may still be serving them.
func (o *sessionOwners) ResolveSessionIdManager(r *http.Request) server.SessionIdManager {
	if r == nil {
		return userSessions{o: o, ctx: context.Background(), sweeper: true}
	}
	if r.Context().Value(forgetLocallyKey{}) != nil {
		return userSessions{o: o, ctx: r.Context(), sweeper: true}
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
// starts a new session. If the user now has more sessions here than the
// cap, mcp-go forgets the one this replica saw least recently (below).
func (u userSessions) Generate() string {
	id := "mcp-session-" + rand.Text()
	if err := u.o.s.store.CreateSession(u.ctx, hashSecret(id), u.user, u.o.s.now()); err != nil {
		u.o.s.log.ErrorContext(u.ctx, "mcp: create session", "error", err)
	}
	if forget := u.o.held.see(u.user, id); forget != "" {
		u.o.s.forgetLocally(u.ctx, forget)
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
// replica has dropped its cached owner. The sweeper's manager only lets
// mcp-go drop the session's state here. Either way, mcp-go drops it
// when Terminate allows it, so the session leaves heldSessions.
func (u userSessions) Terminate(id string) (isNotAllowed bool, err error) {
	if u.sweeper {
		u.o.held.remove(id)
		return false, nil
	}
	if id == "" || id != u.checked {
		return true, nil
	}
	if _, err := u.o.s.store.EndSession(u.ctx, hashSecret(id)); err != nil {
		return false, err
	}
	u.o.held.remove(id)
	u.o.s.revoked(u.ctx)
	return false, nil
}

// The per-replica bound on mcp-go's session state.
//
// The store keeps at most authstore.Limits.SessionsPerUser legacy sessions
// per user: opening one more evicts the user's least recently used. But
// mcp-go keeps, in this process, the state of every session it served (a
// registered session object with its notification channels, its idle
// timer, per-session tools and log level), and only drops it when the
// session is ended with a DELETE or when its idle sweeper finds it unused
// for sessionIdleTTL. A session the store evicted is never used again, so
// without a bound here one signed-in user sending initialize in a loop
// would grow this replica's memory for half an hour, without limit.
//
// So each replica keeps its own bound, the same cap: heldSessions records,
// per user, the sessions mcp-go may hold state for here, and when a user
// has more than the cap it tells mcp-go to forget the one least recently
// seen here (forgetLocally). Forgetting is local: it ends nothing in the
// store, which orders a user's sessions by its own record of their use and
// may well still have this one, and other replicas may be serving it. If
// its owner uses it here again, mcp-go serves the request with fresh state
// (a POST runs on a new ephemeral session, a GET registers a new stream),
// as for a session opened on another replica. What is lost is the state
// mcp-go kept for it here: per-session tools and log level, notifications
// queued for it, and the registration that lets the server send it
// notifications outside a request until its owner opens a new GET stream.

// heldSessions is the registry of the sessions mcp-go may hold state for
// on this replica: the ones this replica created, or served a request for,
// and has not seen ended or forgotten since. It orders each user's
// sessions by when this replica last saw them.
type heldSessions struct {
	max int // per user

	mu sync.Mutex
	// clock counts the sightings: a session's seen is the clock at its
	// last one. Only the order matters, and a counter cannot go back or
	// tie, as a wall clock moved by tests (Config.Now) could.
	clock uint64
	ids   map[string]*heldSession            // by session id
	users map[string]map[string]*heldSession // by user, then session id
}

// heldSession is one session in heldSessions.
type heldSession struct {
	user string
	seen uint64
}

// newHeldSessions returns a registry that keeps at most max sessions per
// user (at least one).
func newHeldSessions(limit int) *heldSessions {
	return &heldSessions{
		max:   max(limit, 1),
		ids:   make(map[string]*heldSession),
		users: make(map[string]map[string]*heldSession),
	}
}

// sessionsPerUser is the store's cap on the sessions of one user, as the
// server opens its store (Config.storeLimits, zero fields being
// authstore's defaults): each replica holds no more of them in memory.
func sessionsPerUser(l authstore.Limits) int {
	if l.SessionsPerUser > 0 {
		return l.SessionsPerUser
	}
	return authstore.DefaultLimits.SessionsPerUser
}

// see records that session id of user was used (or created) now. If that
// takes the user past the cap, it returns the session to forget, the one
// this replica saw least recently; "" otherwise. It runs on every request
// that names a session, so a known session costs one lock and one map
// lookup, and allocates nothing.
func (h *heldSessions) see(user, id string) (forget string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clock++
	if e := h.ids[id]; e != nil && e.user == user {
		e.seen = h.clock
		return ""
	}
	h.removeLocked(id) // never another user's (sessionAllowed checked), but be sure
	e := &heldSession{user: user, seen: h.clock}
	set := h.users[user]
	if set == nil {
		set = make(map[string]*heldSession)
		h.users[user] = set
	}
	set[id] = e
	h.ids[id] = e
	if len(set) <= h.max {
		return ""
	}
	// Past the cap by one: find the least recently seen. The scan is as
	// long as the cap, and happens only when a session is new here.
	var oldest *heldSession
	for sid, s := range set {
		if oldest == nil || s.seen < oldest.seen {
			oldest, forget = s, sid
		}
	}
	h.removeLocked(forget)
	return forget
}

// remove forgets id: it was ended, or mcp-go dropped its state.
func (h *heldSessions) remove(id string) {
	h.mu.Lock()
	h.removeLocked(id)
	h.mu.Unlock()
}

func (h *heldSessions) removeLocked(id string) {
	e := h.ids[id]
	if e == nil {
		return
	}
	delete(h.ids, id)
	set := h.users[e.user]
	delete(set, id)
	if len(set) == 0 {
		delete(h.users, e.user)
	}
}

// forgetLocallyKey marks, in the context of the request forgetLocally
// sends mcp-go, that the session is only to be forgotten here
// (ResolveSessionIdManager hands mcp-go the sweeper's manager).
type forgetLocallyKey struct{}

// forgetLocally makes mcp-go drop the state it holds for session id on
// this replica, without ending the session in the store. mcp-go's only
// public way to drop a session's state is a DELETE, so this sends its
// handler one, in process; the request's context routes it to the
// sweeper's session manager, which ends nothing. ctx is the context of the
// request that took the user past the cap (for the values loggers and
// hooks read; its cancellation is ignored). It must not be called under a
// lock: mcp-go runs its session hooks.
func (s *Server) forgetLocally(ctx context.Context, id string) {
	ctx = context.WithValue(context.WithoutCancel(ctx), forgetLocallyKey{}, true)
	r, err := http.NewRequestWithContext(ctx, http.MethodDelete, mcpPath, nil)
	if err != nil {
		s.log.ErrorContext(ctx, "mcp: forget a session", "error", err)
		return
	}
	r.Header.Set(server.HeaderKeySessionID, id)
	// A legacy version: mcp-go refuses a DELETE of the 2026-07-28 era,
	// which has no sessions.
	r.Header.Set(mcp.HeaderProtocolVersion, mcp.LATEST_LEGACY_PROTOCOL_VERSION)
	var w statusRecorder
	s.mcpHandler.ServeHTTP(&w, r)
	if w.status != http.StatusOK {
		s.log.ErrorContext(ctx, "mcp: forget a session: mcp-go refused the DELETE", "status", w.status)
	}
}

// statusRecorder is the http.ResponseWriter of the requests the server
// sends mcp-go itself: it keeps the status and discards the rest.
type statusRecorder struct {
	header http.Header
	status int
}

// Header returns a header map, which nobody reads.
func (w *statusRecorder) Header() http.Header {
	if w.header == nil {
		w.header = make(http.Header)
	}
	return w.header
}

// WriteHeader records the first status written.
func (w *statusRecorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

// Write discards p; like net/http, writing before WriteHeader means 200.
func (w *statusRecorder) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return len(p), nil
}
