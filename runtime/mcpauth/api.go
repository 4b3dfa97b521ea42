// Package mcpauth serves an MCP server over Streamable HTTP behind a complete
// OAuth 2.1 authorization server on the same origin.
//
// One Server is one http.Handler with these endpoints (issuer = Config.BaseURL):
//
//	GET  /.well-known/oauth-protected-resource/mcp  RFC 9728 metadata (also at the root form)
//	GET  /.well-known/oauth-authorization-server    RFC 8414 metadata
//	POST /register                                  RFC 7591 dynamic client registration
//	GET  /authorize, POST /authorize                sign-in and consent page (PKCE S256)
//	POST /token                                     authorization_code and refresh_token grants
//	POST /revoke                                    RFC 7009 revocation
//	POST|GET|DELETE /mcp                            the MCP endpoint, bearer token required
//	GET  /                                          a page naming the server and its MCP URL
//	GET  /healthz, /readyz                          liveness and readiness probes
//
// Config.Routes adds the application's own endpoints (public, or behind the
// same bearer check as /mcp) and Config.Middleware wraps them all.
//
// Users sign in with a username and password from a bcrypt users file (see
// package userfile); edits to the file take effect without a restart, and a
// removed user's (or changed password's) tokens stop working, and their
// grants are deleted for good. Clients, codes, tokens and the rest of the
// server's state live in the database (package authstore: a SQLite file or
// a PostgreSQL URL); only hashes of codes, tokens and client secrets are
// stored.
//
// A tool handler learns who is calling with IdentityFromContext.
//
// A minimal main:
//
//	s := server.NewMCPServer("weather", "1.0.0")
//	s.AddTool(...)
//	err := mcpauth.ListenAndServe(ctx, mcpauth.Config{
//		BaseURL: "https://weather.example.com", Addr: "127.0.0.1:8080",
//	}, s)
//
// Deployment: bind to loopback (the default) and put a TLS-terminating
// reverse proxy in front, with BaseURL set to the public https URL. Requests
// that reach a loopback listener must name a loopback host or BaseURL's host
// (DNS-rebinding protection), so the proxy may keep the Host header. Set
// TrustedProxies to the proxy's address so that sign-in throttling sees the
// real client IP from X-Forwarded-For. Browser-based clients (such as the
// MCP Inspector web UI) need their origin in AllowedOrigins.
//
// Several replicas may share one PostgreSQL database: everything that
// decides an authorization outcome (pending sign-ins, codes, tokens,
// throttling counters, MCP session owners, revocations) is in the database,
// so any request may land on any replica. Each replica caches validated
// tokens and session owners, kept coherent by a revocation epoch: when a
// revoking request is answered, no replica accepts what it revoked
// (coherence.go). A replica keeps only harmless state of its own: cached
// client metadata documents and, for the legacy MCP protocol revisions, the
// event stream of a GET, which needs the same replica for its duration.
package mcpauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpgen/create-mcp-server/runtime/authstore"
	"github.com/mcpgen/create-mcp-server/runtime/userfile"
)

// Config configures a Server. Zero values mean the documented defaults.
type Config struct {
	// BaseURL is the public URL of the server, e.g. "https://mcp.example.com".
	// It is the OAuth issuer; the MCP endpoint is BaseURL + "/mcp".
	// It is never derived from request headers. It must be https, or http on
	// a loopback host, and have no path (default "http://" + Addr).
	BaseURL string
	// Addr is the listen address used by ListenAndServe (default 127.0.0.1:8080).
	Addr string
	// Database names the database: a SQLite file path, created on first
	// run, or a postgres:// (or postgresql://) URL (default "auth.db").
	// See package authstore.
	Database string
	// UsersPath is the bcrypt users file (default "users.txt").
	UsersPath string
	// AccessTTL is the access-token lifetime (default 1h).
	AccessTTL time.Duration
	// RefreshTTL is the refresh-token lifetime (default 720h). Each refresh
	// issues a new refresh token with a fresh RefreshTTL, but a sign-in
	// never lasts more than a year (or RefreshTTL, if longer).
	RefreshTTL time.Duration
	// AllowedOrigins lists browser origins, besides the server's own, that may
	// call the MCP and token endpoints.
	AllowedOrigins []string
	// ResourceName is shown to clients in the protected-resource metadata.
	ResourceName string
	// TrustedProxies are the networks whose X-Forwarded-For is believed when
	// throttling by client IP. Empty means X-Forwarded-For is ignored.
	TrustedProxies []netip.Prefix
	// Logger receives structured logs, including the audit events listed
	// in the operations guide (default slog.Default()).
	Logger *slog.Logger
	// Metrics counts requests, sign-ins, tokens and database operations
	// for Prometheus; serve Metrics.Handler to expose them. Nil means a
	// private set: counted, but not exposed.
	Metrics *Metrics
	// Routes are extra endpoints of the application, served beside the
	// built-in ones, optionally behind the same bearer check as /mcp.
	Routes []Route
	// Middleware wraps every endpoint, built-in or extra, the first one
	// outermost (e.g. request logging, extra headers).
	Middleware []func(http.Handler) http.Handler

	// CodeTTL is the authorization-code lifetime (default 2m, at most 10m).
	CodeTTL time.Duration
	// RefreshGrace is how long a rotated refresh token still works, until its
	// successor is first used (default 60s). Real clients refresh
	// concurrently; without a grace they would lose their sign-in. Negative
	// means no grace.
	RefreshGrace time.Duration
	// LockTimeout is how long a request waits for the database while
	// another writer (or process) holds it, before a write is retried once
	// and then answered 503 temporarily_unavailable (default 3s).
	LockTimeout time.Duration
	// MaxConnections caps the connections Serve keeps open at once
	// (default 1024). Past it, new connections are answered 503 and closed.
	MaxConnections int
	// MaxConnectionsPerAddr caps the connections from one client address
	// (an IPv4 address or an IPv6 /64), so that one client cannot take
	// them all (default max(8, MaxConnections/16)). Trusted proxies are
	// exempt.
	MaxConnectionsPerAddr int
	// CleanupInterval is how often expired rows are deleted (default 10m).
	CleanupInterval time.Duration
	// UnusedClientTTL is how long a registered client that was never used
	// (no code was ever issued to it) is kept (default 24h). Open
	// registration lets anyone add clients; this is how they go away.
	UnusedClientTTL time.Duration
	// Now is the clock (default time.Now); tests move it.
	Now func() time.Time
	// AllowLoopbackClientMetadata lets client ID metadata documents be
	// fetched from loopback and private addresses. It exists for tests,
	// which serve documents from httptest; never set it in production (it
	// opens the server to SSRF).
	AllowLoopbackClientMetadata bool

	// storeLimits bounds the shared tables (zero: authstore's defaults);
	// tests shrink them.
	storeLimits authstore.Limits
	// usersCheckInterval replaces usersCheckInterval when set; tests that
	// must decide when removals are applied stretch it.
	usersCheckInterval time.Duration
}

// Defaults. (The throttling limits are in throttle.go.)
const (
	defaultAccessTTL      = time.Hour
	defaultRefreshTTL     = 720 * time.Hour
	defaultMaxConnections = 1024
)

// users is what the server needs from the users file.
type users interface {
	Authenticate(ctx context.Context, username, password string) (bool, error)
	Stamp(username string) (stamp string, ok bool, err error)
	// Stamps is every user being served, username → stamp, and a version
	// that changes when the file is reloaded (coherence.go).
	Stamps() (users map[string]string, version uint64)
}

var _ users = (*userfile.File)(nil)

// Server is an OAuth 2.1 authorization server and a bearer-protected MCP
// endpoint on one http.Handler.
type Server struct {
	cfg            Config
	log            *slog.Logger
	metrics        *Metrics
	audit          auditor
	now            func() time.Time
	issuer         string // base URL without trailing slash
	origin         string // lowercase scheme://host[:port]
	baseHost       string // host[:port] of the base URL
	resource       string // issuer + "/mcp"
	prmURL         string
	serverName     string
	allowedOrigins []string
	cookieName     string
	secureCookies  bool

	store     authstore.Store
	users     users
	usersFile *userfile.File // closed by Close; nil in tests of parts
	cache     *tokenCache
	sessions  *sessionOwners
	coh       coherence
	touches   grantTouches
	cimd      *cimdFetcher

	limits    authstore.ThrottleStore
	timeouts  timeouts
	bcryptSem chan struct{}
	xffWarn   sync.Once
	xffWarned atomic.Bool
	refusals  refusalLog // refusals logged recently

	prmBody, asBody                                    []byte
	challengeMissing, challengeInvalid, challengeScope string

	mcpHandler *server.StreamableHTTPServer
	handler    http.Handler
	readiness

	stop          chan struct{}
	done          chan struct{}
	coherenceDone chan struct{}
	closeOnce     sync.Once
	closeErr      error
}

// New opens (and migrates) the database, loads the users file and returns a
// Server for the MCP server mcp. Call Close when done.
func New(cfg Config, mcp *server.MCPServer) (*Server, error) {
	if mcp == nil {
		return nil, errors.New("mcpauth: nil MCP server")
	}
	s, err := newServer(cfg)
	if err != nil {
		return nil, err
	}
	uf, err := userfile.Open(s.cfg.UsersPath)
	if err != nil {
		return nil, fmt.Errorf("mcpauth: %w", err)
	}
	uf.SetLogger(s.log)
	if uf.Len() == 0 {
		s.log.Warn("mcpauth: the users file has no users, so nobody can sign in; add one with the user add command",
			"path", s.cfg.UsersPath)
	}
	s.users, s.usersFile = uf, uf
	st, err := authstore.Open(context.Background(), s.cfg.Database, authstore.Options{
		LockTimeout: s.cfg.LockTimeout, Limits: s.cfg.storeLimits, Observe: s.metrics.observeDB,
	})
	if err != nil {
		uf.Close()
		return nil, &DatabaseError{Err: err}
	}
	s.setStore(st)
	s.metrics.setCounter(func(ctx context.Context) (clients, grants int, err error) {
		st, err := st.Stats(ctx, s.now())
		return st.Clients, st.Grants, err
	})
	s.mcpHandler = newMCPHandler(mcp, s)
	if s.handler, err = s.routes(); err != nil {
		st.Close()
		uf.Close()
		return nil, fmt.Errorf("mcpauth: %w", err)
	}
	// Join the replicas (the caches start with a lease), and watch the
	// users file for removals from now on.
	if err := s.startReplica(context.Background()); err != nil {
		st.Close()
		uf.Close()
		return nil, &DatabaseError{Err: err}
	}
	s.watchUsers()
	go s.cleanupLoop()
	go s.usersLoop()
	return s, nil
}

// setStore makes st the server's database.
func (s *Server) setStore(st authstore.Store) {
	s.store = st
	s.limits = st
}

// newServer validates cfg, applies defaults and builds everything but the
// storage, users and MCP handler.
func newServer(cfg Config) (*Server, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:8080"
	}
	if cfg.Database == "" {
		cfg.Database = "auth.db"
	}
	if cfg.UsersPath == "" {
		cfg.UsersPath = "users.txt"
	}
	if cfg.AccessTTL <= 0 {
		cfg.AccessTTL = defaultAccessTTL
	}
	if cfg.RefreshTTL <= 0 {
		cfg.RefreshTTL = defaultRefreshTTL
	}
	if cfg.CodeTTL <= 0 {
		cfg.CodeTTL = 2 * time.Minute
	}
	if cfg.CodeTTL > 10*time.Minute {
		return nil, errors.New("mcpauth: CodeTTL must be at most 10 minutes (RFC 6749 §4.1.2)")
	}
	if cfg.RefreshGrace == 0 {
		cfg.RefreshGrace = 60 * time.Second
	}
	if cfg.LockTimeout <= 0 {
		cfg.LockTimeout = authstore.DefaultLockTimeout
	}
	if cfg.UnusedClientTTL <= 0 {
		cfg.UnusedClientTTL = 24 * time.Hour
	}
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = defaultMaxConnections
	}
	if cfg.MaxConnectionsPerAddr <= 0 {
		cfg.MaxConnectionsPerAddr = max(8, cfg.MaxConnections/16)
	}
	if cfg.CleanupInterval <= 0 {
		cfg.CleanupInterval = 10 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.BaseURL == "" {
		host, port, err := net.SplitHostPort(cfg.Addr)
		if err != nil {
			return nil, fmt.Errorf("mcpauth: Addr %q: %w", cfg.Addr, err)
		}
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		cfg.BaseURL = "http://" + net.JoinHostPort(host, port)
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("mcpauth: BaseURL %q must be an http(s) URL without path, query or fragment, e.g. https://mcp.example.com", cfg.BaseURL)
	}
	if u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("mcpauth: BaseURL %q must use https (plain http is allowed only on localhost, 127.0.0.1 or [::1]); put a TLS-terminating proxy in front", cfg.BaseURL)
	}
	// The base URL is normalised once (lowercase host, default port
	// dropped), and everything compared with it (the issuer, the Host and
	// Origin headers, resource indicators) is normalised the same way:
	// "https://mcp.example.com:443" and "https://mcp.example.com" are one
	// server.
	host := hostWithoutDefaultPort(u.Scheme, u.Host)
	s := &Server{
		cfg:        cfg,
		log:        cfg.Logger,
		metrics:    cfg.Metrics,
		audit:      auditor{log: cfg.Logger, m: cfg.Metrics},
		now:        cfg.Now,
		issuer:     u.Scheme + "://" + host,
		origin:     u.Scheme + "://" + host,
		baseHost:   host,
		cookieName: browserCookie,
		cache:      newTokenCache(),

		timeouts:      defaultTimeouts,
		bcryptSem:     make(chan struct{}, max(1, runtime.GOMAXPROCS(0))),
		stop:          make(chan struct{}),
		coherenceDone: make(chan struct{}),
		done:          make(chan struct{}),
	}
	s.sessions = newSessionOwners(s)
	if u.Scheme == "https" {
		s.secureCookies = true
		s.cookieName = "__Host-" + browserCookie
	}
	s.resource = s.issuer + "/mcp"
	s.prmURL = s.issuer + prmPathMCP
	s.serverName = cfg.ResourceName
	if s.serverName == "" {
		s.serverName = u.Hostname()
	}
	for _, o := range cfg.AllowedOrigins {
		s.allowedOrigins = append(s.allowedOrigins, normalizeOrigin(o))
	}
	s.cimd = newCIMDFetcher(cfg.AllowLoopbackClientMetadata, cfg.Now)
	if err := s.buildMetadata(); err != nil {
		return nil, fmt.Errorf("mcpauth: %w", err)
	}
	s.buildChallenges()
	return s, nil
}

// ServeHTTP serves every endpoint: metadata, /register, /authorize, /token,
// /revoke and /mcp.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.checkForwarded(r)
	if r.URL.Path != mcpPath { // the bearer wrapper sets the MCP endpoint's (one deadline less per call)
		setBodyDeadline(w, r, s.timeouts.body)
	}
	s.handler.ServeHTTP(w, r)
}

// Close stops background work, ends MCP sessions and closes the database.
// It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
		<-s.coherenceDone
		if err := s.coh.rep.Close(); err != nil {
			s.log.Warn("mcpauth: leaving the replicas", "error", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.mcpHandler.Shutdown(ctx)
		if s.usersFile != nil {
			s.usersFile.Close()
		}
		s.touches.stop() // the last writes of grants' last use
		s.closeErr = s.store.Close()
	})
	return s.closeErr
}

// cleanupLoop deletes expired rows every CleanupInterval until Close.
func (s *Server) cleanupLoop() {
	defer close(s.done)
	t := time.NewTicker(s.cfg.CleanupInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if err := s.store.Cleanup(context.Background(), s.now(), s.cfg.UnusedClientTTL); err != nil {
				s.log.Error("mcpauth: cleanup", "error", err)
			}
			s.invalidateCaches()
		}
	}
}

// DatabaseError is the error New returns when the database of
// Config.Database cannot be opened, migrated or joined as a replica. Its
// message names the database with any password redacted.
type DatabaseError struct{ Err error }

func (e *DatabaseError) Error() string { return "mcpauth: database: " + e.Err.Error() }

func (e *DatabaseError) Unwrap() error { return e.Err }
