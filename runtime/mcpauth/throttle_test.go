package mcpauth

import (
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"
)

func TestRetryAfter(t *testing.T) {
	for d, want := range map[time.Duration]string{1500 * time.Millisecond: "2", 0: "1", time.Minute: "60"} {
		if got := retryAfter(d); got != want {
			t.Errorf("retryAfter(%v) = %s, want %s", d, got, want)
		}
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
