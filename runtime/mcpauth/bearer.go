package mcpauth

// Bearer-token protection of the MCP endpoint: RFC 6750 (Bearer Token
// Usage) with the RFC 9728 §5.1 resource_metadata challenge, plus the
// Streamable HTTP transport's Origin and DNS-rebinding rules.
//
// Order of checks, all before mcp-go sees the request (so an unauthenticated
// request gets a 401, never a session or protocol-version error):
//  1. Host: on a loopback listener only a loopback Host or the base URL's host
//     (DNS rebinding).
//  2. Origin: absent (non-browser clients), the server's own origin or one
//     of Config.AllowedOrigins; anything else is 403. Allowed origins get CORS.
//  3. OPTIONS preflight is answered without authentication.
//  4. The token, from the Authorization header only (never the query):
//     missing → 401 with a challenge without error; unknown, expired,
//     revoked, wrong audience, or its user removed or their password
//     changed → 401 error="invalid_token"; without the mcp scope → 403
//     error="insufficient_scope".
//  5. The legacy session (mcp.go): on GET and DELETE, a session id that
//     was never issued, or was issued to another user, is 404.
//  6. The body of a POST is read within its own deadline (30 s), which is
//     then cleared, so the response may stream as long as it needs.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mcpgen/create-mcp-server/runtime/authstore"
)

// maxMCPBody caps a JSON-RPC request body.
const maxMCPBody = 4 << 20

// mcpPath is the MCP endpoint.
const mcpPath = "/mcp"

// bearer wraps the MCP handler with the checks above.
func (s *Server) bearer(next http.Handler) http.Handler { return s.protect(next, true) }

// protect wraps next with the checks above; the MCP session check (mcp)
// only applies to the MCP endpoint, not to Config.Routes.
func (s *Server) protect(next http.Handler, mcp bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, err := s.admit(w, r, mcp)
		if err != nil {
			// Refused unread: the body's deadline bounds how long the
			// server spends discarding it (ServeHTTP leaves the MCP
			// endpoint's to this wrapper).
			setBodyDeadline(w, r, s.timeouts.body)
			writeRefusal(w, err)
			return
		}
		// The body is read here, within its own deadline, which is then
		// cleared: the response may stream for as long as it needs.
		if r.Method == http.MethodPost && r.Body != nil && r.Body != http.NoBody {
			body, err := readBody(w, r, maxMCPBody, s.timeouts.mcpBody)
			if err != nil {
				// readBody left the deadline in the past: the rest of
				// the body is not waited for, the connection closes.
				writeRefusal(w, bodyRefusal(err))
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		} else {
			http.NewResponseController(w).SetReadDeadline(time.Time{})
		}
		next.ServeHTTP(w, r)
	})
}

// A refusal is the answer to a request that does not pass the checks, or
// to a preflight: written by writeRefusal, before the request's handler.
type refusal struct {
	status    int
	msg       string // the body; none for 204
	challenge string // WWW-Authenticate
	retry     bool   // Retry-After: 1, for a failure of the server, not of the request
	noStore   bool   // Cache-Control: no-store (the answers of the token check)
}

func (e *refusal) Error() string { return e.msg }

// writeRefusal writes err, a *refusal.
func writeRefusal(w http.ResponseWriter, err error) {
	e, ok := errors.AsType[*refusal](err)
	if !ok {
		e = &refusal{status: http.StatusInternalServerError, msg: "Internal Server Error"}
	}
	h := w.Header()
	if e.challenge != "" {
		h.Set("WWW-Authenticate", e.challenge)
	}
	if e.retry {
		h.Set("Retry-After", "1")
	}
	if e.noStore {
		h.Set("Cache-Control", "no-store")
	}
	if e.msg == "" {
		w.WriteHeader(e.status)
		return
	}
	http.Error(w, e.msg, e.status)
}

// bodyRefusal is the answer to a body readBody could not read.
func bodyRefusal(err error) *refusal {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return &refusal{status: http.StatusRequestEntityTooLarge, msg: "request body too large"}
	}
	return &refusal{status: http.StatusRequestTimeout, msg: "the request body could not be read"}
}

// admit runs the checks above but the body's: it returns the request with
// the caller's identity (and checked session) in its context, or a
// *refusal.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, mcp bool) (*http.Request, error) {
	if !s.hostAllowed(r) {
		return r, &refusal{status: http.StatusForbidden, msg: "Forbidden: invalid Host header"}
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		if !s.originAllowed(origin) {
			return r, &refusal{status: http.StatusForbidden, msg: "Forbidden: origin not allowed"}
		}
		setCORS(w.Header(), origin)
	}
	if r.Method == http.MethodOptions {
		return r, &refusal{status: http.StatusNoContent} // the preflight's answer
	}
	id, err := s.authenticate(r)
	if err != nil {
		return r, err
	}
	ctx := context.WithValue(r.Context(), identityKey{}, id)
	if mcp {
		sid, err := s.sessionAllowed(r, id)
		if err != nil {
			return r, err
		}
		if sid != "" {
			ctx = context.WithValue(ctx, checkedSessionKey{}, sid)
		}
	}
	return r.WithContext(ctx), nil // once: each copies the request
}

// authenticate checks the bearer token. On failure it returns a refusal:
// 401 or 403 with the WWW-Authenticate challenge, or 503 without one if
// the check itself failed (storage busy or broken: not the token's fault,
// so the client must not discard it).
func (s *Server) authenticate(r *http.Request) (*Identity, error) {
	token, ok := bearerToken(r.Header.Get("Authorization"))
	if !ok {
		return nil, &refusal{status: http.StatusUnauthorized, msg: "Unauthorized", challenge: s.challengeMissing, noStore: true}
	}
	id, err := s.verify(r.Context(), token)
	switch {
	case err == nil:
		return id, nil
	case errors.Is(err, errInsufficientScope):
		return nil, &refusal{status: http.StatusForbidden, msg: "Forbidden", challenge: s.challengeScope, noStore: true}
	case errors.Is(err, errInvalidToken):
		return nil, &refusal{status: http.StatusUnauthorized, msg: "Unauthorized", challenge: s.challengeInvalid, noStore: true}
	}
	s.log.ErrorContext(r.Context(), "bearer check failed", "error", err)
	return nil, &refusal{status: http.StatusServiceUnavailable, msg: "Service Unavailable", retry: true, noStore: true}
}

var (
	errInvalidToken      = errors.New("invalid token")
	errInsufficientScope = errors.New("insufficient scope")
)

// verify returns the identity behind an access token, errInvalidToken if it
// does not (or no longer) grant access to this resource, or
// errInsufficientScope if it lacks the mcp scope. It is HTTP-free.
func (s *Server) verify(ctx context.Context, token string) (*Identity, error) {
	if len(token) != accessTokenLen {
		return nil, errInvalidToken
	}
	var buf [accessTokenLen]byte // hashed without a copy on the heap
	copy(buf[:], token)
	sum := sha256.Sum256(buf[:])
	now := s.now()
	info, id, err := s.lookupAccess(ctx, sum, now)
	if errors.Is(err, authstore.ErrNotFound) {
		return nil, errInvalidToken
	}
	if err != nil {
		return nil, err
	}
	if !resourceMatches(info.Resource, s.resource) {
		return nil, errInvalidToken
	}
	stamp, exists, err := s.users.Stamp(info.User)
	if err != nil {
		return nil, err
	}
	if !exists || stamp != info.Stamp {
		return nil, errInvalidToken
	}
	if id == nil {
		return nil, errInsufficientScope
	}
	s.touchGrant(info.GrantID, now)
	return id, nil
}

// accessTokenLen is the length of every access token: 32 random bytes,
// base64url.
const accessTokenLen = 43

// identityOf is the identity an access token carries, nil if it lacks
// the mcp scope. It is shared by every request with the token (cached
// with it), so nothing may modify it; IdentityFromContext hands out
// copies.
func identityOf(info *authstore.Access) *Identity {
	scopes := strings.Fields(info.Scope)
	if !slices.Contains(scopes, scopeMCP) {
		return nil
	}
	return &Identity{User: info.User, ClientID: info.ClientID, Scopes: scopes}
}

// grantTouches remembers when this replica last recorded the use of each
// grant, so that it writes "last used" (shown by the grants list command
// and on the account page) at most once a minute per grant.
type grantTouches struct {
	mu     sync.RWMutex
	last   map[string]time.Time
	closed bool           // Close has begun: no more writes start
	writes sync.WaitGroup // the writes under way, which Close waits for
}

// Bounds of grantTouches: a full map is cleared (a few extra writes).
const (
	touchEvery    = time.Minute
	maxTouchedIDs = 4096
)

// touchGrant records a use of the grant now, unless this replica did
// within touchEvery. The write happens off the request path; if it fails
// (database busy) the grant's "last used" is merely a little older.
func (s *Server) touchGrant(grantID string, now time.Time) {
	t := &s.touches
	t.mu.RLock()
	last, ok := t.last[grantID]
	t.mu.RUnlock()
	if ok && now.Sub(last) < touchEvery {
		return
	}
	t.mu.Lock()
	if last, ok := t.last[grantID]; ok && now.Sub(last) < touchEvery {
		t.mu.Unlock()
		return // another request got here first
	}
	if t.last == nil || len(t.last) >= maxTouchedIDs {
		t.last = make(map[string]time.Time)
	}
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.last[grantID] = now
	t.writes.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.LockTimeout)
		defer cancel()
		s.store.TouchGrant(ctx, grantID, now)
	})
	t.mu.Unlock()
}

// stop keeps touchGrant from starting writes, and waits for those under
// way: Close calls it before it closes the database.
func (t *grantTouches) stop() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.writes.Wait()
}

// lookupAccess finds a live access token by its hash, and the identity it
// carries (identityOf): in the cache of hot tokens while this replica
// holds its revocation lease, or with one indexed lookup.
func (s *Server) lookupAccess(ctx context.Context, sum [32]byte, now time.Time) (*authstore.Access, *Identity, error) {
	e, gen := s.cache.get(sum, now)
	// The cache is trusted only under the revocation lease (coherence.go).
	if e.info != nil && s.fresh() {
		return e.info, e.id, nil
	}
	key := sum // escapes to the store: copied here, not on the cached path
	info, err := s.store.LookupAccess(ctx, key[:], now)
	if err != nil {
		return nil, nil, err
	}
	id := identityOf(info)
	s.cache.put(sum, cachedToken{info: info, id: id, expires: info.ExpiresAt}, gen)
	return info, id, nil
}

// bearerToken extracts the token of an "Authorization: Bearer" header.
func bearerToken(h string) (string, bool) {
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// challenges builds the WWW-Authenticate values once.
func (s *Server) buildChallenges() {
	rm := `resource_metadata="` + s.prmURL + `"`
	sc := `scope="` + scopeMCP + `"`
	s.challengeMissing = "Bearer " + rm + ", " + sc
	s.challengeInvalid = `Bearer error="invalid_token", error_description="the access token is invalid, expired or revoked", ` + rm + ", " + sc
	s.challengeScope = `Bearer error="insufficient_scope", error_description="the mcp scope is required", ` + rm + ", " + sc
}

// hostAllowed implements DNS-rebinding protection: a request that arrived
// on a loopback address must name a loopback host or the base URL's host.
func (s *Server) hostAllowed(r *http.Request) bool {
	if r.Host == s.baseHost { // the usual case, allowed on any listener
		return true
	}
	var local netip.Addr
	switch la := r.Context().Value(http.LocalAddrContextKey).(type) {
	case *net.TCPAddr:
		local = la.AddrPort().Addr()
	case net.Addr:
		ap, err := netip.ParseAddrPort(la.String())
		if err != nil {
			return true
		}
		local = ap.Addr()
	default:
		return true
	}
	if !local.Unmap().IsLoopback() {
		return true
	}
	if hostWithoutDefaultPort(s.scheme(), r.Host) == s.baseHost {
		return true
	}
	return isLoopbackHost(hostOnly(r.Host))
}

// hostOnly strips the port from a Host header value.
func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")
}

// isLoopbackHost reports whether host (without port) is localhost or a
// loopback IP literal.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	return err == nil && ip.Unmap().IsLoopback()
}

// originAllowed reports whether a browser origin may call the MCP, token,
// registration and revocation endpoints.
func (s *Server) originAllowed(origin string) bool {
	o := normalizeOrigin(origin)
	return o == s.origin || slices.Contains(s.allowedOrigins, o)
}

// scheme is the base URL's scheme.
func (s *Server) scheme() string {
	scheme, _, _ := strings.Cut(s.origin, "://")
	return scheme
}

// defaultPorts are the ports a URL of each scheme may leave out.
var defaultPorts = map[string]string{"http": "80", "https": "443"}

// hostWithoutDefaultPort lowercases host[:port] and drops the port if it is
// the scheme's default.
func hostWithoutDefaultPort(scheme, hostport string) string {
	hostport = strings.ToLower(hostport)
	if h, p, err := net.SplitHostPort(hostport); err == nil && p == defaultPorts[strings.ToLower(scheme)] {
		if strings.Contains(h, ":") {
			return "[" + h + "]"
		}
		return h
	}
	return hostport
}

// normalizeOrigin is an origin (or base URL) as compared: lowercase, no
// trailing slash, no default port.
func normalizeOrigin(o string) string {
	o = strings.TrimSuffix(o, "/")
	scheme, host, ok := strings.Cut(o, "://")
	if !ok {
		return strings.ToLower(o)
	}
	scheme = strings.ToLower(scheme)
	return scheme + "://" + hostWithoutDefaultPort(scheme, host)
}

// setCORS sets the CORS response headers for an allowed origin.
func setCORS(h http.Header, origin string) {
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
	h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Accept, MCP-Protocol-Version, Mcp-Session-Id, Last-Event-ID, Mcp-Method, Mcp-Name")
	h.Set("Access-Control-Expose-Headers", "WWW-Authenticate, Mcp-Session-Id, MCP-Protocol-Version")
	h.Set("Access-Control-Max-Age", "600")
}

// cors adds CORS headers for allowed origins to the OAuth endpoints that
// browser-based clients call (/token, /register, /revoke). A nil h answers
// only the preflight.
func (s *Server) cors(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if origin := r.Header.Get("Origin"); origin != "" && s.originAllowed(origin) {
			setCORS(w.Header(), origin)
		}
		if h == nil || r.Method == http.MethodOptions {
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.ServeHTTP(w, r)
	})
}
