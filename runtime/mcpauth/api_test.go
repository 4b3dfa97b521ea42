package mcpauth

import (
	"testing"
	"time"
)

// TestBaseURL: the issuer and resource come from the configured base URL
// only, https except on loopback, without a path.
func TestBaseURL(t *testing.T) {
	for _, tc := range []struct {
		base, addr string
		issuer     string // "" means New must refuse the configuration
	}{
		{"https://mcp.example.com", "", "https://mcp.example.com"},
		{"https://mcp.example.com/", "", "https://mcp.example.com"},
		{"HTTPS://MCP.Example.COM", "", "https://mcp.example.com"},
		{"https://mcp.example.com:8443", "", "https://mcp.example.com:8443"},
		{"http://127.0.0.1:8080", "", "http://127.0.0.1:8080"},
		{"http://localhost:8080", "", "http://localhost:8080"},
		{"http://[::1]:8080", "", "http://[::1]:8080"},
		{"", "", "http://127.0.0.1:8080"},               // default Addr is loopback
		{"", "127.0.0.1:9999", "http://127.0.0.1:9999"}, // derived from Addr
		{"", "0.0.0.0:9999", "http://127.0.0.1:9999"},   // never a wildcard issuer
		{"http://mcp.example.com", "", ""},              // plain http off loopback
		{"http://0.0.0.0:8080", "", ""},                 // not a loopback host
		{"https://mcp.example.com/base", "", ""},        // a path
		{"https://mcp.example.com?x=1", "", ""},         // a query
		{"https://user@mcp.example.com", "", ""},        // userinfo
		{"ftp://mcp.example.com", "", ""},               // not http(s)
		{"mcp.example.com", "", ""},                     // not absolute
	} {
		s, err := newServer(Config{BaseURL: tc.base, Addr: tc.addr})
		if tc.issuer == "" {
			if err == nil {
				t.Errorf("BaseURL %q accepted (issuer %s), want an error", tc.base, s.issuer)
			}
			continue
		}
		if err != nil {
			t.Errorf("BaseURL %q, Addr %q: %v", tc.base, tc.addr, err)
			continue
		}
		if s.issuer != tc.issuer || s.resource != tc.issuer+"/mcp" || s.prmURL != tc.issuer+"/.well-known/oauth-protected-resource/mcp" {
			t.Errorf("BaseURL %q, Addr %q: issuer %s, resource %s, PRM %s", tc.base, tc.addr, s.issuer, s.resource, s.prmURL)
		}
	}
}

func TestConfigLimits(t *testing.T) {
	if _, err := newServer(Config{CodeTTL: 11 * time.Minute}); err == nil {
		t.Error("a code lifetime over 10 minutes was accepted")
	}
}
