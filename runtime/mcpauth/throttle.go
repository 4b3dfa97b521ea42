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
	"container/list"
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// limit is one throttling rule: at most max events per key in a fixed
// window that starts with the key's first event.
type limit struct {
	name   string // stable, part of the stored key
	max    int
	window time.Duration
}

// The rules. The README's security section lists them; keep it in step.
var (
	// Failed sign-ins. A password guess counts against the (username,
	// address) pair, the address, and, with a much higher ceiling, the
	// username across all addresses: one address cannot lock the real user
	// out from elsewhere, and spraying from many addresses stays bounded.
	loginUserAddrLimit = limit{"login-user-addr", 5, 15 * time.Minute}
	loginAddrLimit     = limit{"login-addr", 20, 15 * time.Minute}
	loginUserLimit     = limit{"login-user", 100, 15 * time.Minute}
	// Registrations per address.
	registerAddrLimit = limit{"register-addr", 60, time.Hour}
	// Failed token and revocation requests (guessing codes, refresh tokens
	// or client secrets) per address, and failed client authentications per
	// (client, address).
	guessAddrLimit       = limit{"guess-addr", 300, 10 * time.Minute}
	guessClientAddrLimit = limit{"guess-client-addr", 20, 10 * time.Minute}
)

// maxLimiterKeys is the number of keys a limiter keeps before it forgets the
// least recently used ones. A key that is locked (at its limit, within its
// window) is never forgotten: a lockout survives any flood of new keys.
// Locked keys may therefore exceed the cap, but each one cost an attacker
// max counted events, themselves throttled per address, and each ends with
// its window.
const maxLimiterKeys = 100_000

// limiter counts events per key in fixed windows: once a key has max events
// in its window it is blocked until the window ends.
type limiter struct {
	max    int
	window time.Duration
	cap    int

	mu  sync.Mutex
	m   map[string]*list.Element // of *window
	lru list.List                // front: most recently used
}

type window struct {
	key   string
	count int
	reset time.Time
}

func newLimiter(max int, w time.Duration) *limiter {
	return &limiter{max: max, window: w, cap: maxLimiterKeys, m: make(map[string]*list.Element)}
}

// locked reports whether w blocks at now.
func (l *limiter) locked(w *window, now time.Time) bool {
	return w.count >= l.max && now.Before(w.reset)
}

// blocked reports whether key is blocked at now, and for how long.
func (l *limiter) blocked(key string, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.m[key]
	if !ok {
		return 0, false
	}
	w := e.Value.(*window)
	if !l.locked(w, now) {
		return 0, false
	}
	return w.reset.Sub(now), true
}

// add counts one event for key.
func (l *limiter) add(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.current(key, now).count++
}

// current returns key's window at now, starting a new one if it has none or
// its window has ended, and marks it most recently used. l.mu must be held.
func (l *limiter) current(key string, now time.Time) *window {
	if e, ok := l.m[key]; ok {
		l.lru.MoveToFront(e)
		w := e.Value.(*window)
		if !now.Before(w.reset) {
			w.count, w.reset = 0, now.Add(l.window)
		}
		return w
	}
	if len(l.m) >= l.cap {
		l.evict(now)
	}
	w := &window{key: key, reset: now.Add(l.window)}
	l.m[key] = l.lru.PushFront(w)
	return w
}

// evict forgets the least recently used key that is not locked. Locked keys
// met on the way are moved to the front, so the next eviction does not
// walk over them again. l.mu must be held.
func (l *limiter) evict(now time.Time) {
	for range l.lru.Len() {
		e := l.lru.Back()
		w := e.Value.(*window)
		if !l.locked(w, now) {
			l.lru.Remove(e)
			delete(l.m, w.key)
			return
		}
		l.lru.MoveToFront(e)
	}
}

// allow counts one event and reports whether it was within the limit. The
// check and the count are one step, so concurrent requests cannot overshoot.
func (l *limiter) allow(key string, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.current(key, now)
	if w.count >= l.max {
		return w.reset.Sub(now), false
	}
	w.count++
	return 0, true
}

// undo takes back one event counted by allow (the attempt succeeded).
func (l *limiter) undo(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.m[key]; ok {
		if w := e.Value.(*window); w.count > 0 {
			w.count--
		}
	}
}

// reset forgets key (after a successful login).
func (l *limiter) reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.m[key]; ok {
		l.lru.Remove(e)
		delete(l.m, key)
	}
}

// len returns the number of keys kept.
func (l *limiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

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

// counters is where the throttling counters live.
type counters interface {
	// allow counts one event for key under l and reports whether it was
	// within the limit, or how long until the key's window ends.
	allow(ctx context.Context, l limit, key string, now time.Time) (retry time.Duration, ok bool, err error)
	// add counts one event without checking.
	add(ctx context.Context, l limit, key string, now time.Time) error
	// blocked reports whether key is at its limit, and for how long.
	blocked(ctx context.Context, l limit, key string, now time.Time) (retry time.Duration, blocked bool, err error)
	// undo takes back one event counted by allow.
	undo(ctx context.Context, l limit, key string, now time.Time) error
	// reset forgets key.
	reset(ctx context.Context, l limit, key string) error
}

// memCounters keeps the counters in this process.
type memCounters struct {
	mu sync.Mutex
	m  map[string]*limiter // by limit name
}

var _ counters = (*memCounters)(nil)

func newMemCounters() *memCounters { return &memCounters{m: make(map[string]*limiter)} }

func (c *memCounters) limiter(l limit) *limiter {
	c.mu.Lock()
	defer c.mu.Unlock()
	lim, ok := c.m[l.name]
	if !ok {
		lim = newLimiter(l.max, l.window)
		c.m[l.name] = lim
	}
	return lim
}

func (c *memCounters) allow(_ context.Context, l limit, key string, now time.Time) (time.Duration, bool, error) {
	d, ok := c.limiter(l).allow(key, now)
	return d, ok, nil
}

func (c *memCounters) add(_ context.Context, l limit, key string, now time.Time) error {
	c.limiter(l).add(key, now)
	return nil
}

func (c *memCounters) blocked(_ context.Context, l limit, key string, now time.Time) (time.Duration, bool, error) {
	d, b := c.limiter(l).blocked(key, now)
	return d, b, nil
}

func (c *memCounters) undo(_ context.Context, l limit, key string, _ time.Time) error {
	c.limiter(l).undo(key)
	return nil
}

func (c *memCounters) reset(_ context.Context, l limit, key string) error {
	c.limiter(l).reset(key)
	return nil
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
