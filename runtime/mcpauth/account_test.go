package mcpauth_test

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/mcpgen/create-mcp-server/runtime/mcpauthtest"
)

// accountTab is a browser tab on the account page.
type accountTab struct {
	t  *testing.T
	e  *env
	hc *http.Client
}

func (e *env) accountTab(t *testing.T) *accountTab {
	return &accountTab{t: t, e: e, hc: mcpauthtest.NewBrowser()}
}

func (b *accountTab) do(method, path string, form url.Values, header http.Header) (*http.Response, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx(b.t), method, b.e.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", b.e.base)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return resp, string(data)
}

// signIn fills in the account page's sign-in form and returns the answer.
func (b *accountTab) signIn(user, password string) (*http.Response, string) {
	b.t.Helper()
	resp, page := b.do("GET", "/account", nil, nil)
	if resp.StatusCode != 200 {
		b.t.Fatalf("GET /account: %d", resp.StatusCode)
	}
	u, _ := url.Parse(b.e.base + "/account")
	form, err := mcpauthtest.ParseForm(u, []byte(page))
	if err != nil {
		b.t.Fatalf("GET /account: %v\n%s", err, page)
	}
	if form.Action.Path != "/account" || form.Method != "POST" {
		b.t.Fatalf("the sign-in form posts to %s %s", form.Method, form.Action)
	}
	v, err := form.Values(user, password, false)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do("POST", "/account", v, nil)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf returns the CSRF token of the signed-in account page.
func (b *accountTab) csrf() string {
	b.t.Helper()
	_, page := b.do("GET", "/account", nil, nil)
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		b.t.Fatalf("no csrf field on the account page:\n%s", page)
	}
	return m[1]
}

// TestAccount: a user signs in to /account with the login form, sees the
// two applications connected to their account, disconnects one (whose
// tokens then stop working, while the other's keep working), and signs
// out. Forged and cross-site requests change nothing.
func TestAccount(t *testing.T) {
	e := newEnv(t)
	one := e.register(map[string]any{"client_name": "App One", "redirect_uris": []string{"http://127.0.0.1:7001/callback"}})
	two := e.register(map[string]any{"client_name": "App Two", "redirect_uris": []string{"http://localhost:7002/cb"}})
	t1, t2 := e.tokens(one), e.tokens(two)

	b := e.accountTab(t)
	resp, page := b.do("GET", "/account", nil, nil)
	h := resp.Header
	if resp.StatusCode != 200 || !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
		h.Get("X-Frame-Options") != "DENY" || h.Get("Cache-Control") != "no-store" {
		t.Fatalf("GET /account: %d, headers %v", resp.StatusCode, h)
	}
	if strings.Contains(page, "App One") {
		t.Fatal("the account page lists apps before sign-in")
	}

	// A wrong password: the form again, no session.
	resp, page = b.signIn("alice", "not-her-password")
	if resp.StatusCode != 200 || !strings.Contains(page, "Wrong username or password") {
		t.Fatalf("wrong password: %d\n%s", resp.StatusCode, page)
	}
	resp, _ = b.signIn("alice", testUsers["alice"])
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/account" {
		t.Fatalf("sign in: %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if strings.Contains(c.Name, "mcpauth_account") {
			session = c
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode {
		t.Fatalf("account session cookie: %+v", session)
	}

	resp, page = b.do("GET", "/account", nil, nil)
	for _, want := range []string{"alice", "App One", "127.0.0.1:7001", "App Two", "localhost:7002", "Disconnect"} {
		if !strings.Contains(page, want) {
			t.Errorf("the account page does not show %q:\n%s", want, page)
		}
	}
	if h := resp.Header; !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") || h.Get("Cache-Control") != "no-store" {
		t.Errorf("account page headers: %v", h)
	}

	// Forgeries: no token, another token, a cross-site post, no session.
	csrf := b.csrf()
	for _, tc := range []struct {
		name   string
		tab    *accountTab
		form   url.Values
		header http.Header
	}{
		{"no csrf token", b, url.Values{"client_id": {one.ClientID}}, nil},
		{"wrong csrf token", b, url.Values{"client_id": {one.ClientID}, "csrf": {strings.Repeat("A", 43)}}, nil},
		{"cross-site", b, url.Values{"client_id": {one.ClientID}, "csrf": {csrf}}, http.Header{"Sec-Fetch-Site": {"cross-site"}}},
		{"other origin", b, url.Values{"client_id": {one.ClientID}, "csrf": {csrf}}, http.Header{"Origin": {"https://evil.example"}}},
		{"no session", e.accountTab(t), url.Values{"client_id": {one.ClientID}, "csrf": {csrf}}, nil},
	} {
		resp, _ := tc.tab.do("POST", "/account/disconnect", tc.form, tc.header)
		if resp.StatusCode == http.StatusSeeOther && resp.Header.Get("Location") != "/account" {
			t.Errorf("%s: %d %s", tc.name, resp.StatusCode, resp.Header.Get("Location"))
		}
		if !e.live(t1.AccessToken) {
			t.Fatalf("%s: disconnected the app", tc.name)
		}
	}

	// Disconnect App One: its tokens stop working at once, App Two's do not.
	resp, _ = b.do("POST", "/account/disconnect", url.Values{"client_id": {one.ClientID}, "csrf": {csrf}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("disconnect: %d", resp.StatusCode)
	}
	if e.live(t1.AccessToken) {
		t.Error("App One's access token still works after disconnecting it")
	}
	if _, err := one.Refresh(ctx(t), t1.RefreshToken); err == nil {
		t.Error("App One's refresh token still works after disconnecting it")
	}
	if !e.live(t2.AccessToken) {
		t.Error("disconnecting App One signed App Two out")
	}
	_, page = b.do("GET", "/account?disconnected=1", nil, nil)
	if strings.Contains(page, "App One") || !strings.Contains(page, "App Two") || !strings.Contains(page, "disconnected") {
		t.Errorf("after disconnecting App One:\n%s", page)
	}
	if !strings.Contains(e.logs.String(), `msg="grant revoked" user=alice client_id=`+one.ClientID) {
		t.Errorf("no grant revoked event in the log:\n%s", e.logs.String())
	}

	// Another user's session cannot disconnect alice's apps.
	bob := e.accountTab(t)
	bob.signIn("bob", testUsers["bob"])
	bob.do("POST", "/account/disconnect", url.Values{"client_id": {two.ClientID}, "csrf": {bob.csrf()}}, nil)
	if !e.live(t2.AccessToken) {
		t.Error("bob disconnected alice's app")
	}

	// Sign out: the page asks to sign in again.
	resp, _ = b.do("POST", "/account/signout", url.Values{"csrf": {b.csrf()}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign out: %d", resp.StatusCode)
	}
	if _, page = b.do("GET", "/account", nil, nil); strings.Contains(page, "App Two") || !strings.Contains(page, `name="password"`) {
		t.Errorf("after sign-out:\n%s", page)
	}
}

// TestAccountSession: the account session ends when the user's password
// changes, and sign-ins on the account page count in the same throttles as
// those of the authorization page.
func TestAccountSession(t *testing.T) {
	e := newEnv(t)
	b := e.accountTab(t)
	b.signIn("alice", testUsers["alice"])
	if _, page := b.do("GET", "/account", nil, nil); !strings.Contains(page, "Sign out") {
		t.Fatalf("not signed in:\n%s", page)
	}
	editUsers(t, func() {
		writeUsers(t, e.usersPath, map[string]string{"alice": "a-new-password", "bob": testUsers["bob"]})
	}, e.cur.Load())
	if _, page := b.do("GET", "/account", nil, nil); strings.Contains(page, "Sign out") {
		t.Fatal("the account session survived a password change")
	}

	// Five failures for bob on the account page lock him out there and on
	// the authorization page, from this address.
	for range 5 {
		b.signIn("bob", "wrong")
	}
	resp, _ := b.signIn("bob", testUsers["bob"])
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("sixth sign-in: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	c := e.register(nil)
	if _, err := c.Authorize(ctx(t), mcpauthtest.AuthorizeOptions{Username: "bob", Password: testUsers["bob"]}); mcpauthtest.ErrorStatus(err) != http.StatusTooManyRequests {
		t.Fatalf("authorize after the account page lockout: %v", err)
	}
}
