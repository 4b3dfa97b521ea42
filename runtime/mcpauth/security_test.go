package mcpauth_test

// One test per security rule of the authorization server, named by the
// rule's id: its letter is the area (A authorization requests and
// redirects, B PKCE, C codes, D the token endpoint, E refresh tokens,
// F revocation, G audience and metadata, H client registration, I the login
// page, J secrets and storage, K limits and malformed input), and each
// test's comment states the rule. Every test drives the server over real
// HTTP on a SQLite file, as a client or a browser would.
//
// Rules that are covered elsewhere or cannot be checked from outside:
//   - B8, J3 (constant-time comparisons): code review, not observable.
//   - B10 (reject a reused code_challenge): optional in RFC 9700, not done.
//   - C3, E3 (concurrent redemption): concurrency_test.go.
//   - E10 (durability across kill -9): crash_heavy_test.go.
//   - G6, J1 (no secret in logs or at rest): secretscan_test.go.
//   - I3's bcrypt semaphore: not observable from outside (code review).
//   - K1's header-read timeout (slowloris): limits_heavy_test.go, it waits 10 s.
//   - K3 is also fuzzed in fuzz_heavy_test.go.

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	_ "modernc.org/sqlite"

	"github.com/mcpgen/create-mcp-server/runtime/mcpauth"
	"github.com/mcpgen/create-mcp-server/runtime/mcpauthtest"
)

// ---------------------------------------------------------------------------
// A. Authorization endpoint and redirect URIs

func TestA1_UnregisteredRedirectURI(t *testing.T) {
	e := newEnv(t)
	c := e.register(map[string]any{"redirect_uris": []string{"https://client.example/cb"}})
	resp, body := e.get("/authorize?"+authorizeQuery(c, url.Values{"redirect_uri": {"https://attacker.example/cb"}}).Encode(), nil)
	assertNoRedirect(t, "unregistered redirect_uri", resp, body)
	if bytes.Contains(body, []byte("code=")) {
		t.Errorf("error page mentions a code: %.300s", body)
	}
	// The registered URI works, so the refusal above is about the URI.
	resp, _ = e.get("/authorize?"+authorizeQuery(c, nil).Encode(), nil)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("registered redirect_uri: status %d, want 200", resp.StatusCode)
	}
}

func TestA2_ExactRedirectMatching(t *testing.T) {
	e := newEnv(t)
	c := e.register(map[string]any{"redirect_uris": []string{"https://client.example/cb", "https://client.example/q?a=1&b=2"}})
	for _, ok := range []string{"https://client.example/cb", "https://client.example/q?a=1&b=2"} {
		resp, body := e.get("/authorize?"+authorizeQuery(c, url.Values{"redirect_uri": {ok}}).Encode(), nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("registered %s: status %d, want 200: %.200s", ok, resp.StatusCode, body)
		}
	}
	vectors := map[string]string{
		"path case":          "https://client.example/CB",
		"scheme host case":   "HTTPS://CLIENT.example/cb",
		"trailing slash":     "https://client.example/cb/",
		"added query":        "https://client.example/cb?x=1",
		"query reordered":    "https://client.example/q?b=2&a=1",
		"query dropped":      "https://client.example/q",
		"fragment":           "https://client.example/cb#x",
		"empty fragment":     "https://client.example/cb#",
		"dot segment":        "https://client.example/cb/../evil",
		"encoded dots":       "https://client.example/cb/%2e%2e/evil",
		"double encoded":     "https://client.example/cb%252f..%252fevil",
		"semicolon dots":     "https://client.example/cb/..;/evil",
		"suffix host":        "https://client.example.evil.com/cb",
		"prefix host":        "https://evilclient.example/cb",
		"userinfo":           "https://client.example@evil.com/cb",
		"backslash userinfo": `https://client.example\@evil.com/cb`,
		"default port":       "https://client.example:443/cb",
		"http downgrade":     "http://client.example/cb",
		"tab":                "https://client.example/cb\t",
		"cr":                 "https://client.example/cb\r",
		"lf":                 "https://client.example/cb\n",
		"nul":                "https://client.example/cb\x00",
		"leading space":      " https://client.example/cb",
		"punycode lookalike": "https://xn--clent-6ya.example/cb",
		"idn lookalike":      "https://clіent.example/cb", // Cyrillic і
		"empty":              "",
	}
	for name, uri := range vectors {
		t.Run(name, func(t *testing.T) {
			resp, body := e.get("/authorize?"+authorizeQuery(c, url.Values{"redirect_uri": {uri}}).Encode(), nil)
			assertNoRedirect(t, uri, resp, body)
		})
	}
	t.Run("duplicate redirect_uri", func(t *testing.T) {
		for _, pair := range [][]string{
			{"https://client.example/cb", "https://attacker.example/cb"},
			{"https://attacker.example/cb", "https://client.example/cb"},
			{"https://client.example/cb", "https://client.example/cb"},
		} {
			resp, body := e.get("/authorize?"+authorizeQuery(c, url.Values{"redirect_uri": pair}).Encode(), nil)
			assertNoRedirect(t, strings.Join(pair, " + "), resp, body)
		}
	})
}

func TestA3_LoopbackRedirect(t *testing.T) {
	e := newEnv(t)
	ip := e.register(map[string]any{"redirect_uris": []string{"http://127.0.0.1/cb", "http://[::1]/cb"}})
	host := e.register(map[string]any{"redirect_uris": []string{"http://localhost/cb"}})
	tests := []struct {
		c    *mcpauthtest.Client
		uri  string
		want bool
	}{
		{ip, "http://127.0.0.1/cb", true},
		{ip, "http://127.0.0.1:51234/cb", true},
		{ip, "http://[::1]:4444/cb", true},
		{host, "http://localhost/cb", true},
		{host, "http://localhost:33418/cb", true},
		{ip, "http://127.0.0.1:51234/cb2", false},
		{ip, "http://127.0.0.1:51234/cb?x=1", false},
		{ip, "http://127.0.0.1:51234/cb#x", false},
		{ip, "http://127.0.0.1.evil.com/cb", false},
		{ip, "http://127.0.0.1.evil.com:51234/cb", false},
		{ip, "http://127.0.0.1:80@evil.example/cb", false},
		{ip, "http://user@127.0.0.1:8080/cb", false},
		{ip, "https://127.0.0.1:51234/cb", false},
		{ip, "http://localhost:51234/cb", false}, // localhost and 127.0.0.1 do not match each other
		{ip, "http://127.0.0.2:51234/cb", false},
		{ip, "http://[::1]:4444/CB", false},
		{host, "http://127.0.0.1:33418/cb", false},
		{host, "http://LOCALHOST:33418/cb", false},
		{host, "http://localhost.evil.example:33418/cb", false},
		{host, "http://localhost:33418/cb/", false},
	}
	for _, tt := range tests {
		t.Run(tt.uri, func(t *testing.T) {
			resp, body := e.get("/authorize?"+authorizeQuery(tt.c, url.Values{"redirect_uri": {tt.uri}}).Encode(), nil)
			if tt.want {
				if resp.StatusCode != http.StatusOK {
					t.Errorf("status %d, want 200 (login page): %.200s", resp.StatusCode, body)
				}
				return
			}
			assertNoRedirect(t, tt.uri, resp, body)
		})
	}
	t.Run("code goes to the requested port", func(t *testing.T) {
		res := e.authorize(ip, mcpauthtest.AuthorizeOptions{RedirectURI: "http://127.0.0.1:51234/cb"})
		if got := res.Location.Scheme + "://" + res.Location.Host + res.Location.Path; got != "http://127.0.0.1:51234/cb" {
			t.Errorf("redirected to %s", res.Location)
		}
		ip.RedirectURI = "http://127.0.0.1:51234/cb"
		if _, err := ip.Exchange(ctx(t), res.Code, res.Verifier); err != nil {
			t.Errorf("exchange with the loopback URI: %v", err)
		}
	})
}

func TestA4_RedirectURIRequired(t *testing.T) {
	e := newEnv(t)
	one := e.register(map[string]any{"redirect_uris": []string{"https://client.example/cb"}})
	two := e.register(map[string]any{"redirect_uris": []string{"https://client.example/cb", "https://client.example/cb2"}})
	for name, c := range map[string]*mcpauthtest.Client{"one registered": one, "two registered": two} {
		t.Run(name, func(t *testing.T) {
			resp, body := e.get("/authorize?"+authorizeQuery(c, url.Values{"redirect_uri": nil}).Encode(), nil)
			assertNoRedirect(t, "omitted redirect_uri", resp, body)
		})
	}
}

func TestA5_BadClientID(t *testing.T) {
	e := newEnv(t)
	c := e.register(nil)
	vectors := map[string]url.Values{
		"unknown":   {"client_id": {"no-such-client"}},
		"missing":   {"client_id": nil},
		"empty":     {"client_id": {""}},
		"markup":    {"client_id": {`<script>alert(1)</script>`}},
		"duplicate": {"client_id": {c.ClientID, "no-such-client"}},
		"10KB":      {"client_id": {strings.Repeat("A", 10<<10)}},
	}
	for name, change := range vectors {
		t.Run(name, func(t *testing.T) {
			resp, body := e.get("/authorize?"+authorizeQuery(c, change).Encode(), nil)
			assertNoRedirect(t, name, resp, body, http.StatusBadRequest, http.StatusRequestURITooLong)
			if bytes.Contains(body, []byte("<script>alert(1)")) {
				t.Errorf("client_id reflected unescaped")
			}
		})
	}
}

// Every error found before the user has logged in is an HTML
// 400 page, never a redirect; after login, errors redirect with error, state
// and iss.
func TestA6_AuthorizeErrors(t *testing.T) {
	e := newEnv(t)
	c := e.register(map[string]any{"redirect_uris": []string{"https://client.example/cb"}})
	vectors := map[string]url.Values{
		"response_type token":      {"response_type": {"token"}},
		"response_type id_token":   {"response_type": {"id_token"}},
		"response_type code token": {"response_type": {"code token"}},
		"response_type missing":    {"response_type": nil},
		"response_type duplicate":  {"response_type": {"code", "code"}},
		"pkce missing":             {"code_challenge": nil, "code_challenge_method": nil},
		"pkce plain":               {"code_challenge_method": {"plain"}},
		"bad resource":             {"resource": {"https://other.example/mcp"}},
	}
	for name, change := range vectors {
		t.Run("before login/"+name, func(t *testing.T) {
			resp, body := e.get("/authorize?"+authorizeQuery(c, change).Encode(), nil)
			assertNoRedirect(t, name, resp, body)
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Errorf("Content-Type %q, want an HTML page", ct)
			}
		})
	}
	t.Run("after login/access_denied", func(t *testing.T) {
		page, err := c.OpenAuthorize(ctx(t), mcpauthtest.AuthorizeOptions{State: "s-1"})
		if err != nil {
			t.Fatal(err)
		}
		fields, err := page.Form.Values("alice", testUsers["alice"], true)
		if err != nil {
			t.Fatal(err)
		}
		resp, _, err := page.Post(ctx(t), fields, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("deny: status %d, want 303", resp.StatusCode)
		}
		res, err := mcpauthtest.ParseRedirect(resp)
		if err != nil {
			t.Fatal(err)
		}
		q := res.Location.Query()
		if res.Error != "access_denied" || res.State != "s-1" || res.Iss != e.base || q.Has("code") {
			t.Errorf("deny redirect %s: want error=access_denied, state=s-1, iss=%s and no code", res.Location, e.base)
		}
		if !strings.HasPrefix(res.Location.String(), "https://client.example/cb?") {
			t.Errorf("deny redirect %s, want the registered URI", res.Location)
		}
	})
}

func TestA7_NoPhishingRedirectBeforeLogin(t *testing.T) {
	e := newEnv(t)
	c := e.register(map[string]any{"redirect_uris": []string{"https://phish.example/login"}, "client_name": "Totally Legit"})
	for name, change := range map[string]url.Values{
		"bogus scope":      {"scope": {"bogus"}},
		"bad response":     {"response_type": {"token"}},
		"bad challenge":    {"code_challenge": {"short"}},
		"bad resource":     {"resource": {"https://phish.example/"}},
		"prompt none":      {"prompt": {"none"}},
		"unknown resource": {"resource": {"urn:x"}},
	} {
		t.Run(name, func(t *testing.T) {
			resp, body := e.get("/authorize?"+authorizeQuery(c, change).Encode(), nil)
			if resp.StatusCode >= 300 && resp.StatusCode < 400 || resp.Header.Get("Location") != "" {
				t.Errorf("status %d Location %q: the server bounced an unauthenticated browser to the client", resp.StatusCode, resp.Header.Get("Location"))
			}
			if bytes.Contains(body, []byte("phish.example/login?")) {
				t.Errorf("page links to the redirect URI with parameters: %.300s", body)
			}
		})
	}
}

func TestA8_State(t *testing.T) {
	e := newEnv(t)
	c := e.register(nil)
	for name, state := range map[string]string{
		"special":   `&=%+#<>"' ;/?`,
		"non-ascii": "état-☃-日本",
		"1 KiB":     strings.Repeat("s", 1024),
	} {
		t.Run(name, func(t *testing.T) {
			res := e.authorize(c, mcpauthtest.AuthorizeOptions{State: state})
			if res.State != state {
				t.Errorf("state = %q, want %q", res.State, state)
			}
			if n := len(res.Location.Query()["state"]); n != 1 {
				t.Errorf("%d state parameters", n)
			}
		})
	}
	t.Run("absent", func(t *testing.T) {
		res := e.authorize(c, mcpauthtest.AuthorizeOptions{})
		if res.Location.Query().Has("state") {
			t.Errorf("redirect %s has a state the client did not send", res.Location)
		}
	})
	t.Run("not reflected unescaped", func(t *testing.T) {
		resp, body := e.get("/authorize?"+authorizeQuery(c, url.Values{"state": {`"><script>alert(1)</script>`}}).Encode(), nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if bytes.Contains(body, []byte("<script>alert(1)")) {
			t.Error("state reflected unescaped into the login page")
		}
	})
	t.Run("oversized", func(t *testing.T) {
		resp, body := e.get("/authorize?"+authorizeQuery(c, url.Values{"state": {strings.Repeat("s", 64<<10)}}).Encode(), nil)
		assertNoRedirect(t, "64 KiB state", resp, body, http.StatusBadRequest, http.StatusRequestURITooLong)
	})
}

func TestA9_SeeOtherAfterLogin(t *testing.T) {
	e := newEnv(t)
	c := e.register(nil)
	for _, deny := range []bool{false, true} {
		page, err := c.OpenAuthorize(ctx(t), mcpauthtest.AuthorizeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		fields, err := page.Form.Values("alice", testUsers["alice"], deny)
		if err != nil {
			t.Fatal(err)
		}
		resp, _, err := page.Post(ctx(t), fields, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusSeeOther {
			t.Errorf("deny=%v: status %d, want 303 (never 307/308)", deny, resp.StatusCode)
		}
	}
}

func TestA10_IssuerInAuthorizationResponse(t *testing.T) {
	e := newEnv(t)
	md := e.metadata("/.well-known/oauth-authorization-server")
	if md["authorization_response_iss_parameter_supported"] != true {
		t.Errorf("metadata: authorization_response_iss_parameter_supported = %v", md["authorization_response_iss_parameter_supported"])
	}
	c := e.register(nil)
	for _, deny := range []bool{false, true} {
		res, err := c.Authorize(ctx(t), mcpauthtest.AuthorizeOptions{Username: "alice", Password: testUsers["alice"], Deny: deny})
		if err != nil {
			t.Fatal(err)
		}
		if iss := res.Location.Query()["iss"]; len(iss) != 1 || iss[0] != md["issuer"] || iss[0] != e.base {
			t.Errorf("deny=%v: iss = %q, want exactly [%s]", deny, iss, e.base)
		}
	}
}

func TestA11_NoCORSOnAuthorize(t *testing.T) {
	e := newEnv(t)
	c := e.register(nil)
	q := "/authorize?" + authorizeQuery(c, nil).Encode()
	for _, origin := range []string{"https://evil.example", e.base} {
		for _, method := range []string{http.MethodGet, http.MethodOptions} {
			req, _ := http.NewRequest(method, e.base+q, nil)
			req.Header.Set("Origin", origin)
			req.Header.Set("Access-Control-Request-Method", "GET")
			resp, _ := e.do(req)
			if v := resp.Header.Get("Access-Control-Allow-Origin"); v != "" {
				t.Errorf("%s /authorize Origin %s: Access-Control-Allow-Origin %q", method, origin, v)
			}
		}
	}
}

func TestA12_TransactionBoundServerSide(t *testing.T) {
	e := newEnv(t)
	c := e.register(map[string]any{"redirect_uris": []string{"https://client.example/cb"}})
	other := e.register(map[string]any{"redirect_uris": []string{"https://attacker.example/cb"}})
	_, evilChallenge := mcpauthtest.PKCE()
	tampered := url.Values{
		"redirect_uri":          {"https://attacker.example/cb"},
		"client_id":             {other.ClientID},
		"scope":                 {"admin root"},
		"code_challenge":        {evilChallenge},
		"code_challenge_method": {"plain"},
		"resource":              {"https://attacker.example/mcp"},
		"response_type":         {"token"},
		"state":                 {"evil"},
	}
	for name, val := range tampered {
		t.Run(name, func(t *testing.T) {
			page, err := c.OpenAuthorize(ctx(t), mcpauthtest.AuthorizeOptions{State: "good"})
			if err != nil {
				t.Fatal(err)
			}
			fields, err := page.Form.Values("alice", testUsers["alice"], false)
			if err != nil {
				t.Fatal(err)
			}
			fields[name] = val
			resp, _, err := page.Post(ctx(t), fields, nil)
			if err != nil {
				t.Fatal(err)
			}
			loc := resp.Header.Get("Location")
			if loc == "" {
				return // refused: fine
			}
			if !strings.HasPrefix(loc, "https://client.example/cb?") {
				t.Fatalf("tampered %s: redirected to %s", name, loc)
			}
			res, _ := mcpauthtest.ParseRedirect(resp)
			if res.State != "good" {
				t.Errorf("tampered %s: state %q, want the validated one", name, res.State)
			}
			if res.Code == "" {
				return
			}
			// The code is bound to the validated request: the original
			// client, redirect URI and verifier redeem it.
			tok, err := c.Exchange(ctx(t), res.Code, page.Verifier)
			if err != nil {
				t.Fatalf("tampered %s: the original request cannot redeem the code: %v", name, err)
			}
			if strings.Contains(tok.Scope, "admin") || strings.Contains(tok.Scope, "root") {
				t.Errorf("tampered scope granted: %q", tok.Scope)
			}
			if who := e.callWhoami(tok.AccessToken); !strings.Contains(who, "|"+c.ClientID+"|") {
				t.Errorf("token identity %q, want client %s", who, c.ClientID)
			}
		})
	}
	t.Run("completed transaction reused", func(t *testing.T) {
		page, err := c.OpenAuthorize(ctx(t), mcpauthtest.AuthorizeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		fields, _ := page.Form.Values("alice", testUsers["alice"], false)
		resp, _, err := page.Post(ctx(t), fields, nil)
		if err != nil || resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("first POST: %v %v", resp, err)
		}
		resp, body, err := page.Post(ctx(t), fields, nil)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(resp.Header.Get("Location"), "code=") {
			t.Errorf("second POST of the same transaction got a code: %s", resp.Header.Get("Location"))
		}
		if resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Errorf("second POST: status %d, want 4xx: %.200s", resp.StatusCode, body)
		}
	})
}

// dangerousURIs are redirect URIs that must never be registered or used.
var dangerousURIs = []string{
	"javascript:alert(1)",
	"JaVaScRiPt:alert(1)",
	" javascript:alert(1)",
	"java\tscript:alert(1)",
	"\x01javascript:alert(1)",
	"javascript://client.example/%0aalert(1)",
	"data:text/html,<script>alert(1)</script>",
	"DATA:text/html;base64,PHNjcmlwdD4=",
	"vbscript:msgbox(1)",
	"file:///etc/passwd",
	"blob:https://client.example/uuid",
	"mailto:a@b.example",
	"http://client.example/cb",
	"http://10.0.0.1/cb",
	"https://client.example/cb#frag",
	"https://client.example/cb#",
	"/relative/cb",
	"client.example/cb",
	"//client.example/cb",
	"https://user:pw@client.example/cb",
	"https://user@client.example/cb",
	"",
}

func TestA13_DangerousRedirectURIs(t *testing.T) {
	e := newEnv(t)
	for _, uri := range dangerousURIs {
		t.Run("register/"+uri, func(t *testing.T) {
			for _, uris := range [][]string{{uri}, {"https://client.example/ok", uri}} {
				_, err := mcpauthtest.Register(ctx(t), e.base, map[string]any{"redirect_uris": uris})
				wantGrantErr(t, strings.Join(uris, ","), err, http.StatusBadRequest, "invalid_redirect_uri")
			}
		})
	}
	c := e.register(map[string]any{"redirect_uris": []string{"https://client.example/cb"}})
	for _, uri := range dangerousURIs {
		t.Run("authorize/"+uri, func(t *testing.T) {
			resp, body := e.get("/authorize?"+authorizeQuery(c, url.Values{"redirect_uri": {uri}}).Encode(), nil)
			assertNoRedirect(t, uri, resp, body)
		})
	}
	t.Run("private-use scheme allowed", func(t *testing.T) {
		if _, err := mcpauthtest.Register(ctx(t), e.base, map[string]any{"redirect_uris": []string{"cursor://anysphere.cursor-retrieval/oauth/callback"}}); err != nil {
			t.Errorf("private-use scheme refused: %v", err)
		}
	})
}

// ---------------------------------------------------------------------------
// B. PKCE

func TestB1_CodeChallengeRequired(t *testing.T) {
	e := newEnv(t)
	c := e.register(nil)
	for name, change := range map[string]url.Values{
		"both missing":      {"code_challenge": nil, "code_challenge_method": nil},
		"challenge missing": {"code_challenge": nil},
		"challenge empty":   {"code_challenge": {""}},
	} {
		t.Run(name, func(t *testing.T) {
			resp, body := e.get("/authorize?"+authorizeQuery(c, change).Encode(), nil)
			assertNoRedirect(t, name, resp, body)
		})
	}
}

func TestB2_S256Only(t *testing.T) {
	e := newEnv(t)
	c := e.register(nil)
	md := e.metadata("/.well-known/oauth-authorization-server")
	for name, change := range map[string]url.Values{
		"plain":         {"code_challenge_method": {"plain"}},
		"omitted":       {"code_challenge_method": nil},
		"empty":         {"code_challenge_method": {""}},
		"S512":          {"code_challenge_method": {"S512"}},
		"lower s256":    {"code_challenge_method": {"s256"}},
		"duplicate":     {"code_challenge_method": {"S256", "plain"}},
		"duplicate chl": {"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}},
	} {
		t.Run(name, func(t *testing.T) {
			resp, body := e.get("/authorize?"+authorizeQuery(c, change).Encode(), nil)
			assertNoRedirect(t, name, resp, body)
		})
	}
	_ = md
}

func TestB3_MalformedChallenge(t *testing.T) {
	e := newEnv(t)
	c := e.register(nil)
	good := "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
	for name, chl := range map[string]string{
		"42 chars":   good[:42],
		"44 chars":   good + "A",
		"128 chars":  strings.Repeat("A", 128),
		"plus":       "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM",
		"slash":      "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw/cM",
		"padding":    good[:42] + "=",
		"space":      good[:42] + " ",
		"non-ascii":  good[:41] + "é",
		"nul":        good[:42] + "\x00",
		"dot tilde~": good[:41] + ".~",
	} {
		t.Run(name, func(t *testing.T) {
			resp, body := e.get("/authorize?"+authorizeQuery(c, url.Values{"code_challenge": {chl}}).Encode(), nil)
			assertNoRedirect(t, name, resp, body)
		})
	}
	resp, _ := e.get("/authorize?"+authorizeQuery(c, url.Values{"code_challenge": {good}}).Encode(), nil)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("valid challenge: status %d", resp.StatusCode)
	}
}

func TestB4_MissingVerifier(t *testing.T) {
	e := newEnv(t)
	c := e.register(nil)
	res := e.authorize(c, mcpauthtest.AuthorizeOptions{})
	_, err := c.PostToken(ctx(t), url.Values{"grant_type": {"authorization_code"}, "code": {res.Code}, "redirect_uri": {c.RedirectURI}})
	wantGrantErr(t, "no code_verifier", err, http.StatusBadRequest, "invalid_grant")
	_, err = c.PostToken(ctx(t), url.Values{"grant_type": {"authorization_code"}, "code": {res.Code}, "redirect_uri": {c.RedirectURI}, "code_verifier": {""}})
	wantGrantErr(t, "empty code_verifier", err, http.StatusBadRequest, "invalid_grant")
	if _, err := c.Exchange(ctx(t), res.Code, res.Verifier); err != nil {
		t.Errorf("the code was consumed by the failed requests: %v", err)
	}
}

func TestB5_WrongVerifier(t *testing.T) {
	e := newEnv(t)
	c := e.register(nil)
	res := e.authorize(c, mcpauthtest.AuthorizeOptions{})
	other, _ := mcpauthtest.PKCE()
	for name, v := range map[string]string{
		"wrong":        other,
		"42 chars":     res.Verifier[:42],
		"129 chars":    strings.Repeat("a", 129),
		"bad chars":    res.Verifier[:42] + "+",
		"challenge":    mcpauthtest.Challenge(res.Verifier),
		"prefix match": res.Verifier + "x",
		"case changed": strings.ToUpper(res.Verifier),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := c.Exchange(ctx(t), res.Code, v)
			wantGrantErr(t, name, err, http.StatusBadRequest, "invalid_grant")
		})
	}
	if _, err := c.Exchange(ctx(t), res.Code, res.Verifier); err != nil {
		t.Errorf("the code was consumed by a failed request: %v", err)
	}
}

// B6: no path issues a code without a challenge (B1), and a login POST
// cannot strip the challenge the server validated.
func TestB6_NoPKCEDowngrade(t *testing.T) {
	e := newEnv(t)
	c := e.register(nil)
	page, err := c.OpenAuthorize(ctx(t), mcpauthtest.AuthorizeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fields, _ := page.Form.Values("alice", testUsers["alice"], false)
	fields.Del("code_challenge")
	fields.Del("code_challenge_method")
	resp, _, err := page.Post(ctx(t), fields, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("Location") == "" {
		return
	}
	res, err := mcpauthtest.ParseRedirect(resp)
	if err != nil || res.Code == "" {
		return
	}
	_, err = c.PostToken(ctx(t), url.Values{"grant_type": {"authorization_code"}, "code": {res.Code}, "redirect_uri": {c.RedirectURI}})
	wantGrantErr(t, "no verifier", err, http.StatusBadRequest, "invalid_grant")
	other, _ := mcpauthtest.PKCE()
	_, err = c.Exchange(ctx(t), res.Code, other)
	wantGrantErr(t, "foreign verifier", err, http.StatusBadRequest, "invalid_grant")
}

func TestB7_ConfidentialClientNeedsVerifier(t *testing.T) {
	e := newEnv(t)
	for _, method := range []string{"client_secret_post", "client_secret_basic"} {
		t.Run(method, func(t *testing.T) {
			c := e.register(map[string]any{"token_endpoint_auth_method": method})
			if c.ClientSecret == "" {
				t.Fatalf("no client_secret for a %s client", method)
			}
			res := e.authorize(c, mcpauthtest.AuthorizeOptions{})
			_, err := c.PostToken(ctx(t), url.Values{"grant_type": {"authorization_code"}, "code": {res.Code}, "redirect_uri": {c.RedirectURI}})
			wantGrantErr(t, "secret without verifier", err, http.StatusBadRequest, "invalid_grant")
			if _, err := c.Exchange(ctx(t), res.Code, res.Verifier); err != nil {
				t.Errorf("secret and verifier: %v", err)
			}
		})
	}
}

func TestB9_MetadataS256(t *testing.T) {
	e := newEnv(t)
	md := e.metadata("/.well-known/oauth-authorization-server")
	got, _ := json.Marshal(md["code_challenge_methods_supported"])
	if string(got) != `["S256"]` {
		t.Errorf("code_challenge_methods_supported = %s, want [\"S256\"]", got)
	}
}

// ---------------------------------------------------------------------------
// C. Authorization code

func TestC1_CodeReplay(t *testing.T) {
	e := newEnv(t)
	c := e.register(nil)
	res := e.authorize(c, mcpauthtest.AuthorizeOptions{})
	tok, err := c.Exchange(ctx(t), res.Code, res.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("replay with only the code", func(t *testing.T) {
		other, _ := mcpauthtest.PKCE()
		_, err := c.Exchange(ctx(t), res.Code, other)
		wantGrantErr(t, "replay, wrong verifier", err, http.StatusBadRequest, "invalid_grant")
		stranger := e.register(nil)
		_, err = stranger.Exchange(ctx(t), res.Code, res.Verifier)
		wantGrantErr(t, "replay, other client", err, http.StatusBadRequest, "invalid_grant")
		if !e.live(tok.AccessToken) {
			t.Error("a replay without the verifier revoked the access token (revocation DoS)")
		}
	})
	t.Run("replay with client and verifier", func(t *testing.T) {
		_, err := c.Exchange(ctx(t), res.Code, res.Verifier)
		wantGrantErr(t, "replay", err, http.StatusBadRequest, "invalid_grant")
		if e.live(tok.AccessToken) {
			t.Error("access token from the first redemption still works after a replay")
		}
		_, err = c.Refresh(ctx(t), tok.RefreshToken)
		wantGrantErr(t, "refresh after replay", err, http.StatusBadRequest, "invalid_grant")
	})
}

// C2: the consumed code is kept (a tombstone) so that a replay still revokes
// after a restart, which runs the cleanup.
func TestC2_ReplayDetectedAfterCleanup(t *testing.T) {
	// Cleanup every 50 ms: often enough for several passes below, seldom
	// enough not to starve the sign-in's writes of SQLite's lock under -race.
	e := newEnv(t, func(c *mcpauth.Config) { c.CleanupInterval = 50 * time.Millisecond })
	c := e.register(nil)
	res := e.authorize(c, mcpauthtest.AuthorizeOptions{})
	tok, err := c.Exchange(ctx(t), res.Code, res.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // several cleanup passes
	e.restart()                        // and whatever runs at start
	_, err = c.Exchange(ctx(t), res.Code, res.Verifier)
	wantGrantErr(t, "replay after cleanup", err, http.StatusBadRequest, "invalid_grant")
	if e.live(tok.AccessToken) {
		t.Error("replay after cleanup did not revoke the tokens (consumed code deleted too early)")
	}
}

func TestC4_CodeExpiry(t *testing.T) {
	e := newEnv(t, func(c *mcpauth.Config) { c.CodeTTL = time.Minute })
	c := e.register(nil)
	res := e.authorize(c, mcpauthtest.AuthorizeOptions{})
	e.advance(61 * time.Second)
	_, err := c.Exchange(ctx(t), res.Code, res.Verifier)
	wantGrantErr(t, "expired code", err, http.StatusBadRequest, "invalid_grant")
	// The default lifetime is at most 10 minutes.
	d := newEnv(t)
	dc := d.register(nil)
	res = d.authorize(dc, mcpauthtest.AuthorizeOptions{})
	d.advance(10*time.Minute + time.Second)
	_, err = dc.Exchange(ctx(t), res.Code, res.Verifier)
	wantGrantErr(t, "code older than 10 minutes", err, http.StatusBadRequest, "invalid_grant")
}

func TestC5_CodeBoundToClient(t *testing.T) {
	e := newEnv(t)
	a := e.register(nil)
	b := e.register(nil)
	res := e.authorize(a, mcpauthtest.AuthorizeOptions{})
	_, err := b.Exchange(ctx(t), res.Code, res.Verifier)
	wantGrantErr(t, "client B redeems A's code", err, http.StatusBadRequest, "invalid_grant")
	bs := e.register(map[string]any{"token_endpoint_auth_method": "client_secret_post"})
	_, err = bs.Exchange(ctx(t), res.Code, res.Verifier)
	wantGrantErr(t, "confidential client B redeems A's code", err, http.StatusBadRequest, "invalid_grant")
	if _, err := a.Exchange(ctx(t), res.Code, res.Verifier); err != nil {
		t.Errorf("client A after the attempts: %v", err)
	}
}

func TestC6_CodeBoundToRedirectURI(t *testing.T) {
	e := newEnv(t)
	c := e.register(map[string]any{"redirect_uris": []string{"https://client.example/cb", "https://client.example/cb2"}})
	res := e.authorize(c, mcpauthtest.AuthorizeOptions{})
	base := url.Values{"grant_type": {"authorization_code"}, "code": {res.Code}, "code_verifier": {res.Verifier}}
	for name, redirect := range map[string][]string{
		"other registered": {"https://client.example/cb2"},
		"unregistered":     {"https://attacker.example/cb"},
		"trailing slash":   {"https://client.example/cb/"},
	} {
		f := cloneValues(base)
		f["redirect_uri"] = redirect
		_, err := c.PostToken(ctx(t), f)
		wantGrantErr(t, name, err, http.StatusBadRequest, "invalid_grant")
	}
	_, err := c.PostToken(ctx(t), base)
	if mcpauthtest.ErrorStatus(err) != http.StatusBadRequest {
		t.Errorf("missing redirect_uri: %v, want 400", err)
	}
	if _, err := c.Exchange(ctx(t), res.Code, res.Verifier); err != nil {
		t.Errorf("legitimate retry after failures: %v", err)
	}
}

func TestC7_FailuresDoNotConsumeCode(t *testing.T) {
	e := newEnv(t)
	c := e.register(map[string]any{"token_endpoint_auth_method": "client_secret_post"})
	res := e.authorize(c, mcpauthtest.AuthorizeOptions{})
	form := url.Values{"grant_type": {"authorization_code"}, "code": {res.Code}, "code_verifier": {res.Verifier}, "redirect_uri": {c.RedirectURI}}

	wrong := *c
	wrong.ClientSecret = "wrong-secret"
	_, err := wrong.PostToken(ctx(t), form)
	wantGrantErr(t, "wrong secret", err, http.StatusUnauthorized, "invalid_client")

	noSecret := *c
	noSecret.ClientSecret = ""
	_, err = noSecret.PostToken(ctx(t), form)
	wantGrantErr(t, "no secret", err, http.StatusUnauthorized, "invalid_client")

	f := cloneValues(form)
	f.Set("resource", "https://other.example/mcp")
	_, err = c.PostToken(ctx(t), f)
	wantGrantErr(t, "bad resource", err, http.StatusBadRequest, "invalid_target")

	f = cloneValues(form)
	other, _ := mcpauthtest.PKCE()
	f.Set("code_verifier", other)
	_, err = c.PostToken(ctx(t), f)
	wantGrantErr(t, "wrong verifier", err, http.StatusBadRequest, "invalid_grant")

	if _, err := c.Exchange(ctx(t), res.Code, res.Verifier); err != nil {
		t.Errorf("legitimate request after failures: %v", err)
	}
}

func TestC8_TokenTypeIsolation(t *testing.T) {
	e := newEnv(t)
	c := e.register(nil)
	tok := e.tokens(c)
	res := e.authorize(c, mcpauthtest.AuthorizeOptions{})
	for name, code := range map[string]string{
		"refresh token as code": tok.RefreshToken,
		"access token as code":  tok.AccessToken,
		"garbage":               "garbage",
		"client id":             c.ClientID,
		"long":                  strings.Repeat("x", 4096),
		"hash-like":             strings.Repeat("0", 64),
	} {
		_, err := c.Exchange(ctx(t), code, res.Verifier)
		wantGrantErr(t, name, err, http.StatusBadRequest, "invalid_grant")
	}
	for name, rt := range map[string]string{
		"code as refresh token":   res.Code,
		"access as refresh token": tok.AccessToken,
		"garbage refresh":         "garbage",
	} {
		_, err := c.Refresh(ctx(t), rt)
		wantGrantErr(t, name, err, http.StatusBadRequest, "invalid_grant")
	}
	if e.live(res.Code) {
		t.Error("an authorization code works as a bearer token")
	}
	if e.live(tok.RefreshToken) {
		t.Error("a refresh token works as a bearer token")
	}
	if _, err := c.Exchange(ctx(t), res.Code, res.Verifier); err != nil {
		t.Errorf("the code after the attempts: %v", err)
	}
	if _, err := c.Refresh(ctx(t), tok.RefreshToken); err != nil {
		t.Errorf("the refresh token after the attempts: %v", err)
	}
}

func TestC9_GrantFromStoredCode(t *testing.T) {
	e := newEnv(t)
	c := e.register(nil)
	res := e.authorize(c, mcpauthtest.AuthorizeOptions{})
	form := url.Values{"grant_type": {"authorization_code"}, "code": {res.Code}, "code_verifier": {res.Verifier},
		"redirect_uri": {c.RedirectURI}, "scope": {"admin"}, "username": {"bob"}}
	tok, err := c.PostToken(ctx(t), form)
	if err != nil {
		if code := mcpauthtest.ErrorCode(err); code != "invalid_scope" {
			t.Fatalf("token request with a wider scope: %v, want success without it or invalid_scope", err)
		}
		if tok, err = c.Exchange(ctx(t), res.Code, res.Verifier); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Contains(tok.Scope, "admin") {
		t.Errorf("scope widened at /token: %q", tok.Scope)
	}
	if who := e.callWhoami(tok.AccessToken); !strings.HasPrefix(who, "alice|"+c.ClientID+"|") {
		t.Errorf("identity %q, want alice and %s from the stored code", who, c.ClientID)
	}
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// ---------------------------------------------------------------------------
// D. Token endpoint and client authentication

func TestD1_TokenNoStore(t *testing.T) {
	e := newEnv(t)
	c := e.register(nil)
	res := e.authorize(c, mcpauthtest.AuthorizeOptions{})
	check := func(what string, resp *http.Response) {
		t.Helper()
		if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
			t.Errorf("%s (%d): Cache-Control %q, want no-store", what, resp.StatusCode, cc)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s (%d): Content-Type %q, want application/json", what, resp.StatusCode, ct)
		}
	}
	resp, _, err := c.Post(ctx(t), "/token", url.Values{"grant_type": {"authorization_code"}, "code": {res.Code}, "code_verifier": {res.Verifier}, "redirect_uri": {c.RedirectURI}})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("exchange: %v %v", resp.StatusCode, err)
	}
	check("success", resp)
	resp, _ = e.postForm("/token", "grant_type=authorization_code&code=bad&client_id="+c.ClientID, nil)
	check("invalid_grant", resp)
	resp, _ = e.postForm("/token", "grant_type=authorization_code&code=bad&client_id=nobody", nil)
	check("invalid_client", resp)
	resp, _ = e.postForm("/token", "", nil)
	check("invalid_request", resp)
}

func TestD2_TokenErrorSemantics(t *testing.T) {
	e := newEnv(t)
	c := e.register(nil)
	conf := e.register(map[string]any{"token_endpoint_auth_method": "client_secret_basic"})
	tests := []struct {
		name   string
		body   string
		basic  [2]string
		status int
		code   string
	}{
		{"missing grant_type", "code=x&client_id=" + c.ClientID, [2]string{}, 400, "invalid_request"},
		{"unsupported grant_type", "grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&client_id=" + c.ClientID, [2]string{}, 400, "unsupported_grant_type"},
		{"missing code", "grant_type=authorization_code&code_verifier=x&client_id=" + c.ClientID, [2]string{}, 400, "invalid_request"},
		{"bad code", "grant_type=authorization_code&code=nope&code_verifier=" + strings.Repeat("a", 43) + "&redirect_uri=" + url.QueryEscape(c.RedirectURI) + "&client_id=" + c.ClientID, [2]string{}, 400, "invalid_grant"},
		{"unknown client", "grant_type=refresh_token&refresh_token=x&client_id=nobody", [2]string{}, 401, "invalid_client"},
		{"missing client", "grant_type=refresh_token&refresh_token=x", [2]string{}, 401, "invalid_client"},
		{"basic wrong secret", "grant_type=refresh_token&refresh_token=x", [2]string{conf.ClientID, "wrong"}, 401, "invalid_client"},
		{"basic unknown client", "grant_type=refresh_token&refresh_token=x", [2]string{"nobody", "x"}, 401, "invalid_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, e.base+"/token", strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tt.basic[0] != "" {
				req.SetBasicAuth(tt.basic[0], tt.basic[1])
			}
			resp, body := e.do(req)
			if resp.StatusCode != tt.status || oauthErr(body) != tt.code {
				t.Errorf("got %d %s, want %d %s", resp.StatusCode, body, tt.status, tt.code)
			}
			// Every 401 carries a challenge, whether or not the client used Basic.
			if tt.status == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic") {
				t.Errorf("401 invalid_client: WWW-Authenticate %q, want Basic", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
}

func TestD3_TokenTransport(t *testing.T) {
	e := newEnv(t)
	c := e.register(nil)
	res := e.authorize(c, mcpauthtest.AuthorizeOptions{})
	q := url.Values{"grant_type": {"authorization_code"}, "code": {res.Code}, "code_verifier": {res.Verifier}, "redirect_uri": {c.RedirectURI}, "client_id": {c.ClientID}}
	t.Run("GET", func(t *testing.T) {
		resp, _ := e.get("/token?"+q.Encode(), nil)
		if resp.StatusCode != http.StatusMethodNotAllowed && resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET /token: %d, want 405 or 400", resp.StatusCode)
		}
	})
	t.Run("JSON body", func(t *testing.T) {
		js, _ := json.Marshal(map[string]string{"grant_type": "authorization_code", "code": res.Code, "code_verifier": res.Verifier, "redirect_uri": c.RedirectURI, "client_id": c.ClientID})
		req, _ := http.NewRequest(http.MethodPost, e.base+"/token", bytes.NewReader(js))
		req.Header.Set("Content-Type", "application/json")
		resp, body := e.do(req)
		if resp.StatusCode != 400 || oauthErr(body) != "invalid_request" {
			t.Errorf("JSON body: %d %s, want 400 invalid_request", resp.StatusCode, body)
		}
	})
	t.Run("parameters in the query", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, e.base+"/token?"+q.Encode(), nil)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, body := e.do(req)
		if resp.StatusCode == 200 {
			t.Errorf("POST /token with parameters in the query string succeeded: %s", body)
		}
	})
	if _, err := c.Exchange(ctx(t), res.Code, res.Verifier); err != nil {
		t.Errorf("code after the bad requests: %v", err)
	}
}

func TestD4_DuplicateParameters(t *testing.T) {
	e := newEnv(t)
	c := e.register(nil)
	res := e.authorize(c, mcpauthtest.AuthorizeOptions{})
	base := url.Values{"grant_type": {"authorization_code"}, "code": {res.Code}, "code_verifier": {res.Verifier}, "redirect_uri": {c.RedirectURI}, "client_id": {c.ClientID}}
	for _, key := range []string{"grant_type", "code", "code_verifier", "redirect_uri", "client_id"} {
		t.Run(key, func(t *testing.T) {
			f := cloneValues(base)
			f[key] = append(f[key], f[key][0])
			resp, body := e.postForm("/token", f.Encode(), nil)
			if resp.StatusCode != 400 || oauthErr(body) != "invalid_request" {
				t.Errorf("duplicate %s: %d %s, want 400 invalid_request", key, resp.StatusCode, body)
			}
		})
	}
	if _, err := c.Exchange(ctx(t), res.Code, res.Verifier); err != nil {
		t.Errorf("code after the duplicates: %v", err)
	}
}

func TestD5_RegisteredAuthMethod(t *testing.T) {
	e := newEnv(t)
	pub := e.register(nil)
	post := e.register(map[string]any{"token_endpoint_auth_method": "client_secret_post"})
	basic := e.register(map[string]any{"token_endpoint_auth_method": "client_secret_basic"})

	t.Run("public client presents a secret", func(t *testing.T) {
		res := e.authorize(pub, mcpauthtest.AuthorizeOptions{})
		f := url.Values{"grant_type": {"authorization_code"}, "code": {res.Code}, "code_verifier": {res.Verifier}, "redirect_uri": {pub.RedirectURI}, "client_id": {pub.ClientID}, "client_secret": {"made-up"}}
		resp, body := e.postForm("/token", f.Encode(), nil)
		if resp.StatusCode != 401 || oauthErr(body) != "invalid_client" {
			t.Errorf("%d %s, want 401 invalid_client", resp.StatusCode, body)
		}
		f.Set("client_secret", "") // an empty secret counts as absent
		resp, body = e.postForm("/token", f.Encode(), nil)
		if resp.StatusCode != 200 {
			t.Errorf("empty client_secret from a public client: %d %s, want 200", resp.StatusCode, body)
		}
	})
	for _, c := range []*mcpauthtest.Client{post, basic} {
		t.Run(c.AuthMethod+" without secret", func(t *testing.T) {
			res := e.authorize(c, mcpauthtest.AuthorizeOptions{})
			f := url.Values{"grant_type": {"authorization_code"}, "code": {res.Code}, "code_verifier": {res.Verifier}, "redirect_uri": {c.RedirectURI}, "client_id": {c.ClientID}}
			resp, body := e.postForm("/token", f.Encode(), nil)
			if resp.StatusCode != 401 || oauthErr(body) != "invalid_client" {
				t.Errorf("%d %s, want 401 invalid_client", resp.StatusCode, body)
			}
			// Either secret method is accepted for confidential clients.
			swapped := *c
			if c.AuthMethod == "client_secret_post" {
				swapped.AuthMethod = "client_secret_basic"
			} else {
				swapped.AuthMethod = "client_secret_post"
			}
			if _, err := swapped.Exchange(ctx(t), res.Code, res.Verifier); err != nil {
				t.Errorf("code after the failure, other secret method: %v", err)
			}
		})
	}
}

func TestD6_BasicAuthDecoding(t *testing.T) {
	e := newEnv(t)
	c := e.register(map[string]any{"token_endpoint_auth_method": "client_secret_basic"})
	for name, header := range map[string]string{
		"bad base64":     "Basic !!!notbase64",
		"no colon":       "Basic " + b64("justanid"),
		"bad percent":    "Basic " + b64("%zz:%zz"),
		"empty":          "Basic ",
		"scheme only":    "Basic",
		"wrong scheme":   "Bearer " + b64(c.ClientID+":"+c.ClientSecret),
		"nul":            "Basic " + b64(c.ClientID+"\x00:"+c.ClientSecret),
		"huge":           "Basic " + b64(strings.Repeat("a", 8000)+":"+strings.Repeat("b", 8000)),
		"encoded colon":  "Basic " + b64(c.ClientID+"%3A"+c.ClientSecret),
		"id only":        "Basic " + b64(c.ClientID+":"),
		"secret of none": "Basic " + b64(":"+c.ClientSecret),
	} {
		t.Run(name, func(t *testing.T) {
			resp, body := e.postForm("/token", "grant_type=refresh_token&refresh_token=x", http.Header{"Authorization": {header}})
			if resp.StatusCode != 401 && resp.StatusCode != 400 {
				t.Errorf("%d %s, want 401 invalid_client (or 400)", resp.StatusCode, body)
			}
		})
	}
	t.Run("percent-encoded credentials", func(t *testing.T) {
		res := e.authorize(c, mcpauthtest.AuthorizeOptions{})
		f := url.Values{"grant_type": {"authorization_code"}, "code": {res.Code}, "code_verifier": {res.Verifier}, "redirect_uri": {c.RedirectURI}}
		header := "Basic " + b64(url.QueryEscape(c.ClientID)+":"+url.QueryEscape(c.ClientSecret))
		resp, body := e.postForm("/token", f.Encode(), http.Header{"Authorization": {header}})
		if resp.StatusCode != 200 {
			t.Errorf("RFC 6749 §2.3.1 encoded Basic credentials: %d %s", resp.StatusCode, body)
		}
	})
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestD7_ClientSecrets(t *testing.T) {
	e := newEnv(t)
	seen := map[string]bool{}
	for range 5 {
		c := e.register(map[string]any{"token_endpoint_auth_method": "client_secret_post"})
		if len(c.ClientSecret) < 22 || seen[c.ClientSecret] {
			t.Errorf("client_secret %q: want at least 128 bits, never repeated", c.ClientSecret)
		}
		seen[c.ClientSecret] = true
	}
}

func TestD8_GrantTypes(t *testing.T) {
	e := newEnv(t)
	c := e.register(nil)
	for _, gt := range []string{"password", "client_credentials", "implicit", "token", "urn:ietf:params:oauth:grant-type:device_code", "urn:ietf:params:oauth:grant-type:token-exchange", "AUTHORIZATION_CODE", "refresh_token "} {
		f := url.Values{"grant_type": {gt}, "client_id": {c.ClientID}, "username": {"alice"}, "password": {testUsers["alice"]}}
		resp, body := e.postForm("/token", f.Encode(), nil)
		if resp.StatusCode != 400 || oauthErr(body) != "unsupported_grant_type" {
			t.Errorf("grant_type %q: %d %s, want 400 unsupported_grant_type", gt, resp.StatusCode, body)
		}
	}
}

func TestD9_SuccessBody(t *testing.T) {
	e := newEnv(t)
	c := e.register(nil)
	res := e.authorize(c, mcpauthtest.AuthorizeOptions{})
	resp, body, err := c.Post(ctx(t), "/token", url.Values{"grant_type": {"authorization_code"}, "code": {res.Code}, "code_verifier": {res.Verifier}, "redirect_uri": {c.RedirectURI}})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("exchange: %v %s", err, body)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{"access_token": true, "token_type": true, "expires_in": true, "refresh_token": true, "scope": true}
	for k := range m {
		if !allowed[k] {
			t.Errorf("unexpected field %q in token response", k)
		}
	}
	if m["token_type"] != "Bearer" {
		t.Errorf("token_type = %v, want Bearer", m["token_type"])
	}
	if n, _ := m["expires_in"].(float64); n <= 0 {
		t.Errorf("expires_in = %v", m["expires_in"])
	}
	for _, k := range []string{"access_token", "refresh_token", "scope"} {
		if s, _ := m[k].(string); s == "" {
			t.Errorf("%s missing or empty", k)
		}
	}
	if m["access_token"] == m["refresh_token"] {
		t.Error("access and refresh token are equal")
	}
}

// ---------------------------------------------------------------------------
// E. Refresh tokens

func TestE1_RefreshRotation(t *testing.T) {
	e := newEnv(t)
	c := e.register(nil)
	tok := e.tokens(c)
	next, err := c.Refresh(ctx(t), tok.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if next.RefreshToken == "" || next.RefreshToken == tok.RefreshToken {
		t.Errorf("refresh token not rotated: %q", next.RefreshToken)
	}
	if next.AccessToken == tok.AccessToken {
		t.Error("refresh returned the same access token")
	}
	if !e.live(next.AccessToken) {
		t.Error("new access token rejected")
	}
	if who := e.callWhoami(next.AccessToken); !strings.HasPrefix(who, "alice|"+c.ClientID+"|") {
		t.Errorf("identity after refresh %q", who)
	}
}

// E2: the previous token stays valid until its successor is
// first used; reuse after that revokes the family.
func TestE2_RefreshReuse(t *testing.T) {
	e := newEnv(t)
	c := e.register(nil)
	tok := e.tokens(c)
	rt2, err := c.Refresh(ctx(t), tok.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	retry, err := c.Refresh(ctx(t), tok.RefreshToken)
	if err != nil {
		t.Fatalf("retry within the grace (successor unused): %v", err)
	}
	if !e.live(retry.AccessToken) {
		t.Error("access token from the retry rejected")
	}
	rt3, err := c.Refresh(ctx(t), retry.RefreshToken)
	if err != nil {
		t.Fatalf("successor from the retry: %v", err)
	}
	_, err = c.Refresh(ctx(t), tok.RefreshToken)
	wantGrantErr(t, "reuse after the successor was used", err, http.StatusBadRequest, "invalid_grant")
	_, err = c.Refresh(ctx(t), rt3.RefreshToken)
	wantGrantErr(t, "family member after reuse", err, http.StatusBadRequest, "invalid_grant")
	for name, at := range map[string]string{"first": tok.AccessToken, "second": rt2.AccessToken, "latest": rt3.AccessToken} {
		if e.live(at) {
			t.Errorf("%s access token still works after refresh-token reuse", name)
		}
	}
}

func TestE2_RefreshReuseAfterGrace(t *testing.T) {
	e := newEnv(t)
	c := e.register(nil)
	tok := e.tokens(c)
	next, err := c.Refresh(ctx(t), tok.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	e.advance(61 * time.Second) // past the default 60 s grace, successor unused
	_, err = c.Refresh(ctx(t), tok.RefreshToken)
	wantGrantErr(t, "reuse after the grace", err, http.StatusBadRequest, "invalid_grant")
	_, err = c.Refresh(ctx(t), next.RefreshToken)
	wantGrantErr(t, "successor after reuse", err, http.StatusBadRequest, "invalid_grant")
	if e.live(next.AccessToken) {
		t.Error("access token of the family still works after reuse")
	}
}

func TestE4_RefreshBoundToClient(t *testing.T) {
	e := newEnv(t)
	a := e.register(nil)
	b := e.register(nil)
	tok := e.tokens(a)
	_, err := b.Refresh(ctx(t), tok.RefreshToken)
	wantGrantErr(t, "client B refreshes A's token", err, http.StatusBadRequest, "invalid_grant")
	if _, err := a.Refresh(ctx(t), tok.RefreshToken); err != nil {
		t.Errorf("client A after B's attempt: %v", err)
	}
}

func TestE5_RefreshScope(t *testing.T) {
	e := newEnv(t)
	md := e.metadata("/.well-known/oauth-authorization-server")
	var scopes []string
	for _, s := range md["scopes_supported"].([]any) {
		scopes = append(scopes, s.(string))
	}
	if len(scopes) == 0 {
		t.Fatal("no scopes_supported")
	}
	c := e.register(nil)
	res := e.authorize(c, mcpauthtest.AuthorizeOptions{Scope: strings.Join(scopes, " ")})
	tok, err := c.Exchange(ctx(t), res.Code, res.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	refresh := func(rt, scope string) (*mcpauthtest.Token, error) {
		return c.PostToken(ctx(t), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "scope": {scope}})
	}
	_, err = refresh(tok.RefreshToken, strings.Join(scopes, " ")+" admin")
	wantGrantErr(t, "wider scope", err, http.StatusBadRequest, "invalid_scope")
	narrow, err := refresh(tok.RefreshToken, scopes[0])
	if err != nil {
		t.Fatalf("narrower scope: %v", err)
	}
	if narrow.Scope != scopes[0] {
		t.Errorf("narrowed scope = %q, want %q", narrow.Scope, scopes[0])
	}
	full, err := c.Refresh(ctx(t), narrow.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(full.Scope); len(got) != len(scopes) {
		t.Errorf("refresh without scope after narrowing: %q, want the original %q", full.Scope, scopes)
	}
}

func TestE6_RefreshResource(t *testing.T) {
	e := newEnv(t)
	c := e.register(nil)
	tok := e.tokens(c)
	_, err := c.PostToken(ctx(t), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "resource": {"https://other.example/mcp"}})
	wantGrantErr(t, "other resource", err, http.StatusBadRequest, "invalid_target")
	next, err := c.PostToken(ctx(t), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "resource": {e.mcpURL}})
	if err != nil {
		t.Fatalf("same resource (the token must not have been rotated by the failure): %v", err)
	}
	if !e.live(next.AccessToken) {
		t.Error("access token rejected")
	}
}

func TestE7_TokenLifetimes(t *testing.T) {
	e := newEnv(t, func(c *mcpauth.Config) {
		c.AccessTTL = time.Minute
		c.RefreshTTL = time.Hour
	})
	c := e.register(nil)
	tok := e.tokens(c)
	if tok.ExpiresIn <= 0 || tok.ExpiresIn > 60 {
		t.Errorf("expires_in = %d with AccessTTL 1m", tok.ExpiresIn)
	}
	e.advance(61 * time.Second)
	st, hdr, err := mcpauthtest.BearerStatus(ctx(t), nil, e.mcpURL, tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if st != http.StatusUnauthorized || !strings.Contains(hdr.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("expired access token: %d %q, want 401 invalid_token", st, hdr.Get("WWW-Authenticate"))
	}
	next, err := c.Refresh(ctx(t), tok.RefreshToken)
	if err != nil {
		t.Fatalf("refresh within RefreshTTL: %v", err)
	}
	e.advance(61 * time.Minute)
	_, err = c.Refresh(ctx(t), next.RefreshToken)
	wantGrantErr(t, "expired refresh token", err, http.StatusBadRequest, "invalid_grant")
}

func TestE8_UserRemovedOrPasswordChanged(t *testing.T) {
	e := newEnv(t)
	c := e.register(nil)
	tokA := e.tokens(c)
	resB, err := c.Authorize(ctx(t), mcpauthtest.AuthorizeOptions{Username: "bob", Password: testUsers["bob"]})
	if err != nil {
		t.Fatal(err)
	}
	tokB, err := c.Exchange(ctx(t), resB.Code, resB.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	// alice removed, bob's password changed.
	editUsers(t, func() { writeUsers(t, e.usersPath, map[string]string{"bob": "a-new-password"}) }, e.cur.Load())
	for name, tok := range map[string]*mcpauthtest.Token{"removed user": tokA, "changed password": tokB} {
		t.Run(name, func(t *testing.T) {
			if e.live(tok.AccessToken) {
				t.Error("access token still works")
			}
			_, err := c.Refresh(ctx(t), tok.RefreshToken)
			wantGrantErr(t, "refresh", err, http.StatusBadRequest, "invalid_grant")
		})
	}
	if _, err := c.Authorize(ctx(t), mcpauthtest.AuthorizeOptions{Username: "bob", Password: "a-new-password"}); err != nil {
		t.Errorf("login with the new password: %v", err)
	}
}

func TestE9_RefreshIssuancePolicy(t *testing.T) {
	e := newEnv(t)
	c, err := mcpauthtest.Register(ctx(t), e.base, map[string]any{"grant_types": []string{"authorization_code"}})
	if err != nil {
		t.Skipf("registration without refresh_token grant refused: %v", err)
	}
	res := e.authorize(c, mcpauthtest.AuthorizeOptions{})
	tok, err := c.Exchange(ctx(t), res.Code, res.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken != "" {
		t.Error("refresh token issued to a client registered without the refresh_token grant")
	}
}

// ---------------------------------------------------------------------------
// F. Revocation

func TestF1_RevokeRefreshToken(t *testing.T) {
	e := newEnv(t)
	c := e.register(nil)
	tok := e.tokens(c)
	next, err := c.Refresh(ctx(t), tok.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Revoke(ctx(t), next.RefreshToken, "refresh_token"); err != nil {
		t.Fatal(err)
	}
	_, err = c.Refresh(ctx(t), next.RefreshToken)
	wantGrantErr(t, "revoked refresh token", err, http.StatusBadRequest, "invalid_grant")
	for _, at := range []string{tok.AccessToken, next.AccessToken} {
		if e.live(at) {
			t.Error("access token of the revoked family still works")
		}
	}
}

// F2: revoking an access token leaves the refresh token alive.
func TestF2_RevokeAccessToken(t *testing.T) {
	e := newEnv(t)
	c := e.register(nil)
	tok := e.tokens(c)
	if err := c.Revoke(ctx(t), tok.AccessToken, "access_token"); err != nil {
		t.Fatal(err)
	}
	if e.live(tok.AccessToken) {
		t.Error("revoked access token still works")
	}
	next, err := c.Refresh(ctx(t), tok.RefreshToken)
	if err != nil {
		t.Fatalf("refresh token after revoking the access token: %v", err)
	}
	if !e.live(next.AccessToken) {
		t.Error("new access token rejected")
	}
}

func TestF3_RevokeUnknownToken(t *testing.T) {
	e := newEnv(t)
	c := e.register(nil)
	tok := e.tokens(c)
	revoke := func(token string) (*http.Response, []byte) {
		resp, body, err := c.Post(ctx(t), "/revoke", url.Values{"token": {token}})
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}
	known, knownBody := revoke(tok.AccessToken)
	for _, tokStr := range []string{"garbage", strings.Repeat("z", 43), tok.AccessToken /* now revoked */} {
		resp, body := revoke(tokStr)
		if resp.StatusCode != 200 || !bytes.Equal(body, knownBody) || resp.StatusCode != known.StatusCode {
			t.Errorf("revoke %.10s…: %d %q, want the same answer as for a live token (%d %q)", tokStr, resp.StatusCode, body, known.StatusCode, knownBody)
		}
	}
}

func TestF4_RevokeOtherClientsToken(t *testing.T) {
	e := newEnv(t)
	a := e.register(nil)
	b := e.register(nil)
	tok := e.tokens(a)
	for _, x := range []string{tok.AccessToken, tok.RefreshToken} {
		if err := b.Revoke(ctx(t), x, ""); err != nil {
			t.Errorf("revoke by another client: %v, want 200", err)
		}
	}
	if !e.live(tok.AccessToken) {
		t.Error("another client revoked the access token")
	}
	if _, err := a.Refresh(ctx(t), tok.RefreshToken); err != nil {
		t.Errorf("another client revoked the refresh token: %v", err)
	}
}

func TestF5_RevokeClientAuthAndHints(t *testing.T) {
	e := newEnv(t)
	c := e.register(map[string]any{"token_endpoint_auth_method": "client_secret_post"})
	tok := e.tokens(c)
	wrong := *c
	wrong.ClientSecret = "wrong"
	err := wrong.Revoke(ctx(t), tok.AccessToken, "")
	wantGrantErr(t, "wrong secret", err, http.StatusUnauthorized, "invalid_client")
	if !e.live(tok.AccessToken) {
		t.Error("revocation with a wrong secret revoked the token")
	}
	// A wrong hint is only a hint.
	if err := c.Revoke(ctx(t), tok.RefreshToken, "access_token"); err != nil {
		t.Fatal(err)
	}
	_, err = c.Refresh(ctx(t), tok.RefreshToken)
	wantGrantErr(t, "refresh token revoked with a wrong hint", err, http.StatusBadRequest, "invalid_grant")
	err = c.Revoke(ctx(t), tok.AccessToken, "device_code")
	if err != nil && mcpauthtest.ErrorCode(err) != "unsupported_token_type" {
		t.Errorf("unknown hint: %v, want 200 or unsupported_token_type", err)
	}
}

// lockDB holds the database's write lock from another connection until the
// returned func is called.
func lockDB(t *testing.T, path string) func() {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx(t), "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	return func() {
		conn.ExecContext(ctx(t), "ROLLBACK")
		conn.Close()
		db.Close()
	}
}

func TestF6_RevokeStorageFailure(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the server's busy timeout")
	}
	t.Parallel() // mostly waiting for the server's busy retries (about 20 s)
	e := newEnv(t)
	c := e.register(nil)
	tok := e.tokens(c)
	unlock := lockDB(t, e.dbPath)
	resp, body, err := c.Post(ctx(t), "/revoke", url.Values{"token": {tok.RefreshToken}})
	unlock()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || oauthErr(body) != "temporarily_unavailable" {
		t.Errorf("revoke with the database locked: %d %s, want 503 temporarily_unavailable (never a false 200)", resp.StatusCode, body)
	}
	assertNoInternals(t, body)
	if _, err := c.Refresh(ctx(t), tok.RefreshToken); err != nil {
		t.Errorf("refresh token after a failed revocation: %v", err)
	}
}

func TestF7_RevokeHeaders(t *testing.T) {
	e := newEnv(t)
	c := e.register(nil)
	resp, _ := e.get("/revoke?token=x&client_id="+c.ClientID, nil)
	if resp.StatusCode != http.StatusMethodNotAllowed && resp.StatusCode != http.StatusBadRequest {
		t.Errorf("GET /revoke: %d, want 405 or 400", resp.StatusCode)
	}
	resp, _, err := c.Post(ctx(t), "/revoke", url.Values{"token": {"x"}})
	if err != nil {
		t.Fatal(err)
	}
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("POST /revoke: Cache-Control %q, want no-store", cc)
	}
}

// ---------------------------------------------------------------------------
// G. Resource and audience binding, resource server, metadata

func TestG1_ResourceParameter(t *testing.T) {
	e := newEnv(t)
	c := e.register(nil)
	u, _ := url.Parse(e.mcpURL)
	for name, res := range map[string]string{
		"relative":      "/mcp",
		"fragment":      e.mcpURL + "#x",
		"other server":  "https://other.example/mcp",
		"issuer":        e.base,
		"sub path":      e.mcpURL + "/x",
		"query":         e.mcpURL + "?x=1",
		"other port":    "http://" + u.Hostname() + ":1/mcp",
		"two slashes":   e.mcpURL + "//",
		"not a uri":     "%%%",
		"two resources": "", // filled below
	} {
		t.Run(name, func(t *testing.T) {
			q := authorizeQuery(c, url.Values{"resource": {res}})
			if name == "two resources" {
				q["resource"] = []string{e.mcpURL, "https://other.example/mcp"}
			}
			resp, body := e.get("/authorize?"+q.Encode(), nil)
			assertNoRedirect(t, res, resp, body)
		})
	}
	for name, res := range map[string]string{
		"exact":          e.mcpURL,
		"trailing slash": e.mcpURL + "/",
		"upper scheme":   "HTTP://" + u.Host + "/mcp",
	} {
		t.Run("accepted/"+name, func(t *testing.T) {
			r := e.authorize(c, mcpauthtest.AuthorizeOptions{Resource: res})
			if _, err := c.Exchange(ctx(t), r.Code, r.Verifier); err != nil {
				t.Errorf("resource %s: %v", res, err)
			}
		})
	}
}

func TestG2_AudienceEnforced(t *testing.T) {
	a := newEnv(t)
	// A second resource server sharing the same storage: a token issued for
	// a's resource must not work at b's.
	b := newEnv(t, func(cfg *mcpauth.Config) { cfg.Database, cfg.UsersPath = a.dbPath, a.usersPath })
	c := a.register(nil)
	tok := a.tokens(c)
	if !a.live(tok.AccessToken) {
		t.Fatal("token rejected by its own resource")
	}
	st, hdr, err := mcpauthtest.BearerStatus(ctx(t), nil, b.mcpURL, tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if st != http.StatusUnauthorized || !strings.Contains(hdr.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("token for %s at %s: %d %q, want 401 invalid_token", a.mcpURL, b.mcpURL, st, hdr.Get("WWW-Authenticate"))
	}
}

func TestG3_BearerChallenges(t *testing.T) {
	e := newEnv(t)
	c := e.register(nil)
	tok := e.tokens(c)
	prm := e.base + "/.well-known/oauth-protected-resource/mcp"
	t.Run("no token", func(t *testing.T) {
		st, hdr, err := mcpauthtest.BearerStatus(ctx(t), nil, e.mcpURL, "")
		if err != nil {
			t.Fatal(err)
		}
		ch := hdr.Values("WWW-Authenticate")
		if st != 401 || len(ch) != 1 {
			t.Fatalf("%d %q, want 401 with exactly one challenge", st, ch)
		}
		if !strings.HasPrefix(ch[0], `Bearer resource_metadata="`+prm+`"`) || !strings.Contains(ch[0], `scope="`) || strings.Contains(ch[0], "error") {
			t.Errorf("challenge %q, want Bearer resource_metadata=%q, scope=… and no error", ch[0], prm)
		}
	})
	for name, at := range map[string]string{"garbage": "garbage", "refresh token": tok.RefreshToken, "truncated": tok.AccessToken[:len(tok.AccessToken)-1]} {
		t.Run(name, func(t *testing.T) {
			st, hdr, err := mcpauthtest.BearerStatus(ctx(t), nil, e.mcpURL, at)
			if err != nil {
				t.Fatal(err)
			}
			if ch := hdr.Get("WWW-Authenticate"); st != 401 || !strings.Contains(ch, `error="invalid_token"`) || !strings.Contains(ch, `resource_metadata="`+prm+`"`) {
				t.Errorf("%d %q, want 401 error=\"invalid_token\" with resource_metadata", st, ch)
			}
		})
	}
	t.Run("token in the query", func(t *testing.T) {
		st, _, err := mcpauthtest.BearerStatus(ctx(t), nil, e.mcpURL+"?access_token="+url.QueryEscape(tok.AccessToken), "")
		if err != nil {
			t.Fatal(err)
		}
		if st != 401 {
			t.Errorf("?access_token=: %d, want 401", st)
		}
	})
	t.Run("token in a form body", func(t *testing.T) {
		resp, _ := e.postForm("/mcp", "access_token="+url.QueryEscape(tok.AccessToken), nil)
		if resp.StatusCode != 401 {
			t.Errorf("access_token in the body: %d, want 401", resp.StatusCode)
		}
	})
	t.Run("auth before protocol checks", func(t *testing.T) {
		for _, method := range []string{http.MethodGet, http.MethodDelete, http.MethodPost} {
			req, _ := http.NewRequest(method, e.mcpURL, strings.NewReader("not json"))
			req.Header.Set("Mcp-Session-Id", "bogus")
			req.Header.Set("Mcp-Protocol-Version", "1999-01-01")
			resp, _ := e.do(req)
			if resp.StatusCode != 401 {
				t.Errorf("%s /mcp without a token: %d, want 401", method, resp.StatusCode)
			}
		}
	})
	t.Run("valid token", func(t *testing.T) {
		if who := e.callWhoami(tok.AccessToken); !strings.HasPrefix(who, "alice|") {
			t.Errorf("whoami = %q", who)
		}
	})
	// Missing scope (403 insufficient_scope) cannot be provoked: every
	// token carries the scope /mcp requires.
}

func TestG4_AuthorizationServerMetadata(t *testing.T) {
	e := newEnv(t)
	md := e.metadata("/.well-known/oauth-authorization-server")
	want := map[string]string{
		"issuer":                                e.base,
		"authorization_endpoint":                e.base + "/authorize",
		"token_endpoint":                        e.base + "/token",
		"registration_endpoint":                 e.base + "/register",
		"revocation_endpoint":                   e.base + "/revoke",
		"response_types_supported":              `["code"]`,
		"grant_types_supported":                 `["authorization_code","refresh_token"]`,
		"code_challenge_methods_supported":      `["S256"]`,
		"token_endpoint_auth_methods_supported": `["none","client_secret_post","client_secret_basic"]`,
	}
	for k, v := range want {
		got := md[k]
		if s, ok := got.(string); ok {
			if s != v {
				t.Errorf("%s = %q, want %q", k, s, v)
			}
			continue
		}
		js, _ := json.Marshal(got)
		if string(js) != v {
			t.Errorf("%s = %s, want %s", k, js, v)
		}
	}
	for _, k := range []string{"jwks_uri", "userinfo_endpoint", "introspection_endpoint", "registration_client_uri", "pushed_authorization_request_endpoint", "device_authorization_endpoint"} {
		if _, ok := md[k]; ok {
			t.Errorf("advertises %s, which is not implemented", k)
		}
	}
	for name, h := range map[string]http.Header{
		"X-Forwarded-Host":  {"X-Forwarded-Host": {"evil.example"}, "X-Forwarded-Proto": {"https"}},
		"Forwarded":         {"Forwarded": {"host=evil.example;proto=https"}},
		"X-Forwarded-Proto": {"X-Forwarded-Proto": {"https"}},
	} {
		resp, body := e.get("/.well-known/oauth-authorization-server", h)
		var m map[string]any
		json.Unmarshal(body, &m)
		if resp.StatusCode != 200 || m["issuer"] != e.base {
			t.Errorf("%s: %d issuer %v, want %s", name, resp.StatusCode, m["issuer"], e.base)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, e.base+"/.well-known/oauth-authorization-server", nil)
	req.Host = "evil.example"
	resp, body := e.do(req)
	var m map[string]any
	json.Unmarshal(body, &m)
	if resp.StatusCode == 200 && m["issuer"] != e.base {
		t.Errorf("Host: evil.example: issuer %v", m["issuer"])
	}
	if resp, _ := e.get("/.well-known/openid-configuration", nil); resp.StatusCode != 404 {
		t.Errorf("openid-configuration: %d, want 404", resp.StatusCode)
	}
}

func TestG5_ProtectedResourceMetadata(t *testing.T) {
	e := newEnv(t)
	var first []byte
	for _, p := range []string{"/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/", "/.well-known/oauth-protected-resource/mcp/"} {
		resp, body := e.get(p, http.Header{"Origin": {"https://some.app"}})
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("GET %s: %d %s", p, resp.StatusCode, resp.Header.Get("Content-Type"))
			continue
		}
		if first == nil {
			first = body
		} else if !bytes.Equal(first, body) {
			t.Errorf("GET %s: body differs from the path-inserted document", p)
		}
		if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("GET %s: Access-Control-Allow-Origin %q, want *", p, resp.Header.Get("Access-Control-Allow-Origin"))
		}
		var m map[string]any
		json.Unmarshal(body, &m)
		if m["resource"] != e.mcpURL {
			t.Errorf("GET %s: resource %v, want %s", p, m["resource"], e.mcpURL)
		}
		if js, _ := json.Marshal(m["authorization_servers"]); string(js) != `["`+e.base+`"]` {
			t.Errorf("GET %s: authorization_servers %s", p, js)
		}
		if js, _ := json.Marshal(m["bearer_methods_supported"]); string(js) != `["header"]` {
			t.Errorf("GET %s: bearer_methods_supported %s", p, js)
		}
	}
	req, _ := http.NewRequest(http.MethodOptions, e.base+"/.well-known/oauth-protected-resource/mcp", nil)
	req.Header.Set("Origin", "https://some.app")
	req.Header.Set("Access-Control-Request-Method", "GET")
	req.Header.Set("Access-Control-Request-Headers", "mcp-protocol-version")
	resp, _ := e.do(req)
	if resp.StatusCode >= 300 || !strings.Contains(strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers")), "mcp-protocol-version") {
		t.Errorf("preflight: %d, Access-Control-Allow-Headers %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Headers"))
	}
}

// ---------------------------------------------------------------------------
// H. Dynamic client registration

func postJSON(e *env, path string, body []byte) (*http.Response, []byte) {
	req, _ := http.NewRequest(http.MethodPost, e.base+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return e.do(req)
}

func TestH1_RegistrationValidation(t *testing.T) {
	e := newEnv(t)
	many := make([]string, 500)
	for i := range many {
		many[i] = "https://client.example/cb" + strings.Repeat("x", i%7) + string(rune('a'+i%26))
	}
	tests := []struct {
		name  string
		meta  map[string]any
		codes []string
	}{
		{"no redirect_uris", map[string]any{"redirect_uris": nil}, []string{"invalid_redirect_uri", "invalid_client_metadata"}},
		{"empty redirect_uris", map[string]any{"redirect_uris": []string{}}, []string{"invalid_redirect_uri", "invalid_client_metadata"}},
		{"redirect_uris not a list", map[string]any{"redirect_uris": "https://client.example/cb"}, []string{"invalid_redirect_uri", "invalid_client_metadata"}},
		{"non-loopback http", map[string]any{"redirect_uris": []string{"http://client.example/cb"}}, []string{"invalid_redirect_uri"}},
		{"userinfo", map[string]any{"redirect_uris": []string{"https://u@client.example/cb"}}, []string{"invalid_redirect_uri"}},
		{"2 KB long", map[string]any{"redirect_uris": []string{"https://client.example/" + strings.Repeat("a", 4096)}}, []string{"invalid_redirect_uri"}},
		{"500 URIs", map[string]any{"redirect_uris": many}, []string{"invalid_redirect_uri", "invalid_client_metadata"}},
		{"grant password", map[string]any{"grant_types": []string{"authorization_code", "password"}}, []string{"invalid_client_metadata"}},
		{"grant client_credentials", map[string]any{"grant_types": []string{"client_credentials"}}, []string{"invalid_client_metadata"}},
		{"grant implicit", map[string]any{"grant_types": []string{"implicit"}}, []string{"invalid_client_metadata"}},
		{"response_type token", map[string]any{"response_types": []string{"token"}}, []string{"invalid_client_metadata"}},
		{"auth method private_key_jwt", map[string]any{"token_endpoint_auth_method": "private_key_jwt"}, []string{"invalid_client_metadata"}},
		{"auth method bogus", map[string]any{"token_endpoint_auth_method": "bogus"}, []string{"invalid_client_metadata"}},
		{"refresh only", map[string]any{"grant_types": []string{"refresh_token"}}, []string{"invalid_client_metadata"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			meta := map[string]any{"redirect_uris": []string{"https://client.example/cb"}}
			for k, v := range tt.meta {
				if v == nil {
					delete(meta, k)
				} else {
					meta[k] = v
				}
			}
			body, _ := json.Marshal(meta)
			resp, rb := postJSON(e, "/register", body)
			got := oauthErr(rb)
			ok := false
			for _, c := range tt.codes {
				ok = ok || got == c
			}
			if (resp.StatusCode != 400 && resp.StatusCode != 413) || (resp.StatusCode == 400 && !ok) {
				t.Errorf("%d %s, want 400 %v", resp.StatusCode, rb, tt.codes)
			}
		})
	}
	for name, body := range map[string]string{"not json": "redirect_uris=x", "array": "[]", "null": "null", "truncated": `{"redirect_uris":["https://c.example/cb"]`} {
		resp, rb := postJSON(e, "/register", []byte(body))
		if resp.StatusCode != 400 {
			t.Errorf("%s: %d %s, want 400", name, resp.StatusCode, rb)
		}
	}
}

func TestH2_ServerAssignedIdentity(t *testing.T) {
	e := newEnv(t)
	body, _ := json.Marshal(map[string]any{"client_id": "chosen-by-me", "client_secret": "mine", "redirect_uris": []string{"https://client.example/cb"}, "token_endpoint_auth_method": "none", "x-unknown": 1})
	resp, rb := postJSON(e, "/register", body)
	if resp.StatusCode != 201 {
		t.Fatalf("%d %s", resp.StatusCode, rb)
	}
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
	var m map[string]any
	json.Unmarshal(rb, &m)
	if id, _ := m["client_id"].(string); id == "chosen-by-me" || len(id) < 16 {
		t.Errorf("client_id %q: want a server-assigned random id", id)
	}
	if _, ok := m["client_secret"]; ok {
		t.Error("public client got a client_secret")
	}
	if _, ok := m["client_id_issued_at"]; !ok {
		t.Error("no client_id_issued_at")
	}
	for k, v := range m {
		if v == nil || v == "" {
			t.Errorf("field %s is null or empty", k)
		}
		if l, ok := v.([]any); ok && len(l) == 0 {
			t.Errorf("field %s is an empty list", k)
		}
	}
	conf := e.register(map[string]any{"token_endpoint_auth_method": "client_secret_basic"})
	if conf.ClientSecret == "" {
		t.Fatal("confidential client got no client_secret")
	}
	if _, ok := conf.Registration["client_secret_expires_at"]; !ok {
		t.Error("client_secret without client_secret_expires_at (RFC 7591 §3.2.1)")
	}
}

func TestH3_ClientNameEscaped(t *testing.T) {
	e := newEnv(t)
	name := `<script>alert(1)</script><img src=x onerror=alert(2)>`
	c := e.register(map[string]any{"client_name": name, "redirect_uris": []string{"https://client-host.example/cb"}, "client_uri": "javascript:alert(3)", "logo_uri": "https://evil.example/logo.png"})
	page, err := c.OpenAuthorize(ctx(t), mcpauthtest.AuthorizeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	body := string(page.Body)
	for _, raw := range []string{"<script>alert(1)", "<img src=x", "javascript:alert(3)"} {
		if strings.Contains(body, raw) {
			t.Errorf("login page contains %q unescaped", raw)
		}
	}
	if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("client name not shown (escaped)")
	}
	if low := strings.ToLower(body); !strings.Contains(low, "unverified") && !strings.Contains(low, "not verified") {
		t.Error("client name not marked unverified")
	}
	if !strings.Contains(body, "client-host.example") {
		t.Error("redirect host not shown")
	}
}

// TestH3_AppSchemeShownByScheme: for an app-scheme redirect URI the page
// names the scheme, never the URI's host part, which the registrant picks:
// "evilapp://claude.ai/cb" must not read as "sent back to claude.ai".
func TestH3_AppSchemeShownByScheme(t *testing.T) {
	e := newEnv(t)
	c := e.register(map[string]any{"client_name": "Claude", "redirect_uris": []string{"evilapp://claude.ai/api/mcp/auth_callback"}})
	page, err := c.OpenAuthorize(ctx(t), mcpauthtest.AuthorizeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	body := string(page.Body)
	if strings.Contains(body, "claude.ai") || !strings.Contains(body, "evilapp:") {
		t.Errorf("sign-in page for evilapp://claude.ai/…: want the scheme evilapp: named, not the host claude.ai:\n%s", body)
	}
}

func TestH4_RegistrationLimits(t *testing.T) {
	e := newEnv(t)
	big := []byte(`{"redirect_uris":["https://client.example/cb"],"client_name":"` + strings.Repeat("a", 2<<20) + `"}`)
	resp, _ := postJSON(e, "/register", big)
	if resp.StatusCode != http.StatusRequestEntityTooLarge && resp.StatusCode != http.StatusBadRequest {
		t.Errorf("2 MiB registration: %d, want 413 or 400", resp.StatusCode)
	}
	body := []byte(`{"redirect_uris":["https://client.example/cb"]}`)
	for i := range 1000 {
		resp, rb := postJSON(e, "/register", body)
		if resp.StatusCode == http.StatusTooManyRequests {
			if resp.Header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
			return
		}
		if resp.StatusCode != 201 {
			t.Fatalf("registration %d: %d %s", i, resp.StatusCode, rb)
		}
	}
	t.Error("1000 registrations from one IP were never throttled")
}

func TestH5_NoSilentApproval(t *testing.T) {
	e := newEnv(t)
	c := e.register(nil)
	page, err := c.OpenAuthorize(ctx(t), mcpauthtest.AuthorizeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := page.Submit(ctx(t), "alice", testUsers["alice"], false); err != nil {
		t.Fatal(err)
	}
	// The same browser (cookie jar) comes back: the user must act again.
	req, _ := http.NewRequest(http.MethodGet, c.AuthorizeURL(mcpauthtest.AuthorizeOptions{}, mcpauthtest.Challenge("x")), nil)
	resp, err := page.Browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Location") != "" {
		t.Errorf("second /authorize in the same browser: %d %q, want the login page again", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// ---------------------------------------------------------------------------
// I. Login page

func TestI1_LoginCSRF(t *testing.T) {
	e := newEnv(t)
	c := e.register(nil)
	open := func() (*mcpauthtest.LoginPage, url.Values) {
		t.Helper()
		page, err := c.OpenAuthorize(ctx(t), mcpauthtest.AuthorizeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		fields, _ := page.Form.Values("alice", testUsers["alice"], false)
		return page, fields
	}
	refused := func(t *testing.T, what string, resp *http.Response, body []byte, want403 bool) {
		t.Helper()
		if strings.Contains(resp.Header.Get("Location"), "code=") || resp.StatusCode == http.StatusSeeOther {
			t.Errorf("%s: %d Location %q, want refusal", what, resp.StatusCode, resp.Header.Get("Location"))
		}
		if want403 && resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", what, resp.StatusCode)
		}
		if resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Errorf("%s: %d, want 4xx: %.200s", what, resp.StatusCode, body)
		}
	}
	t.Run("form has an anti-CSRF field", func(t *testing.T) {
		page, _ := open()
		hidden := 0
		for k := range page.Form.Fields {
			if k != "username" && k != "password" {
				hidden++
			}
		}
		if hidden == 0 {
			t.Error("login form carries no hidden field")
		}
	})
	t.Run("hidden fields stripped", func(t *testing.T) {
		page, fields := open()
		for k := range page.Form.Fields {
			if k != "username" && k != "password" {
				fields.Del(k)
			}
		}
		resp, body, err := page.Post(ctx(t), fields, nil)
		if err != nil {
			t.Fatal(err)
		}
		refused(t, "no hidden fields", resp, body, false)
	})
	t.Run("no cookies", func(t *testing.T) {
		page, fields := open()
		page.Browser = mcpauthtest.NewBrowser()
		resp, body, err := page.Post(ctx(t), fields, nil)
		if err != nil {
			t.Fatal(err)
		}
		refused(t, "fresh browser", resp, body, false)
	})
	t.Run("fields of another transaction", func(t *testing.T) {
		victim, _ := open()
		_, attackerFields := open()
		resp, body, err := victim.Post(ctx(t), attackerFields, nil)
		if err != nil {
			t.Fatal(err)
		}
		refused(t, "attacker's form in the victim's browser", resp, body, false)
	})
	for name, h := range map[string]http.Header{
		"cross-site fetch":   {"Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://evil.example"}},
		"foreign Origin":     {"Origin": {"https://evil.example"}, "Sec-Fetch-Site": {""}},
		"null Origin":        {"Origin": {"null"}, "Sec-Fetch-Site": {""}},
		"cross-site, no Org": {"Sec-Fetch-Site": {"cross-site"}, "Origin": {""}},
	} {
		t.Run(name, func(t *testing.T) {
			page, fields := open()
			resp, body, err := page.Post(ctx(t), fields, h)
			if err != nil {
				t.Fatal(err)
			}
			refused(t, name, resp, body, true)
		})
	}
	t.Run("no browser headers", func(t *testing.T) {
		// Non-browser agents and old browsers send neither Origin nor
		// Sec-Fetch-Site; the CSRF token alone protects them.
		page, fields := open()
		resp, _, err := page.Post(ctx(t), fields, http.Header{"Origin": {""}, "Sec-Fetch-Site": {""}})
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusSeeOther {
			t.Errorf("same-browser POST without Origin: %d, want 303", resp.StatusCode)
		}
	})
}

func assertFrameHeaders(t *testing.T, what string, resp *http.Response) {
	t.Helper()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("%s: Content-Security-Policy %q, want frame-ancestors 'none'", what, csp)
	}
	if xfo := resp.Header.Get("X-Frame-Options"); !strings.EqualFold(xfo, "DENY") {
		t.Errorf("%s: X-Frame-Options %q, want DENY", what, xfo)
	}
}

func TestI2_Clickjacking(t *testing.T) {
	e := newEnv(t)
	c := e.register(nil)
	page, err := c.OpenAuthorize(ctx(t), mcpauthtest.AuthorizeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	assertFrameHeaders(t, "login page", &http.Response{Header: page.Header})
	fields, _ := page.Form.Values("alice", "wrong password", false)
	resp, _, err := page.Post(ctx(t), fields, nil)
	if err != nil {
		t.Fatal(err)
	}
	assertFrameHeaders(t, "login failure page", resp)
	resp, _ = e.get("/authorize?client_id=nobody", nil)
	assertFrameHeaders(t, "error page", resp)
}

func TestI3_BruteForceThrottling(t *testing.T) {
	e := newEnv(t)
	c := e.register(nil)
	attempt := func(user, pw string, h http.Header) *http.Response {
		t.Helper()
		page, err := c.OpenAuthorize(ctx(t), mcpauthtest.AuthorizeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		fields, _ := page.Form.Values(user, pw, false)
		resp, _, err := page.Post(ctx(t), fields, h)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	throttled := false
	for i := range 50 {
		// A changing X-Forwarded-For must not reset the counters.
		resp := attempt("alice", "wrong", http.Header{"X-Forwarded-For": {"203.0.113." + string(rune('0'+i%10))}})
		if resp.StatusCode == http.StatusSeeOther {
			t.Fatal("wrong password accepted")
		}
		if resp.StatusCode == http.StatusTooManyRequests {
			if resp.Header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
			throttled = true
			break
		}
	}
	if !throttled {
		t.Fatal("50 wrong passwords for one user were never throttled")
	}
	if resp := attempt("alice", testUsers["alice"], nil); resp.StatusCode == http.StatusSeeOther {
		t.Error("throttled user logged in with the right password during the lock")
	}
	if resp := attempt("bob", testUsers["bob"], nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("another user was locked out by alice's failures: %d", resp.StatusCode)
	}
}

// normalizePage masks what legitimately differs between two renderings of
// the login page: hidden field values (CSRF tokens) and the username.
func normalizePage(body []byte, username string) string {
	s := string(body)
	s = hiddenValue.ReplaceAllString(s, `value="…"`)
	return strings.ReplaceAll(s, username, "USER")
}

var hiddenValue = regexp.MustCompile(`value="[A-Za-z0-9_\-.~=+/%]{16,}"`)

func TestI4_NoUsernameEnumeration(t *testing.T) {
	e := newEnv(t)
	c := e.register(nil)
	try := func(user string) (*http.Response, []byte) {
		page, err := c.OpenAuthorize(ctx(t), mcpauthtest.AuthorizeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		fields, _ := page.Form.Values(user, "wrong-password", false)
		resp, body, err := page.Post(ctx(t), fields, nil)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}
	known, kb := try("alice")   // exists, wrong password
	unknown, ub := try("zelda") // does not exist, same length
	if known.StatusCode != unknown.StatusCode {
		t.Errorf("status: wrong password %d, unknown user %d", known.StatusCode, unknown.StatusCode)
	}
	if a, b := normalizePage(kb, "alice"), normalizePage(ub, "zelda"); a != b {
		t.Errorf("bodies differ:\nwrong password: %.400s\nunknown user:   %.400s", a, b)
	}
	headerShape := func(h http.Header) string {
		var b strings.Builder
		keys := make([]string, 0, len(h))
		for k := range h {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			switch k {
			case "Date", "Content-Length":
				b.WriteString(k + "\n")
			case "Set-Cookie":
				for _, v := range h[k] {
					name, rest, _ := strings.Cut(v, "=")
					_, attrs, _ := strings.Cut(rest, ";")
					b.WriteString(k + ": " + name + "=…;" + attrs + "\n")
				}
			default:
				b.WriteString(k + ": " + strings.Join(h[k], ", ") + "\n")
			}
		}
		return b.String()
	}
	if a, b := headerShape(known.Header), headerShape(unknown.Header); a != b {
		t.Errorf("headers differ:\nwrong password:\n%s\nunknown user:\n%s", a, b)
	}
	if a, b := len(kb), len(ub); a != b {
		t.Errorf("body lengths differ: %d vs %d", a, b)
	}
}

func TestI5_PasswordOver72Bytes(t *testing.T) {
	e := newEnv(t)
	long := strings.Repeat("p", 72) + "-tail-one"
	// What htpasswd -B does with a long password: bcrypt sees 72 bytes.
	h, err := bcrypt.GenerateFromPassword([]byte(long[:72]), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	users, _ := os.ReadFile(e.usersPath)
	editUsers(t, func() { writeFileNewer(t, e.usersPath, string(users)+"carol:"+string(h)+"\n") }, e.cur.Load())
	c := e.register(nil)
	for _, pw := range []string{long, strings.Repeat("p", 72) + "-other-tail", strings.Repeat("p", 73)} {
		res, err := c.Authorize(ctx(t), mcpauthtest.AuthorizeOptions{Username: "carol", Password: pw})
		if err == nil && res.Code != "" {
			t.Errorf("a %d-byte password matching on its first 72 bytes logged in", len(pw))
		}
	}
	if _, err := c.Authorize(ctx(t), mcpauthtest.AuthorizeOptions{Username: "carol", Password: long[:72]}); err != nil {
		t.Errorf("exactly 72 bytes: %v", err)
	}
}

func TestI6_SingleUseTransaction(t *testing.T) {
	e := newEnv(t)
	c := e.register(nil)
	page, err := c.OpenAuthorize(ctx(t), mcpauthtest.AuthorizeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A failed login may be retried within the same transaction …
	bad, _ := page.Form.Values("alice", "wrong", false)
	if resp, _, err := page.Post(ctx(t), bad, nil); err != nil || resp.StatusCode == http.StatusSeeOther {
		t.Fatalf("wrong password: %v %v", resp, err)
	}
	// … but a completed one cannot be replayed, even by the same browser.
	res, err := page.Submit(ctx(t), "alice", testUsers["alice"], false)
	if err != nil {
		// A server may also insist on a new page after a failure.
		t.Logf("retry after a failure refused: %v", err)
		page, err = c.OpenAuthorize(ctx(t), mcpauthtest.AuthorizeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res, err = page.Submit(ctx(t), "alice", testUsers["alice"], false); err != nil {
			t.Fatal(err)
		}
	}
	if res.Code == "" {
		t.Fatal("no code")
	}
	again, err := page.Submit(ctx(t), "bob", testUsers["bob"], false)
	if err == nil {
		t.Errorf("the completed transaction was used again: %s", again.Location)
	}
}

func TestI7_OutputEncoding(t *testing.T) {
	e := newEnv(t)
	c := e.register(nil)
	page, err := c.OpenAuthorize(ctx(t), mcpauthtest.AuthorizeOptions{Scope: `<b>x</b>`})
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, h http.Header, body []byte) {
		t.Helper()
		if h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options %q", what, h.Get("X-Content-Type-Options"))
		}
		if h.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s: Referrer-Policy %q", what, h.Get("Referrer-Policy"))
		}
		if !strings.Contains(h.Get("Cache-Control"), "no-store") {
			t.Errorf("%s: Cache-Control %q", what, h.Get("Cache-Control"))
		}
		for _, raw := range []string{"<img src=x onerror", "<b>x</b>"} {
			if bytes.Contains(body, []byte(raw)) {
				t.Errorf("%s: %q reflected unescaped", what, raw)
			}
		}
	}
	check("login page", page.Header, page.Body)
	fields, _ := page.Form.Values(`<img src=x onerror=alert(1)>`, "wrong", false)
	resp, body, err := page.Post(ctx(t), fields, nil)
	if err != nil {
		t.Fatal(err)
	}
	check("login failure", resp.Header, body)
	resp, body = e.get("/authorize?client_id=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E", nil)
	check("error page", resp.Header, body)
}

// ---------------------------------------------------------------------------
// J. Storage and cryptography (J1 is in secretscan_test.go)

func TestJ2_Entropy(t *testing.T) {
	e := newEnv(t)
	seen := map[string]string{}
	valid := regexp.MustCompile(`^[A-Za-z0-9._~+/=-]+$`)
	note := func(kind, v string) {
		t.Helper()
		if len(v) < 22 || !valid.MatchString(v) {
			t.Errorf("%s %q: want at least 22 characters (128 bits) of a token alphabet", kind, v)
		}
		if prev, dup := seen[v]; dup {
			t.Errorf("%s %q was already issued as %s", kind, v, prev)
		}
		seen[v] = kind
	}
	for range 10 {
		c := e.register(map[string]any{"token_endpoint_auth_method": "client_secret_post"})
		note("client_id", c.ClientID)
		note("client_secret", c.ClientSecret)
		res := e.authorize(c, mcpauthtest.AuthorizeOptions{})
		note("code", res.Code)
		tok, err := c.Exchange(ctx(t), res.Code, res.Verifier)
		if err != nil {
			t.Fatal(err)
		}
		note("access token", tok.AccessToken)
		note("refresh token", tok.RefreshToken)
		next, err := c.Refresh(ctx(t), tok.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		note("access token", next.AccessToken)
		note("refresh token", next.RefreshToken)
	}
}

func TestJ4_InjectionStrings(t *testing.T) {
	e := newEnv(t)
	c := e.register(nil)
	tok := e.tokens(c)
	for _, inj := range []string{`' OR '1'='1`, `x'; DROP TABLE clients; --`, `" OR 1=1 --`, `%' OR '%'='`, `\'; SELECT 1; --`} {
		_, err := c.Exchange(ctx(t), inj, strings.Repeat("a", 43))
		wantGrantErr(t, "code "+inj, err, http.StatusBadRequest, "invalid_grant")
		_, err = c.Refresh(ctx(t), inj)
		wantGrantErr(t, "refresh "+inj, err, http.StatusBadRequest, "invalid_grant")
		resp, _ := e.postForm("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {inj}}.Encode(), nil)
		if resp.StatusCode != 401 {
			t.Errorf("client_id %q: %d, want 401", inj, resp.StatusCode)
		}
		if st := e.bearer(inj); st != 401 {
			t.Errorf("bearer %q: %d, want 401", inj, st)
		}
		if err := c.Revoke(ctx(t), inj, ""); err != nil {
			t.Errorf("revoke %q: %v", inj, err)
		}
		resp, body := e.get("/authorize?"+authorizeQuery(c, url.Values{"client_id": {inj}}).Encode(), nil)
		assertNoRedirect(t, "authorize "+inj, resp, body)
	}
	if !e.live(tok.AccessToken) {
		t.Error("the legitimate token died")
	}
	if _, err := mcpauthtest.Register(ctx(t), e.base, nil); err != nil {
		t.Errorf("registration after the injections: %v", err)
	}
}

func TestJ5_SQLiteFile(t *testing.T) {
	e := newEnv(t)
	c := e.register(nil)
	e.tokens(c)
	db, err := sql.Open("sqlite", "file:"+e.dbPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mode, integrity string
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Errorf("journal_mode = %s, want wal", mode)
	}
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&integrity); err != nil || integrity != "ok" {
		t.Errorf("integrity_check = %q, %v", integrity, err)
	}
	// synchronous is per connection and cannot be observed from here.
	for _, suffix := range []string{"", "-wal", "-shm"} {
		fi, err := os.Stat(e.dbPath + suffix)
		if err != nil {
			if suffix == "" {
				t.Error(err)
			}
			continue
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s has mode %v, want 0600", filepath.Base(e.dbPath+suffix), perm)
		}
	}
}

// ---------------------------------------------------------------------------
// K. Robustness and limits

func TestK1_BodySizeLimits(t *testing.T) {
	e := newEnv(t)
	c := e.register(nil)
	page, err := c.OpenAuthorize(ctx(t), mcpauthtest.AuthorizeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	huge := strings.Repeat("a", 10<<20)
	for _, path := range []string{"/token", "/revoke", "/register", page.Form.Action.RequestURI()} {
		t.Run(path, func(t *testing.T) {
			body := "grant_type=refresh_token&client_id=" + c.ClientID + "&refresh_token=" + huge
			if path == "/register" {
				body = `{"redirect_uris":["https://client.example/cb"],"client_name":"` + huge + `"}`
			}
			resp, _ := e.postForm(path, body, nil)
			if resp.StatusCode != http.StatusRequestEntityTooLarge && resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusForbidden {
				t.Errorf("10 MiB POST %s: %d, want 413 or 400", path, resp.StatusCode)
			}
		})
	}
}

func TestK2_URLLength(t *testing.T) {
	e := newEnv(t)
	c := e.register(nil)
	resp, body := e.get("/authorize?"+authorizeQuery(c, url.Values{"scope": {strings.Repeat("s ", 50<<10)}}).Encode(), nil)
	assertNoRedirect(t, "100 KB query", resp, body, http.StatusBadRequest, http.StatusRequestURITooLong, http.StatusRequestHeaderFieldsTooLarge)
}

func TestK3_MalformedInputNo5xx(t *testing.T) {
	e := newEnv(t)
	c := e.register(nil)
	tok := e.tokens(c)
	bad := []string{"\xff\xfe", "a\x00b", "%zz", "%", strings.Repeat("scope ", 10000), strings.Repeat("é", 3000), "\r\n\r\n", "{}", "[]"}
	for i, v := range bad {
		for _, key := range []string{"client_id", "redirect_uri", "scope", "state", "code_challenge", "resource", "response_type"} {
			q := authorizeQuery(c, url.Values{key: {v}}).Encode()
			if i == 2 || i == 3 {
				q += "&" + key + "=" + v // raw bad percent-encoding
			}
			resp, _ := e.get("/authorize?"+q, nil)
			if resp.StatusCode >= 500 {
				t.Errorf("/authorize %s=%.20q: %d", key, v, resp.StatusCode)
			}
		}
		for _, form := range []string{
			"grant_type=authorization_code&code=" + v + "&client_id=" + c.ClientID,
			"grant_type=refresh_token&refresh_token=" + v + "&client_id=" + c.ClientID,
			"grant_type=" + v,
			"client_id=" + v + "&grant_type=refresh_token&refresh_token=" + tok.RefreshToken,
			"scope=" + v + "&grant_type=refresh_token&client_id=" + c.ClientID + "&refresh_token=" + url.QueryEscape(tok.RefreshToken),
		} {
			for _, path := range []string{"/token", "/revoke"} {
				resp, _ := e.postForm(path, form, nil)
				if resp.StatusCode >= 500 {
					t.Errorf("POST %s %.40q: %d", path, form, resp.StatusCode)
				}
			}
		}
		js, _ := json.Marshal(map[string]any{"redirect_uris": []string{"https://c.example/" + v}, "client_name": v, "scope": v})
		if resp, _ := postJSON(e, "/register", js); resp.StatusCode >= 500 {
			t.Errorf("register %.20q: %d", v, resp.StatusCode)
		}
		if resp, _ := postJSON(e, "/register", []byte(v)); resp.StatusCode >= 500 {
			t.Errorf("register body %.20q: %d", v, resp.StatusCode)
		}
		req, _ := http.NewRequest(http.MethodPost, e.mcpURL, strings.NewReader(v))
		req.Header.Set("Authorization", "Bearer "+strings.ToValidUTF8(strings.ReplaceAll(v, "\x00", ""), "?"))
		if !strings.ContainsAny(v, "\r\n") {
			if resp, _ := e.do(req); resp.StatusCode >= 500 {
				t.Errorf("/mcp bearer %.20q: %d", v, resp.StatusCode)
			}
		}
	}
}

func assertNoInternals(t *testing.T, body []byte) {
	t.Helper()
	low := strings.ToLower(string(body))
	for _, leak := range []string{"sqlite", "sql", "database", "goroutine", ".go:", "panic", "locked"} {
		if strings.Contains(low, leak) {
			t.Errorf("response leaks internals (%q): %.300s", leak, body)
		}
	}
}

func TestK4_NoDebugLeakage(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the server's busy timeout")
	}
	t.Parallel() // mostly waiting for the server's busy retries (about 20 s)
	e := newEnv(t)
	unlock := lockDB(t, e.dbPath)
	resp, body := postJSON(e, "/register", []byte(`{"redirect_uris":["https://client.example/cb"]}`))
	unlock()
	if resp.StatusCode < 500 {
		t.Fatalf("registration with the database locked: %d %s, want 503", resp.StatusCode, body)
	}
	assertNoInternals(t, body)
}

// K5: guessing at /token (codes, refresh tokens) and guessing client
// credentials at /revoke are throttled. An unknown token at /revoke is not
// a failure (RFC 7009: the answer is 200 either way, so there is nothing to
// learn); hostile_test.go checks that.
func TestK5_TokenAndRevokeRateLimit(t *testing.T) {
	e := newEnv(t)
	c := e.register(nil)
	for _, path := range []string{"/token", "/revoke"} {
		t.Run(path, func(t *testing.T) {
			c := c
			if path == "/revoke" {
				c = newEnv(t).register(nil) // a fresh server: fresh counters for the address
			}
			for i := range 1000 {
				form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"guess-" + strconv.Itoa(i)}, "token": {"guess-" + strconv.Itoa(i)}}
				if path == "/revoke" {
					form.Set("client_secret", "guess-"+strconv.Itoa(i))
				}
				resp, body, err := c.Post(ctx(t), path, form)
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode == http.StatusTooManyRequests {
					if resp.Header.Get("Retry-After") == "" {
						t.Error("429 without Retry-After")
					}
					return
				}
				if resp.StatusCode >= 500 {
					t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
				}
			}
			t.Errorf("1000 guesses at %s from one client and IP were never throttled", path)
		})
	}
}

// K1, the http.Server side: Serve caps header size (the body caps are in
// TestK1_BodySizeLimits; the header-read timeout is in limits_heavy_test.go).
func TestK1_ServerHeaderLimit(t *testing.T) {
	base, _ := startServe(t)
	req, _ := http.NewRequest(http.MethodGet, base+"/.well-known/oauth-authorization-server", nil)
	req.Header.Set("X-Padding", strings.Repeat("a", 200<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("200 KB of headers: %d, want 431", resp.StatusCode)
	}
}

// startServe runs Server.Serve (the production listener setup) on a free
// loopback port until the test ends, and returns its base URL and address.
func startServe(t *testing.T) (base, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = ln.Addr().String()
	dir := t.TempDir()
	users := filepath.Join(dir, "users.txt")
	writeUsers(t, users, testUsers)
	s, err := mcpauth.New(mcpauth.Config{BaseURL: "http://" + addr, Database: filepath.Join(dir, "auth.db"), UsersPath: users,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, newMCPServer())
	if err != nil {
		t.Fatal(err)
	}
	c, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(c, ln) }()
	t.Cleanup(func() {
		cancel()
		<-done
		s.Close()
	})
	return "http://" + addr, addr
}

// H3: the server fetches client ID metadata documents, but never from a
// loopback, private or link-local address (SSRF), unless the test-only
// option allows it.
func TestH3_ClientMetadataSSRF(t *testing.T) {
	var hits atomic.Int32 // TCP connections, so that a fetch counts even if TLS then fails
	doc := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"client_id":"https://%s%s","redirect_uris":["http://127.0.0.1/cb"]}`, r.Host, r.URL.Path)
	}))
	doc.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			hits.Add(1)
		}
	}
	doc.StartTLS()
	defer doc.Close()
	_, port, _ := net.SplitHostPort(doc.Listener.Addr().String())
	e := newEnv(t)
	for _, id := range []string{
		doc.URL + "/client.json",
		"https://localhost:" + port + "/client.json",
		"https://[::1]:" + port + "/client.json",
		"https://127.1:" + port + "/client.json",
		"https://0x7f000001:" + port + "/client.json",
		"https://169.254.169.254/latest/meta-data.json",
		"https://10.0.0.1/client.json",
		"http://127.0.0.1:" + port + "/client.json",
		"https://user@127.0.0.1:" + port + "/client.json",
	} {
		t.Run(id, func(t *testing.T) {
			_, challenge := mcpauthtest.PKCE()
			q := url.Values{"response_type": {"code"}, "client_id": {id}, "redirect_uri": {"http://127.0.0.1/cb"},
				"code_challenge": {challenge}, "code_challenge_method": {"S256"}}
			resp, body := e.get("/authorize?"+q.Encode(), nil)
			assertNoRedirect(t, id, resp, body)
		})
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the server connected %d times to a loopback address to fetch a metadata document", n)
	}
	// Control: with the test-only option the same request does connect, so
	// the counter above can see a fetch.
	allowed := newEnv(t, func(c *mcpauth.Config) { c.AllowLoopbackClientMetadata = true })
	_, challenge := mcpauthtest.PKCE()
	q := url.Values{"response_type": {"code"}, "client_id": {doc.URL + "/client.json"}, "redirect_uri": {"http://127.0.0.1/cb"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	allowed.get("/authorize?"+q.Encode(), nil)
	if hits.Load() == 0 {
		t.Error("control: no connection even with AllowLoopbackClientMetadata; the check above proves nothing")
	}
}
