// Package mcpauth serves an MCP server over Streamable HTTP behind a complete
// OAuth 2.1 authorization server on the same origin.
//
// STUB: this file fixes the exported API that generated projects and the
// generator's templates rely on. The implementation replaces the bodies.
package mcpauth

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/mark3labs/mcp-go/server"
)

// Config configures a Server. Zero values mean the documented defaults.
type Config struct {
	// BaseURL is the public URL of the server, e.g. "https://mcp.example.com".
	// It is the OAuth issuer; the MCP endpoint is BaseURL + "/mcp".
	// It is never derived from request headers.
	BaseURL string
	// Addr is the listen address used by ListenAndServe (default 127.0.0.1:8080).
	Addr string
	// DBPath is the SQLite file, created on first run (default "auth.db").
	DBPath string
	// UsersPath is the bcrypt users file (default "users.txt").
	UsersPath string
	// AccessTTL is the access-token lifetime (default 1h).
	AccessTTL time.Duration
	// RefreshTTL is the refresh-token lifetime (default 720h).
	RefreshTTL time.Duration
	// AllowedOrigins lists browser origins, besides the server's own, that may
	// call the MCP and token endpoints.
	AllowedOrigins []string
	// ResourceName is shown to clients in the protected-resource metadata.
	ResourceName string
	// TrustedProxies are the networks whose X-Forwarded-For is believed when
	// throttling by client IP. Empty means X-Forwarded-For is ignored.
	TrustedProxies []netip.Prefix
	// Logger receives structured logs (default slog.Default()).
	Logger *slog.Logger
}

// Server is an OAuth 2.1 authorization server and a bearer-protected MCP
// endpoint on one http.Handler.
type Server struct{}

// New opens (and migrates) the database, loads the users file and returns a
// Server for the MCP server mcp. Call Close when done.
func New(cfg Config, mcp *server.MCPServer) (*Server, error) { panic("unimplemented") }

// ServeHTTP serves every endpoint: metadata, /register, /authorize, /token,
// /revoke and /mcp.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { panic("unimplemented") }

// Close stops background work and closes the database.
func (s *Server) Close() error { panic("unimplemented") }

// ListenAndServe runs New(cfg, mcp) on cfg.Addr until ctx is cancelled, then
// shuts down gracefully.
func ListenAndServe(ctx context.Context, cfg Config, mcp *server.MCPServer) error {
	panic("unimplemented")
}

// Identity is who is calling: the signed-in user, the OAuth client acting for
// them and the scopes they granted it.
type Identity struct {
	User     string
	ClientID string
	Scopes   []string
}

// IdentityFromContext returns the caller's identity inside an MCP tool handler.
func IdentityFromContext(ctx context.Context) (Identity, bool) { panic("unimplemented") }

// WithIdentity returns ctx carrying id (for stdio mode and tests).
func WithIdentity(ctx context.Context, id Identity) context.Context { panic("unimplemented") }
