package mcpserver_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpgen/create-mcp-server/runtime/authstoretest"
	"github.com/mcpgen/create-mcp-server/runtime/mcpauthtest"
	"github.com/mcpgen/create-mcp-server/runtime/mcpserver"
)

// replicasOn is how many servers the tests start on engine e's database:
// two on PostgreSQL, which replicas share; one on a SQLite file.
func replicasOn(e authstoretest.Engine) int {
	if e.Name == "postgres" {
		return 2
	}
	return 1
}

// startReplicas starts n servers on the database dsn, as replicas behind
// one public URL would be (the first one's), sharing the users file users
// (writeUsers' if ""). It returns the MCP URL of each.
func startReplicas(t *testing.T, dsn, users string, n int) (base string, mcpURLs []string) {
	t.Helper()
	if users == "" {
		users = writeUsers(t)
	}
	for i := range n {
		args := []string{"--addr", "127.0.0.1:0", "--db", dsn, "--users", users}
		if i > 0 {
			args = append(args, "--base-url", base)
		}
		srv, err := mcpserver.Start(t.Context(), testOptions(), args, mcpserver.Env{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Stop() })
		if i == 0 {
			base = srv.URL
		}
		mcpURLs = append(mcpURLs, "http://"+srv.Addr+"/mcp")
	}
	return base, mcpURLs
}

// bearerStatus is the status /mcp answers a request with token.
func bearerStatus(t *testing.T, mcpURL, token string) int {
	t.Helper()
	status, _, err := mcpauthtest.BearerStatus(t.Context(), nil, mcpURL, token)
	if err != nil {
		t.Fatal(err)
	}
	return status
}

// TestGrantsCommands lists and revokes grants with the commands while
// servers run on the same database (two replicas on PostgreSQL): a revoked
// token is refused by every replica as soon as the command returns.
func TestGrantsCommands(t *testing.T) {
	for _, e := range authstoretest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			dsn := e.NewDSN(t)
			replicas := replicasOn(e)
			base, mcpURLs := startReplicas(t, dsn, "", replicas)
			tokens := []string{signIn(t, base), signIn(t, base)} // two apps
			for _, u := range mcpURLs {
				for _, tok := range tokens {
					if s := bearerStatus(t, u, tok); s != http.StatusOK {
						t.Fatalf("before any revocation: %s answered %d", u, s)
					}
				}
			}
			env := map[string]string{"MCP_DB": dsn}

			out, _, err := run(t, testOptions(), env, "", "grants", "list")
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 3 || !strings.HasPrefix(lines[0], "GRANT ID") || !strings.Contains(lines[1], testUser) || !strings.Contains(lines[1], "mcpauthtest") {
				t.Fatalf("grants list =\n%s\nwant a header and two grants of %s in app mcpauthtest", out, testUser)
			}

			var list []struct {
				ID         string  `json:"id"`
				User       string  `json:"user"`
				ClientID   string  `json:"client_id"`
				ClientName string  `json:"client_name"`
				LastUsedAt *string `json:"last_used_at"`
			}
			// A server records a grant's use off the request path: wait
			// for it (bounded, so a server that never records it fails).
			for range 200 {
				out, _, err = run(t, testOptions(), env, "", "grants", "list", "--json", "--user", testUser)
				if err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal([]byte(out), &list); err != nil {
					t.Fatalf("grants list --json: %v\n%s", err, out)
				}
				if len(list) == 2 && list[0].LastUsedAt != nil && list[1].LastUsedAt != nil {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if len(list) != 2 || list[0].User != testUser || list[0].ClientName != "mcpauthtest" || list[0].ClientID == "" || list[0].LastUsedAt == nil {
				t.Fatalf("grants list --json = %+v, want two used grants of %s", list, testUser)
			}
			if out, _, _ := run(t, testOptions(), env, "", "grants", "list", "--json", "--user", "nobody"); strings.TrimSpace(out) != "[]" {
				t.Errorf("grants list --json --user nobody = %q, want []", out)
			}

			// One grant, by ID: its token is refused everywhere, the other
			// app's is not.
			out, stderr, err := run(t, testOptions(), env, "", "grants", "revoke", list[0].ID)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, list[0].ID) || !strings.Contains(stderr, "revoked 1 grant") {
				t.Errorf("grants revoke ID: stdout %q, stderr %q", out, stderr)
			}
			for _, u := range mcpURLs {
				if s := bearerStatus(t, u, tokens[0]); s != http.StatusUnauthorized {
					t.Errorf("revoked grant's token on %s: %d, want 401", u, s)
				}
				if s := bearerStatus(t, u, tokens[1]); s != http.StatusOK {
					t.Errorf("other grant's token on %s: %d, want 200", u, s)
				}
			}

			// Every grant of the user, as JSON.
			out, _, err = run(t, testOptions(), env, "", "grants", "revoke", "--user", testUser, "--json")
			if err != nil {
				t.Fatal(err)
			}
			var revoked struct {
				Revoked int
				Grants  []struct{ ID string }
			}
			if err := json.Unmarshal([]byte(out), &revoked); err != nil || revoked.Revoked != 1 || len(revoked.Grants) != 1 || revoked.Grants[0].ID != list[1].ID {
				t.Fatalf("grants revoke --user --json = %s (%v), want the one grant left", out, err)
			}
			for _, u := range mcpURLs {
				if s := bearerStatus(t, u, tokens[1]); s != http.StatusUnauthorized {
					t.Errorf("token of the user's revoked grants on %s: %d, want 401", u, s)
				}
			}

			if out, stderr, err := run(t, testOptions(), env, "", "grants", "list"); err != nil || out != "" || !strings.Contains(stderr, "no active grants") {
				t.Errorf("grants list after revoking all: %q, %q, %v", out, stderr, err)
			}
			if _, stderr, err := run(t, testOptions(), env, "", "grants", "revoke", "--client", list[0].ClientID); err != nil || !strings.Contains(stderr, "nothing to revoke") {
				t.Errorf("grants revoke --client with nothing left: %q, %v", stderr, err)
			}
			if _, _, err := run(t, testOptions(), env, "", "grants", "revoke", list[0].ID); err == nil || !strings.Contains(err.Error(), "no active grant "+list[0].ID) {
				t.Errorf("grants revoke of a revoked grant: %v, want an error naming it", err)
			}
			if strings.Contains(dsn, "://") {
				if _, _, err := run(t, testOptions(), map[string]string{"MCP_DB": dsn + "&connect_timeout=nope"}, "", "grants", "list"); err == nil || strings.Contains(err.Error(), passwordOf(dsn)) {
					t.Errorf("grants list with a bad URL: %v; want an error without the password", err)
				}
			}
		})
	}
}

// TestGrantsRevokePendingSignIn revokes a user's or an app's grants while
// the app is in the middle of a sign-in: the user has allowed it and the
// app holds an authorization code it has not exchanged yet. "Sign alice
// out of every app" must hold for that app too: once the command has
// returned, the code no longer buys tokens.
func TestGrantsRevokePendingSignIn(t *testing.T) {
	tests := []struct {
		name    string
		args    func(clientID string) []string
		earlier bool // the app already holds a grant of the user
	}{
		{"--user", func(string) []string { return []string{"--user", testUser} }, true},
		{"--client", func(id string) []string { return []string{"--client", id} }, true},
		{"--user, first sign-in", func(string) []string { return []string{"--user", testUser} }, false},
	}
	for _, e := range authstoretest.Engines() {
		for _, tt := range tests {
			t.Run(e.Name+"/"+tt.name, func(t *testing.T) {
				dsn := e.NewDSN(t)
				base, mcpURLs := startReplicas(t, dsn, "", replicasOn(e))
				ctx := t.Context()
				c, err := mcpauthtest.Register(ctx, base, nil)
				if err != nil {
					t.Fatal(err)
				}
				signIn := func() *mcpauthtest.AuthorizeResult {
					res, err := c.Authorize(ctx, mcpauthtest.AuthorizeOptions{Username: testUser, Password: testPassword})
					if err != nil {
						t.Fatal(err)
					}
					return res
				}
				var old string
				if tt.earlier {
					res := signIn()
					tok, err := c.Exchange(ctx, res.Code, res.Verifier)
					if err != nil {
						t.Fatal(err)
					}
					old = tok.AccessToken
				}
				pending := signIn() // allowed, not exchanged yet

				args := append([]string{"grants", "revoke"}, tt.args(c.ClientID)...)
				if _, stderr, err := run(t, testOptions(), map[string]string{"MCP_DB": dsn}, "", args...); err != nil {
					t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, stderr)
				}
				tok, err := c.Exchange(ctx, pending.Code, pending.Verifier)
				if err == nil {
					for _, u := range mcpURLs {
						t.Errorf("a code issued before %q bought tokens after it; /mcp on %s answers them %d",
							strings.Join(args, " "), u, bearerStatus(t, u, tok.AccessToken))
					}
				} else if mcpauthtest.ErrorCode(err) != "invalid_grant" {
					t.Errorf("exchanging the code after the revocation: %v, want invalid_grant", err)
				}
				if old != "" {
					for _, u := range mcpURLs {
						if s := bearerStatus(t, u, old); s != http.StatusUnauthorized {
							t.Errorf("the earlier grant's token on %s: %d, want 401", u, s)
						}
					}
				}
			})
		}
	}
}

// passwordOf returns the password of a postgres:// URL ("" if none).
func passwordOf(dsn string) string {
	_, rest, _ := strings.Cut(dsn, "://")
	userinfo, _, ok := strings.Cut(rest, "@")
	if !ok {
		return "\x00"
	}
	_, pw, ok := strings.Cut(userinfo, ":")
	if !ok || pw == "" {
		return "\x00"
	}
	return pw
}

// TestGrantsUsage checks the mistakes the grants commands refuse before
// opening anything.
func TestGrantsUsage(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.db")
	tests := []struct {
		args      []string
		want      string
		wantUsage bool
	}{
		{[]string{"grants"}, "missing subcommand", true},
		{[]string{"grants", "drop"}, `unknown subcommand "drop"`, true},
		{[]string{"grants", "revoke"}, "say which grants", true},
		{[]string{"grants", "revoke", "g1", "--user", "alice"}, "not both", true},
		{[]string{"grants", "revoke", "g1", "g2"}, "one grant ID", true},
		{[]string{"grants", "list", "extra"}, "takes no arguments", true},
		{[]string{"grants", "list", "--db", missing}, "--db " + missing + " (env MCP_DB): no such database", false},
		// An ID that begins with "-" goes after "--" (new IDs never do).
		{[]string{"grants", "revoke", "--db", missing, "--", "-g1"}, "no such database", false},
		{[]string{"grants", "revoke", "-g1", "--db", missing}, "unknown flag --g1", true},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, _, err := run(t, testOptions(), nil, "", tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
			if usage := errors.As(err, new(*mcpserver.UsageError)); usage != tt.wantUsage {
				t.Errorf("usage error: %v, want %v", usage, tt.wantUsage)
			}
		})
	}
	if _, err := os.Stat(missing); err == nil {
		t.Errorf("grants list created %s", missing)
	}
}

// TestDBCopy moves a deployment whose server issued tokens to another
// database (PostgreSQL when available) and checks that a server on the
// copy accepts the old access token and refreshes the old refresh token:
// nobody is signed out.
func TestDBCopy(t *testing.T) {
	for _, e := range authstoretest.Engines() {
		t.Run("to "+e.Name, func(t *testing.T) {
			from := filepath.Join(t.TempDir(), "auth.db")
			users := writeUsers(t)
			srv, err := mcpserver.Start(t.Context(), testOptions(), []string{"--addr", "127.0.0.1:0", "--db", from, "--users", users}, mcpserver.Env{})
			if err != nil {
				t.Fatal(err)
			}
			c, err := mcpauthtest.Register(t.Context(), srv.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			res, err := c.Authorize(t.Context(), mcpauthtest.AuthorizeOptions{Username: testUser, Password: testPassword})
			if err != nil {
				t.Fatal(err)
			}
			tok, err := c.Exchange(t.Context(), res.Code, res.Verifier)
			if err != nil {
				t.Fatal(err)
			}
			if err := srv.Stop(); err != nil {
				t.Fatal(err)
			}

			to := e.NewDSN(t)
			_, stderr, err := run(t, testOptions(), map[string]string{"MCP_DB": from}, "", "db", "copy", "--to", to)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(stderr, "copied 1 client, 1 grant, 1 code and 2 tokens") || strings.Contains(stderr, passwordOf(to)) {
				t.Errorf("db copy said %q, want the counts, and no password", stderr)
			}
			_, _, err = run(t, testOptions(), nil, "", "db", "copy", "--from", from, "--to", to)
			if err == nil || !strings.Contains(err.Error(), "pass --overwrite") || strings.Contains(err.Error(), passwordOf(to)) {
				t.Errorf("second copy: %v, want a refusal naming --overwrite, without the password", err)
			}
			if _, _, err := run(t, testOptions(), nil, "", "db", "copy", "--from", from, "--to", to, "--overwrite"); err != nil {
				t.Errorf("copy --overwrite: %v", err)
			}

			// The server address changes (a new port), the public URL does not.
			srv2, err := mcpserver.Start(t.Context(), testOptions(), []string{"--addr", "127.0.0.1:0", "--base-url", srv.URL, "--db", to, "--users", users}, mcpserver.Env{})
			if err != nil {
				t.Fatal(err)
			}
			defer srv2.Stop()
			if s := bearerStatus(t, "http://"+srv2.Addr+"/mcp", tok.AccessToken); s != http.StatusOK {
				t.Errorf("copied access token: %d, want 200", s)
			}
			c.BaseURL = "http://" + srv2.Addr
			if _, err := c.Refresh(t.Context(), tok.RefreshToken); err != nil {
				t.Errorf("copied refresh token: %v", err)
			}
		})
	}
}

func TestDBCopyUsage(t *testing.T) {
	db := filepath.Join(t.TempDir(), "auth.db")
	if err := os.WriteFile(db, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"db"}, "missing subcommand"},
		{[]string{"db", "move"}, `unknown subcommand "move"`},
		{[]string{"db", "copy"}, "--to is required"},
		{[]string{"db", "copy", "--from", db, "--to", db}, "same database"},
		{[]string{"db", "copy", "--from", filepath.Join(t.TempDir(), "none.db"), "--to", db}, "no such database"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, _, err := run(t, testOptions(), nil, "", tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
		})
	}
	// The same file under another name.
	t.Chdir(filepath.Dir(db))
	_, _, err := run(t, testOptions(), nil, "", "db", "copy", "--from", db, "--to", "./"+filepath.Base(db))
	if err == nil || !strings.Contains(err.Error(), "same file") {
		t.Fatalf("copy onto itself under another name: %v, want a refusal", err)
	}
}

// TestUserCommandsSignOut: "user remove" and a password change by "user
// add" also delete the user's grants in the database, so that once the
// command returns no running replica accepts the user's tokens, without
// waiting for the servers to reread the users file. A hand edit of the
// file takes effect when the servers reread it.
func TestUserCommandsSignOut(t *testing.T) {
	for _, e := range authstoretest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			dsn := e.NewDSN(t)
			replicas := replicasOn(e)
			users := writeUsers(t)
			env := map[string]string{"MCP_DB": dsn, "MCP_USERS": users}
			for _, u := range []string{"bob", "carol"} {
				if _, _, err := run(t, testOptions(), env, u+"-password\n", "user", "add", u, "--password-stdin"); err != nil {
					t.Fatal(err)
				}
			}
			base, mcpURLs := startReplicas(t, dsn, users, replicas)
			status := func(tok string) []int {
				var s []int
				for _, u := range mcpURLs {
					s = append(s, bearerStatus(t, u, tok))
				}
				return s
			}
			all := func(code int) []int { return slices.Repeat([]int{code}, replicas) }

			steps := []struct {
				name       string
				user       string
				args       []string // the command, run once the user's token works everywhere
				stdin      string
				wantStderr string
			}{
				{"user remove", "bob", []string{"user", "remove", "bob"}, "",
					"removed bob from " + users + "\nsigned out bob's apps (1 grant deleted in "},
				{"password changed", testUser, []string{"user", "add", testUser, "--password-stdin"}, "a-new-password\n",
					"changed the password of " + testUser + " in " + users + "\nsigned out " + testUser + "'s apps (1 grant deleted in "},
			}
			for _, s := range steps {
				password := s.user + "-password"
				tok := signInAs(t, base, s.user, password)
				if got := status(tok); !slices.Equal(got, all(http.StatusOK)) {
					t.Fatalf("%s: before the command, the replicas answer %v", s.name, got)
				}
				_, stderr, err := run(t, testOptions(), env, s.stdin, s.args...)
				if err != nil {
					t.Fatalf("%s: %v", s.name, err)
				}
				if !strings.HasPrefix(stderr, s.wantStderr) || !strings.Contains(stderr, "no running server accepts their tokens any more") {
					t.Errorf("%s: stderr =\n%s\nwant it to start with\n%s", s.name, stderr, s.wantStderr)
				}
				if p := passwordOf(dsn); p != "" && strings.Contains(stderr, p) {
					t.Errorf("%s: stderr shows the database password:\n%s", s.name, stderr)
				}
				// As soon as the command has returned: no waiting.
				if got := status(tok); !slices.Equal(got, all(http.StatusUnauthorized)) {
					t.Errorf("%s: once the command returned, the replicas answer %v, want %v", s.name, got, all(http.StatusUnauthorized))
				}
			}

			// carol removed by hand: refused once the servers reread the file.
			tok := signInAs(t, base, "carol", "carol-password")
			data, err := os.ReadFile(users)
			if err != nil {
				t.Fatal(err)
			}
			var kept []string
			for _, line := range strings.SplitAfter(string(data), "\n") {
				if !strings.HasPrefix(line, "carol:") {
					kept = append(kept, line)
				}
			}
			if err := os.WriteFile(users, []byte(strings.Join(kept, "")), 0o600); err != nil {
				t.Fatal(err)
			}
			for deadline := time.Now().Add(10 * time.Second); !slices.Equal(status(tok), all(http.StatusUnauthorized)); time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("carol removed by hand: the replicas still answer %v after 10 s", status(tok))
				}
			}
		})
	}
}
