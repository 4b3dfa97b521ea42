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
	"crypto/rand"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
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

// sessionAllowed checks the legacy session named by a GET or DELETE on /mcp
// against the caller: a GET or DELETE without a session id is 400, one that
// names an id not issued to this user is 404. It writes the answer and
// reports false when the request must stop.
func (s *Server) sessionAllowed(w http.ResponseWriter, r *http.Request, id *Identity) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodDelete {
		return true
	}
	if mcp.IsModernProtocol(r.Header.Get(mcp.HeaderProtocolVersion)) {
		return true // no sessions since 2026-07-28; mcp-go refuses these methods
	}
	sid := r.Header.Get(server.HeaderKeySessionID)
	if sid == "" {
		http.Error(w, "Bad Request: Mcp-Session-Id header required", http.StatusBadRequest)
		return false
	}
	if !s.sessions.owns(sid, id.User) {
		http.Error(w, "Session not found", http.StatusNotFound)
		return false
	}
	return true
}

// sessionOwners binds legacy MCP session ids to users. It implements
// server.SessionIdManagerResolver.
type sessionOwners struct {
	mu     sync.Mutex
	owners map[string]string // session id → user
}

func newSessionOwners() *sessionOwners {
	return &sessionOwners{owners: make(map[string]string)}
}

// ResolveSessionIdManager returns a manager acting for the request's user; a
// nil request (mcp-go's idle sweeper) gets one that may end any session.
func (o *sessionOwners) ResolveSessionIdManager(r *http.Request) server.SessionIdManager {
	if r == nil {
		return userSessions{o: o, any: true}
	}
	id, _ := r.Context().Value(identityKey{}).(*Identity)
	if id == nil {
		return userSessions{o: o} // unreachable behind bearer; matches nothing
	}
	return userSessions{o: o, user: id.User}
}

// userSessions is the session id manager for one user.
type userSessions struct {
	o    *sessionOwners
	user string
	any  bool
}

var errNoSession = errors.New("unknown session")

// owns reports whether session id was issued to user and is still live.
func (o *sessionOwners) owns(id, user string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	owner, ok := o.owners[id]
	return ok && user != "" && owner == user
}

func (u userSessions) Generate() string {
	id := "mcp-session-" + rand.Text()
	u.o.mu.Lock()
	u.o.owners[id] = u.user
	u.o.mu.Unlock()
	return id
}

func (u userSessions) Validate(id string) (isTerminated bool, err error) {
	u.o.mu.Lock()
	owner, ok := u.o.owners[id]
	u.o.mu.Unlock()
	if !ok || u.user == "" || owner != u.user {
		return false, errNoSession
	}
	return false, nil
}

func (u userSessions) Terminate(id string) (isNotAllowed bool, err error) {
	u.o.mu.Lock()
	defer u.o.mu.Unlock()
	owner, ok := u.o.owners[id]
	if !ok {
		return false, nil
	}
	if !u.any && owner != u.user {
		return true, nil // another user's session: refused (405), left alone
	}
	delete(u.o.owners, id)
	return false, nil
}
