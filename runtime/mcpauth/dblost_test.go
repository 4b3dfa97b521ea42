package mcpauth_test

// A database lost while serving: every endpoint that needs it answers 503
// temporarily_unavailable (a JSON error for the OAuth endpoints, a page for
// the sign-in pages, 503 on /mcp), never a 500 and never a silent success,
// and the server recovers by itself when the database returns.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mcpgen/create-mcp-server/runtime/mcpauth"
	"github.com/mcpgen/create-mcp-server/runtime/mcpauthtest"
)

// testPostgresDatabase creates a database of its own in the cluster named by
// MCP_TEST_POSTGRES (dropped when t ends) and returns its URL and a function
// that takes it away (no connections allowed, existing ones terminated) or
// brings it back. Without MCP_TEST_POSTGRES the test is skipped.
func testPostgresDatabase(t *testing.T) (dsn string, available func(bool)) {
	t.Helper()
	base := os.Getenv("MCP_TEST_POSTGRES")
	if base == "" {
		if os.Getenv("MCP_REQUIRE_POSTGRES") == "1" {
			t.Fatal("MCP_REQUIRE_POSTGRES=1 but MCP_TEST_POSTGRES is not set")
		}
		t.Skip("PostgreSQL tests skipped: set MCP_TEST_POSTGRES to a postgres:// URL of a role that may create databases")
	}
	var b [6]byte
	rand.Read(b[:])
	name := "mcpauth_test_" + hex.EncodeToString(b[:])
	admin := func(sql string) {
		t.Helper()
		conn, err := pgx.Connect(context.Background(), base)
		if err != nil {
			t.Fatal("MCP_TEST_POSTGRES: cannot connect")
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	admin("CREATE DATABASE " + name)
	t.Cleanup(func() { admin("DROP DATABASE " + name + " WITH (FORCE)") })
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal("MCP_TEST_POSTGRES is not a URL")
	}
	u.Path = "/" + name
	return u.String(), func(up bool) {
		if up {
			admin("ALTER DATABASE " + name + " WITH ALLOW_CONNECTIONS true")
			return
		}
		admin("ALTER DATABASE " + name + " WITH ALLOW_CONNECTIONS false")
		admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" + name + "'")
	}
}

func TestHostileDatabaseLost(t *testing.T) {
	dsn, available := testPostgresDatabase(t)
	dir := t.TempDir()
	users := filepath.Join(dir, "users.txt")
	writeUsers(t, users, testUsers)
	ts := httptest.NewUnstartedServer(nil)
	base := "http://" + ts.Listener.Addr().String()
	s, err := mcpauth.New(mcpauth.Config{BaseURL: base, Database: dsn, UsersPath: users,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, newMCPServer())
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = s
	ts.Start()
	defer func() {
		ts.Close()
		s.Close()
	}()
	c, err := mcpauthtest.Register(ctx(t), base, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Authorize(ctx(t), mcpauthtest.AuthorizeOptions{Username: "alice", Password: testUsers["alice"]})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.Exchange(ctx(t), res.Code, res.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	page, err := c.OpenAuthorize(ctx(t), mcpauthtest.AuthorizeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	// Every request that needs the database, as its status and body.
	type probe struct {
		name string
		do   func() (*http.Response, []byte)
	}
	form := func(path string, v url.Values) func() (*http.Response, []byte) {
		return func() (*http.Response, []byte) {
			req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(v.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return doRead(t, hc, req)
		}
	}
	probes := []probe{
		{"register", func() (*http.Response, []byte) {
			req, _ := http.NewRequest(http.MethodPost, base+"/register", strings.NewReader(`{"redirect_uris":["https://c.example/cb"]}`))
			req.Header.Set("Content-Type", "application/json")
			return doRead(t, hc, req)
		}},
		{"authorize", func() (*http.Response, []byte) {
			req, _ := http.NewRequest(http.MethodGet, c.AuthorizeURL(mcpauthtest.AuthorizeOptions{}, mcpauthtest.Challenge(strings.Repeat("v", 43))), nil)
			return doRead(t, hc, req)
		}},
		{"sign-in form", func() (*http.Response, []byte) {
			fields, _ := page.Form.Values("alice", testUsers["alice"], false)
			resp, body, err := page.Post(ctx(t), fields, nil)
			if err != nil {
				t.Fatal(err)
			}
			return resp, body
		}},
		{"refresh", form("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {c.ClientID}})},
		{"code", form("/token", url.Values{"grant_type": {"authorization_code"}, "code": {strings.Repeat("c", 43)}, "client_id": {c.ClientID},
			"redirect_uri": {c.RedirectURI}, "code_verifier": {strings.Repeat("v", 43)}})},
		{"revoke", form("/revoke", url.Values{"token": {tok.AccessToken}, "client_id": {c.ClientID}})},
		{"mcp", func() (*http.Response, []byte) {
			req, _ := http.NewRequest(http.MethodPost, base+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
			req.Header.Set("Authorization", "Bearer "+strings.Repeat("t", 43)) // never cached
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			return doRead(t, hc, req)
		}},
	}

	available(false)
	for _, p := range probes {
		resp, body := p.do()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("%s with the database gone: %d %.200s, want 503", p.name, resp.StatusCode, body)
			continue
		}
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") && oauthErr(body) != "temporarily_unavailable" {
			t.Errorf("%s: error %q, want temporarily_unavailable", p.name, oauthErr(body))
		}
		assertNoInternals(t, body)
	}

	available(true)
	waitFor(t, "the server to use the database again", func() bool {
		resp, _ := probes[0].do()
		return resp.StatusCode == http.StatusCreated
	})
	// The revocation attempted while the database was gone did not happen
	// silently, and the token works until it is revoked for real.
	if st, _, _ := mcpauthtest.BearerStatus(ctx(t), hc, base+"/mcp", tok.AccessToken); st == http.StatusUnauthorized {
		t.Error("a token whose revocation was answered 503 stopped working")
	}
	if err := c.Revoke(ctx(t), tok.AccessToken, ""); err != nil {
		t.Fatalf("revoke after recovery: %v", err)
	}
	if _, err := c.Refresh(ctx(t), tok.RefreshToken); err != nil {
		t.Errorf("refresh after recovery: %v", err)
	}
	if _, err := c.Authorize(ctx(t), mcpauthtest.AuthorizeOptions{Username: "bob", Password: testUsers["bob"]}); err != nil {
		t.Errorf("sign-in after recovery: %v", err)
	}
}

// doRead sends req with hc and returns the response with its body read.
func doRead(t *testing.T, hc *http.Client, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

// waitFor polls cond until it holds, failing the test after a generous
// bound. It waits for something the server does in the background; it
// asserts nothing about time.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 600 {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}
