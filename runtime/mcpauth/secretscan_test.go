package mcpauth_test

// Security rules G6 and J1 (see security_test.go): no code, token, client
// secret, PKCE verifier or password ever reaches the database file, its WAL
// or the logs.
// The test runs every kind of flow, successful and failing, collects each
// secret the server issued or received, and scans the raw bytes.

import (
	"bytes"
	"net/http"
	"net/url"
	"os"
	"testing"

	"github.com/mcpgen/create-mcp-server/runtime/mcpauthtest"
)

func TestJ1_G6_NoSecretAtRestOrInLogs(t *testing.T) {
	e := newEnv(t)
	secrets := map[string]string{} // value -> what it is
	keep := func(what, v string) {
		if v != "" {
			secrets[v] = what
		}
	}
	for u, pw := range testUsers {
		keep("password of "+u, pw)
	}

	for _, method := range []string{"none", "client_secret_post", "client_secret_basic"} {
		c := e.register(map[string]any{"token_endpoint_auth_method": method})
		keep("client_secret", c.ClientSecret)

		// Full flow, refresh, retry within the grace, revocation.
		res := e.authorize(c, mcpauthtest.AuthorizeOptions{State: "state-" + method})
		keep("code", res.Code)
		keep("verifier", res.Verifier)
		tok, err := c.Exchange(ctx(t), res.Code, res.Verifier)
		if err != nil {
			t.Fatal(err)
		}
		keep("access token", tok.AccessToken)
		keep("refresh token", tok.RefreshToken)
		e.callWhoami(tok.AccessToken)
		next, err := c.Refresh(ctx(t), tok.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		keep("access token", next.AccessToken)
		keep("refresh token", next.RefreshToken)
		retry, err := c.Refresh(ctx(t), tok.RefreshToken)
		if err == nil {
			keep("access token", retry.AccessToken)
			keep("refresh token", retry.RefreshToken)
		}
		if err := c.Revoke(ctx(t), next.AccessToken, "access_token"); err != nil {
			t.Fatal(err)
		}

		// Failures that carry secrets: replay, wrong verifier, wrong
		// secret, reuse, bearer with a revoked token.
		c.Exchange(ctx(t), res.Code, res.Verifier)
		res2 := e.authorize(c, mcpauthtest.AuthorizeOptions{})
		keep("code", res2.Code)
		keep("verifier", res2.Verifier)
		other, _ := mcpauthtest.PKCE()
		keep("verifier", other)
		c.Exchange(ctx(t), res2.Code, other)
		if c.ClientSecret != "" {
			wrong := *c
			wrong.ClientSecret = "wrong-" + c.ClientSecret[:10] + "-secret-value"
			keep("wrong client secret", wrong.ClientSecret)
			wrong.Exchange(ctx(t), res2.Code, res2.Verifier)
		}
		tok2, err := c.Exchange(ctx(t), res2.Code, res2.Verifier)
		if err != nil {
			t.Fatal(err)
		}
		keep("access token", tok2.AccessToken)
		keep("refresh token", tok2.RefreshToken)
		e.bearer(next.AccessToken)
		if err := c.Revoke(ctx(t), tok2.RefreshToken, "refresh_token"); err != nil {
			t.Fatal(err)
		}
		c.Refresh(ctx(t), tok2.RefreshToken)
	}
	// A failed login and a login with a password over 72 bytes.
	c := e.register(nil)
	for _, pw := range []string{"wrong-password-for-alice", "a-long-password-" + string(bytes.Repeat([]byte("x"), 80))} {
		keep("password attempt", pw)
		c.Authorize(ctx(t), mcpauthtest.AuthorizeOptions{Username: "alice", Password: pw})
	}
	// A bearer token in the query string.
	res := e.authorize(c, mcpauthtest.AuthorizeOptions{})
	tok, err := c.Exchange(ctx(t), res.Code, res.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	keep("code", res.Code)
	keep("verifier", res.Verifier)
	keep("access token", tok.AccessToken)
	keep("refresh token", tok.RefreshToken)
	e.get("/mcp?access_token="+url.QueryEscape(tok.AccessToken), http.Header{"Authorization": {"Bearer " + tok.RefreshToken}})

	scan := func(name string, data []byte) {
		t.Helper()
		for v, what := range secrets {
			if bytes.Contains(data, []byte(v)) {
				t.Errorf("%s contains a %s", name, what)
			}
		}
	}
	scanFiles := func(when string) {
		for _, suffix := range []string{"", "-wal", "-journal"} {
			data, err := os.ReadFile(e.dbPath + suffix)
			if err != nil {
				if suffix == "" {
					t.Fatal(err)
				}
				continue
			}
			scan(when+" auth.db"+suffix, data)
		}
	}
	scanFiles("running:")
	scan("the log", []byte(e.logs.String()))
	e.restart() // closes the server (checkpointing the WAL) and opens it again
	scanFiles("after restart:")
	scan("the log", []byte(e.logs.String()))
	t.Logf("scanned for %d secrets; log has %d bytes", len(secrets), len(e.logs.String()))
}
