package mcpauth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpgen/create-mcp-server/runtime/authstore"
)

// fakeUsers is a users file in memory: username → stamp.
type fakeUsers map[string]string

func (f fakeUsers) Authenticate(_ context.Context, u, p string) (bool, error) {
	_, ok := f[u]
	return ok && p == "pw", nil
}

func (f fakeUsers) Stamp(u string) (string, bool, error) {
	s, ok := f[u]
	return s, ok, nil
}

func (f fakeUsers) Stamps() (map[string]string, uint64) { return f, 1 }

// newVerifyServer is a Server with a real store and fake users, without
// HTTP, for table tests of the bearer check.
func newVerifyServer(t testing.TB, now time.Time) *Server {
	t.Helper()
	s, err := newServer(Config{BaseURL: "https://mcp.example.com", Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	st, err := authstore.Open(t.Context(), filepath.Join(t.TempDir(), "auth.db"), authstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s.setStore(st)
	s.users = fakeUsers{"alice": "stamp-1", "bob": "stamp-2"}
	if err := s.startReplica(t.Context()); err != nil { // the token cache needs its lease
		t.Fatal(err)
	}
	t.Cleanup(func() { s.coh.rep.Close() })
	return s
}

// issueAccess stores a grant and an access token and returns the token.
func issueAccess(t testing.TB, s *Server, user, stamp, scope, resource string, expires time.Time) (token, grantID string) {
	t.Helper()
	ctx := t.Context()
	now := s.now()
	cid := "client-" + newSecret()[:8]
	if err := s.store.CreateClient(ctx, &authstore.Client{ID: cid, AuthMethod: "none", RedirectURIs: []string{"https://x/cb"}}); err != nil {
		t.Fatal(err)
	}
	code := newSecret()
	grantID = newSecret()
	if err := s.store.CreateCode(ctx, &authstore.Code{Hash: hashSecret(code), GrantID: grantID, ClientID: cid, User: user,
		RedirectURI: "https://x/cb", CodeChallenge: "x", Scope: scope, Resource: resource, Stamp: stamp,
		ExpiresAt: now.Add(time.Minute)}, now); err != nil {
		t.Fatal(err)
	}
	token = newSecret()
	g := &authstore.Grant{ID: grantID, ClientID: cid, User: user, Scope: scope, Resource: resource, Stamp: stamp, ExpiresAt: now.Add(time.Hour)}
	ok, err := s.store.RedeemCode(ctx, hashSecret(code), g, &authstore.Tokens{AccessHash: hashSecret(token), AccessScope: scope, AccessExpires: expires}, now)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	return token, grantID
}

func TestVerify(t *testing.T) {
	now := time.Now()
	s := newVerifyServer(t, now)
	ctx := t.Context()
	res := s.resource
	valid, _ := issueAccess(t, s, "alice", "stamp-1", "mcp", res, now.Add(time.Hour))
	slash, _ := issueAccess(t, s, "alice", "stamp-1", "mcp", res+"/", now.Add(time.Hour))
	expired, _ := issueAccess(t, s, "alice", "stamp-1", "mcp", res, now.Add(-time.Second))
	otherAud, _ := issueAccess(t, s, "alice", "stamp-1", "mcp", "https://other.example.com/mcp", now.Add(time.Hour))
	oldPassword, _ := issueAccess(t, s, "alice", "stamp-0", "mcp", res, now.Add(time.Hour))
	removedUser, _ := issueAccess(t, s, "carol", "stamp-3", "mcp", res, now.Add(time.Hour))
	noScope, _ := issueAccess(t, s, "bob", "stamp-2", "other", res, now.Add(time.Hour))
	revoked, grantID := issueAccess(t, s, "bob", "stamp-2", "mcp", res, now.Add(time.Hour))
	if err := s.revokeGrant(ctx, grantID, now); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name    string
		token   string
		wantErr error
		user    string
	}{
		{"valid", valid, nil, "alice"},
		{"audience with trailing slash", slash, nil, "alice"},
		{"unknown", newSecret(), errInvalidToken, ""},
		{"wrong length", valid + "x", errInvalidToken, ""},
		{"expired", expired, errInvalidToken, ""},
		{"other audience", otherAud, errInvalidToken, ""},
		{"password changed", oldPassword, errInvalidToken, ""},
		{"user removed", removedUser, errInvalidToken, ""},
		{"grant revoked", revoked, errInvalidToken, ""},
		{"without the mcp scope", noScope, errInsufficientScope, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := s.verify(ctx, tc.token)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("verify: %v, want %v", err, tc.wantErr)
			}
			if err == nil && (id.User != tc.user || !id.HasScope("mcp") || id.ClientID == "") {
				t.Fatalf("identity %+v, want user %s with scope mcp", id, tc.user)
			}
		})
	}
}

func TestBearerToken(t *testing.T) {
	for _, tc := range []struct {
		header string
		token  string
		ok     bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer abc", "abc", true},
		{"BEARER  abc ", "abc", true},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Basic abc", "", false},
		{"", "", false},
		{"Bearerabc", "", false},
	} {
		token, ok := bearerToken(tc.header)
		if token != tc.token || ok != tc.ok {
			t.Errorf("bearerToken(%q) = %q, %v; want %q, %v", tc.header, token, ok, tc.token, tc.ok)
		}
	}
}

func TestHostAndOriginChecks(t *testing.T) {
	s, err := newServer(Config{BaseURL: "https://mcp.example.com", AllowedOrigins: []string{"http://localhost:6274/"}})
	if err != nil {
		t.Fatal(err)
	}
	loopback := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}
	public := &net.TCPAddr{IP: net.IPv4(203, 0, 113, 7), Port: 443}
	for _, tc := range []struct {
		local net.Addr
		host  string
		want  bool
	}{
		{loopback, "127.0.0.1:8080", true},
		{loopback, "localhost:8080", true},
		{loopback, "[::1]:8080", true},
		{loopback, "mcp.example.com", true}, // same-host reverse proxy
		{loopback, "MCP.example.com", true},
		{loopback, "evil.example", false}, // DNS rebinding
		{loopback, "evil.example:8080", false},
		{public, "evil.example", true}, // not a loopback listener
		{&net.TCPAddr{IP: net.IPv6loopback, Port: 8080}, "evil.example", false},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:127.0.0.1"), Port: 8080}, "evil.example", false},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:127.0.0.1"), Port: 8080}, "localhost", true},
		{&net.UnixAddr{Name: "/run/mcp.sock", Net: "unix"}, "evil.example", true}, // not an IP listener
	} {
		r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
		r.Host = tc.host
		r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, tc.local))
		if got := s.hostAllowed(r); got != tc.want {
			t.Errorf("hostAllowed(local %v, Host %q) = %v, want %v", tc.local, tc.host, got, tc.want)
		}
	}
	for _, tc := range []struct {
		origin string
		want   bool
	}{
		{"https://mcp.example.com", true},
		{"HTTPS://MCP.EXAMPLE.COM", true},
		{"http://localhost:6274", true},
		{"http://localhost:6275", false},
		{"https://mcp.example.com.evil.example", false},
		{"null", false},
		{"https://evil.example", false},
	} {
		if got := s.originAllowed(tc.origin); got != tc.want {
			t.Errorf("originAllowed(%q) = %v, want %v", tc.origin, got, tc.want)
		}
	}
}

func TestResourceMatches(t *testing.T) {
	const want = "https://mcp.example.com/mcp"
	for _, tc := range []struct {
		got string
		ok  bool
	}{
		{"https://mcp.example.com/mcp", true},
		{"https://mcp.example.com/mcp/", true},
		{"HTTPS://MCP.Example.com/mcp", true},
		{"https://mcp.example.com/MCP", false},
		{"https://mcp.example.com/mcp//", false},
		{"https://mcp.example.com", false},
		{"https://mcp.example.com/", false},
		{"https://mcp.example.com/mcp?x=1", false},
		{"https://mcp.example.com/mcp#f", false},
		{"http://mcp.example.com/mcp", false},
		{"https://mcp.example.com.evil/mcp", false},
		{"mcp", false},
		{"", false},
	} {
		if got := resourceMatches(tc.got, want); got != tc.ok {
			t.Errorf("resourceMatches(%q) = %v, want %v", tc.got, got, tc.ok)
		}
	}
}

func TestRedirectURIs(t *testing.T) {
	for _, tc := range []struct {
		uri string
		ok  bool
	}{
		{"https://client.example/cb", true},
		{"https://client.example/cb?x=1", true},
		{"http://127.0.0.1/cb", true},
		{"http://127.0.0.1:8080/cb", true},
		{"http://localhost:33418/", true},
		{"http://[::1]:9000/cb", true},
		{"cursor://anysphere.cursor-mcp/oauth/callback", true},
		{"com.example.app:/oauth2redirect", true},
		{"http://client.example/cb", false},
		{"http://127.0.0.1.evil.example/cb", false},
		{"https://client.example/cb#frag", false},
		{"https://user@client.example/cb", false},
		{"http://127.0.0.1:80@evil.example/cb", false},
		{"/cb", false},
		{"https:///cb", false},
		{"javascript:alert(1)", false},
		{"JaVaScRiPt:alert(1)", false},
		{" javascript:alert(1)", false},
		{"java\tscript:alert(1)", false},
		{"\x01javascript:alert(1)", false},
		{"data:text/html,hi", false},
		{"vbscript:x", false},
		{"file:///etc/passwd", false},
		{"FILE:///etc/passwd", false},
		{"blob:https://a/b", false},
		{"https://client.example/a/../cb", false},
		{`https://client.example\@evil.example/cb`, false},
		{"https://clïent.example/cb", false},
		{"http://127.0.0.1:99999/cb", false},
	} {
		if err := validRedirectURI(tc.uri); (err == nil) != tc.ok {
			t.Errorf("validRedirectURI(%q) = %v, want ok=%v", tc.uri, err, tc.ok)
		}
	}
}

func TestRedirectMatches(t *testing.T) {
	for _, tc := range []struct {
		registered, requested string
		ok                    bool
	}{
		{"https://client.example/cb", "https://client.example/cb", true},
		{"https://client.example/cb", "https://client.example/CB", false},
		{"https://client.example/cb", "https://client.example/cb/", false},
		{"https://client.example/cb", "https://client.example:443/cb", false},
		{"https://client.example/cb", "https://client.example/cb?x=1", false},
		{"https://client.example:8443/cb", "https://client.example:9443/cb", false}, // no relaxation off loopback
		{"http://127.0.0.1/cb", "http://127.0.0.1:51234/cb", true},
		{"http://127.0.0.1:33418/cb", "http://127.0.0.1:51234/cb", true},
		{"http://localhost/cb", "http://localhost:51234/cb", true},
		{"http://[::1]/cb", "http://[::1]:51234/cb", true},
		{"http://localhost/cb", "http://127.0.0.1:51234/cb", false},
		{"http://127.0.0.1/cb", "http://localhost:51234/cb", false},
		{"http://127.0.0.1/cb", "http://127.0.0.1:51234/cb2", false},
		{"http://127.0.0.1/cb", "http://127.0.0.1:51234/cb?x=1", false},
		{"http://127.0.0.1/cb?a=1", "http://127.0.0.1:5/cb?a=1", true},
		{"http://127.0.0.1/cb", "https://127.0.0.1:51234/cb", false},
		{"http://127.0.0.1/cb", "http://127.0.0.1:51234@evil.example/cb", false},
		{"http://127.0.0.1/cb", "http://127.0.0.1:x/cb", false},
		{"cursor://anysphere.cursor-mcp/oauth/callback", "cursor://anysphere.cursor-mcp/oauth/callback", true},
	} {
		if got := redirectMatches(tc.registered, tc.requested); got != tc.ok {
			t.Errorf("redirectMatches(%q, %q) = %v, want %v", tc.registered, tc.requested, got, tc.ok)
		}
	}
}

// TestVerifyCacheNeverOutlivesRevocation: a token validated (and cached)
// just before it is revoked is refused right after, however it is revoked.
func TestVerifyCacheNeverOutlivesRevocation(t *testing.T) {
	now := time.Now()
	s := newVerifyServer(t, now)
	ctx := t.Context()
	for _, tc := range []struct {
		name   string
		revoke func(token, grantID string) error
	}{
		{"grant revoked", func(_, g string) error { return s.revokeGrant(ctx, g, now) }},
		{"access token revoked", func(tok, _ string) error {
			a, err := s.store.LookupAccess(ctx, hashSecret(tok), now)
			if err != nil {
				return err
			}
			r := httptest.NewRequest(http.MethodPost, "/revoke", strings.NewReader("token="+tok+"&client_id="+a.ClientID))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			w := httptest.NewRecorder()
			s.handleRevoke(w, r)
			if w.Code != 200 {
				return fmt.Errorf("revoke: %d %s", w.Code, w.Body)
			}
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, grantID := issueAccess(t, s, "alice", "stamp-1", "mcp", s.resource, now.Add(time.Hour))
			for range 2 {
				if _, err := s.verify(ctx, tok); err != nil {
					t.Fatalf("fresh token: %v", err)
				}
			}
			if err := tc.revoke(tok, grantID); err != nil {
				t.Fatal(err)
			}
			if _, err := s.verify(ctx, tok); !errors.Is(err, errInvalidToken) {
				t.Fatalf("revoked token: %v, want errInvalidToken", err)
			}
		})
	}
	// A password change is seen at once too (the stamp is never cached).
	tok, _ := issueAccess(t, s, "bob", "stamp-2", "mcp", s.resource, now.Add(time.Hour))
	if _, err := s.verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	s.users.(fakeUsers)["bob"] = "stamp-2b"
	if _, err := s.verify(ctx, tok); !errors.Is(err, errInvalidToken) {
		t.Fatalf("token after a password change: %v, want errInvalidToken", err)
	}
}

// TestBearerCheckDoesNotAllocate: the Host check and the bearer check of a
// cached token, which every MCP request pays, allocate nothing (no timing:
// allocations are counted).
func TestBearerCheckDoesNotAllocate(t *testing.T) {
	now := time.Now()
	s := newVerifyServer(t, now)
	tok, _ := issueAccess(t, s, "alice", "stamp-1", scopeMCP, s.resource, now.Add(time.Hour))
	r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	if _, err := s.authenticate(r); err != nil {
		t.Fatalf("the token is refused: %v", err)
	}
	for _, host := range []string{s.baseHost, "localhost:8080"} {
		r.Host = host
		r := r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}))
		if n := testing.AllocsPerRun(100, func() { s.hostAllowed(r) }); n != 0 {
			t.Errorf("hostAllowed (Host %s) allocates %v times per request", host, n)
		}
	}
	if n := testing.AllocsPerRun(100, func() { s.authenticate(r) }); n != 0 {
		t.Errorf("the bearer check of a cached token allocates %v times per request", n)
	}
}
