package mcpauth_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/mcpgen/create-mcp-server/runtime/mcpauth"
)

// TestHealthEndpoints checks the endpoints that answer without a token: the
// page at the base URL and the probes.
func TestHealthEndpoints(t *testing.T) {
	e := newEnv(t, func(c *mcpauth.Config) { c.ResourceName = "Weather <tools>" })
	tests := []struct {
		path       string
		status     int
		typ        string
		wantBody   []string
		wantHeader string // a header every answer of this path carries
	}{
		{"/", http.StatusOK, "text/html", []string{"Weather &lt;tools&gt;", e.mcpURL}, "Content-Security-Policy"},
		{"/healthz", http.StatusOK, "text/plain", []string{"ok"}, "Cache-Control"},
		{"/readyz", http.StatusOK, "text/plain", []string{"ready"}, "Cache-Control"},
		{"/nothing-here", http.StatusNotFound, "", nil, ""},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(http.MethodGet, e.base+tt.path, nil)
		resp, body := e.do(req)
		if resp.StatusCode != tt.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), tt.typ) {
			t.Errorf("GET %s = %d %s, want %d %s", tt.path, resp.StatusCode, resp.Header.Get("Content-Type"), tt.status, tt.typ)
		}
		for _, w := range tt.wantBody {
			if !strings.Contains(string(body), w) {
				t.Errorf("GET %s: body does not contain %q:\n%s", tt.path, w, body)
			}
		}
		if tt.wantHeader != "" && resp.Header.Get(tt.wantHeader) == "" {
			t.Errorf("GET %s: no %s header", tt.path, tt.wantHeader)
		}
		if resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("GET %s: has CORS headers", tt.path)
		}
	}

	// A database that does not answer makes the server not ready (and says
	// nothing more to the caller), but still alive.
	e.cur.Load().Close()
	req, _ := http.NewRequest(http.MethodGet, e.base+"/readyz", nil)
	if resp, body := e.do(req); resp.StatusCode != http.StatusServiceUnavailable || string(body) != "not ready\n" {
		t.Errorf("GET /readyz with the database closed = %d %q, want 503 \"not ready\"", resp.StatusCode, body)
	}
	if !strings.Contains(e.logs.String(), "msg=\"not ready\"") {
		t.Errorf("the failed readiness check is not logged:\n%s", e.logs)
	}
	req, _ = http.NewRequest(http.MethodGet, e.base+"/healthz", nil)
	if resp, _ := e.do(req); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz with the database closed = %d, want 200", resp.StatusCode)
	}
}

// TestRoutes checks Config.Routes and Config.Middleware.
func TestRoutes(t *testing.T) {
	e := newEnv(t, func(c *mcpauth.Config) {
		c.Routes = []mcpauth.Route{
			{Pattern: "GET /public", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("public")) })},
			{Pattern: "GET /private", Bearer: true, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				id, _ := mcpauth.IdentityFromContext(r.Context())
				w.Write([]byte(id.User))
			})},
			{Pattern: "/docs/{page}", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("page " + r.PathValue("page"))) })},
		}
		c.Middleware = []func(http.Handler) http.Handler{
			func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Add("X-Order", "outer")
					next.ServeHTTP(w, r)
				})
			},
			func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Add("X-Order", "inner")
					next.ServeHTTP(w, r)
				})
			},
		}
	})
	get := func(path, token string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodGet, e.base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, body := e.do(req)
		return resp, string(body)
	}
	if resp, body := get("/public", ""); resp.StatusCode != http.StatusOK || body != "public" ||
		strings.Join(resp.Header.Values("X-Order"), ",") != "outer,inner" {
		t.Errorf("GET /public = %d %q %q, want 200 public, middleware outer then inner", resp.StatusCode, body, resp.Header.Values("X-Order"))
	}
	if resp, body := get("/docs/about", ""); resp.StatusCode != http.StatusOK || body != "page about" {
		t.Errorf("GET /docs/about = %d %q, want 200 from the wildcard route", resp.StatusCode, body)
	}
	// The MCP endpoint bypasses the mux, not the middleware.
	if resp, _ := get("/mcp", ""); resp.StatusCode != http.StatusUnauthorized ||
		strings.Join(resp.Header.Values("X-Order"), ",") != "outer,inner" {
		t.Errorf("GET /mcp without a token = %d %q, want 401 through the middleware", resp.StatusCode, resp.Header.Values("X-Order"))
	}
	if resp, _ := get("/private", ""); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "resource_metadata=") {
		t.Errorf("GET /private without a token = %d, want 401 with a challenge", resp.StatusCode)
	}
	tok := e.tokens(e.register(nil))
	if resp, body := get("/private", tok.AccessToken); resp.StatusCode != http.StatusOK || body != "alice" {
		t.Errorf("GET /private with a token = %d %q, want 200 alice", resp.StatusCode, body)
	}
	if resp, _ := get("/private", "x"+tok.AccessToken[1:]); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /private with a wrong token = %d, want 401", resp.StatusCode)
	}
}

// TestRouteErrors checks that New refuses routes it cannot serve.
func TestRouteErrors(t *testing.T) {
	h := http.NotFoundHandler()
	for _, tt := range []struct {
		route mcpauth.Route
		want  string
	}{
		{mcpauth.Route{Pattern: "POST /token", Handler: h}, `route "POST /token"`},
		{mcpauth.Route{Pattern: "/mcp", Handler: h}, `route "/mcp"`},
		// More specific than a built-in endpoint: the mux would prefer them.
		{mcpauth.Route{Pattern: "POST /mcp", Handler: h}, `route "POST /mcp" overlaps the built-in endpoint POST /mcp`},
		{mcpauth.Route{Pattern: "PUT /authorize", Handler: h}, `route "PUT /authorize" overlaps`},
		{mcpauth.Route{Pattern: "DELETE /{$}", Handler: h}, `route "DELETE /{$}" overlaps the built-in endpoint DELETE /`},
		// Takes GET /register, which the server answers 405.
		{mcpauth.Route{Pattern: "/{page}", Handler: h}, `route "/{page}" overlaps the built-in endpoint GET /register`},
		{mcpauth.Route{Pattern: "example.com/", Handler: h}, `route "example.com/" names a host`},
		{mcpauth.Route{Pattern: "GET localhost/status", Handler: h}, "names a host"},
		{mcpauth.Route{Pattern: "GET /x"}, "no handler"},
		{mcpauth.Route{Pattern: "BAD PATTERN HERE", Handler: h}, `route "BAD PATTERN HERE"`},
	} {
		cfg := mcpauth.Config{Database: t.TempDir() + "/auth.db", UsersPath: t.TempDir() + "/users.txt", Routes: []mcpauth.Route{tt.route}}
		s, err := mcpauth.New(cfg, newMCPServer())
		if err == nil {
			s.Close()
			t.Errorf("route %q: New succeeded", tt.route.Pattern)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("route %q: %v, want %q", tt.route.Pattern, err, tt.want)
		}
	}
}
