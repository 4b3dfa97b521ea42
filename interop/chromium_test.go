package interop

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/mcpgen/create-mcp-server/runtime/mcpauthtest"
)

// chromiumPath is Debian's chromium (apt-get install chromium).
const chromiumPath = "/usr/bin/chromium"

// The viewports of the screenshots.
var (
	phone   = viewport{name: "phone", w: 390, h: 844}
	desktop = viewport{name: "desktop", w: 1280, h: 800}
)

type viewport struct {
	name string
	w, h int64
}

// wrongPasswordMessage is what a clear "wrong password" message says in
// some form.
var wrongPasswordMessage = regexp.MustCompile(`(?i)(incorrect|invalid|wrong|does not match|unknown user|not recognized)`)

// testChromium signs in through the login page in a real Chromium: it
// renders, a wrong password shows a clear message, typing and clicking the
// sign-in button lands on the client's redirect URI with a code, pressing
// Enter in the password field signs in too, and the console stays free of
// errors. Screenshots at phone and desktop widths go to srv.Artifacts.
func testChromium(t *testing.T, srv *server) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("chromium: %v: install Debian's chromium package (scripts/test does it with apt-get)", err)
	}

	// The client's redirect URI: a loopback server that records what it gets.
	callbacks := make(chan url.Values, 8)
	mux := http.NewServeMux()
	mux.HandleFunc("/callback", func(w http.ResponseWriter, r *http.Request) {
		callbacks <- r.URL.Query()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>Signed in</title></head><body><p>Signed in. You can close this window.</p></body></html>`)
	})
	cb := httptest.NewServer(mux)
	t.Cleanup(cb.Close)
	redirect := cb.URL + "/callback"

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	oc, err := mcpauthtest.Register(ctx, srv.BaseURL, map[string]any{
		"client_name":                "Interop Chromium",
		"redirect_uris":              []string{redirect},
		"token_endpoint_auth_method": "none",
	})
	if err != nil {
		t.Fatalf("register a client: %v", err)
	}

	b := startChromium(t)
	b.artifacts = srv.Artifacts

	// authorizeURL returns a fresh /authorize URL and its PKCE verifier.
	authorizeURL := func(state string) (string, string) {
		verifier, challenge := mcpauthtest.PKCE()
		return oc.AuthorizeURL(mcpauthtest.AuthorizeOptions{State: state}, challenge), verifier
	}

	// 1. The page renders, at both widths.
	state := "state-chromium-1"
	u, verifier := authorizeURL(state)
	b.do("open the login page", chromedp.EmulateViewport(desktop.w, desktop.h), chromedp.Navigate(u))
	b.do("login page shows the form", chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)),
		chromedp.WaitVisible(chromedp.CSS(`input[name=password]`)))
	info := b.pageInfo("login page")
	if info.Title == "" {
		t.Errorf("login page: no <title>")
	}
	if !strings.Contains(info.Text, "Interop Chromium") {
		t.Errorf("login page: the client's name %q is not shown; page text:\n%s", "Interop Chromium", info.Text)
	}
	if info.Approve == "" {
		t.Fatalf("login page: no sign-in button; buttons: %v", info.Buttons)
	}
	b.screenshot("login", desktop)
	b.screenshot("login", phone)
	if info := b.pageInfo("login page at phone width"); info.ScrollWidth > info.InnerWidth {
		t.Errorf("login page at phone width: content is %dpx wide in a %dpx viewport (horizontal scrolling)", info.ScrollWidth, info.InnerWidth)
	}

	// 2. A wrong password shows a clear message and no redirect.
	b.typeCredentials("wrong password", testUser, "not-"+testPassword)
	b.clickAndLoad("wrong password: click "+strconv.Quote(info.Approve), `[data-interop=approve]`)
	info = b.pageInfo("after a wrong password")
	if !strings.HasPrefix(info.Location, srv.BaseURL+"/") {
		t.Fatalf("wrong password: the browser left the server for %s", info.Location)
	}
	if info.Approve == "" {
		b.screenshot("wrong-password", phone)
		t.Fatalf("wrong password: the server answered with a page that has no login form to try again (title %q):\n%s", info.Title, info.Text)
	}
	if !wrongPasswordMessage.MatchString(info.Text) {
		t.Errorf("wrong password: no clear message (want one matching %s); page text:\n%s", wrongPasswordMessage, info.Text)
	}
	b.screenshot("wrong-password", phone)
	b.screenshot("wrong-password", desktop)
	select {
	case q := <-callbacks:
		t.Fatalf("wrong password: the client was called back with %v", q)
	default:
	}

	// 3. The right password, typed into the form shown after the error,
	// and a click on the sign-in button: the browser lands on the redirect
	// URI with a code.
	b.typeCredentials("sign in", testUser, testPassword)
	b.clickAndLoad("sign in: click "+strconv.Quote(info.Approve), `[data-interop=approve]`)
	q := waitCallback(t, "sign in", b, callbacks)
	checkBrowserCallback(t, "sign in", b, srv, redirect, q, state)
	tok, err := oc.Exchange(ctx, q.Get("code"), verifier)
	if err != nil {
		t.Fatalf("sign in: exchange the code from the browser: %v", err)
	}
	if code := bearerStatus(ctx, t, srv, tok.AccessToken); code == http.StatusUnauthorized {
		t.Fatalf("sign in: the access token is refused (HTTP %d)", code)
	}

	// 4. Enter in the password field signs in as well (the form's default
	// button must be the sign-in button, not the refusal).
	state = "state-chromium-2"
	u, _ = authorizeURL(state)
	b.do("open the login page again", chromedp.Navigate(u),
		chromedp.WaitVisible(chromedp.CSS(`input[name=password]`)))
	b.pageInfo("login page again")
	b.typeCredentials("press Enter", testUser, "")
	b.do("press Enter: wait for the next page", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.WaitEvent(page.LoadEventFired, nil,
			chromedp.SendKeys(chromedp.CSS(`input[name=password]`), testPassword+kb.Enter))(ctx, tg)
		return err
	}))
	q = waitCallback(t, "press Enter", b, callbacks)
	checkBrowserCallback(t, "press Enter", b, srv, redirect, q, state)

	// 5. Nothing went wrong in the console.
	if errs := b.consoleErrors(); len(errs) > 0 {
		t.Errorf("console: %d error(s) on the server's pages:\n%s", len(errs), strings.Join(errs, "\n"))
	}
}

// waitCallback waits for the browser to reach the client's redirect URI.
func waitCallback(t *testing.T, step string, b *browser, callbacks <-chan url.Values) url.Values {
	t.Helper()
	select {
	case q := <-callbacks:
		return q
	case <-time.After(15 * time.Second):
		info := b.pageInfo(step + ": where the browser is")
		t.Fatalf("%s: the browser never reached the client's redirect URI; it shows %s (title %q):\n%s",
			step, info.Location, info.Title, info.Text)
		return nil
	}
}

// checkBrowserCallback checks the redirect the browser followed.
func checkBrowserCallback(t *testing.T, step string, b *browser, srv *server, redirect string, q url.Values, state string) {
	t.Helper()
	if e := q.Get("error"); e != "" {
		t.Fatalf("%s: the client got error=%s (%s) instead of a code", step, e, q.Get("error_description"))
	}
	if q.Get("code") == "" || q.Get("state") != state || q.Get("iss") != srv.BaseURL {
		t.Fatalf("%s: redirect parameters code=%t state=%q iss=%q, want a code, state %q and iss %q",
			step, q.Get("code") != "", q.Get("state"), q.Get("iss"), state, srv.BaseURL)
	}
	if loc := b.location(step); !strings.HasPrefix(loc, redirect+"?") {
		t.Fatalf("%s: the browser is at %s, want the redirect URI %s", step, loc, redirect)
	}
}

// browser is a headless Chromium with one tab.
type browser struct {
	t         *testing.T
	ctx       context.Context
	artifacts string
	origin    string // the server's origin, whose console messages count

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
}

// startChromium starts Debian's chromium with a fresh profile and stops it,
// with every process it started, when t ends.
func startChromium(t *testing.T) *browser {
	t.Helper()
	profile := t.TempDir()
	var cmd *exec.Cmd
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(int(desktop.w), int(desktop.h)),
		chromedp.ModifyCmdFunc(func(c *exec.Cmd) {
			if c.SysProcAttr == nil {
				c.SysProcAttr = &syscall.SysProcAttr{}
			}
			c.SysProcAttr.Setpgid = true
			c.SysProcAttr.Pdeathsig = syscall.SIGKILL
			cmd = c
		}),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
		if cmd != nil && cmd.Process != nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
		killUsing("--user-data-dir=" + profile)
	})
	b := &browser{t: t, ctx: ctx}
	// The first use of ctx starts the browser: no timeout on it.
	messages := chromedp.Console(ctx)
	version, err := chromedp.Run(ctx, chromedp.Evaluate[string](`navigator.userAgent`))
	if err != nil {
		t.Fatalf("chromium: start %s: %v", chromiumPath, err)
	}
	t.Logf("chromium: %s", version)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m)
			b.mu.Unlock()
		}
	}()
	return b
}

// killUsing kills every process whose command line has arg (the leftovers of
// a browser, found by its unique profile directory).
func killUsing(arg string) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		for _, a := range bytes.Split(cmdline, []byte{0}) {
			if string(a) == arg {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				break
			}
		}
	}
}

// do runs steps with a timeout and fails the test naming step.
func (b *browser) do(step string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("chromium: %s: %v (page: %s)", step, err, b.location(step))
	}
}

// location returns the tab's URL.
func (b *browser) location(step string) string {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return fmt.Sprintf("(location unknown: %v)", err)
	}
	return loc
}

// pageInfo is what the test reads off a page.
type pageInfo struct {
	Title, Text, Location   string
	Buttons                 []string
	Approve                 string // label of the sign-in button, marked data-interop=approve
	ScrollWidth, InnerWidth int
}

// pageInfo reads the page and marks its sign-in button: the first submit
// button of the form with a password input that does not refuse.
func (b *browser) pageInfo(step string) pageInfo {
	b.t.Helper()
	const js = `(() => {
	const form = document.querySelector('input[name=password]')?.form;
	const buttons = form ? [...form.querySelectorAll('button, input[type=submit]')]
		.filter(e => (e.type || 'submit') === 'submit') : [];
	const label = e => (e.innerText || e.value || '').trim();
	const refuses = e => /deny|refuse|reject|decline|cancel/i.test([e.name, e.value, label(e)].join(' '));
	const approve = buttons.find(e => !refuses(e));
	document.querySelectorAll('[data-interop]').forEach(e => e.removeAttribute('data-interop'));
	if (approve) approve.setAttribute('data-interop', 'approve');
	return {
		Title: document.title,
		Text: document.body ? document.body.innerText : '',
		Location: location.href,
		Buttons: buttons.map(label),
		Approve: approve ? label(approve) : '',
		ScrollWidth: document.documentElement.scrollWidth,
		InnerWidth: window.innerWidth,
	};
})()`
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	info, err := chromedp.Run(ctx, chromedp.Evaluate[pageInfo](js))
	if err != nil {
		b.t.Fatalf("chromium: %s: read the page: %v", step, err)
	}
	if b.origin == "" {
		if u, err := url.Parse(info.Location); err == nil {
			b.origin = u.Scheme + "://" + u.Host
		}
	}
	return info
}

// typeCredentials clears the login fields and types into them like a
// person; an empty password leaves the password field empty.
func (b *browser) typeCredentials(step, username, password string) {
	b.t.Helper()
	steps := []chromedp.Action[chromedp.Void]{
		chromedp.Evaluate[chromedp.Void](`document.querySelectorAll('input[name=username], input[name=password]').forEach(e => { e.value = '' })`),
		chromedp.SendKeys(chromedp.CSS(`input[name=username]`), username),
	}
	if password != "" {
		steps = append(steps, chromedp.SendKeys(chromedp.CSS(`input[name=password]`), password))
	}
	b.do(step+": type username and password", steps...)
}

// clickAndLoad clicks the element at sel and waits for the page that the
// click loads.
func (b *browser) clickAndLoad(step, sel string) {
	b.t.Helper()
	b.do(step, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(sel)))(ctx, tg)
		return err
	}))
}

// screenshot saves the viewport at vp as NAME-VP-WxH.png in the artifacts
// directory and leaves the tab at that size.
func (b *browser) screenshot(name string, vp viewport) {
	b.t.Helper()
	var opts []chromedp.EmulateViewportOption
	if vp == phone {
		opts = append(opts, chromedp.EmulateScale(2), chromedp.EmulateMobile)
	}
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(vp.w, vp.h, opts...)); err != nil {
		b.t.Fatalf("chromium: screenshot %s at %s width: %v", name, vp.name, err)
	}
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("chromium: screenshot %s at %s width: %v", name, vp.name, err)
	}
	path := filepath.Join(b.artifacts, fmt.Sprintf("%s-%s-%dx%d.png", name, vp.name, vp.w, vp.h))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatalf("chromium: save screenshot: %v", err)
	}
	b.t.Logf("screenshot: %s", path)
}

// consoleErrors returns the errors and uncaught exceptions that the
// server's pages wrote to the console (the test's own callback page does
// not count), waiting a moment for late messages.
func (b *browser) consoleErrors() []string {
	time.Sleep(500 * time.Millisecond)
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.console {
		if m.Type != chromedp.ConsoleError && m.Type != chromedp.ConsoleException {
			if m.Type == chromedp.ConsoleWarning {
				b.t.Logf("console warning: %s (%s)", m.Text, m.URL)
			}
			continue
		}
		if m.URL != "" && b.origin != "" && !strings.HasPrefix(m.URL, b.origin) {
			continue
		}
		out = append(out, fmt.Sprintf("  %s: %s (%s:%d)", m.Type, m.Text, m.URL, m.Line))
	}
	return out
}
