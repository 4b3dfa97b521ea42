package mcpauth

import (
	"net/http/httptest"
	"net/netip"
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
		if got := s.clientIP(r); got != tc.want {
			t.Errorf("clientIP(%s, XFF %q) = %s, want %s", tc.remote, tc.xff, got, tc.want)
		}
	}
}
