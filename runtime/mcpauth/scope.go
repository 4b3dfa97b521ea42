package mcpauth

import (
	"slices"
	"strings"
)

// scopeMCP is the one scope: access to the MCP endpoint.
const scopeMCP = "mcp"

// supportedScopes is advertised in both metadata documents.
var supportedScopes = []string{scopeMCP}

// filterScopes keeps the supported scopes of a space-separated list, once
// each, in order. Unknown scopes are dropped, not refused: clients send
// scopes meant for other servers ("openid email profile").
func filterScopes(scope string) string {
	var out []string
	for _, sc := range strings.Fields(scope) {
		if slices.Contains(supportedScopes, sc) && !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return strings.Join(out, " ")
}

// resourceMatches reports whether the resource indicator got names want,
// the canonical MCP URL: equal up to the case of scheme and host, a default
// port and one trailing slash (RFC 8707; clients serialize URLs
// differently).
func resourceMatches(got, want string) bool {
	if got == want {
		return true
	}
	got = strings.TrimSuffix(got, "/")
	if got == want {
		return true
	}
	// Compare scheme://host case-insensitively, the rest exactly.
	gs, gr, ok1 := strings.Cut(got, "://")
	ws, wr, ok2 := strings.Cut(want, "://")
	if !ok1 || !ok2 || !strings.EqualFold(gs, ws) {
		return false
	}
	gh, gp, _ := strings.Cut(gr, "/")
	wh, wp, _ := strings.Cut(wr, "/")
	return hostWithoutDefaultPort(gs, gh) == hostWithoutDefaultPort(ws, wh) && gp == wp && !strings.ContainsAny(got, "#?")
}
