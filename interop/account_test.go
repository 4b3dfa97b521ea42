package interop

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mcpgen/create-mcp-server/runtime/mcpauthtest"
)

// testAccount drives the account page in a real Chromium: two apps are
// connected to the user's account, the user signs in at /account with the
// login form, sees both, disconnects one, and that app's token is refused
// while the other's still works. Screenshots go to srv.Artifacts.
func testAccount(t *testing.T, srv *server) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// Two apps, each signed in headlessly as the test user.
	connect := func(name, redirect string) (*mcpauthtest.Client, string) {
		c, err := mcpauthtest.Register(ctx, srv.BaseURL, map[string]any{
			"client_name": name, "redirect_uris": []string{redirect}, "token_endpoint_auth_method": "none",
		})
		if err != nil {
			t.Fatalf("register %s: %v", name, err)
		}
		res, err := c.Authorize(ctx, mcpauthtest.AuthorizeOptions{Username: testUser, Password: testPassword})
		if err != nil {
			t.Fatalf("connect %s: %v", name, err)
		}
		tok, err := c.Exchange(ctx, res.Code, res.Verifier)
		if err != nil {
			t.Fatalf("connect %s: %v", name, err)
		}
		return c, tok.AccessToken
	}
	_, notes := connect("Interop Notes", "http://127.0.0.1:45001/callback")
	_, calendar := connect("Interop Calendar", "http://localhost:45002/callback")

	b := startChromium(t)
	b.artifacts = srv.Artifacts

	// 1. The account page asks to sign in with the login form.
	b.do("open the account page", chromedp.EmulateViewport(desktop.w, desktop.h), chromedp.Navigate(srv.BaseURL+"/account"))
	b.do("account page shows the form", chromedp.WaitVisible(chromedp.CSS(`input[name=password]`)))
	info := b.pageInfo("account sign-in")
	if info.Approve == "" {
		t.Fatalf("account page: no sign-in button; buttons: %v", info.Buttons)
	}
	b.screenshot("account-signin", desktop)

	// 2. Sign in: both apps are listed.
	b.typeCredentials("account sign in", testUser, testPassword)
	b.clickAndLoad("account sign in: click "+info.Approve, `[data-interop=approve]`)
	info = b.pageInfo("connected apps")
	for _, name := range []string{"Interop Notes", "Interop Calendar"} {
		if !strings.Contains(info.Text, name) {
			b.screenshot("account-apps", desktop)
			t.Fatalf("account page: %q is not listed; page text:\n%s", name, info.Text)
		}
	}
	b.screenshot("account-apps", desktop)
	b.screenshot("account-apps", phone)
	if info := b.pageInfo("connected apps at phone width"); info.ScrollWidth > info.InnerWidth {
		t.Errorf("account page at phone width: content is %dpx wide in a %dpx viewport", info.ScrollWidth, info.InnerWidth)
	}

	// 3. Disconnect Interop Notes.
	b.do("mark the Disconnect button of Interop Notes", chromedp.Evaluate[chromedp.Void](`(() => {
		const li = [...document.querySelectorAll('li')].find(e => e.innerText.includes('Interop Notes'));
		li.querySelector('button').setAttribute('data-interop', 'disconnect');
	})()`))
	b.clickAndLoad("disconnect Interop Notes", `[data-interop=disconnect]`)
	info = b.pageInfo("after disconnecting")
	if strings.Contains(info.Text, "Interop Notes") || !strings.Contains(info.Text, "Interop Calendar") {
		t.Errorf("after disconnecting Interop Notes the page shows:\n%s", info.Text)
	}
	b.screenshot("account-disconnected", desktop)

	// 4. The disconnected app's token is refused; the other's is not.
	if code := bearerStatus(ctx, t, srv, notes); code != http.StatusUnauthorized {
		t.Errorf("the disconnected app's token: HTTP %d, want 401", code)
	}
	if code := bearerStatus(ctx, t, srv, calendar); code == http.StatusUnauthorized {
		t.Errorf("the other app's token is refused (HTTP %d)", code)
	}
	if errs := b.consoleErrors(); len(errs) > 0 {
		t.Errorf("console: %d error(s) on the account page:\n%s", len(errs), strings.Join(errs, "\n"))
	}
}
