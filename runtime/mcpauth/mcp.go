package mcpauth

// The MCP endpoint: mcp-go's Streamable HTTP handler, mounted at /mcp behind
// the bearer middleware (bearer.go). Legacy-era sessions (protocol versions
// before 2026-07-28) are bound to the user who created them: another user's
// token presenting the same Mcp-Session-Id gets 404, as if the session did
// not exist. Sessions are never used for authentication; every request
// carries and is checked for its own token.

import (
	"crypto/rand"
	"errors"
	"net/http"
	"sync"
	"time"

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
