package mcpauth

// Throttling: fixed-window counters per key. Every rule of the server is a
// limit below; keys are built from an address key (addrKey), a username
// and a client id. The counters are consulted before the expensive or
// guessable step (bcrypt, a token lookup), and the check and the count are
// one step, so parallel requests cannot overshoot a limit.
//
// No rule is keyed on something an unauthenticated stranger can name for
// someone else: client ids are public (they travel in authorization URLs,
// and a metadata-document client id is shared by every user of an app), so
// failures count against a client only together with the address they came
// from, and a username's own ceiling is far above what locks one address out.

import (
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/mcpgen/create-mcp-server/runtime/authstore"
)

// The rules, shared by every replica through the store (each event one
// atomic statement; at the store's key cap the least recently seen keys
// that are not locked are evicted, so a lockout survives any flood of new
// keys). The README's security section lists them; keep it in step.
var (
	// Failed sign-ins. A password guess counts against the (username,
	// address) pair, the address, and, with a much higher ceiling, the
	// username across all addresses: one address cannot lock the real user
	// out from elsewhere, and spraying from many addresses stays bounded.
	loginUserAddrLimit = authstore.Limit{Name: "login-user-addr", Max: 5, Window: 15 * time.Minute}
	loginAddrLimit     = authstore.Limit{Name: "login-addr", Max: 20, Window: 15 * time.Minute}
	loginUserLimit     = authstore.Limit{Name: "login-user", Max: 100, Window: 15 * time.Minute}
	// Sign-ins started (GET /authorize) per address.
	signInAddrLimit = authstore.Limit{Name: "signin-addr", Max: 300, Window: 10 * time.Minute}
	// Registrations per address.
	registerAddrLimit = authstore.Limit{Name: "register-addr", Max: 60, Window: time.Hour}
	// Failed token and revocation requests (guessing codes, refresh tokens
	// or client secrets) per address, and failed client authentications per
	// (client, address).
	guessAddrLimit       = authstore.Limit{Name: "guess-addr", Max: 300, Window: 10 * time.Minute}
	guessClientAddrLimit = authstore.Limit{Name: "guess-client-addr", Max: 20, Window: 10 * time.Minute}
)

// retryAfter formats d as whole seconds for the Retry-After header.
func retryAfter(d time.Duration) string {
	secs := int((d + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	return itoa(secs)
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// clientIP returns the client's address: the connection's peer, or, when
// the peer is a configured trusted proxy, the right-most X-Forwarded-For
// entry that is not itself a trusted proxy. Headers from anyone else are
// ignored, since any client can send them (ServeHTTP logs the first such
// request once).
func (s *Server) clientIP(r *http.Request) netip.Addr {
	peer := peerAddr(r.RemoteAddr)
	if !peer.IsValid() || !s.trusted(peer) {
		return peer
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		a = a.Unmap().WithZone("")
		if !s.trusted(a) {
			return a
		}
		peer = a
	}
	return peer
}

// peerAddr parses a connection's remote address ("host:port"); the zero
// Addr if it is not an IP address.
func peerAddr(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap().WithZone("")
}

// addrKey is what every per-address limit is keyed on: an IPv4 address, or
// the /64 prefix of an IPv6 address (one subscriber usually gets a whole
// /64, so its addresses are one client, not 2^64 fresh buckets).
func addrKey(a netip.Addr) string {
	if !a.IsValid() {
		return "unknown"
	}
	if a.Is6() {
		p, _ := a.Prefix(64) // cannot fail for a valid IPv6 address
		return p.String()
	}
	return a.String()
}

// clientKey is addrKey of the request's client address.
func (s *Server) clientKey(r *http.Request) string {
	return addrKey(s.clientIP(r))
}

// checkForwarded logs, once per Server, a request whose X-Forwarded-For
// came from a peer that is not a trusted proxy: behind a reverse proxy
// set up without --trusted-proxies every client would share the proxy's
// address, and its throttling limits, silently.
func (s *Server) checkForwarded(r *http.Request) {
	if len(r.Header.Values("X-Forwarded-For")) == 0 || s.xffWarned.Load() {
		return
	}
	peer := peerAddr(r.RemoteAddr)
	if peer.IsValid() && s.trusted(peer) {
		return
	}
	s.xffWarn.Do(func() {
		s.xffWarned.Store(true)
		s.log.Warn("mcpauth: ignoring X-Forwarded-For from a peer that is not a trusted proxy; "+
			"if this server is behind a reverse proxy, pass its address in --trusted-proxies "+
			"(Config.TrustedProxies), or every client shares the proxy's throttling limits",
			slog.String("peer", peer.String()))
	})
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
