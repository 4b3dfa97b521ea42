package mcpauth_test

// Concurrency (security rules C3 and E3, see security_test.go): N parallel
// redemptions of one authorization code, and of one refresh token, released
// together by a barrier against a SQLite file, leave at most one live token
// chain and never answer 5xx.
//
// "One chain" is checked from outside: revoking one of the returned refresh
// tokens (RFC 7009 revokes its whole family) must leave no returned access
// token working at /mcp and no returned refresh token working at /token. A
// second chain would survive.

import (
	"net/http"
	"net/url"
	"sync"
	"testing"

	"github.com/mcpgen/create-mcp-server/runtime/authstoretest"
	"github.com/mcpgen/create-mcp-server/runtime/mcpauth"
	"github.com/mcpgen/create-mcp-server/runtime/mcpauthtest"
)

const parallel = 20

// race posts form to /token from parallel goroutines released at once.
func race(t *testing.T, c *mcpauthtest.Client, form url.Values) (tokens []*mcpauthtest.Token) {
	t.Helper()
	var (
		start = make(chan struct{})
		wg    sync.WaitGroup
		mu    sync.Mutex
	)
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			tok, err := c.PostToken(ctx(t), form)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				tokens = append(tokens, tok)
			case mcpauthtest.ErrorStatus(err) >= 500 || mcpauthtest.ErrorStatus(err) == 0:
				t.Errorf("parallel %s: %v (never 5xx)", form.Get("grant_type"), err)
			case mcpauthtest.ErrorStatus(err) != http.StatusBadRequest:
				t.Errorf("parallel %s: %v, want 200 or 400", form.Get("grant_type"), err)
			}
		}()
	}
	close(start)
	wg.Wait()
	return tokens
}

// assertOneChain revokes the family of the first returned refresh token and
// checks that nothing returned still works.
// With mustLive, at least one returned access token must work before that.
func assertOneChain(t *testing.T, e *env, c *mcpauthtest.Client, tokens []*mcpauthtest.Token, mustLive bool) {
	t.Helper()
	if len(tokens) == 0 {
		return
	}
	live := 0
	for _, tok := range tokens {
		if e.live(tok.AccessToken) {
			live++
		}
	}
	if live == 0 && mustLive {
		t.Error("no returned access token works")
	}
	if err := c.Revoke(ctx(t), tokens[0].RefreshToken, "refresh_token"); err != nil {
		t.Fatal(err)
	}
	for i, tok := range tokens {
		if e.live(tok.AccessToken) {
			t.Errorf("access token %d survives the revocation of the chain: a second live chain", i)
		}
		if _, err := c.Refresh(ctx(t), tok.RefreshToken); err == nil {
			t.Errorf("refresh token %d survives the revocation of the chain: a second live chain", i)
		} else if st := mcpauthtest.ErrorStatus(err); st >= 500 {
			t.Errorf("refresh token %d: %v", i, err)
		}
	}
}

// forEachEngine runs test once per database engine, with a server on a
// fresh database of it.
func forEachEngine(t *testing.T, test func(t *testing.T, e *env)) {
	for _, eng := range authstoretest.Engines() {
		t.Run(eng.Name, func(t *testing.T) {
			dsn := eng.NewDSN(t)
			test(t, newEnv(t, func(c *mcpauth.Config) { c.Database = dsn }))
		})
	}
}

func TestC3_ConcurrentCodeRedemption(t *testing.T) {
	forEachEngine(t, testConcurrentCodeRedemption)
}

func testConcurrentCodeRedemption(t *testing.T, e *env) {
	c := e.register(nil)
	res := e.authorize(c, mcpauthtest.AuthorizeOptions{})
	tokens := race(t, c, url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {res.Code},
		"code_verifier": {res.Verifier},
		"redirect_uri":  {c.RedirectURI},
	})
	if len(tokens) > 1 {
		t.Errorf("%d parallel redemptions of one code succeeded, want at most 1", len(tokens))
	}
	// The losers carry the right client and verifier, so a server may treat
	// them as replays and revoke the winner's tokens too (C1); that is
	// allowed, a second chain is not.
	assertOneChain(t, e, c, tokens, false)
}

func TestE3_ConcurrentRefresh(t *testing.T) {
	forEachEngine(t, testConcurrentRefresh)
}

func testConcurrentRefresh(t *testing.T, e *env) {
	c := e.register(nil)
	first := e.tokens(c)
	tokens := race(t, c, url.Values{
		"grant_type":    {"refresh_token"},
		"refresh_token": {first.RefreshToken},
	})
	if len(tokens) == 0 {
		t.Fatal("no parallel refresh succeeded: the client lost its sign-in")
	}
	// Within the retry grace several requests may succeed, but they must all
	// continue the same chain: the same successor refresh token.
	succ := map[string]bool{}
	for _, tok := range tokens {
		succ[tok.RefreshToken] = true
	}
	if len(succ) > 1 {
		t.Errorf("%d distinct successor refresh tokens from one refresh token", len(succ))
	}
	assertOneChain(t, e, c, append(tokens, first), true)
}
