package mcpauth_test

// Hostile traffic: an attacker holding nothing, or only a client ID, tries
// to deny service to others or to grow the server's state without bound.
// Each test reproduces one attack over real HTTP (raw TCP where the attack
// lives below HTTP) and checks the server's answer. The tests are named
// after the attack; serve_test.go has the connection-level ones.

import (
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgen/create-mcp-server/runtime/authstore"
	"github.com/mcpgen/create-mcp-server/runtime/mcpauth"
	"github.com/mcpgen/create-mcp-server/runtime/mcpauthtest"
)

// newProxiedEnv is a server behind a trusted reverse proxy on loopback:
// each request names its client address in X-Forwarded-For, so a test can
// speak from as many addresses as it needs.
func newProxiedEnv(t testing.TB, mutate ...func(*mcpauth.Config)) *env {
	t.Helper()
	return newEnv(t, append([]func(*mcpauth.Config){func(c *mcpauth.Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	}}, mutate...)...)
}

// forwarded is an http.RoundTripper that sends every request as if from
// addr through the trusted proxy.
type forwarded struct {
	addr string
	next http.RoundTripper
}

func (f forwarded) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("X-Forwarded-For", f.addr)
	return f.next.RoundTrip(req)
}

// from returns a copy of c whose requests (back channel and browser) come
// from addr.
func from(c *mcpauthtest.Client, addr string) *mcpauthtest.Client {
	out := *c
	out.HTTP = &http.Client{Transport: forwarded{addr, http.DefaultTransport}}
	return &out
}

// xff is the header that makes a request come from addr.
func xff(addr string) http.Header { return http.Header{"X-Forwarded-For": {addr}} }

// trySignIn opens the sign-in page for c and posts username and password,
// returning the answer's status.
func trySignIn(t *testing.T, c *mcpauthtest.Client, username, password string) int {
	t.Helper()
	page, err := c.OpenAuthorize(ctx(t), mcpauthtest.AuthorizeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fields, err := page.Form.Values(username, password, false)
	if err != nil {
		t.Fatal(err)
	}
	resp, _, err := page.Post(ctx(t), fields, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	return resp.StatusCode
}

// Issue item 2: junk requests naming a client ID, from another address,
// must not block that client. Client IDs are public; before the fix 100
// junk /revoke calls (each answered 200) locked the client out of /token
// for everyone.
func TestHostileStrangerCannotLockOutClient(t *testing.T) {
	e := newProxiedEnv(t)
	victim := from(e.register(nil), "198.51.100.10")
	res, err := victim.Authorize(ctx(t), mcpauthtest.AuthorizeOptions{Username: "alice", Password: testUsers["alice"]})
	if err != nil {
		t.Fatal(err)
	}
	first, err := victim.Exchange(ctx(t), res.Code, res.Verifier)
	if err != nil {
		t.Fatal(err)
	}

	attacker := from(victim, "203.0.113.66")
	// Unknown tokens at /revoke are not failures (RFC 7009): never 429.
	for i := range 500 {
		resp, body, err := attacker.Post(ctx(t), "/revoke", url.Values{"token": {fmt.Sprintf("junk-%d", i)}})
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("junk /revoke %d: %d %s, want 200", i, resp.StatusCode, body)
		}
	}
	// Junk refresh tokens and wrong client secrets naming the client
	// throttle the attacker's address.
	attackerThrottled := false
	for i := range 1000 {
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {fmt.Sprintf("junk-%d", i)}}
		if i%2 == 1 {
			form.Set("client_secret", "guess")
		}
		resp, body, err := attacker.Post(ctx(t), "/token", form)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == http.StatusTooManyRequests {
			attackerThrottled = true
			break
		}
		if resp.StatusCode >= 500 {
			t.Fatalf("junk /token %d: %d %s", i, resp.StatusCode, body)
		}
	}
	if !attackerThrottled {
		t.Error("1000 junk /token requests from one address were never throttled")
	}

	// The client keeps working from its users' addresses.
	next, err := victim.Refresh(ctx(t), first.RefreshToken)
	if err != nil {
		t.Fatalf("victim's refresh after the attack: %v", err)
	}
	res, err = victim.Authorize(ctx(t), mcpauthtest.AuthorizeOptions{Username: "bob", Password: testUsers["bob"]})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := victim.Exchange(ctx(t), res.Code, res.Verifier); err != nil {
		t.Fatalf("victim's code exchange after the attack: %v", err)
	}
	if err := victim.Revoke(ctx(t), next.AccessToken, ""); err != nil {
		t.Fatalf("victim's revocation after the attack: %v", err)
	}
}

// Issue item 2, confidential clients: failed client authentication counts
// against the pair (client, address), so guessing a client's secret from
// one address blocks that address for that client only.
func TestHostileClientSecretGuessingPerAddress(t *testing.T) {
	e := newProxiedEnv(t)
	conf := e.register(map[string]any{"token_endpoint_auth_method": "client_secret_post"})
	guesser := from(conf, "203.0.113.7")
	guesser.ClientSecret = "wrong"
	blocked := false
	for i := range 100 {
		resp, _, err := guesser.Post(ctx(t), "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}})
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == http.StatusTooManyRequests {
			blocked = true
			break
		}
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d, want 401", i, resp.StatusCode)
		}
	}
	if !blocked {
		t.Fatal("100 wrong client secrets from one address were never throttled")
	}
	// The same client from another address is untouched.
	owner := from(conf, "198.51.100.20")
	tok := e.tokens(owner)
	if _, err := owner.Refresh(ctx(t), tok.RefreshToken); err != nil {
		t.Fatalf("the client from its own address after another address guessed its secret: %v", err)
	}
}

// Issue item 8: five wrong passwords from one address used to lock the real
// user out everywhere for 15 minutes. Now they lock that (user, address)
// pair; the user's own ceiling across all addresses is much higher.
func TestHostileLoginLockoutPerAddress(t *testing.T) {
	e := newProxiedEnv(t)
	c := e.register(nil)
	attacker := from(c, "203.0.113.99")
	for i := range 5 {
		if st := trySignIn(t, attacker, "alice", "wrong"); st != http.StatusOK {
			t.Fatalf("wrong password %d: %d, want the form again (200)", i, st)
		}
	}
	if st := trySignIn(t, attacker, "alice", "wrong"); st != http.StatusTooManyRequests {
		t.Fatalf("6th wrong password from one address: %d, want 429", st)
	}
	if st := trySignIn(t, attacker, "alice", testUsers["alice"]); st != http.StatusTooManyRequests {
		t.Errorf("right password from the locked address: %d, want 429", st)
	}
	if st := trySignIn(t, from(c, "198.51.100.1"), "alice", testUsers["alice"]); st != http.StatusSeeOther {
		t.Fatalf("alice from her own address while another address is locked: %d, want 303", st)
	}
	// The same address may still sign in another user (its own limit is 20).
	if st := trySignIn(t, attacker, "bob", testUsers["bob"]); st != http.StatusSeeOther {
		t.Errorf("bob from the address that guessed alice's password: %d, want 303", st)
	}
}

// A stranger repeating a request the server refuses wrote one log line per
// request, at WARN, which the buffered log writes out at once: a sign-in
// refused by a lockout (each refusal hands out a new form, so a loop needs
// nothing else) and a sign-in refused because the address already has its
// metadata-document fetches under way. One address could fill the disk
// with them. Now the first refusal is logged, then none for that lockout
// (or for that address's fetches, for a minute); the metrics count each.
func TestHostileRefusalsLogOnce(t *testing.T) {
	const attacker = "203.0.113.99"
	for _, tc := range []struct {
		name, line string
		// setup brings the attacker's address to where its requests are
		// refused, and returns a function that sends one more of them and
		// returns the status.
		setup func(t *testing.T, e *env, release <-chan struct{}, wg *sync.WaitGroup) func(i int) int
	}{
		{"sign-in locked out", "sign-in throttled", func(t *testing.T, e *env, _ <-chan struct{}, _ *sync.WaitGroup) func(int) int {
			c := from(e.register(nil), attacker)
			for range 5 {
				trySignIn(t, c, "alice", "wrong")
			}
			return func(int) int { return trySignIn(t, c, "alice", "wrong") }
		}},
		{"metadata fetches under way", "too many fetches under way", func(t *testing.T, e *env, release <-chan struct{}, wg *sync.WaitGroup) func(int) int {
			var inFlight atomic.Int32
			for range 2 { // two hosts: each has 2 slots
				host := stallingDocServer(t, 0, release, &inFlight)
				for j := range 2 {
					wg.Go(func() { e.get("/authorize?"+metadataQuery(fmt.Sprintf("%s/slow/%d.json", host.URL, j)), xff(attacker)) })
				}
			}
			waitFor(t, "the attacker's fetches to stall", func() bool { return inFlight.Load() == 4 })
			return func(i int) int {
				resp, _ := e.get("/authorize?"+metadataQuery(fmt.Sprintf("http://127.0.0.1:1/more/%d.json", i)), xff(attacker))
				return resp.StatusCode
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newProxiedEnv(t, func(c *mcpauth.Config) { c.AllowLoopbackClientMetadata = true })
			release := make(chan struct{})
			var wg sync.WaitGroup
			defer wg.Wait()
			defer close(release)
			refused := tc.setup(t, e, release, &wg)
			before := len(e.logs.String())
			for i := range 30 {
				if st := refused(i); st != http.StatusTooManyRequests && st != http.StatusServiceUnavailable {
					t.Fatalf("refused request %d: %d, want 429 or 503", i, st)
				}
			}
			if n := strings.Count(e.logs.String()[before:], tc.line); n != 1 {
				t.Errorf("30 refused requests from one address logged %q %d times, want once", tc.line, n)
			}
		})
	}
}

// Issue item 8, the other side: password spraying from many addresses is
// bounded by a per-user ceiling (100 failures per 15 minutes), and one
// address is bounded across usernames (20).
func TestHostileLoginCeilings(t *testing.T) {
	e := newProxiedEnv(t)
	c := e.register(nil)
	// Alice's own browser, where she signed in before the attack.
	browser := mcpauthtest.NewBrowser()
	browser.Transport = forwarded{"198.51.100.77", http.DefaultTransport}
	if _, err := c.Authorize(ctx(t), mcpauthtest.AuthorizeOptions{Username: "alice", Password: testUsers["alice"], Browser: browser}); err != nil {
		t.Fatal(err)
	}
	failures := 0
	for a := 0; failures < 100; a++ {
		from := from(c, fmt.Sprintf("203.0.113.%d", a))
		for range 4 {
			if st := trySignIn(t, from, "alice", "wrong"); st != http.StatusOK {
				t.Fatalf("failure %d: %d, want 200", failures, st)
			}
			failures++
		}
	}
	if st := trySignIn(t, from(c, "198.51.100.200"), "alice", testUsers["alice"]); st != http.StatusTooManyRequests {
		t.Errorf("alice after 100 failures from 25 addresses: %d, want 429 (the per-user ceiling)", st)
	}
	if st := trySignIn(t, from(c, "198.51.100.200"), "bob", testUsers["bob"]); st != http.StatusSeeOther {
		t.Errorf("bob while alice is at her ceiling: %d, want 303", st)
	}
	// Her own browser still signs her in, from wherever she is now; a
	// browser that knows bob, not her, does not.
	browser.Transport = forwarded{"198.51.100.78", http.DefaultTransport}
	if _, err := c.Authorize(ctx(t), mcpauthtest.AuthorizeOptions{Username: "alice", Password: testUsers["alice"], Browser: browser}); err != nil {
		t.Errorf("alice in the browser she signed in with before, at her ceiling: %v", err)
	}
	bobs := mcpauthtest.NewBrowser()
	bobs.Transport = forwarded{"198.51.100.79", http.DefaultTransport}
	if _, err := c.Authorize(ctx(t), mcpauthtest.AuthorizeOptions{Username: "bob", Password: testUsers["bob"], Browser: bobs}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Authorize(ctx(t), mcpauthtest.AuthorizeOptions{Username: "alice", Password: testUsers["alice"], Browser: bobs}); err == nil {
		t.Error("alice in a browser that only knows bob passed her ceiling")
	}

	sprayer := from(c, "192.0.2.1")
	for i := range 20 {
		if st := trySignIn(t, sprayer, fmt.Sprintf("user%d", i), "guess"); st != http.StatusOK {
			t.Fatalf("spray %d: %d, want 200", i, st)
		}
	}
	if st := trySignIn(t, sprayer, "user-next", "guess"); st != http.StatusTooManyRequests {
		t.Errorf("21st failure from one address across usernames: %d, want 429", st)
	}
}

// Issue item 5: the registration limit keyed on the exact address, so every
// address of an IPv6 /64 was a fresh bucket. It is keyed on the /64 now.
func TestHostileRegistrationPerSlash64(t *testing.T) {
	e := newProxiedEnv(t)
	body := []byte(`{"redirect_uris":["https://client.example/cb"]}`)
	register := func(addr string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, e.base+"/register", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", addr)
		resp, _ := e.do(req)
		return resp
	}
	throttled := false
	for i := range 200 {
		resp := register(fmt.Sprintf("2001:db8:5:5::%x", i+1))
		if resp.StatusCode == http.StatusTooManyRequests {
			if i != 60 {
				t.Errorf("throttled after %d registrations from one /64, want 60", i)
			}
			throttled = true
			break
		}
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("registration %d: %d", i, resp.StatusCode)
		}
	}
	if !throttled {
		t.Fatal("200 registrations from 200 addresses of one /64 were never throttled")
	}
	if resp := register("2001:db8:5:6::1"); resp.StatusCode != http.StatusCreated {
		t.Errorf("registration from the next /64: %d, want 201", resp.StatusCode)
	}
	if resp := register("198.51.100.5"); resp.StatusCode != http.StatusCreated {
		t.Errorf("registration from an IPv4 address: %d, want 201", resp.StatusCode)
	}
}

// Issue item 5: one client could store about 40 KB of metadata. Each
// redirect URI is capped at 1 KiB and the metadata at 8 KiB in total.
func TestHostileRegistrationMetadataSize(t *testing.T) {
	e := newProxiedEnv(t)
	uri := func(n, i int) string {
		u := fmt.Sprintf("https://client.example/%d/", i)
		return u + strings.Repeat("a", n-len(u))
	}
	many := func(n, size int) []string {
		var out []string
		for i := range n {
			out = append(out, uri(size, i))
		}
		return out
	}
	for _, tc := range []struct {
		name string
		uris []string
		code string // "" means accepted
	}{
		{"one URI of 1 KiB", []string{uri(1024, 0)}, ""},
		{"one URI over 1 KiB", []string{uri(1025, 0)}, "invalid_redirect_uri"},
		{"7 URIs of 1 KiB", many(7, 1024), ""},
		{"20 URIs of 1 KiB (20 KiB)", many(20, 1024), "invalid_client_metadata"},
		{"9 URIs of 1000 bytes", many(9, 1000), "invalid_client_metadata"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := mcpauthtest.Register(ctx(t), e.base, map[string]any{"redirect_uris": tc.uris, "client_name": strings.Repeat("n", 200)})
			if tc.code == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			wantGrantErr(t, tc.name, err, http.StatusBadRequest, tc.code)
		})
	}
}

// TestHostileMetadataURLLogFlood: a stranger sending /authorize a
// client_id that looks like a metadata document URL but is malformed (here
// 7000 bytes long) gets 400 each time, and the server writes no log line
// per request: the URL is refused without a fetch, and only a fetch's
// failure is logged, once, cut short.
func TestHostileMetadataURLLogFlood(t *testing.T) {
	e := newEnv(t)
	before := len(e.logs.String())
	id := "https://x.invalid/" + strings.Repeat("a", 7000) + "<i>"
	for range 50 {
		req, _ := http.NewRequest(http.MethodGet, e.base+"/authorize?"+url.Values{"client_id": {id}, "response_type": {"code"}}.Encode(), nil)
		if resp, _ := e.do(req); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("GET /authorize with a malformed metadata URL = %d, want 400", resp.StatusCode)
		}
	}
	if grew := len(e.logs.String()) - before; grew > 0 {
		t.Errorf("50 refused requests logged %d bytes:\n%.500s", grew, e.logs.String()[before:])
	}
}

// Issue item 9: operating-system protocol-handler schemes were accepted as
// redirect URIs; app schemes must keep working.
func TestHostileRedirectSchemes(t *testing.T) {
	e := newEnv(t)
	for _, uri := range []string{
		"ms-msdt:/id%20PCWDiagnostic", "ms-msdt://x/y", "MS-MSDT://x/y", "search-ms://query=x&crumb=location:\\\\evil\\share",
		"search-ms:/query", "search://x/y", "ms-settings://x/y", "ms-officecmd://x/y", "ms-word://ofe|u|https://evil/x",
		"shell://x/y", "microsoft-edge://x/y", "vnd.ms-excel://x/y", "its://x/y", "mk://x/y", "hcp://x/y",
		"smb://evil/share", "tel://1234", "javascript://x/%0aalert(1)", "file://x/y", "data://x/y", "vbscript://x/y",
	} {
		_, err := mcpauthtest.Register(ctx(t), e.base, map[string]any{"redirect_uris": []string{"https://ok.example/cb", uri}})
		wantGrantErr(t, uri, err, http.StatusBadRequest, "invalid_redirect_uri")
	}
	for _, uri := range []string{
		"cursor://anysphere.cursor-retrieval/oauth/user-mcp/callback", "vscode://vscode.github-authentication/did-authenticate",
		"claude://claude.ai/oauth/callback", "com.example.app:/oauth2redirect", "msteams-like.example://cb",
	} {
		c, err := mcpauthtest.Register(ctx(t), e.base, map[string]any{"redirect_uris": []string{uri}})
		if err != nil {
			t.Errorf("app scheme %s refused: %v", uri, err)
			continue
		}
		c.RedirectURI = uri
		res, err := c.Authorize(ctx(t), mcpauthtest.AuthorizeOptions{Username: "alice", Password: testUsers["alice"]})
		if err != nil {
			t.Errorf("sign-in with %s: %v", uri, err)
			continue
		}
		if !strings.HasPrefix(res.Location.String(), uri+"?") {
			t.Errorf("sign-in with %s redirected to %s", uri, res.Location)
		}
	}
}

// Issue item 9: behind a reverse proxy without --trusted-proxies every user
// shares one throttling bucket. The server cannot fix that by itself (it
// must not believe the header), but it says so once, naming the flag.
func TestHostileUntrustedForwardedForWarnsOnce(t *testing.T) {
	e := newEnv(t)
	for range 3 {
		e.get("/.well-known/oauth-authorization-server", xff("198.51.100.7"))
	}
	c := e.register(nil)
	from(c, "198.51.100.8").Post(ctx(t), "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}})
	if n := strings.Count(e.logs.String(), "--trusted-proxies"); n != 1 {
		t.Errorf("the log names --trusted-proxies %d times, want once:\n%s", n, e.logs.String())
	}

	trusted := newProxiedEnv(t)
	trusted.get("/.well-known/oauth-authorization-server", xff("198.51.100.7"))
	if strings.Contains(trusted.logs.String(), "--trusted-proxies") {
		t.Error("warned about X-Forwarded-For from a trusted proxy")
	}
}

// mcpRequest sends one request to /mcp as a 2025-11-25 client and returns
// the status, without waiting for a stream to end.
func (e *env) mcpRequest(method, token, session, body string) (int, http.Header) {
	e.t.Helper()
	var rd *strings.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequestWithContext(ctx(e.t), method, e.mcpURL, nil)
	if rd != nil {
		req, _ = http.NewRequestWithContext(ctx(e.t), method, e.mcpURL, rd)
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close() // a GET stream is cut here; its status is what counts
	return resp.StatusCode, resp.Header
}

// Issue item 3: with their own valid token and another user's
// Mcp-Session-Id, a user's GET on /mcp opened that session's event stream;
// a never-issued session id got a stream too. Every method now checks the
// session's owner.
func TestHostileSessionsOwnedOnEveryMethod(t *testing.T) {
	e := newEnv(t)
	c := e.register(nil)
	alice := e.tokens(c)
	res := e.authorize(c, mcpauthtest.AuthorizeOptions{Username: "bob", Password: testUsers["bob"]})
	bob, err := c.Exchange(ctx(t), res.Code, res.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
	st, h := e.mcpRequest(http.MethodPost, alice.AccessToken, "", init)
	session := h.Get("Mcp-Session-Id")
	if st != http.StatusOK || session == "" {
		t.Fatalf("initialize: %d, session %q", st, session)
	}
	list := `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`
	for _, tc := range []struct {
		name          string
		method, token string
		session, body string
		want          int
	}{
		{"owner GET", http.MethodGet, alice.AccessToken, session, "", http.StatusOK},
		{"other user GET", http.MethodGet, bob.AccessToken, session, "", http.StatusNotFound},
		{"never-issued GET", http.MethodGet, bob.AccessToken, "mcp-session-never-issued", "", http.StatusNotFound},
		{"GET without a session", http.MethodGet, bob.AccessToken, "", "", http.StatusBadRequest},
		{"other user POST", http.MethodPost, bob.AccessToken, session, list, http.StatusNotFound},
		{"never-issued POST", http.MethodPost, bob.AccessToken, "mcp-session-never-issued", list, http.StatusNotFound},
		{"other user DELETE", http.MethodDelete, bob.AccessToken, session, "", http.StatusNotFound},
		{"never-issued DELETE", http.MethodDelete, bob.AccessToken, "mcp-session-never-issued", "", http.StatusNotFound},
		{"owner POST after the attempts", http.MethodPost, alice.AccessToken, session, list, http.StatusOK},
		{"owner DELETE", http.MethodDelete, alice.AccessToken, session, "", http.StatusOK},
		{"owner GET after DELETE", http.MethodGet, alice.AccessToken, session, "", http.StatusNotFound},
	} {
		if st, _ := e.mcpRequest(tc.method, tc.token, tc.session, tc.body); st != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, st, tc.want)
		}
	}
}

// Issue: the store keeps at most Limits.SessionsPerUser legacy sessions per
// user, but mcp-go kept the in-memory state of every session the store
// evicted until its idle sweeper ran, 30 minutes later: one user sending
// initialize in a loop grew a replica's memory without bound. Each eviction
// also moved the revocation epoch, so the loop flushed every replica's
// token cache, for everyone, over and over. Now mcp-go holds at most the
// cap per user on each replica, and eviction revokes nothing.
func TestHostileSessionsBoundedPerUser(t *testing.T) {
	const limit = 3
	e := newEnv(t, func(c *mcpauth.Config) { mcpauth.SetStoreLimits(c, authstore.Limits{SessionsPerUser: limit}) })
	c := e.register(nil)
	alice := e.tokens(c).AccessToken
	res := e.authorize(c, mcpauthtest.AuthorizeOptions{Username: "bob", Password: testUsers["bob"]})
	bobTok, err := c.Exchange(ctx(t), res.Code, res.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	bob := bobTok.AccessToken
	init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
	list := `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`
	open := func(token string) string {
		t.Helper()
		st, h := e.mcpRequest(http.MethodPost, token, "", init)
		if st != http.StatusOK || h.Get("Mcp-Session-Id") == "" {
			t.Fatalf("initialize: %d, session %q", st, h.Get("Mcp-Session-Id"))
		}
		return h.Get("Mcp-Session-Id")
	}

	bobSession := open(bob)
	var sessions []string
	for range limit + 5 {
		sessions = append(sessions, open(alice))
	}
	if n := e.mcpSessions.Load(); n != limit+1 {
		t.Errorf("mcp-go holds %d sessions after alice opened %d (cap %d) and bob 1; want %d",
			n, len(sessions), limit, limit+1)
	}
	for i, s := range sessions {
		want := http.StatusOK
		if i < len(sessions)-limit {
			want = http.StatusNotFound // evicted, oldest first
		}
		if st, _ := e.mcpRequest(http.MethodPost, alice, s, list); st != want {
			t.Errorf("alice's session %d of %d: %d, want %d", i+1, len(sessions), st, want)
		}
	}
	if st, _ := e.mcpRequest(http.MethodPost, bob, bobSession, list); st != http.StatusOK {
		t.Errorf("bob's session, opened before alice's: %d, want 200", st)
	}

	// An eviction revokes nothing: the replica keeps its cached tokens
	// through its next sync, so alice's next request, and bob's, are
	// answered without a database lookup.
	lookups := func() uint64 { return dbOpCount(t, e.cfg.Metrics, "lookup_access") }
	before := lookups()
	sessions = append(sessions, open(alice)) // evicts one
	time.Sleep(2 * authstore.DefaultSyncInterval)
	e.mcpRequest(http.MethodPost, alice, sessions[len(sessions)-1], list)
	e.mcpRequest(http.MethodPost, bob, bobSession, list)
	if n := lookups() - before; n != 0 {
		t.Errorf("%d token lookups in the database after an eviction, want 0 (the token cache was dropped)", n)
	}

	// The store and the replica each evict their own least recently used,
	// which differ once a session has been used within the minute the
	// store does not record touches for. A session this replica forgot
	// but the store still has keeps working; one the store evicted works,
	// for its owner, only as long as the replica has its owner cached.
	t.Run("forgotten here, alive in the store", func(t *testing.T) {
		a, b, c := open(alice), open(alice), open(alice)
		if st, _ := e.mcpRequest(http.MethodPost, alice, a, list); st != http.StatusOK {
			t.Fatalf("a: %d", st)
		}
		open(alice) // the store evicts a (oldest recorded use), the replica b (least recently seen)
		for _, tc := range []struct {
			name    string
			later   time.Duration // the clock moves forward this much first
			session string
			want    int
		}{
			{"b, forgotten here", 0, b, http.StatusOK},
			{"c", 0, c, http.StatusOK},
			{"a, evicted from the store, owner cached", 0, a, http.StatusOK},
			{"a, a minute later", time.Minute + time.Second, a, http.StatusNotFound},
			{"b, a minute later", 0, b, http.StatusOK},
		} {
			e.advance(tc.later)
			if st, _ := e.mcpRequest(http.MethodPost, alice, tc.session, list); st != tc.want {
				t.Errorf("session %s: %d, want %d", tc.name, st, tc.want)
			}
		}
		if n := e.mcpSessions.Load(); n > limit+1 {
			t.Errorf("mcp-go holds %d sessions, want at most %d", n, limit+1)
		}
	})

	// A session its owner ended leaves room: the next one forgets none.
	t.Run("ended", func(t *testing.T) {
		var last string
		for range limit {
			last = open(alice)
		}
		if st, _ := e.mcpRequest(http.MethodDelete, alice, last, ""); st != http.StatusOK {
			t.Fatalf("DELETE: %d", st)
		}
		open(alice)
		if n := e.mcpSessions.Load(); n != limit+1 {
			t.Errorf("mcp-go holds %d sessions, want %d (alice's %d and bob's)", n, limit+1, limit)
		}
	})
}

// dbOpCount is how many store operations named op m has observed.
func dbOpCount(t *testing.T, m *mcpauth.Metrics, op string) uint64 {
	t.Helper()
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "mcp_db_operation_duration_seconds" {
			continue
		}
		for _, metric := range f.GetMetric() {
			for _, l := range metric.GetLabel() {
				if l.GetName() == "op" && l.GetValue() == op {
					return metric.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return 0
}

// metadataQuery is an /authorize query for the client whose metadata
// document is at id.
func metadataQuery(id string) string {
	_, challenge := mcpauthtest.PKCE()
	return url.Values{"response_type": {"code"}, "client_id": {id}, "redirect_uri": {"http://127.0.0.1/cb"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}}.Encode()
}

// docServer serves a valid metadata document at every path.
func docServer(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"client_id":"http://%s%s","client_name":"Good","redirect_uris":["http://127.0.0.1/cb"]}`, r.Host, r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// Issue item 7: metadata-document fetches shared four global slots, so
// client IDs pointing at a host that stalls delayed every other client's
// sign-in. Each host now has its own two slots (and each address's only
// fetch under way needs none).
func TestHostileMetadataHostStalls(t *testing.T) {
	release := make(chan struct{})
	var inFlight, maxInFlight, cancelled atomic.Int32
	stall := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := maxInFlight.Load()
			if n <= m || maxInFlight.CompareAndSwap(m, n) {
				break
			}
		}
		select {
		case <-release:
		case <-r.Context().Done():
			cancelled.Add(1)
		}
	}))
	defer stall.Close()
	var once sync.Once
	unstall := func() { once.Do(func() { close(release) }) }
	defer unstall()
	good := docServer(t)
	e := newProxiedEnv(t, func(c *mcpauth.Config) { c.AllowLoopbackClientMetadata = true })

	// Users of the stalled host's apps, each from an address of their own.
	var wg sync.WaitGroup
	for i := range 8 { // twice the old global pool
		wg.Go(func() {
			e.get("/authorize?"+metadataQuery(fmt.Sprintf("%s/client-%d.json", stall.URL, i)), xff(fmt.Sprintf("198.51.100.%d", i+1)))
		})
	}
	for inFlight.Load() < 2 { // the stalled host's slots are taken
		time.Sleep(time.Millisecond)
	}
	resp, body := e.get("/authorize?"+metadataQuery(good.URL+"/client.json"), xff("203.0.113.9"))
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Good") {
		t.Errorf("sign-in of a client on another host while one host stalls: %d %.200s", resp.StatusCode, body)
	}
	if n := cancelled.Load(); n != 0 {
		t.Errorf("the other host's sign-in waited until %d stalled fetches timed out", n)
	}
	// Each address's only fetch takes no slot (TestHostileMetadataSlotsTakenByFewAddresses);
	// beyond those, the host has 2 slots.
	if n := maxInFlight.Load(); n > 8+2 {
		t.Errorf("%d concurrent fetches from one host for 8 addresses, want at most 10 (one per address, and 2)", n)
	}
	unstall()
	wg.Wait()
}

// stallingDocServer serves a valid metadata document at every path, after
// latency (a remote host is not instant), but those under /slow/, which
// stall until release is closed or the fetch gives up; inFlight counts the
// stalled fetches.
func stallingDocServer(t *testing.T, latency time.Duration, release <-chan struct{}, inFlight *atomic.Int32) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/slow/") {
			inFlight.Add(1)
			defer inFlight.Add(-1)
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		select {
		case <-time.After(latency):
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"client_id":"http://%s%s","client_name":"Good","redirect_uris":["http://127.0.0.1/cb"]}`, r.Host, r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// A few addresses could stop every user's sign-in with an app known by a
// metadata document. Fetch slots were shared by every address, and the 5 s
// a fetch may take began while it waited for a slot: eight addresses, each
// naming documents on two hosts that stall (any names of a wildcard DNS
// domain), held the 32 slots of the pool, and one address naming URLs that
// stall on the app's own host (a slow page of the same site) held both of
// that host's slots. A user's fetch then waited nearly 5 s for a slot and
// ran out of time fetching the document; and that failure, though the
// app's host had answered as fast as ever, was remembered for a minute:
// the attacker could ask for the app's document itself, and every user of
// the app was refused for that minute. Now an address's one fetch under
// way waits for no slot (only further fetches of the same address queue for
// the per-host and global slots), and the time limit of a fetch starts once
// it has its slots, so a failure remembered is the remote host's own.
func TestHostileMetadataSlotsTakenByFewAddresses(t *testing.T) {
	const latency = 300 * time.Millisecond // the app's host, answering as usual
	// stall starts n sign-ins from addr naming documents that stall on host.
	stall := func(e *env, wg *sync.WaitGroup, addr string, host *httptest.Server, n int) {
		for j := range n {
			wg.Go(func() { e.get("/authorize?"+metadataQuery(fmt.Sprintf("%s/slow/%d.json", host.URL, j)), xff(addr)) })
		}
	}
	type attack struct {
		app     string // base URL of the app's document host
		stalled int32  // stalled fetches to wait for
		poison  string // if set, the attacker asks for the app's document from this address first
	}
	for _, tc := range []struct {
		name   string
		attack func(t *testing.T, e *env, release <-chan struct{}, inFlight *atomic.Int32, wg *sync.WaitGroup) attack
	}{
		{"every slot of the pool, from eight addresses", func(t *testing.T, e *env, release <-chan struct{}, inFlight *atomic.Int32, wg *sync.WaitGroup) attack {
			for i := range 8 {
				for range 2 {
					stall(e, wg, fmt.Sprintf("198.51.100.%d", i+1), stallingDocServer(t, 0, release, inFlight), 2)
				}
			}
			return attack{app: stallingDocServer(t, latency, release, inFlight).URL, stalled: 32}
		}},
		{"the app's own host, from one address", func(t *testing.T, e *env, release <-chan struct{}, inFlight *atomic.Int32, wg *sync.WaitGroup) attack {
			host := stallingDocServer(t, latency, release, inFlight)
			stall(e, wg, "198.51.100.1", host, 4)
			return attack{app: host.URL, stalled: 2}
		}},
		{"the app's document remembered as failing, from one address", func(t *testing.T, e *env, release <-chan struct{}, inFlight *atomic.Int32, wg *sync.WaitGroup) attack {
			host := stallingDocServer(t, latency, release, inFlight)
			stall(e, wg, "198.51.100.1", host, 3)
			return attack{app: host.URL, stalled: 2, poison: "198.51.100.1"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newProxiedEnv(t, func(c *mcpauth.Config) { c.AllowLoopbackClientMetadata = true })
			release := make(chan struct{})
			var inFlight atomic.Int32
			var wg sync.WaitGroup
			defer wg.Wait()
			defer close(release)
			a := tc.attack(t, e, release, &inFlight, &wg)
			waitFor(t, "the attacker's fetches to stall", func() bool { return inFlight.Load() >= a.stalled })
			doc := a.app + "/client.json"
			if a.poison != "" {
				e.get("/authorize?"+metadataQuery(doc), xff(a.poison))
			}
			resp, body := e.get("/authorize?"+metadataQuery(doc), xff("203.0.113.9"))
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Good") {
				t.Errorf("a user's sign-in from another address while the attack lasts: %d %s, want the sign-in page", resp.StatusCode, pageMessage(body))
			}
		})
	}
}

// pageMessage is the title and first paragraph of an HTML page, for test
// messages.
func pageMessage(body []byte) string {
	title, para := "", ""
	if m := regexp.MustCompile(`<title>([^<]*)</title>`).FindSubmatch(body); m != nil {
		title = string(m[1])
	}
	if m := regexp.MustCompile(`<p[^>]*>([^<]*)</p>`).FindSubmatch(body); m != nil {
		para = string(m[1])
	}
	return fmt.Sprintf("%q: %q", title, para)
}

// One address could push every app's metadata document out of the cache:
// naming 1,000 documents of its own (a host that serves one at any path)
// filled the cache, which was then emptied at once. Every app's next
// sign-in depended on its host answering right then, and one whose host
// was down for a moment refused every user. Now, at the cap, the address
// that fetched the most cached documents loses its oldest, so a flood
// from one address pushes out only its own.
func TestHostileMetadataCacheFlood(t *testing.T) {
	e := newProxiedEnv(t, func(c *mcpauth.Config) { c.AllowLoopbackClientMetadata = true })
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"client_id":"http://%s%s","client_name":"Good","redirect_uris":["http://127.0.0.1/cb"]}`, r.Host, r.URL.Path)
	}))
	doc := app.URL + "/client.json"
	if resp, body := e.get("/authorize?"+metadataQuery(doc), xff("198.51.100.1")); resp.StatusCode != http.StatusOK {
		t.Fatalf("a user's sign-in: %d %s", resp.StatusCode, pageMessage(body))
	}

	flood := docServer(t)
	var wg sync.WaitGroup
	for w := range 4 { // the address's fetches, 4 at a time
		wg.Go(func() {
			for i := w; i < 1000; i += 4 {
				e.get("/authorize?"+metadataQuery(fmt.Sprintf("%s/flood/%d.json", flood.URL, i)), xff("203.0.113.66"))
			}
		})
	}
	wg.Wait()

	app.Close() // the app's host is down for a moment
	resp, body := e.get("/authorize?"+metadataQuery(doc), xff("198.51.100.2"))
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Good") {
		t.Errorf("another user's sign-in with the app after one address named 1,000 documents: %d %s, want the sign-in page (the document cached)", resp.StatusCode, pageMessage(body))
	}
}

// Issue item 7: the fetcher contacted any port and showed the remote HTTP
// status on the page.
func TestHostileMetadataFetchLeaksNothing(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"https://client.example:8443/client.json", "https://client.example:22/client.json"} {
		resp, body := e.get("/authorize?"+metadataQuery(id), nil)
		assertNoRedirect(t, id, resp, body)
		if !strings.Contains(string(body), "default https port") {
			t.Errorf("%s: page does not say why: %.300s", id, body)
		}
	}
	teapot := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Secret", "internal")
		http.Error(w, "internal admin console", http.StatusTeapot)
	}))
	defer teapot.Close()
	local := newEnv(t, func(c *mcpauth.Config) { c.AllowLoopbackClientMetadata = true })
	resp, body := local.get("/authorize?"+metadataQuery(teapot.URL+"/client.json"), nil)
	assertNoRedirect(t, "teapot", resp, body)
	// The page names the client_id, whose port may contain "418".
	page := strings.ReplaceAll(string(body), teapot.URL, "")
	for _, leak := range []string{"418", "teapot", "Teapot", "admin console"} {
		if strings.Contains(page, leak) {
			t.Errorf("the page shows what the remote host answered (%q): %.300s", leak, body)
		}
	}
}

// Issue item 9: a base URL with an explicit default port
// (https://host:443) broke sign-in (the browser's Origin has no port),
// /mcp behind a proxy (the Host header has none) and CORS. The base URL is
// normalised, and so is everything compared with it.
func TestHostileBaseURLWithDefaultPort(t *testing.T) {
	e := newEnv(t, func(c *mcpauth.Config) { c.BaseURL = "https://MCP.example.com:443/" })
	const public = "https://mcp.example.com"
	if got := e.metadata("/.well-known/oauth-authorization-server")["issuer"]; got != public {
		t.Errorf("issuer %q, want %q", got, public)
	}
	if got := e.metadata("/.well-known/oauth-protected-resource/mcp")["resource"]; got != public+"/mcp" {
		t.Errorf("resource %q, want %q", got, public+"/mcp")
	}
	// Requests arrive from the TLS-terminating proxy with the public Host.
	send := func(method, path string, body string, h http.Header) (*http.Response, []byte) {
		req, _ := http.NewRequest(method, e.base+path, strings.NewReader(body))
		req.Host = "mcp.example.com"
		for k, v := range h {
			req.Header[k] = v
		}
		return e.do(req)
	}
	c := e.register(nil)
	_, challenge := mcpauthtest.PKCE()
	q := authorizeQuery(c, url.Values{"code_challenge": {challenge}, "resource": {public + ":443/mcp"}})
	resp, page := send(http.MethodGet, "/authorize?"+q.Encode(), "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /authorize: %d %.300s", resp.StatusCode, page)
	}
	pageURL, _ := url.Parse(public + "/authorize?" + q.Encode())
	form, err := mcpauthtest.ParseForm(pageURL, page)
	if err != nil {
		t.Fatal(err)
	}
	fields, _ := form.Values("alice", testUsers["alice"], false)
	var cookies []string
	for _, ck := range resp.Cookies() {
		cookies = append(cookies, ck.Name+"="+ck.Value)
	}
	resp, body := send(http.MethodPost, "/authorize", fields.Encode(), http.Header{
		"Content-Type":   {"application/x-www-form-urlencoded"},
		"Cookie":         {strings.Join(cookies, "; ")},
		"Origin":         {public}, // what a browser sends: no default port
		"Sec-Fetch-Site": {"same-origin"},
	})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in with the browser's Origin %s: %d %.300s", public, resp.StatusCode, body)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if loc.Query().Get("iss") != public {
		t.Errorf("iss %q, want %q", loc.Query().Get("iss"), public)
	}
	// /mcp through the proxy, from the server's own origin: a challenge,
	// not a DNS-rebinding or origin refusal.
	resp, _ = send(http.MethodPost, "/mcp", `{}`, http.Header{"Origin": {public}, "Content-Type": {"application/json"}})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/mcp with Host mcp.example.com and Origin %s: %d, want 401", public, resp.StatusCode)
	}
	if resp.Header.Get("Access-Control-Allow-Origin") != public {
		t.Errorf("/mcp CORS for the server's own origin: %q", resp.Header.Get("Access-Control-Allow-Origin"))
	}
}

// Issue item 6: throttle tables that reached their size limit were cleared
// wholesale, lockouts included: a flood of new keys lifted every lockout.
// The least recently used keys that are not locked go first now.
func TestHostileThrottleFloodKeepsLockouts(t *testing.T) {
	e := newProxiedEnv(t, func(c *mcpauth.Config) { mcpauth.SetStoreLimits(c, authstore.Limits{ThrottleKeys: 30}) })
	c := e.register(nil)
	locked := from(c, "203.0.113.1")
	for range 5 {
		trySignIn(t, locked, "alice", "wrong")
	}
	if st := trySignIn(t, locked, "alice", "wrong"); st != http.StatusTooManyRequests {
		t.Fatalf("6th failure: %d, want 429", st)
	}
	// 200 failures for fresh usernames from fresh addresses: several
	// times the key cap of every login rule.
	for i := range 200 {
		trySignIn(t, from(c, fmt.Sprintf("198.51.%d.%d", i/200, i%200+1)), fmt.Sprintf("nobody%d", i), "guess")
	}
	if st := trySignIn(t, locked, "alice", testUsers["alice"]); st != http.StatusTooManyRequests {
		t.Errorf("the locked (user, address) after a flood of new keys: %d, want 429 (the lockout survives)", st)
	}
}

// pendingSignIns counts the pending sign-ins in the server's database and
// returns the largest row's size in bytes.
func (e *env) pendingSignIns() (n, largest int) {
	e.t.Helper()
	db, err := sql.Open("sqlite", "file:"+e.dbPath+"?mode=ro")
	if err != nil {
		e.t.Fatal(err)
	}
	defer db.Close()
	err = db.QueryRow(`SELECT count(*), coalesce(max(length(id_hash) + length(browser_hash) + length(addr_key) +
		length(client_id) + length(client_name) + length(redirect_uri) + length(state) + length(code_challenge) +
		length(scope) + length(resource) + 32), 0) FROM signins`).Scan(&n, &largest)
	if err != nil {
		e.t.Fatal(err)
	}
	return n, largest
}

// Issue item 1: 10,000 plain GETs of /authorize from one address filled the
// pending sign-in table, and every user's sign-in then got 503 "Busy" for
// ten minutes; each pending sign-in kept a full copy of the client. Now
// pending sign-ins are bounded per address and per browser (the oldest is
// evicted), hold only what was validated, and starting them is throttled.
func TestHostilePendingSignInFlood(t *testing.T) {
	e := newProxiedEnv(t, func(c *mcpauth.Config) {
		mcpauth.SetStoreLimits(c, authstore.Limits{SignIns: 1000, SignInsPerAddr: 20, SignInsPerBrowser: 3})
	})
	var uris []string
	for i := range 7 { // close to the 8 KiB metadata cap
		uris = append(uris, fmt.Sprintf("https://client.example/%d/%s", i, strings.Repeat("u", 990)))
	}
	big := e.register(map[string]any{"redirect_uris": uris, "client_name": strings.Repeat("N", 200)})
	big.RedirectURI = uris[0]
	victim := from(e.register(nil), "198.51.100.50")
	// The victim opens the sign-in page; the flood starts while it is open.
	page, err := victim.OpenAuthorize(ctx(t), mcpauthtest.AuthorizeOptions{})
	if err != nil {
		t.Fatal(err)
	}

	_, challenge := mcpauthtest.PKCE()
	flood := authorizeQuery(big, url.Values{"code_challenge": {challenge}, "state": {strings.Repeat("s", 2048)}}).Encode()
	throttled := 0
	for range 400 {
		resp, body := e.get("/authorize?"+flood, xff("203.0.113.13"))
		switch resp.StatusCode {
		case http.StatusOK:
		case http.StatusTooManyRequests:
			if resp.Header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
			throttled++
		default:
			t.Fatalf("flood: %d %.200s", resp.StatusCode, body)
		}
	}
	if throttled != 100 {
		t.Errorf("%d of 400 sign-ins started from one address were throttled, want 100 (300 per 10 minutes)", throttled)
	}
	n, largest := e.pendingSignIns()
	if n > 20+1 {
		t.Errorf("%d pending sign-ins after a flood from one address, want at most 21 (20 per address, and the victim's)", n)
	}
	if largest > 2048+1024+512 {
		t.Errorf("a pending sign-in takes %d bytes: more than the state, one redirect URI and a few fields (the client is not copied)", largest)
	}

	// The victim's sign-in, started before the flood, completes, and so
	// does a new one.
	res, err := page.Submit(ctx(t), "alice", testUsers["alice"], false)
	if err != nil || res.Code == "" {
		t.Fatalf("the victim's sign-in after a flood from another address: %v", err)
	}
	if _, err := victim.Authorize(ctx(t), mcpauthtest.AuthorizeOptions{Username: "bob", Password: testUsers["bob"]}); err != nil {
		t.Fatalf("a new sign-in after the flood: %v", err)
	}

	// One browser keeps its 3 most recent pending sign-ins.
	browser := mcpauthtest.NewBrowser()
	var forms []url.Values
	for range 4 {
		resp, body := getWith(t, browser, e.base+"/authorize?"+authorizeQuery(victim, nil).Encode())
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("browser sign-in: %d", resp.StatusCode)
		}
		f, err := mcpauthtest.ParseForm(resp.Request.URL, body)
		if err != nil {
			t.Fatal(err)
		}
		v, _ := f.Values("alice", testUsers["alice"], false)
		forms = append(forms, v)
	}
	for i, want := range []int{http.StatusForbidden, http.StatusSeeOther} {
		v := forms[[]int{0, 3}[i]]
		req, _ := http.NewRequest(http.MethodPost, e.base+"/authorize", strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("the browser's sign-in %d of 4 (3 kept per browser): %d, want %d", []int{1, 4}[i], resp.StatusCode, want)
		}
	}
}

// getWith GETs url with hc and returns the response with its body read.
func getWith(t *testing.T, hc *http.Client, u string) (*http.Response, []byte) {
	t.Helper()
	resp, err := hc.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// Issue item 5: past 100,000 clients every registration was refused for
// everyone, and never-used clients were kept 30 days. At the cap the oldest
// never-used clients are evicted now, and never-used clients expire after
// Config.UnusedClientTTL (default one day).
func TestHostileRegistrationFloodEvictsUnused(t *testing.T) {
	e := newProxiedEnv(t, func(c *mcpauth.Config) {
		mcpauth.SetStoreLimits(c, authstore.Limits{Clients: 20})
		c.CleanupInterval = 20 * time.Millisecond
	})
	used := e.register(nil)
	e.tokens(used)       // a code was issued: the client is in use
	for i := range 100 { // five times the cap, from many addresses
		req, _ := http.NewRequest(http.MethodPost, e.base+"/register", strings.NewReader(`{"redirect_uris":["https://flood.example/cb"]}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i+1))
		if resp, body := e.do(req); resp.StatusCode != http.StatusCreated {
			t.Fatalf("registration %d at the client cap: %d %s, want 201", i, resp.StatusCode, body)
		}
	}
	if _, err := used.Refresh(ctx(t), e.tokens(used).RefreshToken); err != nil {
		t.Errorf("a client in use after a registration flood: %v", err)
	}
	// A never-used client expires after a day; a used one stays.
	idle := e.register(nil)
	e.advance(25 * time.Hour)
	waitFor(t, "the never-used client to expire", func() bool {
		resp, _ := e.get("/authorize?"+authorizeQuery(idle, nil).Encode(), nil)
		return resp.StatusCode == http.StatusBadRequest
	})
	if resp, body := e.get("/authorize?"+authorizeQuery(used, nil).Encode(), nil); resp.StatusCode != http.StatusOK {
		t.Errorf("the used client after a day: %d %.200s", resp.StatusCode, body)
	}
}

// Issue item 8: after a malformed edit of users.txt, deleting the file had
// no effect at all: old tokens kept working, new sign-ins succeeded and
// nothing was logged. A malformed file now serves the lines that parse, a
// missing file has no users, and both are logged.
func TestHostileUsersFileMalformedThenDeleted(t *testing.T) {
	e := newEnv(t)
	c := e.register(nil)
	alice := e.tokens(c)
	// A typo on bob's line: alice, whose line parses, keeps working.
	editUsers(t, func() {
		writeFileNewer(t, e.usersPath, readUsersLine(t, e.usersPath, "alice")+"bob;not-a-hash\n")
	}, e.cur.Load())
	if !e.live(alice.AccessToken) {
		t.Error("alice's token stopped working after a typo on another line")
	}
	if st := trySignIn(t, c, "bob", testUsers["bob"]); st == http.StatusSeeOther {
		t.Error("bob signed in although his line is malformed")
	}
	if !strings.Contains(e.logs.String(), "users file rejected") {
		t.Errorf("the malformed edit was not logged:\n%s", e.logs.String())
	}
	// Deleting the file removes everybody.
	editUsers(t, func() {
		if err := os.Remove(e.usersPath); err != nil {
			t.Fatal(err)
		}
	}, e.cur.Load())
	if e.live(alice.AccessToken) {
		t.Error("alice's token still works after the users file was deleted")
	}
	if st := trySignIn(t, c, "alice", testUsers["alice"]); st == http.StatusSeeOther {
		t.Error("alice signed in after the users file was deleted")
	}
	if _, err := c.Refresh(ctx(t), alice.RefreshToken); err == nil {
		t.Error("alice refreshed after the users file was deleted")
	}
	if !strings.Contains(e.logs.String(), "level=WARN msg=\"users file reloaded\"") || !strings.Contains(e.logs.String(), "users=0") {
		t.Errorf("the deletion was not logged as a warning:\n%s", e.logs.String())
	}
}

// readUsersLine returns the line of user in the users file at path,
// with its newline.
func readUsersLine(t *testing.T, path, user string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.SplitAfter(string(data), "\n") {
		if strings.HasPrefix(l, user+":") {
			return l
		}
	}
	t.Fatalf("no line for %s in %s", user, path)
	return ""
}
