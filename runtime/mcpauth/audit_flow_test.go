package mcpauth_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/mcpgen/create-mcp-server/runtime/mcpauth"
	"github.com/mcpgen/create-mcp-server/runtime/mcpauthtest"
)

// TestAuditLog runs the whole life of a grant, with the mistakes and
// attacks an operator wants to see (a wrong password, a lockout, a denied
// consent, a replayed code, a reused refresh token), and checks the JSON
// log: each audit event carries exactly its documented attributes, every
// kind of event the flow causes is there with the right user and client,
// and no line contains any password, code, verifier, token or client
// secret used. Then it scrapes the metrics and lints them.
func TestAuditLog(t *testing.T) {
	logs := &syncBuffer{}
	e := newEnv(t, func(c *mcpauth.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	secrets := map[string]string{}
	keep := func(what, v string) {
		if v != "" {
			secrets[v] = what
		}
	}
	for u, pw := range testUsers {
		keep("password of "+u, pw)
	}

	c := e.register(map[string]any{"token_endpoint_auth_method": "client_secret_post", "client_name": "Audit App"})
	keep("client secret", c.ClientSecret)

	// A wrong password, then the right one.
	wrong := "not-alice-password-7f3a"
	keep("wrong password", wrong)
	if _, err := c.Authorize(ctx(t), mcpauthtest.AuthorizeOptions{Username: "alice", Password: wrong}); err == nil {
		t.Fatal("a wrong password signed in")
	}
	// Alice's password typed into the username field: neither the log nor
	// the database (the throttle counters) may keep it.
	if _, err := c.Authorize(ctx(t), mcpauthtest.AuthorizeOptions{Username: testUsers["alice"], Password: "alice"}); err == nil {
		t.Fatal("a password as username signed in")
	}
	res := e.authorize(c, mcpauthtest.AuthorizeOptions{})
	keep("code", res.Code)
	keep("verifier", res.Verifier)
	tok, err := c.Exchange(ctx(t), res.Code, res.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	keep("access token", tok.AccessToken)
	keep("refresh token", tok.RefreshToken)

	// Tool calls, a refresh, and a reuse of the rotated refresh token after
	// the grace: the grant is revoked.
	e.callWhoami(tok.AccessToken)
	if _, err := mcpauthtest.CallTool(ctx(t), e.mcpURL, tok.AccessToken, "echo", map[string]any{"text": "hello"}); err != nil {
		t.Fatal(err)
	}
	next, err := c.Refresh(ctx(t), tok.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	keep("access token", next.AccessToken)
	keep("refresh token", next.RefreshToken)
	e.advance(2 * time.Minute)
	if _, err := c.Refresh(ctx(t), tok.RefreshToken); err == nil {
		t.Fatal("a reused refresh token was accepted")
	}
	if e.live(next.AccessToken) {
		t.Fatal("refresh reuse left the grant alive")
	}

	// A second grant: revoked by the client; its code replayed.
	res2 := e.authorize(c, mcpauthtest.AuthorizeOptions{})
	keep("code", res2.Code)
	keep("verifier", res2.Verifier)
	tok2, err := c.Exchange(ctx(t), res2.Code, res2.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	keep("access token", tok2.AccessToken)
	keep("refresh token", tok2.RefreshToken)
	if err := c.Revoke(ctx(t), tok2.RefreshToken, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exchange(ctx(t), res2.Code, res2.Verifier); err == nil {
		t.Fatal("a replayed code was accepted")
	}

	// Consent denied; bob locked out after 5 failures.
	if res, err := c.Authorize(ctx(t), mcpauthtest.AuthorizeOptions{Username: "alice", Password: testUsers["alice"], Deny: true}); err != nil || res.Error != "access_denied" {
		t.Fatalf("deny: %v, %+v", err, res)
	}
	for i := range 6 {
		pw := "bob-guess-" + strings.Repeat("x", i+1)
		keep("wrong password", pw)
		c.Authorize(ctx(t), mcpauthtest.AuthorizeOptions{Username: "bob", Password: pw})
	}

	// The log.
	type event struct{ msg, user string }
	seen := map[event]int{}
	for line := range strings.Lines(logs.String()) {
		for v, what := range secrets {
			if strings.Contains(line, v) {
				t.Errorf("the log shows a %s: %s", what, line)
			}
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		msg, _ := rec["msg"].(string)
		want, ok := mcpauth.AuditEvents[msg]
		if !ok {
			continue
		}
		var got []string
		for k := range rec {
			if k != "time" && k != "level" && k != "msg" {
				got = append(got, k)
			}
		}
		slices.Sort(got)
		want = slices.Sorted(slices.Values(want))
		if !slices.Equal(got, want) {
			t.Errorf("event %q has attributes %v, want %v: %s", msg, got, want, line)
		}
		if id, ok := rec["client_id"]; ok && id != c.ClientID {
			t.Errorf("event %q names client %v, want %s", msg, id, c.ClientID)
		}
		user, _ := rec["user"].(string)
		if strings.HasPrefix(user, "unknown-") {
			user = "unknown-"
		}
		seen[event{msg, user}]++
	}
	for _, want := range []struct {
		ev    event
		count int
	}{
		{event{"client registered", ""}, 1},
		{event{"sign-in failed", "alice"}, 1},
		{event{"sign-in failed", "unknown-"}, 1},
		{event{"sign-in succeeded", "alice"}, 3},
		{event{"consent granted", "alice"}, 2},
		{event{"consent denied", "alice"}, 1},
		{event{"code issued", "alice"}, 2},
		{event{"tokens issued", "alice"}, 2},
		{event{"tool call", "alice"}, 2},
		{event{"token refreshed", "alice"}, 1},
		{event{"refresh reuse detected", "alice"}, 1},
		{event{"token revoked", ""}, 1},
		{event{"code replay detected", "alice"}, 1},
		{event{"sign-in failed", "bob"}, 5},
		{event{"sign-in throttled", "bob"}, 1},
	} {
		if got := seen[want.ev]; got != want.count {
			t.Errorf("%d %q events for %q, want %d", got, want.ev.msg, want.ev.user, want.count)
		}
	}
	if t.Failed() {
		t.Logf("log:\n%s", logs.String())
	}
	for _, suffix := range []string{"", "-wal"} {
		db, err := os.ReadFile(e.dbPath + suffix)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		if bytes.Contains(db, []byte(testUsers["alice"])) {
			t.Errorf("the database file auth.db%s holds the password typed as a username", suffix)
		}
	}

	// The metrics agree, and their exposition is clean.
	body := scrapeMetrics(t, e.cfg.Metrics)
	problems, err := promlint.New(strings.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	for _, want := range []string{
		`mcp_sign_ins_total{outcome="failed"} 7`,
		`mcp_sign_ins_total{outcome="succeeded"} 3`,
		`mcp_sign_ins_total{outcome="throttled"} 1`,
		`mcp_throttle_rejections_total{kind="sign_in"} 1`,
		`mcp_tokens_issued_total 2`,
		`mcp_tokens_refreshed_total 1`,
		`mcp_tokens_revoked_total{by="client"} 1`,
		`mcp_refresh_reuse_detected_total 1`,
		`mcp_code_replays_detected_total 1`,
		`mcp_tool_calls_total{outcome="ok",tool="whoami"} 1`,
		`mcp_tool_calls_total{outcome="ok",tool="echo"} 1`,
		`mcp_http_requests_total{code="201",endpoint="/register",method="POST"} 1`,
		`mcp_db_operation_duration_seconds_count{op="redeem_code"} 2`,
		"\nmcp_registered_clients 1\n",
		"\nmcp_active_grants 0\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the metrics lack %q", want)
		}
	}
}

// scrapeMetrics returns the exposition m serves.
func scrapeMetrics(t *testing.T, m *mcpauth.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("metrics: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// TestAuditTypedNameUnguessable signs in with passwords typed into the
// username field, twice each. The audit log names such an attempt
// "unknown-" and a hash, the same for the same name (so repeated attempts
// stand out) and different for different names. Neither the log nor the
// database (the throttle counters) may hold a plain SHA-256 of what was
// typed: whoever reads the log could hash a list of common passwords and
// find the one typed, at billions of guesses a second.
func TestAuditTypedNameUnguessable(t *testing.T) {
	logs := &syncBuffer{}
	e := newEnv(t, func(c *mcpauth.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	})
	c := e.register(nil)
	typed := []struct{ what, name string }{
		{"alice's password", testUsers["alice"]},
		{"a common password", "hunter2"},
		{"a passphrase", "correct horse battery staple"},
		{"a non-ASCII password", "пароль-1234"},
	}
	for _, tc := range typed {
		for range 2 {
			if _, err := c.Authorize(ctx(t), mcpauthtest.AuthorizeOptions{Username: tc.name, Password: "x"}); err == nil {
				t.Fatalf("%s as the username signed in", tc.what)
			}
		}
	}

	// The names the log gives the attempts, in order.
	var logged []string
	for line := range strings.Lines(logs.String()) {
		var rec struct{ Msg, User string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if rec.Msg == "sign-in failed" {
			logged = append(logged, rec.User)
		}
	}
	if len(logged) != 2*len(typed) {
		t.Fatalf("%d sign-in failed events, want %d:\n%s", len(logged), 2*len(typed), logs)
	}
	seen := map[string]string{}
	for i, tc := range typed {
		first, second := logged[2*i], logged[2*i+1]
		if !strings.HasPrefix(first, "unknown-") || first != second {
			t.Errorf("%s: logged as %q then %q, want the same unknown- name twice", tc.what, first, second)
		}
		if other, ok := seen[first]; ok {
			t.Errorf("%s and %s are both logged as %q", tc.what, other, first)
		}
		seen[first] = tc.what
	}

	files := map[string][]byte{"the log": []byte(logs.String())}
	for _, suffix := range []string{"", "-wal"} {
		data, err := os.ReadFile(e.dbPath + suffix)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		files["auth.db"+suffix] = data
	}
	for _, tc := range typed {
		sum := sha256.Sum256([]byte(tc.name))
		for where, data := range files {
			for _, form := range [][]byte{sum[:6], []byte(hex.EncodeToString(sum[:6]))} {
				if bytes.Contains(data, form) {
					t.Errorf("%s holds the SHA-256 of %s typed as a username", where, tc.what)
				}
			}
		}
	}
}
