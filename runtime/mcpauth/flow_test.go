package mcpauth_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"html/template"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"golang.org/x/crypto/bcrypt"

	"github.com/mcpgen/create-mcp-server/runtime/mcpauth"
	"github.com/mcpgen/create-mcp-server/runtime/userfile"
)

// flowServer is a running mcpauth server with one user, alice.
type flowServer struct {
	URL       string
	UsersPath string
	Server    *mcpauth.Server
}

const (
	flowUser     = "alice"
	flowPassword = "correct horse battery staple"
)

// whoami is what the test tool returns.
type whoami struct {
	User     string   `json:"user"`
	ClientID string   `json:"client_id"`
	Scopes   []string `json:"scopes"`
}

// newFlowServer starts a server on a real SQLite file with a whoami tool.
func newFlowServer(t *testing.T, cfg mcpauth.Config) *flowServer {
	t.Helper()
	dir := t.TempDir()
	users := filepath.Join(dir, "users.txt")
	if err := userfile.Add(users, flowUser, flowPassword); err != nil {
		t.Fatal(err)
	}
	ms := server.NewMCPServer("flow-test", "1.0.0", server.WithToolCapabilities(false))
	ms.AddTool(mcp.NewTool("whoami", mcp.WithDescription("who is calling"), mcp.WithReadOnlyHintAnnotation(true)),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			id, ok := mcpauth.IdentityFromContext(ctx)
			if !ok {
				return mcp.NewToolResultError("no identity"), nil
			}
			b, _ := json.Marshal(whoami{id.User, id.ClientID, id.Scopes})
			return mcp.NewToolResultText(string(b)), nil
		})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(nil)
	ts.Listener.Close()
	ts.Listener = ln
	cfg.BaseURL = "http://" + ln.Addr().String()
	cfg.Database = filepath.Join(dir, "auth.db")
	cfg.UsersPath = users
	s, err := mcpauth.New(cfg, ms)
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = s
	ts.Start()
	t.Cleanup(func() {
		ts.Close()
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return &flowServer{URL: cfg.BaseURL, UsersPath: users, Server: s}
}

var (
	hiddenInput = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
	formAction  = regexp.MustCompile(`<form method="post" action="([^"]+)">`)
)

// login signs in headlessly through the HTML form the way a browser would:
// GET the authorization URL with a cookie jar, POST the form with the
// hidden fields, and return the 303's Location without following it.
func login(t *testing.T, authURL, username, password string) *url.URL {
	t.Helper()
	hc := browser()
	resp, err := hc.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET authorize: %s\n%s", resp.Status, page)
	}
	for _, name := range []string{`name="username"`, `name="password"`, `value="deny"`} {
		if !strings.Contains(string(page), name) {
			t.Fatalf("login page lacks %s:\n%s", name, page)
		}
	}
	form := url.Values{"username": {username}, "password": {password}, "action": {"approve"}}
	for _, m := range hiddenInput.FindAllStringSubmatch(string(page), -1) {
		form.Set(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	m := formAction.FindStringSubmatch(string(page))
	if m == nil {
		t.Fatalf("no form in login page:\n%s", page)
	}
	action, err := resp.Request.URL.Parse(html.UnescapeString(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	resp, err = hc.PostForm(action.String(), form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST login: %s, want 303\n%s", resp.Status, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// TestFlowMCPGoClient runs the whole flow with mcp-go's own OAuth client:
// discovery from the 401, dynamic registration, PKCE, sign-in through the
// HTML form, the code exchange, tools/list, tools/call seeing the signed-in
// user, and a refresh.
func TestFlowMCPGoClient(t *testing.T) {
	for _, tc := range []struct {
		name     string
		version  string // "" means the client's default (2026-07-28)
		wantVers string
	}{
		{"2026-07-28", "", mcp.LATEST_PROTOCOL_VERSION},
		{"2025-11-25", "2025-11-25", "2025-11-25"},
		{"2025-06-18", "2025-06-18", "2025-06-18"},
		{"2025-03-26", "2025-03-26", "2025-03-26"},
		{"2024-11-05", "2024-11-05", "2024-11-05"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := newFlowServer(t, mcpauth.Config{})
			ctx := t.Context()
			c, h, tokens := signIn(t, fs, flowUser, flowPassword, tc.version)

			res, err := c.Initialize(ctx, mcp.InitializeRequest{})
			if err != nil {
				t.Fatalf("Initialize after sign-in: %v", err)
			}
			if res.ProtocolVersion != tc.wantVers {
				t.Errorf("protocol version %q, want %q", res.ProtocolVersion, tc.wantVers)
			}
			tools, err := c.ListTools(ctx, mcp.ListToolsRequest{})
			if err != nil {
				t.Fatalf("ListTools: %v", err)
			}
			if len(tools.Tools) != 1 || tools.Tools[0].Name != "whoami" {
				t.Fatalf("tools/list = %+v, want whoami", tools.Tools)
			}
			who := callWhoami(t, c)
			if who.User != flowUser || who.ClientID != h.GetClientID() || len(who.Scopes) != 1 || who.Scopes[0] != "mcp" {
				t.Fatalf("whoami = %+v, want user %s, client %s, scopes [mcp]", who, flowUser, h.GetClientID())
			}

			// Refresh: the client refreshes proactively once its copy has expired.
			old, err := tokens.GetToken(ctx)
			if err != nil {
				t.Fatal(err)
			}
			expired := *old
			expired.ExpiresAt = time.Now().Add(-time.Minute)
			if err := tokens.SaveToken(ctx, &expired); err != nil {
				t.Fatal(err)
			}
			if who := callWhoami(t, c); who.User != flowUser {
				t.Fatalf("whoami after refresh = %+v", who)
			}
			cur, err := tokens.GetToken(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if cur.AccessToken == old.AccessToken || cur.RefreshToken == old.RefreshToken || cur.RefreshToken == "" {
				t.Fatalf("refresh did not rotate both tokens")
			}
		})
	}
}

// signIn connects an mcp-go OAuth client (on protocol version, or the
// client's default if "") and runs the flow to the point where it holds
// tokens for username.
func signIn(t *testing.T, fs *flowServer, username, password, version string) (*client.Client, *transport.OAuthHandler, *client.MemoryTokenStore) {
	t.Helper()
	return signInAs(t, fs, "", username, password, version)
}

// signInAs is signIn for a client with a fixed client_id (a client ID
// metadata document URL); with clientID "" the client registers itself.
func signInAs(t *testing.T, fs *flowServer, clientID, username, password, version string) (*client.Client, *transport.OAuthHandler, *client.MemoryTokenStore) {
	t.Helper()
	ctx := t.Context()
	tokens := client.NewMemoryTokenStore()
	const redirectURI = "http://127.0.0.1:43127/callback"
	tr, err := transport.NewStreamableHTTP(fs.URL+"/mcp", transport.WithHTTPOAuth(client.OAuthConfig{
		ClientID:    clientID,
		RedirectURI: redirectURI,
		Scopes:      []string{"mcp"},
		TokenStore:  tokens,
		PKCEEnabled: true,
	}))
	if err != nil {
		t.Fatal(err)
	}
	var opts []client.ClientOption
	if version != "" {
		opts = append(opts, client.WithProtocolVersion(version))
	}
	c := client.NewClient(tr, opts...)
	t.Cleanup(func() { c.Close() })
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}

	_, err = c.Initialize(ctx, mcp.InitializeRequest{})
	if !client.IsOAuthAuthorizationRequiredError(err) {
		t.Fatalf("first Initialize: %v, want an OAuth authorization-required error", err)
	}
	h := client.GetOAuthHandler(err)
	if clientID == "" {
		if err := h.RegisterClient(ctx, "flow test"); err != nil {
			t.Fatalf("RegisterClient: %v", err)
		}
	}
	verifier, err := client.GenerateCodeVerifier()
	if err != nil {
		t.Fatal(err)
	}
	state, err := client.GenerateState()
	if err != nil {
		t.Fatal(err)
	}
	authURL, err := h.GetAuthorizationURL(ctx, state, client.GenerateCodeChallenge(verifier))
	if err != nil {
		t.Fatalf("GetAuthorizationURL: %v", err)
	}

	loc := login(t, authURL, username, password)
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != redirectURI {
		t.Fatalf("redirected to %s, want %s", got, redirectURI)
	}
	q := loc.Query()
	if q.Get("state") != state || q.Get("iss") != fs.URL || q.Get("code") == "" {
		t.Fatalf("redirect query %v: want code, state %q, iss %q", q, state, fs.URL)
	}
	if err := h.ProcessAuthorizationResponse(ctx, q.Get("code"), q.Get("state"), verifier); err != nil {
		t.Fatalf("ProcessAuthorizationResponse: %v", err)
	}
	return c, h, tokens
}

func callWhoami(t *testing.T, c *client.Client) whoami {
	t.Helper()
	res, err := c.CallTool(t.Context(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "whoami"}})
	if err != nil {
		t.Fatalf("tools/call whoami: %v", err)
	}
	if res.IsError || len(res.Content) != 1 {
		t.Fatalf("tools/call whoami: %+v", res)
	}
	text, ok := res.Content[0].(mcp.TextContent)
	if !ok {
		t.Fatalf("tools/call whoami content %T", res.Content[0])
	}
	var w whoami
	if err := json.Unmarshal([]byte(text.Text), &w); err != nil {
		t.Fatalf("whoami result %q: %v", text.Text, err)
	}
	return w
}

// TestSessionsBoundToUser: a legacy-era MCP session belongs to the user who
// created it. Another user's valid token with that session id is refused
// as if the session did not exist; the owner keeps using it.
func TestSessionsBoundToUser(t *testing.T) {
	fs := newFlowServer(t, mcpauth.Config{})
	editUsers(t, func() {
		if err := userfile.Add(fs.UsersPath, "bob", "bob's password"); err != nil {
			t.Fatal(err)
		}
	}, fs.Server)
	alice, _, aliceTokens := signIn(t, fs, flowUser, flowPassword, "2025-11-25")
	if _, err := alice.Initialize(t.Context(), mcp.InitializeRequest{}); err != nil {
		t.Fatal(err)
	}
	session := alice.GetSessionId()
	if session == "" {
		t.Fatal("no session id on the 2025-11-25 handshake")
	}
	bob, _, bobTokens := signIn(t, fs, "bob", "bob's password", "2025-11-25")
	if _, err := bob.Initialize(t.Context(), mcp.InitializeRequest{}); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name   string
		method string
		tokens *client.MemoryTokenStore
		want   int
	}{
		{"owner", http.MethodPost, aliceTokens, http.StatusOK},
		{"other user", http.MethodPost, bobTokens, http.StatusNotFound},
		{"other user ends it", http.MethodDelete, bobTokens, http.StatusNotFound},
		{"owner, after the other user's attempt", http.MethodPost, aliceTokens, http.StatusOK},
		{"owner ends it", http.MethodDelete, aliceTokens, http.StatusOK},
		{"owner, after ending it", http.MethodPost, aliceTokens, http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := tc.tokens.GetToken(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			var body io.Reader
			if tc.method == http.MethodPost {
				body = strings.NewReader(`{"jsonrpc":"2.0","id":7,"method":"tools/list"}`)
			}
			req, _ := http.NewRequest(tc.method, fs.URL+"/mcp", body)
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set("Mcp-Session-Id", session)
			req.Header.Set("MCP-Protocol-Version", "2025-11-25")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			respBody, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("%s with alice's session: %s, want %d\n%s", tc.method, resp.Status, tc.want, respBody)
			}
		})
	}
}

// TestFlowClientMetadataDocument: a client identified by the URL of its
// client ID metadata document signs in without registering. (The document
// is served from loopback, which only AllowLoopbackClientMetadata permits.)
func TestFlowClientMetadataDocument(t *testing.T) {
	var docURL string
	var fetches atomic.Int32
	docs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		if r.URL.Path != "/client.json" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=300")
		json.NewEncoder(w).Encode(map[string]any{
			"client_id":                  docURL,
			"client_name":                "Metadata Client",
			"redirect_uris":              []string{"http://127.0.0.1/callback"}, // any port: loopback
			"token_endpoint_auth_method": "none",
		})
	}))
	defer docs.Close()
	docURL = docs.URL + "/client.json"

	fs := newFlowServer(t, mcpauth.Config{AllowLoopbackClientMetadata: true})
	resp, err := http.Get(fs.URL + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	var meta map[string]any
	json.NewDecoder(resp.Body).Decode(&meta)
	resp.Body.Close()
	if meta["client_id_metadata_document_supported"] != true {
		t.Errorf("metadata does not advertise client ID metadata documents: %v", meta)
	}

	c, h, tokens := signInAs(t, fs, docURL, flowUser, flowPassword, "")
	if _, err := c.Initialize(t.Context(), mcp.InitializeRequest{}); err != nil {
		t.Fatal(err)
	}
	if who := callWhoami(t, c); who.User != flowUser || who.ClientID != docURL || h.GetClientID() != docURL {
		t.Fatalf("whoami = %+v, want user %s and client %s", who, flowUser, docURL)
	}
	// Refresh: the token endpoint uses the client recorded at sign-in.
	tok, _ := tokens.GetToken(t.Context())
	expired := *tok
	expired.ExpiresAt = time.Now().Add(-time.Minute)
	tokens.SaveToken(t.Context(), &expired)
	if who := callWhoami(t, c); who.ClientID != docURL {
		t.Fatalf("whoami after refresh = %+v", who)
	}
	if cur, _ := tokens.GetToken(t.Context()); cur.RefreshToken == tok.RefreshToken {
		t.Fatal("no refresh happened")
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("the metadata document was fetched %d times, want 1 (cached per max-age)", n)
	}

	// Without the option the same document is refused: loopback is not public.
	strict := newFlowServer(t, mcpauth.Config{})
	resp, err = http.Get(strict.URL + "/authorize?" + url.Values{
		"client_id": {docURL}, "redirect_uri": {"http://127.0.0.1:5555/callback"}, "response_type": {"code"},
		"code_challenge": {strings.Repeat("a", 43)}, "code_challenge_method": {"S256"},
	}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("authorize with a loopback metadata document, default config: %s, want 400", resp.Status)
	}
}

// TestLoginOrigin: the sign-in POST is refused when it comes from another
// site, and accepted from the page itself, including the "Origin: null"
// that browsers send from a page with Referrer-Policy: no-referrer.
func TestLoginOrigin(t *testing.T) {
	fs := newFlowServer(t, mcpauth.Config{})
	reg, err := http.Post(fs.URL+"/register", "application/json",
		strings.NewReader(`{"redirect_uris":["http://127.0.0.1/cb"],"client_name":"origin test"}`))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		ClientID string `json:"client_id"`
	}
	json.NewDecoder(reg.Body).Decode(&c)
	reg.Body.Close()
	verifier := strings.Repeat("v", 43)
	authURL := fs.URL + "/authorize?" + url.Values{
		"client_id": {c.ClientID}, "redirect_uri": {"http://127.0.0.1:9/cb"}, "response_type": {"code"},
		"code_challenge": {client.GenerateCodeChallenge(verifier)}, "code_challenge_method": {"S256"},
	}.Encode()

	for _, tc := range []struct {
		name, origin, site string
		want               int
	}{
		{"no headers", "", "", http.StatusSeeOther},
		{"own origin", fs.URL, "same-origin", http.StatusSeeOther},
		{"null origin from the page", "null", "same-origin", http.StatusSeeOther},
		{"null origin, no fetch metadata", "null", "", http.StatusForbidden},
		{"foreign origin", "https://evil.example", "cross-site", http.StatusForbidden},
		{"foreign origin only", "https://evil.example", "", http.StatusForbidden},
		{"cross-site fetch metadata only", "", "cross-site", http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hc := browser()
			resp, err := hc.Get(authURL)
			if err != nil {
				t.Fatal(err)
			}
			page, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			form := url.Values{"username": {flowUser}, "password": {flowPassword}, "action": {"approve"}}
			for _, m := range hiddenInput.FindAllStringSubmatch(string(page), -1) {
				form.Set(m[1], html.UnescapeString(m[2]))
			}
			req, _ := http.NewRequest(http.MethodPost, fs.URL+"/authorize", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			if tc.site != "" {
				req.Header.Set("Sec-Fetch-Site", tc.site)
			}
			resp, err = hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("POST /authorize: %s, want %d", resp.Status, tc.want)
			}
		})
	}
}

// TestLoginPageDefaultButton: pressing Enter submits a form with its first
// submit button, which must be the one that approves.
func TestLoginPageDefaultButton(t *testing.T) {
	fs := newFlowServer(t, mcpauth.Config{})
	_, h, _ := signIn(t, fs, flowUser, flowPassword, "")
	resp, err := http.Get(fs.URL + "/authorize?" + url.Values{
		"client_id": {h.GetClientID()}, "redirect_uri": {"http://127.0.0.1:43127/callback"}, "response_type": {"code"},
		"code_challenge": {strings.Repeat("a", 43)}, "code_challenge_method": {"S256"},
	}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	first := regexp.MustCompile(`<button type="submit" name="action" value="([a-z]+)"`).FindSubmatch(page)
	if first == nil || string(first[1]) != "approve" {
		t.Fatalf("first submit button is %q, want approve", first)
	}
	if !strings.Contains(string(page), `rel="icon"`) {
		t.Error("no inline icon: browsers request /favicon.ico and log a 404")
	}
}

// TestServeShutdown: cancelling the context stops Serve promptly even while
// a client holds a long-lived MCP stream open, and requests in flight are
// not cut off with a 5xx.
func TestServeShutdown(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users.txt")
	if err := userfile.Add(users, flowUser, flowPassword); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ms := server.NewMCPServer("shutdown-test", "1.0.0")
	started := make(chan struct{})
	ms.AddTool(mcp.NewTool("slow"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		close(started)
		time.Sleep(500 * time.Millisecond)
		return mcp.NewToolResultText("done"), nil
	})
	s, err := mcpauth.New(mcpauth.Config{BaseURL: base, Database: filepath.Join(dir, "auth.db"), UsersPath: users}, ms)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()

	fs := &flowServer{URL: base, UsersPath: users, Server: s}
	c, _, tokens := signIn(t, fs, flowUser, flowPassword, "2025-11-25")
	if _, err := c.Initialize(t.Context(), mcp.InitializeRequest{}); err != nil {
		t.Fatal(err)
	}
	tok, err := tokens.GetToken(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// A standalone GET stream stays open until the server ends it.
	req, _ := http.NewRequest(http.MethodGet, base+"/mcp", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Mcp-Session-Id", c.GetSessionId())
	req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET stream: %s", resp.Status)
	}

	// A tool call in flight when shutdown starts still completes.
	slow := make(chan error, 1)
	go func() {
		res, err := c.CallTool(context.Background(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "slow"}})
		if err == nil && res.IsError {
			err = fmt.Errorf("tool error: %+v", res.Content)
		}
		slow <- err
	}()
	<-started
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve after cancel: %v", err)
		}
	case <-time.After(8 * time.Second):
		t.Fatal("Serve did not return after the context was cancelled")
	}
	if err := <-slow; err != nil {
		t.Errorf("tool call in flight during shutdown: %v", err)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Logf("stream ended with %v", err)
	}
}

// TestListenAndServe: it serves the metadata on cfg.Addr and returns nil
// once the context is cancelled.
func TestListenAndServe(t *testing.T) {
	dir := t.TempDir()
	var (
		addr   string
		cancel context.CancelFunc
		done   chan error
		resp   *http.Response
	)
	// The port is found free, closed and then taken by ListenAndServe: on a
	// machine running other tests it may be taken by someone else in
	// between. Then try another.
attempts:
	for attempt := 0; resp == nil; attempt++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr = ln.Addr().String()
		ln.Close() // free the port for ListenAndServe
		var ctx context.Context
		ctx, cancel = context.WithCancel(t.Context())
		done = make(chan error, 1)
		go func() {
			done <- mcpauth.ListenAndServe(ctx, mcpauth.Config{Addr: addr, Database: filepath.Join(dir, "auth.db"),
				UsersPath: filepath.Join(dir, "users.txt")}, server.NewMCPServer("las-test", "1.0.0"))
		}()
		// Wait until it listens: New opens and migrates the database
		// first, which takes a while on a busy machine. The deadline only
		// bounds a server that never listens.
		for deadline := time.Now().Add(30 * time.Second); resp == nil; time.Sleep(20 * time.Millisecond) {
			select {
			case serr := <-done:
				cancel()
				if errors.Is(serr, syscall.EADDRINUSE) && attempt < 5 {
					t.Logf("port %s taken meanwhile (%v); trying another", addr, serr)
					continue attempts
				}
				t.Fatalf("ListenAndServe returned before serving: %v", serr)
			default:
			}
			resp, err = http.Get("http://" + addr + "/.well-known/oauth-authorization-server")
			if err != nil && time.Now().After(deadline) {
				t.Fatalf("ListenAndServe does not serve after 30 s: %v", err)
			}
		}
	}
	var meta struct {
		Issuer string `json:"issuer"`
	}
	json.NewDecoder(resp.Body).Decode(&meta)
	resp.Body.Close()
	if meta.Issuer != "http://"+addr {
		t.Errorf("issuer %q, want http://%s (the default base URL)", meta.Issuer, addr)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ListenAndServe: %v", err)
		}
	case <-time.After(8 * time.Second):
		t.Fatal("ListenAndServe did not return")
	}
}

// codeFor registers a public client and signs in through the form,
// returning the client id, an authorization code and its verifier.
func codeFor(t *testing.T, fs *flowServer, redirectURI string) (clientID, code, verifier string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"redirect_uris": []string{redirectURI}, "client_name": "test"})
	resp, err := http.Post(fs.URL+"/register", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	var reg struct {
		ClientID string `json:"client_id"`
	}
	json.NewDecoder(resp.Body).Decode(&reg)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || reg.ClientID == "" {
		t.Fatalf("register: %s", resp.Status)
	}
	verifier, _ = client.GenerateCodeVerifier()
	loc := login(t, fs.URL+"/authorize?"+url.Values{
		"client_id": {reg.ClientID}, "redirect_uri": {redirectURI}, "response_type": {"code"},
		"code_challenge": {client.GenerateCodeChallenge(verifier)}, "code_challenge_method": {"S256"},
	}.Encode(), flowUser, flowPassword)
	return reg.ClientID, loc.Query().Get("code"), verifier
}

// TestPublicClientAuthentication: a public client authenticates with its
// client_id alone; an empty secret (in the body or in Basic credentials)
// counts as none; any real secret is refused with 401 invalid_client.
func TestPublicClientAuthentication(t *testing.T) {
	fs := newFlowServer(t, mcpauth.Config{})
	const redirectURI = "http://127.0.0.1:8123/cb"
	for _, tc := range []struct {
		name      string
		secret    *string // client_secret in the body
		basic     string  // Basic credentials "id:secret" with id filled in, or ""
		encode    bool    // percent-encode every byte of the id in Basic
		want      int
		wantBasic bool // WWW-Authenticate: Basic expected (on every 401)
	}{
		{"client_id only", nil, "", false, 200, false},
		{"empty client_secret", new(""), "", false, 200, false},
		{"Basic with empty secret", nil, "%s:", false, 200, false},
		{"Basic, every byte percent-encoded", nil, "%s:", true, 200, false},
		{"made-up client_secret", new("made-up"), "", false, 401, true},
		{"Basic with made-up secret", nil, "%s:made-up", false, 401, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, code, verifier := codeFor(t, fs, redirectURI)
			form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier},
				"redirect_uri": {redirectURI}}
			if tc.basic == "" {
				form.Set("client_id", id)
			}
			if tc.secret != nil {
				form.Set("client_secret", *tc.secret)
			}
			req, _ := http.NewRequest(http.MethodPost, fs.URL+"/token", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tc.basic != "" {
				user := id
				if tc.encode { // RFC 6749 §2.3.1: Basic carries form-encoded values
					user = ""
					for i := 0; i < len(id); i++ {
						user += fmt.Sprintf("%%%02X", id[i])
					}
				}
				req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf(tc.basic, user))))
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("token: %s %s, want %d", resp.Status, body, tc.want)
			}
			if got := strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic"); got != tc.wantBasic {
				t.Errorf("WWW-Authenticate %q, want Basic challenge: %v", resp.Header.Get("WWW-Authenticate"), tc.wantBasic)
			}
			if resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", resp.Header.Get("Cache-Control"))
			}
		})
	}
}

// TestMetadataDocuments: both RFC 9728 paths (with or without a trailing
// slash) serve the same document, CORS-open for the headers browser clients
// send; the RFC 8414 document names this issuer; no OIDC document exists.
func TestMetadataDocuments(t *testing.T) {
	fs := newFlowServer(t, mcpauth.Config{ResourceName: "Flow"})
	var prm []byte
	for _, path := range []string{
		"/.well-known/oauth-protected-resource/mcp",
		"/.well-known/oauth-protected-resource/mcp/",
		"/.well-known/oauth-protected-resource",
		"/.well-known/oauth-protected-resource/",
	} {
		req, _ := http.NewRequest(http.MethodOptions, fs.URL+path, nil)
		req.Header.Set("Origin", "https://app.example")
		req.Header.Set("Access-Control-Request-Method", "GET")
		req.Header.Set("Access-Control-Request-Headers", "mcp-protocol-version")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		allow := strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers"))
		if resp.Header.Get("Access-Control-Allow-Origin") != "*" || resp.StatusCode >= 300 {
			t.Errorf("OPTIONS %s: %s, Allow-Origin %q", path, resp.Status, resp.Header.Get("Access-Control-Allow-Origin"))
		}
		for _, h := range []string{"mcp-protocol-version", "content-type", "authorization"} {
			if !strings.Contains(allow, h) {
				t.Errorf("OPTIONS %s: Access-Control-Allow-Headers %q lacks %s", path, allow, h)
			}
		}
		resp, err = http.Get(fs.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("GET %s: %s %s", path, resp.Status, resp.Header.Get("Content-Type"))
		}
		if prm == nil {
			prm = body
		} else if string(body) != string(prm) {
			t.Errorf("GET %s differs from the path-inserted document", path)
		}
	}
	var doc struct {
		Resource             string   `json:"resource"`
		AuthorizationServers []string `json:"authorization_servers"`
		ScopesSupported      []string `json:"scopes_supported"`
		BearerMethods        []string `json:"bearer_methods_supported"`
		ResourceName         string   `json:"resource_name"`
	}
	if err := json.Unmarshal(prm, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Resource != fs.URL+"/mcp" || len(doc.AuthorizationServers) != 1 || doc.AuthorizationServers[0] != fs.URL ||
		len(doc.BearerMethods) != 1 || doc.BearerMethods[0] != "header" || doc.ResourceName != "Flow" {
		t.Errorf("protected-resource metadata: %s", prm)
	}

	resp, err := http.Get(fs.URL + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	var as map[string]any
	json.NewDecoder(resp.Body).Decode(&as)
	resp.Body.Close()
	for k, want := range map[string]any{
		"issuer":                 fs.URL,
		"authorization_endpoint": fs.URL + "/authorize",
		"token_endpoint":         fs.URL + "/token",
		"registration_endpoint":  fs.URL + "/register",
		"revocation_endpoint":    fs.URL + "/revoke",
		"authorization_response_iss_parameter_supported": true,
	} {
		if as[k] != want {
			t.Errorf("authorization-server metadata %s = %v, want %v", k, as[k], want)
		}
	}
	if got := fmt.Sprint(as["code_challenge_methods_supported"]); got != "[S256]" {
		t.Errorf("code_challenge_methods_supported = %s, want [S256]", got)
	}
	for _, path := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-protected-resource/other",
		"/.well-known/oauth-protected-resource/mcp/x"} {
		resp, err = http.Get(fs.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %s, want 404", path, resp.Status)
		}
	}

	// Without a configured name, the resource is named after its host.
	plain := newFlowServer(t, mcpauth.Config{})
	resp, err = http.Get(plain.URL + "/.well-known/oauth-protected-resource/mcp")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if doc.ResourceName != "127.0.0.1" || fmt.Sprint(doc.ScopesSupported) != "[mcp]" {
		t.Errorf("resource_name %q, scopes_supported %v; want 127.0.0.1 and [mcp]", doc.ResourceName, doc.ScopesSupported)
	}
}

// TestLoginTransactionExpires: the sign-in form is bound to a server-side
// transaction that lives ten minutes; posting it later is refused.
func TestLoginTransactionExpires(t *testing.T) {
	var offset atomic.Int64
	fs := newFlowServer(t, mcpauth.Config{Now: func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }})
	for _, tc := range []struct {
		wait time.Duration
		want int
	}{
		{9 * time.Minute, http.StatusSeeOther},
		{11 * time.Minute, http.StatusForbidden},
	} {
		t.Run(tc.wait.String(), func(t *testing.T) {
			reg, err := http.Post(fs.URL+"/register", "application/json", strings.NewReader(`{"redirect_uris":["http://127.0.0.1/cb"]}`))
			if err != nil {
				t.Fatal(err)
			}
			var c struct {
				ClientID string `json:"client_id"`
			}
			json.NewDecoder(reg.Body).Decode(&c)
			reg.Body.Close()
			hc := browser()
			resp, err := hc.Get(fs.URL + "/authorize?" + url.Values{
				"client_id": {c.ClientID}, "redirect_uri": {"http://127.0.0.1:9/cb"}, "response_type": {"code"},
				"code_challenge": {strings.Repeat("a", 43)}, "code_challenge_method": {"S256"},
			}.Encode())
			if err != nil {
				t.Fatal(err)
			}
			page, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			form := url.Values{"username": {flowUser}, "password": {flowPassword}, "action": {"approve"}}
			for _, m := range hiddenInput.FindAllStringSubmatch(string(page), -1) {
				form.Set(m[1], html.UnescapeString(m[2]))
			}
			offset.Add(int64(tc.wait))
			resp, err = hc.PostForm(fs.URL+"/authorize", form)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("POST %v after the form was served: %s, want %d", tc.wait, resp.Status, tc.want)
			}
		})
	}
}

// register posts client metadata to /register and returns the decoded
// response, failing unless it is 201.
func register(t *testing.T, fs *flowServer, meta map[string]any) map[string]any {
	t.Helper()
	body, _ := json.Marshal(meta)
	resp, err := http.Post(fs.URL+"/register", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("register %v: %s %v", meta, resp.Status, out)
	}
	return out
}

// browser is a cookie-keeping client that does not follow redirects.
func browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// loginForm GETs an authorization URL and returns the status and, for the
// sign-in page, its hidden fields.
func loginForm(t *testing.T, hc *http.Client, authURL string) (int, url.Values) {
	t.Helper()
	resp, err := hc.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	form := url.Values{}
	for _, m := range hiddenInput.FindAllStringSubmatch(string(page), -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	return resp.StatusCode, form
}

// postLogin posts the sign-in form and returns the response (body read).
func postLogin(t *testing.T, hc *http.Client, fs *flowServer, form url.Values) (*http.Response, string) {
	t.Helper()
	resp, err := hc.PostForm(fs.URL+"/authorize", form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

func authorizeURL(fs *flowServer, clientID, redirectURI string, extra url.Values) string {
	q := url.Values{"client_id": {clientID}, "redirect_uri": {redirectURI}, "response_type": {"code"},
		"code_challenge": {strings.Repeat("a", 43)}, "code_challenge_method": {"S256"}}
	for k, v := range extra {
		q[k] = v
	}
	return fs.URL + "/authorize?" + q.Encode()
}

// TestMCPEndpointOriginHostAndCORS: the checks in front of /mcp, over HTTP
// on a loopback listener.
func TestMCPEndpointOriginHostAndCORS(t *testing.T) {
	fs := newFlowServer(t, mcpauth.Config{AllowedOrigins: []string{"https://app.example"}})
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(fs.URL, "http://"))
	for _, tc := range []struct {
		name, method, origin, host string
		want                       int
		cors                       bool
	}{
		{"no origin", http.MethodPost, "", "", 401, false},
		{"own origin", http.MethodPost, fs.URL, "", 401, true},
		{"allowed origin", http.MethodPost, "https://app.example", "", 401, true},
		{"foreign origin", http.MethodPost, "https://evil.example", "", 403, false},
		{"null origin", http.MethodPost, "null", "", 403, false},
		{"look-alike origin", http.MethodPost, "https://app.example.evil", "", 403, false},
		{"preflight, no token", http.MethodOptions, "https://app.example", "", 204, true},
		{"rebinding host", http.MethodPost, "", "evil.example", 403, false},
		{"rebinding host with port", http.MethodPost, "", "evil.example:" + port, 403, false},
		{"localhost", http.MethodPost, "", "localhost:" + port, 401, false},
		{"ipv6 loopback", http.MethodPost, "", "[::1]:" + port, 401, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, fs.URL+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
			req.Header.Set("Content-Type", "application/json")
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			if tc.method == http.MethodOptions {
				req.Header.Set("Access-Control-Request-Method", "POST")
				req.Header.Set("Access-Control-Request-Headers", "authorization, mcp-protocol-version")
			}
			if tc.host != "" {
				req.Host = tc.host
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("%s: %s, want %d", tc.name, resp.Status, tc.want)
			}
			acao := resp.Header.Get("Access-Control-Allow-Origin")
			if tc.cors != (acao == tc.origin && acao != "") {
				t.Errorf("Access-Control-Allow-Origin %q with Origin %q", acao, tc.origin)
			}
			if tc.cors && tc.method == http.MethodPost {
				expose := strings.ToLower(resp.Header.Get("Access-Control-Expose-Headers"))
				for _, h := range []string{"www-authenticate", "mcp-session-id", "mcp-protocol-version"} {
					if !strings.Contains(expose, h) {
						t.Errorf("Access-Control-Expose-Headers %q lacks %s", expose, h)
					}
				}
			}
			if tc.want == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer resource_metadata=") {
				t.Errorf("401 challenge %q", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
}

// TestRegistrationEcho: the 201 echoes the registered metadata, omitting
// what is empty, and gives a secret only to confidential clients.
func TestRegistrationEcho(t *testing.T) {
	fs := newFlowServer(t, mcpauth.Config{})
	uris := []any{"http://127.0.0.1/cb", "cursor://anysphere.cursor-mcp/oauth/callback"}
	got := register(t, fs, map[string]any{"redirect_uris": uris, "client_name": "My App", "scope": "openid mcp",
		"client_id": "chosen-by-client", "software_id": "x"})
	for k, want := range map[string]any{
		"client_name": "My App", "scope": "mcp", "token_endpoint_auth_method": "none",
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
	if fmt.Sprint(got["redirect_uris"]) != fmt.Sprint(uris) || fmt.Sprint(got["grant_types"]) != "[authorization_code refresh_token]" ||
		fmt.Sprint(got["response_types"]) != "[code]" {
		t.Errorf("echo %v", got)
	}
	if id, _ := got["client_id"].(string); id == "" || id == "chosen-by-client" {
		t.Errorf("client_id %q: want one chosen by the server", id)
	}
	if _, ok := got["client_secret"]; ok {
		t.Error("a public client got a client_secret")
	}
	if n, _ := got["client_id_issued_at"].(float64); n <= 0 {
		t.Errorf("client_id_issued_at %v", got["client_id_issued_at"])
	}

	bare := register(t, fs, map[string]any{"redirect_uris": uris, "client_name": "  ", "scope": "openid"})
	for _, k := range []string{"client_name", "scope", "client_secret", "client_secret_expires_at"} {
		if v, ok := bare[k]; ok {
			t.Errorf("%s = %#v, want it omitted", k, v)
		}
	}

	conf := register(t, fs, map[string]any{"redirect_uris": uris, "token_endpoint_auth_method": "client_secret_post"})
	if s, _ := conf["client_secret"].(string); len(s) < 43 || conf["client_secret_expires_at"] != float64(0) {
		t.Errorf("confidential client: secret %q, expires %v", s, conf["client_secret_expires_at"])
	}
}

// TestDenyNeedsCredentials: Deny with valid credentials redirects with
// access_denied, state and iss; Deny without them only shows the page.
func TestDenyNeedsCredentials(t *testing.T) {
	fs := newFlowServer(t, mcpauth.Config{})
	id := register(t, fs, map[string]any{"redirect_uris": []string{"http://127.0.0.1/cb"}})["client_id"].(string)
	for _, tc := range []struct {
		name, user, password string
		redirect             bool
	}{
		{"wrong password", flowUser, "wrong", false},
		{"unknown user", "mallory", "x", false},
		{"no password", flowUser, "", false},
		{"valid", flowUser, flowPassword, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hc := browser()
			_, form := loginForm(t, hc, authorizeURL(fs, id, "http://127.0.0.1:7/cb", url.Values{"state": {"s t&=ä"}}))
			form.Set("username", tc.user)
			form.Set("password", tc.password)
			form.Set("action", "deny")
			resp, _ := postLogin(t, hc, fs, form)
			loc := resp.Header.Get("Location")
			if !tc.redirect {
				if loc != "" || resp.StatusCode/100 == 3 {
					t.Fatalf("deny without valid credentials: %s, Location %q", resp.Status, loc)
				}
				return
			}
			u, err := url.Parse(loc)
			if resp.StatusCode != http.StatusSeeOther || err != nil {
				t.Fatalf("deny: %s %q", resp.Status, loc)
			}
			q := u.Query()
			if q.Get("error") != "access_denied" || q.Get("state") != "s t&=ä" || q.Get("iss") != fs.URL || q.Has("code") {
				t.Fatalf("deny redirect %q", loc)
			}
		})
	}
}

// TestLoginThrottlePerIP: failed sign-ins are counted per client IP too,
// across usernames.
func TestLoginThrottlePerIP(t *testing.T) {
	fs := newFlowServer(t, mcpauth.Config{})
	// A cheap hash: unknown users are checked against a dummy of the file's cost.
	hash, err := bcrypt.GenerateFromPassword([]byte(flowPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	editUsers(t, func() { writeFileNewer(t, fs.UsersPath, flowUser+":"+string(hash)+"\n") }, fs.Server)
	id := register(t, fs, map[string]any{"redirect_uris": []string{"http://127.0.0.1/cb"}})["client_id"].(string)
	hc := browser()
	_, form := loginForm(t, hc, authorizeURL(fs, id, "http://127.0.0.1:7/cb", nil))
	for i := range 21 {
		form.Set("username", fmt.Sprintf("user%d", i)) // a new name each time: the per-user limit never trips
		form.Set("password", "guess")
		form.Set("action", "approve")
		resp, page := postLogin(t, hc, fs, form)
		if resp.StatusCode == http.StatusTooManyRequests {
			if i < 20 || resp.Header.Get("Retry-After") == "" {
				t.Fatalf("429 after %d failures, Retry-After %q; want it after 20, with Retry-After", i, resp.Header.Get("Retry-After"))
			}
			return
		}
		m := hiddenInput.FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("attempt %d: %s without a form", i, resp.Status)
		}
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	t.Fatal("21 failed sign-ins from one IP were never throttled")
}

// TestStateLength: state up to 2 KiB is echoed byte for byte; longer is an
// error page.
func TestStateLength(t *testing.T) {
	fs := newFlowServer(t, mcpauth.Config{})
	id := register(t, fs, map[string]any{"redirect_uris": []string{"http://127.0.0.1/cb"}})["client_id"].(string)
	long := strings.Repeat("é&=+ /", 2048)[:2048]
	hc := browser()
	status, form := loginForm(t, hc, authorizeURL(fs, id, "http://127.0.0.1:7/cb", url.Values{"state": {long}}))
	if status != http.StatusOK {
		t.Fatalf("2 KiB state: %d", status)
	}
	form.Set("username", flowUser)
	form.Set("password", flowPassword)
	form.Set("action", "approve")
	resp, _ := postLogin(t, hc, fs, form)
	u, _ := url.Parse(resp.Header.Get("Location"))
	if u == nil || u.Query().Get("state") != long {
		t.Fatalf("state not echoed exactly: %s", resp.Header.Get("Location"))
	}
	status, _ = loginForm(t, browser(), authorizeURL(fs, id, "http://127.0.0.1:7/cb", url.Values{"state": {long + "x"}}))
	if status != http.StatusBadRequest {
		t.Fatalf("state over 2 KiB: %d, want 400", status)
	}
}

// TestEmptyParametersAreOmitted: "resource=" and "scope=" count as absent
// (RFC 6749 §3.1), at the authorization and token endpoints.
func TestEmptyParametersAreOmitted(t *testing.T) {
	fs := newFlowServer(t, mcpauth.Config{})
	const redirectURI = "http://127.0.0.1:8123/cb"
	id := register(t, fs, map[string]any{"redirect_uris": []string{redirectURI}})["client_id"].(string)
	verifier, _ := client.GenerateCodeVerifier()
	loc := login(t, fs.URL+"/authorize?"+url.Values{
		"client_id": {id}, "redirect_uri": {redirectURI}, "response_type": {"code"}, "resource": {""}, "scope": {""},
		"code_challenge": {client.GenerateCodeChallenge(verifier)}, "code_challenge_method": {"S256"},
	}.Encode(), flowUser, flowPassword)
	token := func(form url.Values) map[string]any {
		t.Helper()
		resp, err := http.PostForm(fs.URL+"/token", form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("token %v: %s %v", form.Get("grant_type"), resp.Status, out)
		}
		return out
	}
	tok := token(url.Values{"grant_type": {"authorization_code"}, "client_id": {id}, "code": {loc.Query().Get("code")},
		"code_verifier": {verifier}, "redirect_uri": {redirectURI}, "resource": {""}})
	if tok["scope"] != "mcp" {
		t.Errorf("scope %v, want the default mcp", tok["scope"])
	}
	token(url.Values{"grant_type": {"refresh_token"}, "client_id": {id}, "refresh_token": {tok["refresh_token"].(string)},
		"scope": {""}, "resource": {""}})
}

// TestTokenEndpointMethods: every answer of /token and /revoke is
// uncacheable, and a wrong method gets a JSON error.
func TestTokenEndpointMethods(t *testing.T) {
	fs := newFlowServer(t, mcpauth.Config{})
	for _, path := range []string{"/token", "/revoke"} {
		for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodOptions} {
			req, _ := http.NewRequest(method, fs.URL+path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("%s %s: Cache-Control %q", method, path, resp.Header.Get("Cache-Control"))
			}
			if method != http.MethodOptions && (resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Content-Type") != "application/json") {
				t.Errorf("%s %s: %s %s, want 405 JSON", method, path, resp.Status, resp.Header.Get("Content-Type"))
			}
		}
	}
}

// TestWrongPasswordKeepsUsername: after a failed sign-in the form comes
// back with the username filled in (escaped) and the password field
// focused; the password is never echoed.
func TestWrongPasswordKeepsUsername(t *testing.T) {
	fs := newFlowServer(t, mcpauth.Config{})
	id := register(t, fs, map[string]any{"redirect_uris": []string{"http://127.0.0.1/cb"}})["client_id"].(string)
	for _, user := range []string{flowUser, `<b>"mallory"</b>`} {
		hc := browser()
		_, form := loginForm(t, hc, authorizeURL(fs, id, "http://127.0.0.1:7/cb", nil))
		const password = "not-the-password-4711"
		form.Set("username", user)
		form.Set("password", password)
		form.Set("action", "approve")
		resp, page := postLogin(t, hc, fs, form)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%q: %s", user, resp.Status)
		}
		if !strings.Contains(page, `value="`+html.EscapeString(user)+`"`) && !strings.Contains(page, `value="`+template.HTMLEscapeString(user)+`"`) {
			t.Errorf("%q: the username is not kept in the form", user)
		}
		if strings.Contains(page, password) {
			t.Errorf("%q: the password is echoed", user)
		}
		if !regexp.MustCompile(`<input type="password"[^>]*autofocus`).MatchString(page) {
			t.Errorf("%q: the password field is not focused", user)
		}
	}
}
