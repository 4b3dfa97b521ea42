package mcpauth

import (
	"net/http/httptest"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	now := time.Now()
	l := newLimiter(3, time.Minute)
	for i := range 3 {
		if _, ok := l.allow("k", now); !ok {
			t.Fatalf("attempt %d refused, want 3 allowed", i+1)
		}
	}
	d, ok := l.allow("k", now.Add(10*time.Second))
	if ok || d != 50*time.Second {
		t.Fatalf("4th attempt: ok=%v retry after %v, want refused for 50s", ok, d)
	}
	if _, ok := l.allow("other", now); !ok {
		t.Fatal("another key is affected")
	}
	l.undo("k")
	if _, ok := l.allow("k", now); !ok {
		t.Fatal("undo did not give the attempt back")
	}
	if _, ok := l.allow("k", now.Add(time.Minute)); !ok {
		t.Fatal("still refused after the window")
	}
	l.reset("k")
	if _, blocked := l.blocked("k", now); blocked {
		t.Fatal("blocked after reset")
	}
	if got := retryAfter(1500 * time.Millisecond); got != "2" {
		t.Errorf("retryAfter(1.5s) = %s, want 2", got)
	}
}

// TestLimiterConcurrent: parallel attempts never get past the limit.
func TestLimiterConcurrent(t *testing.T) {
	l := newLimiter(5, time.Minute)
	now := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for range 50 {
		wg.Go(func() {
			if _, ok := l.allow("alice", now); ok {
				mu.Lock()
				allowed++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if allowed != 5 {
		t.Fatalf("%d of 50 parallel attempts allowed, want 5", allowed)
	}
}

func TestClientIP(t *testing.T) {
	s, err := newServer(Config{BaseURL: "https://mcp.example.com",
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		remote, xff, want string
	}{
		{"203.0.113.5:1234", "", "203.0.113.5"},
		{"203.0.113.5:1234", "198.51.100.9", "203.0.113.5"}, // untrusted peer: header ignored
		{"10.0.0.2:1234", "198.51.100.9", "198.51.100.9"},
		{"10.0.0.2:1234", "1.2.3.4, 198.51.100.9", "198.51.100.9"}, // right-most untrusted
		{"10.0.0.2:1234", "198.51.100.9, 10.0.0.7", "198.51.100.9"},
		{"10.0.0.2:1234", "", "10.0.0.2"},
		{"10.0.0.2:1234", "garbage", "10.0.0.2"},
		{"[::ffff:203.0.113.5]:1234", "", "203.0.113.5"},
	} {
		r := httptest.NewRequest("POST", "/authorize", nil)
		r.RemoteAddr = tc.remote
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		if got := s.clientIP(r).String(); got != tc.want {
			t.Errorf("clientIP(%s, XFF %q) = %s, want %s", tc.remote, tc.xff, got, tc.want)
		}
	}
}

func TestAddrKey(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"203.0.113.5", "203.0.113.5"},
		{"::ffff:203.0.113.5", "203.0.113.5"},
		{"2001:db8:1:2::1", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "2001:db8:1:3::/64"},
		{"::1", "::/64"},
	} {
		if got := addrKey(netip.MustParseAddr(tc.addr).Unmap()); got != tc.want {
			t.Errorf("addrKey(%s) = %s, want %s", tc.addr, got, tc.want)
		}
	}
	if got := addrKey(netip.Addr{}); got != "unknown" {
		t.Errorf("addrKey(invalid) = %s", got)
	}
}

// TestLimiterEvictsLRUKeepsLockouts: at its key cap a limiter forgets the
// least recently used keys, never a locked one, however many new keys
// arrive (issue: the tables used to be cleared wholesale, lockouts
// included).
func TestLimiterEvictsLRUKeepsLockouts(t *testing.T) {
	now := time.Now()
	l := newLimiter(3, time.Minute)
	l.cap = 10
	for range 3 {
		l.allow("victim-lock", now)
	}
	if _, blocked := l.blocked("victim-lock", now); !blocked {
		t.Fatal("not locked after 3 events")
	}
	l.allow("recent", now)
	for i := range 1000 {
		l.allow("flood-"+strconv.Itoa(i), now)
		if i%5 == 0 {
			l.allow("recent", now) // kept in use
		}
	}
	if _, blocked := l.blocked("victim-lock", now); !blocked {
		t.Error("a lockout was forgotten under a flood of new keys")
	}
	if n := l.len(); n > l.cap {
		t.Errorf("%d keys kept, cap %d", n, l.cap)
	}
	l.mu.Lock()
	_, ok := l.m["recent"]
	_, old := l.m["flood-0"]
	l.mu.Unlock()
	if !ok {
		t.Error("a recently used key was evicted")
	}
	if old {
		t.Error("the least recently used key was kept")
	}
	// Once its window has ended a lockout is an ordinary key again.
	for i := range 20 {
		l.allow("later-"+strconv.Itoa(i), now.Add(2*time.Minute))
	}
	if _, blocked := l.blocked("victim-lock", now.Add(2*time.Minute)); blocked {
		t.Error("still locked after its window")
	}
}
