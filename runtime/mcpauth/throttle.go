package mcpauth

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// limiter counts events per key in fixed windows: once a key has max events
// in its window it is blocked until the window ends. It throttles failed
// logins (per username and per client IP) and registrations (per IP).
type limiter struct {
	max    int
	window time.Duration

	mu sync.Mutex
	m  map[string]*window
}

type window struct {
	count int
	reset time.Time
}

// maxLimiterKeys bounds a limiter's memory; past it, expired windows are
// dropped, and if that is not enough the oldest state is forgotten.
const maxLimiterKeys = 100_000

func newLimiter(max int, w time.Duration) *limiter {
	return &limiter{max: max, window: w, m: make(map[string]*window)}
}

// blocked reports whether key is blocked at now, and for how long.
func (l *limiter) blocked(key string, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w, ok := l.m[key]
	if !ok || !now.Before(w.reset) || w.count < l.max {
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
// its window has ended. l.mu must be held.
func (l *limiter) current(key string, now time.Time) *window {
	w, ok := l.m[key]
	if !ok || !now.Before(w.reset) {
		if !ok && len(l.m) >= maxLimiterKeys {
			l.sweep(now)
		}
		w = &window{reset: now.Add(l.window)}
		l.m[key] = w
	}
	return w
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
	if w, ok := l.m[key]; ok && w.count > 0 {
		w.count--
	}
}

// reset forgets key (after a successful login).
func (l *limiter) reset(key string) {
	l.mu.Lock()
	delete(l.m, key)
	l.mu.Unlock()
}

func (l *limiter) sweep(now time.Time) {
	for k, w := range l.m {
		if !now.Before(w.reset) {
			delete(l.m, k)
		}
	}
	if len(l.m) >= maxLimiterKeys {
		clear(l.m)
	}
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

// clientIP returns the address throttling is keyed on: the connection's
// peer, or, when the peer is a configured trusted proxy, the right-most
// X-Forwarded-For entry that is not itself a trusted proxy. Headers from
// anyone else are ignored, since any client can send them.
func (s *Server) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	peer = peer.Unmap()
	if !s.trusted(peer) {
		return peer.String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		a = a.Unmap()
		if !s.trusted(a) {
			return a.String()
		}
		peer = a
	}
	return peer.String()
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
