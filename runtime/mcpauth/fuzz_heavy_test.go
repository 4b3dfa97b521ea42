package mcpauth_test

// Fuzz targets for the authorization, token, registration and
// redirect-matching paths, through the public HTTP surface. Property for
// all: never a 5xx, never a panic (a panicking handler drops the
// connection), never a Location outside the registered redirect URIs.
//
//	go test -run '^Fuzz' ./runtime/mcpauth/                        (seeds only)
//	go test -run '^$' -fuzz FuzzRedirectURIMatch -fuzztime 10s ./runtime/mcpauth/
//	go test -run '^$' -fuzz FuzzAuthorizeLogin -fuzztime 60s ./runtime/mcpauth/ (also: memory bounded)

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mcpgen/create-mcp-server/runtime/authstore"
	"github.com/mcpgen/create-mcp-server/runtime/mcpauth"
	"github.com/mcpgen/create-mcp-server/runtime/mcpauthtest"
)

// fuzzEnv is a server that believes X-Forwarded-For from loopback, so that
// each fuzz input can come from its own address and per-IP throttles do not
// hide the code paths behind them.
func fuzzEnv(f *testing.F) *env {
	return newEnv(f, func(c *mcpauth.Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	})
}

var fuzzIP atomic.Uint32

// send performs req from a fresh client address and returns the response
// with its body. A transport error means the server dropped the connection
// (a panic in a handler).
func send(t *testing.T, e *env, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	n := fuzzIP.Add(1)
	req.Header.Set("X-Forwarded-For", fmt.Sprintf("10.%d.%d.%d", byte(n>>16), byte(n>>8), byte(n)))
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v (handler panic?)", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 500 {
		t.Fatalf("%s %s: %d %.300s", req.Method, req.URL.Path, resp.StatusCode, body)
	}
	return resp, body
}

// rawQuery makes s sendable as a request-URI query: bytes that no client
// can put on the wire are percent-encoded; everything else, including a
// malformed '%', is kept.
func rawQuery(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= 0x20 || c >= 0x7f || c == '#' {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// nastyRedirects are the vectors of A2, A3 and A13 around the registered
// URIs https://client.example/cb and http://127.0.0.1/cb.
var nastyRedirects = []string{
	"https://client.example/cb", "http://127.0.0.1/cb", "http://127.0.0.1:8080/cb",
	"https://client.example/CB", "HTTPS://CLIENT.EXAMPLE/cb", "https://client.example/cb/",
	"https://client.example/cb?x=1", "https://client.example/cb#x", "https://client.example/cb?",
	"https://client.example/cb/../evil", "https://client.example/cb/%2e%2e/evil",
	"https://client.example/cb%252f..%252fevil", "https://client.example/cb/..;/evil",
	"https://client.example.evil.com/cb", "https://evilclient.example/cb",
	"https://client.example@evil.com/cb", `https://client.example\@evil.com/cb`,
	"https://client.example:443/cb", "http://client.example/cb", "https://client.example/cb\t",
	"https://client.example/cb\r\n", "https://client.example/cb\x00", " https://client.example/cb",
	"https://xn--clent-6ya.example/cb", "http://127.0.0.1.evil.com/cb",
	"http://127.0.0.1:80@evil.example/cb", "http://user@127.0.0.1:8080/cb",
	"https://127.0.0.1:8080/cb", "http://localhost:8080/cb", "http://[::1]:8080/cb",
	"http://127.0.0.1:8080/cb2", "http://127.0.0.1:99999/cb", "http://127.0.0.1:/cb",
	"http://127.0.0.1:-1/cb", "http://127.0.0.1:0x50/cb", "http://0177.0.0.1/cb",
	"http://2130706433/cb", "//client.example/cb", "/cb", "javascript:alert(1)",
	"JaVaScRiPt:alert(1)", "java\tscript:alert(1)", "\x01javascript:alert(1)",
	"data:text/html,<script>alert(1)</script>", "vbscript:x", "file:///etc/passwd",
	"blob:https://client.example/x", "https://client.example/cb;x", "https://client.example//cb",
	"https://client.example/./cb", "https://client.example/%63b", "https://client.example/cb%00",
	"https://client.example/cb%0d%0aSet-Cookie:x=1", "",
}

var loopbackCB = regexp.MustCompile(`^http://127\.0\.0\.1(:[0-9]{1,5})?/cb$`)

// acceptable reports whether redirect may be honoured for a client that
// registered https://client.example/cb and http://127.0.0.1/cb.
func acceptable(redirect string) bool {
	return redirect == "https://client.example/cb" || loopbackCB.MatchString(redirect)
}

func FuzzRedirectURIMatch(f *testing.F) {
	e := fuzzEnv(f)
	c := e.register(map[string]any{"redirect_uris": []string{"https://client.example/cb", "http://127.0.0.1/cb"}})
	for _, s := range nastyRedirects {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, redirect string) {
		_, challenge := mcpauthtest.PKCE()
		q := url.Values{"response_type": {"code"}, "client_id": {c.ClientID}, "redirect_uri": {redirect},
			"code_challenge": {challenge}, "code_challenge_method": {"S256"}, "state": {"s"}}
		req, _ := http.NewRequest(http.MethodGet, e.base+"/authorize?"+q.Encode(), nil)
		resp, _ := send(t, e, req)
		if loc := resp.Header.Get("Location"); loc != "" {
			t.Fatalf("GET /authorize redirect_uri=%q: Location %q before login", redirect, loc)
		}
		if resp.StatusCode != http.StatusOK {
			return
		}
		if !acceptable(redirect) {
			t.Fatalf("redirect_uri %q accepted (login page shown) but not registered", redirect)
		}
		// Accepted: log in and check where the code goes.
		lp, err := c.OpenAuthorize(ctx(t), mcpauthtest.AuthorizeOptions{RedirectURI: redirect})
		if err != nil {
			t.Fatal(err)
		}
		fields, _ := lp.Form.Values("alice", testUsers["alice"], false)
		resp2, _, err := lp.Post(ctx(t), fields, http.Header{"X-Forwarded-For": {fmt.Sprintf("10.200.%d.%d", byte(fuzzIP.Add(1)>>8), byte(fuzzIP.Load()))}})
		if err != nil {
			t.Fatal(err)
		}
		if resp2.StatusCode >= 500 {
			t.Fatalf("login: %d", resp2.StatusCode)
		}
		loc := resp2.Header.Get("Location")
		if loc == "" {
			return
		}
		if !strings.HasPrefix(loc, redirect+"?") {
			t.Fatalf("redirect_uri %q: code sent to %q", redirect, loc)
		}
	})
}

func FuzzAuthorizeQuery(f *testing.F) {
	e := fuzzEnv(f)
	c := e.register(map[string]any{"redirect_uris": []string{"https://client.example/cb", "http://127.0.0.1/cb"}})
	_, challenge := mcpauthtest.PKCE()
	good := url.Values{"response_type": {"code"}, "client_id": {c.ClientID}, "redirect_uri": {"https://client.example/cb"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}, "state": {"s"}, "scope": {"mcp"}, "resource": {e.mcpURL}}
	f.Add(good.Encode())
	f.Add("")
	f.Add("response_type=code")
	f.Add(good.Encode() + "&redirect_uri=https://attacker.example/cb")
	f.Add(good.Encode() + "&client_id=x")
	f.Add(strings.Replace(good.Encode(), "S256", "plain", 1))
	f.Add(good.Encode() + "&state=%zz")
	f.Add(good.Encode() + "&scope=" + strings.Repeat("a+", 3000))
	f.Add(good.Encode() + "&resource=%00")
	f.Add("response_type=token&" + good.Encode())
	f.Add("%" + good.Encode())
	f.Add(good.Encode() + "&&&==&")
	f.Add(strings.ReplaceAll(good.Encode(), "&", ";"))
	for _, r := range nastyRedirects {
		q := url.Values{}
		for k, v := range good {
			q[k] = v
		}
		q.Set("redirect_uri", r)
		f.Add(q.Encode())
	}
	f.Fuzz(func(t *testing.T, query string) {
		req, _ := http.NewRequest(http.MethodGet, e.base+"/authorize", nil)
		req.URL.RawQuery = rawQuery(query)
		resp, _ := send(t, e, req)
		if loc := resp.Header.Get("Location"); loc != "" {
			t.Fatalf("GET /authorize?%s: Location %q before login", req.URL.RawQuery, loc)
		}
		if resp.StatusCode == http.StatusOK {
			// Accepted requests name a registered redirect URI.
			q, _ := url.ParseQuery(req.URL.RawQuery)
			if r := q.Get("redirect_uri"); !acceptable(r) {
				t.Fatalf("GET /authorize?%s: accepted redirect_uri %q", req.URL.RawQuery, r)
			}
		}
	})
}

func FuzzTokenForm(f *testing.F) {
	e := fuzzEnv(f)
	c := e.register(nil)
	conf := e.register(map[string]any{"token_endpoint_auth_method": "client_secret_basic"})
	tok := e.tokens(c)
	res := e.authorize(c, mcpauthtest.AuthorizeOptions{})
	basic := "Basic " + b64(conf.ClientID+":"+conf.ClientSecret)
	seeds := [][2]string{
		{url.Values{"grant_type": {"authorization_code"}, "code": {res.Code}, "code_verifier": {res.Verifier}, "redirect_uri": {c.RedirectURI}, "client_id": {c.ClientID}}.Encode(), ""},
		{url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {c.ClientID}}.Encode(), ""},
		{url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {c.ClientID}, "scope": {"mcp admin"}}.Encode(), ""},
		{url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {c.ClientID}, "resource": {"https://x/"}}.Encode(), ""},
		{"grant_type=refresh_token&refresh_token=x", basic},
		{"grant_type=refresh_token&refresh_token=x", "Basic !!!"},
		{"grant_type=refresh_token&refresh_token=x", "Basic " + b64("%zz:%zz")},
		{"grant_type=refresh_token&refresh_token=x", "Basic " + b64("nocolon")},
		{"grant_type=password&username=alice&password=x&client_id=" + c.ClientID, ""},
		{"grant_type=authorization_code&grant_type=authorization_code&code=x", ""},
		{"grant_type=authorization_code&code=%zz&client_id=" + c.ClientID, ""},
		{"grant_type=authorization_code&code=a%00b&client_id=" + c.ClientID + "&code_verifier=" + strings.Repeat("~", 128), ""},
		{"{\"grant_type\":\"authorization_code\"}", ""},
		{"", ""},
		{"&&&===", ""},
		{"grant_type=refresh_token&client_id=" + c.ClientID + "&client_secret=&refresh_token=" + url.QueryEscape(tok.RefreshToken), ""},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, body, authz string) {
		for _, path := range []string{"/token", "/revoke"} {
			req, _ := http.NewRequest(http.MethodPost, e.base+path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if authz != "" && strings.IndexFunc(authz, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) < 0 {
				req.Header.Set("Authorization", strings.ToValidUTF8(authz, ""))
			}
			resp, rb := send(t, e, req)
			if resp.Header.Get("Location") != "" {
				t.Fatalf("POST %s: Location %q", path, resp.Header.Get("Location"))
			}
			if resp.StatusCode != 200 && resp.StatusCode != 429 {
				var v struct {
					Error string `json:"error"`
				}
				if json.Unmarshal(rb, &v) != nil || v.Error == "" {
					t.Fatalf("POST %s: %d without an RFC 6749 error body: %.200s", path, resp.StatusCode, rb)
				}
			}
		}
	})
}

// safeRedirect reports whether a registered redirect URI obeys the rules
// register.go enforces.
func safeRedirect(s string) bool {
	if strings.ContainsAny(s, "#\\") || strings.IndexFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		return false
	}
	u, err := url.Parse(s)
	if err != nil || u.User != nil || u.Scheme == "" || !u.IsAbs() {
		return false
	}
	switch strings.ToLower(u.Scheme) {
	case "javascript", "data", "vbscript", "file", "blob", "mailto":
		return false
	case "https":
		return u.Host != ""
	case "http":
		h := u.Hostname()
		return h == "localhost" || h == "127.0.0.1" || h == "::1"
	}
	return true
}

func FuzzRegisterJSON(f *testing.F) {
	e := fuzzEnv(f)
	f.Add(`{"redirect_uris":["https://client.example/cb"]}`)
	f.Add(`{"redirect_uris":["https://client.example/cb"],"token_endpoint_auth_method":"client_secret_basic","grant_types":["authorization_code","refresh_token"],"response_types":["code"],"client_name":"x","scope":"mcp"}`)
	f.Add(`{"redirect_uris":["http://127.0.0.1:3000/cb","cursor://x/cb"],"client_id":"mine","client_secret":"mine"}`)
	f.Add(`{"redirect_uris":[]}`)
	f.Add(`{"redirect_uris":null}`)
	f.Add(`{"redirect_uris":"https://client.example/cb"}`)
	f.Add(`{"redirect_uris":[1,2,3]}`)
	f.Add(`{"redirect_uris":["https://client.example/cb"],"grant_types":"authorization_code"}`)
	f.Add(`{"redirect_uris":["https://client.example/cb"],"client_name":{"a":1}}`)
	f.Add(`{"redirect_uris":["https://client.example/cb"],"redirect_uris":["javascript:alert(1)"]}`)
	f.Add(`[]`)
	f.Add(`null`)
	f.Add(``)
	f.Add(`{"redirect_uris":["https://client.example/cb"]`)
	f.Add("{\"redirect_uris\":[\"https://client.example/cb\"],\"client_name\":\"\xff\xfe\"}")
	for _, r := range nastyRedirects {
		js, _ := json.Marshal(map[string]any{"redirect_uris": []string{r}})
		f.Add(string(js))
	}
	for _, r := range dangerousURIs {
		js, _ := json.Marshal(map[string]any{"redirect_uris": []string{"https://ok.example/cb", r}})
		f.Add(string(js))
	}
	f.Fuzz(func(t *testing.T, body string) {
		req, _ := http.NewRequest(http.MethodPost, e.base+"/register", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, rb := send(t, e, req)
		if resp.Header.Get("Location") != "" {
			t.Fatalf("POST /register: Location %q", resp.Header.Get("Location"))
		}
		if resp.StatusCode != http.StatusCreated {
			return
		}
		var reg struct {
			ClientID     string   `json:"client_id"`
			RedirectURIs []string `json:"redirect_uris"`
		}
		if err := json.Unmarshal(rb, &reg); err != nil || reg.ClientID == "" || len(reg.RedirectURIs) == 0 {
			t.Fatalf("201 with body %.300s", rb)
		}
		for _, r := range reg.RedirectURIs {
			if !safeRedirect(r) {
				t.Fatalf("registered unsafe redirect URI %q from %.300s", r, body)
			}
		}
	})
}

// fuzzLimits are the shared-table bounds of FuzzAuthorizeLogin, small so
// that a fuzz run reaches them.
var fuzzLimits = authstore.Limits{SignIns: 200, SignInsPerAddr: 20, SignInsPerBrowser: 5, ThrottleKeys: 100}

// FuzzAuthorizeLogin drives the whole browser side, GET /authorize then the
// sign-in form, with fuzzed parameters, credentials, form fields and client
// addresses. Properties: never a 5xx or a panic, never a Location outside
// the registered redirect URIs, and memory stays bounded: the pending
// sign-ins and throttle counters stay within the store's caps (locked keys
// aside, which each cost max failures), and the heap does not grow with
// the number of inputs.
func FuzzAuthorizeLogin(f *testing.F) {
	e := newProxiedEnv(f, func(c *mcpauth.Config) { mcpauth.SetStoreLimits(c, fuzzLimits) })
	c := e.register(map[string]any{"redirect_uris": []string{"https://client.example/cb", "http://127.0.0.1/cb"}})
	f.Add(uint16(1), "", "alice", testUsers["alice"], "approve", "")
	f.Add(uint16(2), "state="+strings.Repeat("s", 2048), "alice", "wrong", "approve", "")
	f.Add(uint16(3), "redirect_uri=http://127.0.0.1:5555/cb&scope=mcp+openid", "bob", testUsers["bob"], "deny", "")
	f.Add(uint16(4), "resource=%00", "", "", "", "")
	f.Add(uint16(5), "", "alice", testUsers["alice"], "approve", "tx=x")
	f.Add(uint16(6), "", strings.Repeat("u", 300), strings.Repeat("p", 100), "approve", "tx=")
	f.Add(uint16(7), "client_id=https://client.example/doc.json", "alice", "x", "approve", "username=bob")
	f.Add(uint16(8), "", "alice\x00", "pw\r\n", "approve", "action=deny&action=approve")
	f.Add(uint16(9), "redirect_uri=javascript:alert(1)", "alice", testUsers["alice"], "approve", "")
	f.Add(uint16(10), "code_challenge_method=plain", "alice", testUsers["alice"], "approve", "")
	var inputs atomic.Int64
	var baseHeap uint64
	f.Cleanup(func() { checkFuzzBounds(f, e, baseHeap, inputs.Load()) })
	f.Fuzz(func(t *testing.T, addr uint16, query, username, password, action, extra string) {
		if inputs.Add(1) == 1 {
			baseHeap = heapInUse()
		}
		from := fmt.Sprintf("10.9.%d.%d", byte(addr>>8)%4, byte(addr)) // few addresses: the per-address caps matter
		q := authorizeQuery(c, nil)
		if extra, err := url.ParseQuery(rawQuery(query)); err == nil {
			for k, v := range extra {
				q[k] = v
			}
		}
		browser := mcpauthtest.NewBrowser()
		req, _ := http.NewRequest(http.MethodGet, e.base+"/authorize?"+q.Encode(), nil)
		req.Header.Set("X-Forwarded-For", from)
		resp, err := browser.Do(req)
		if err != nil {
			t.Fatalf("GET /authorize: %v", err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 500 || resp.Header.Get("Location") != "" {
			t.Fatalf("GET /authorize?%s: %d, Location %q", q.Encode(), resp.StatusCode, resp.Header.Get("Location"))
		}
		if resp.StatusCode != http.StatusOK {
			return
		}
		form, err := mcpauthtest.ParseForm(req.URL, page)
		if err != nil {
			t.Fatalf("login page without a form: %v", err)
		}
		fields, _ := form.Values(strings.ToValidUTF8(username, ""), strings.ToValidUTF8(password, ""), action == "deny")
		if extraFields, err := url.ParseQuery(rawQuery(extra)); err == nil {
			for k, v := range extraFields {
				fields[k] = v
			}
		}
		post, _ := http.NewRequest(http.MethodPost, form.Action.String(), strings.NewReader(fields.Encode()))
		post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		post.Header.Set("Origin", e.base)
		post.Header.Set("X-Forwarded-For", from)
		resp, err = browser.Do(post)
		if err != nil {
			t.Fatalf("POST /authorize: %v (handler panic?)", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 500 && resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("POST /authorize: %d", resp.StatusCode)
		}
		if resp.StatusCode == http.StatusServiceUnavailable {
			t.Fatalf("POST /authorize: 503 with the database up")
		}
		if loc := resp.Header.Get("Location"); loc != "" {
			u, err := url.Parse(loc)
			if err != nil || !acceptable(u.Scheme+"://"+u.Host+u.Path) {
				t.Fatalf("POST /authorize: Location %q outside the registered redirect URIs", loc)
			}
		}
		if inputs.Load()%500 == 0 {
			checkFuzzBounds(t, e, baseHeap, inputs.Load())
		}
	})
}

// heapInUse is the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// checkFuzzBounds checks that the shared tables stay within their caps and
// that the heap has not grown by more than a fixed allowance.
func checkFuzzBounds(t testing.TB, e *env, baseHeap uint64, inputs int64) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+e.dbPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var signIns int
	if err := db.QueryRow(`SELECT count(*) FROM signins`).Scan(&signIns); err != nil {
		t.Fatal(err)
	}
	if signIns > fuzzLimits.SignIns {
		t.Errorf("%d pending sign-ins after %d inputs, cap %d", signIns, inputs, fuzzLimits.SignIns)
	}
	rows, err := db.Query(`SELECT rule, count(*), sum(count >= ?1) FROM throttles GROUP BY rule`, 5)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var rule string
		var n, locked int
		if err := rows.Scan(&rule, &n, &locked); err != nil {
			t.Fatal(err)
		}
		if n > fuzzLimits.ThrottleKeys+locked {
			t.Errorf("throttle rule %s keeps %d keys (%d possibly locked) after %d inputs, cap %d", rule, n, locked, inputs, fuzzLimits.ThrottleKeys)
		}
	}
	const allowance = 64 << 20
	if baseHeap > 0 {
		if h := heapInUse(); h > baseHeap+allowance {
			t.Errorf("heap grew from %d to %d MB after %d inputs", baseHeap>>20, h>>20, inputs)
		}
	}
}
