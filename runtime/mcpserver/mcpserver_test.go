package mcpserver_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"golang.org/x/crypto/bcrypt"

	"github.com/mcpgen/create-mcp-server/runtime/mcpauth"
	"github.com/mcpgen/create-mcp-server/runtime/mcpauthtest"
	"github.com/mcpgen/create-mcp-server/runtime/mcpserver"
)

const (
	testUser     = "alice"
	testPassword = "alice-password"
)

// testOptions is a server with a "whoami" tool, reporting the caller, and
// an "add" tool with typed arguments.
func testOptions() mcpserver.Options {
	return mcpserver.Options{
		Name:        "test-server",
		Version:     "1.2.3",
		Description: "A server for tests.",
		Tools:       []server.ServerTool{whoamiTool(), addTool()},
	}
}

func whoamiTool() server.ServerTool {
	return server.ServerTool{
		Tool: mcp.NewTool("whoami", mcp.WithDescription("Reports who is calling.")),
		Handler: func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			id, ok := mcpauth.IdentityFromContext(ctx)
			if !ok {
				return mcp.NewToolResultError("no identity"), nil
			}
			return mcp.NewToolResultText(id.User), nil
		},
	}
}

type addArgs struct {
	A     int    `json:"a" jsonschema:"first number"`
	B     int    `json:"b" jsonschema:"second number"`
	Label string `json:"label,omitempty" jsonschema:"optional label"`
}

func addTool() server.ServerTool {
	return server.ServerTool{
		Tool: mcp.NewTool("add", mcp.WithDescription("Adds two numbers."), mcp.WithInputSchema[addArgs]()),
		Handler: mcp.NewTypedToolHandler(func(ctx context.Context, _ mcp.CallToolRequest, args addArgs) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText(fmt.Sprint(args.A + args.B)), nil
		}),
	}
}

// writeUsers writes a users file with testUser (a cheap bcrypt cost keeps
// the tests fast; the server does not care) and returns its path.
func writeUsers(t *testing.T) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "users.txt")
	if err := os.WriteFile(path, []byte(testUser+":"+string(h)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// syncBuffer collects a server's log lines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// run runs a command line and returns its stdout, stderr and error.
func run(t *testing.T, opts mcpserver.Options, env map[string]string, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = mcpserver.Run(t.Context(), opts, args, mcpserver.Env{
		Stdin:  strings.NewReader(stdin),
		Stdout: &out,
		Stderr: &errOut,
		Getenv: func(k string) string { return env[k] },
	})
	return out.String(), errOut.String(), err
}

func TestCommands(t *testing.T) {
	opts := testOptions()
	opts.Commands = []mcpserver.Command{{
		Name: "greet", Args: "NAME", Summary: "say hello",
		Run: func(ctx context.Context, args []string, env mcpserver.Env) error {
			fmt.Fprintf(env.Stdout, "hello %s\n", strings.Join(args, " "))
			return nil
		},
	}}
	tests := []struct {
		args       []string
		wantOut    string // substring of stdout
		wantErr    string // substring of the error
		wantUsage  bool   // the error is a usage error (exit status 2)
		wantStderr string
	}{
		{args: []string{"version"}, wantOut: "test-server 1.2.3\n"},
		{args: []string{"--version"}, wantOut: "test-server 1.2.3\n"},
		{args: []string{"help"}, wantOut: "A server for tests."},
		{args: []string{"help"}, wantOut: "greet NAME"},
		{args: []string{"greet", "bob"}, wantOut: "hello bob\n"},
		{args: nil, wantErr: "missing command", wantUsage: true, wantStderr: "Usage:"},
		{args: []string{"nonsense"}, wantErr: `unknown command "nonsense"`, wantUsage: true},
		{args: []string{"user"}, wantErr: "missing subcommand", wantUsage: true},
		{args: []string{"user", "rename"}, wantErr: `unknown subcommand "rename"`, wantUsage: true},
		{args: []string{"serve", "-h"}, wantErr: flag.ErrHelp.Error(), wantOut: "--base-url URL"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, stderr, err := run(t, opts, nil, "", tt.args...)
			if !strings.Contains(out, tt.wantOut) {
				t.Errorf("stdout = %q, want it to contain %q", out, tt.wantOut)
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr = %q, want it to contain %q", stderr, tt.wantStderr)
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("error = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
			}
			if usage := errors.As(err, new(*mcpserver.UsageError)); usage != tt.wantUsage {
				t.Errorf("usage error: %v, want %v (%v)", usage, tt.wantUsage, err)
			}
		})
	}
}

// TestOptionsChecked checks that a program's own mistakes are reported
// before any command runs.
func TestOptionsChecked(t *testing.T) {
	noop := func(context.Context, []string, mcpserver.Env) error { return nil }
	tests := []struct {
		name string
		opts mcpserver.Options
		want string
	}{
		{"no name", mcpserver.Options{}, "Options.Name is empty"},
		{"built-in command", mcpserver.Options{Name: "x", Commands: []mcpserver.Command{{Name: "serve", Run: noop}}}, `"serve" is built in`},
		{"twice", mcpserver.Options{Name: "x", Commands: []mcpserver.Command{{Name: "a", Run: noop}, {Name: "a", Run: noop}}}, "defined twice"},
		{"no run", mcpserver.Options{Name: "x", Commands: []mcpserver.Command{{Name: "a"}}}, "has no Run"},
		{"two words", mcpserver.Options{Name: "x", Commands: []mcpserver.Command{{Name: "a b", Run: noop}}}, "single word"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := run(t, tt.opts, nil, "", "version")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestUserCommands(t *testing.T) {
	users := filepath.Join(t.TempDir(), "users.txt")
	noDB := filepath.Join(t.TempDir(), "auth.db")
	env := map[string]string{"MCP_USERS": users, "MCP_DB": noDB}
	opts := testOptions()
	steps := []struct {
		args       []string
		stdin      string
		wantStderr string
		wantOut    string
		wantErr    string
	}{
		{args: []string{"user", "add", "bob", "--password-stdin"}, stdin: "bob-password\n", wantStderr: "added bob to " + users},
		{args: []string{"user", "add", "--password-stdin", "carol"}, stdin: "carol-password", wantStderr: "added carol"},
		{args: []string{"user", "add", "bob", "--password-stdin"}, stdin: "new-bob-password\n", wantStderr: "changed the password of bob"},
		{args: []string{"user", "list"}, wantOut: "bob\ncarol\n"},
		{args: []string{"user", "add", "dave", "--password-stdin"}, stdin: "short\n", wantErr: "at least 8 characters"},
		{args: []string{"user", "add", "dave"}, wantErr: "stdin is not a terminal: pipe the password in and pass --password-stdin"},
		{args: []string{"user", "add", "bad:name", "--password-stdin"}, stdin: "long-enough\n", wantErr: "username"},
		{args: []string{"user", "add"}, wantErr: "takes one argument, NAME"},
		{args: []string{"user", "remove", "bob"}, wantStderr: "removed bob from " + users + "\nno database " + noDB + " here, so no apps signed out at once"},
		{args: []string{"user", "list"}, wantOut: "carol\n"},
		// A mistyped database URL is refused before the users file changes,
		// and its password is not repeated.
		{args: []string{"user", "remove", "carol", "--db", "postgress://mcp:db-s3cret@db.example.com/mcp"}, wantErr: "--db (env MCP_DB): authstore: the database \"postgress:xxxxx@db.example.com/mcp\" is neither a postgres:// URL nor a SQLite file path"},
		{args: []string{"user", "add", "carol", "--password-stdin", "--db", "mcp:db-s3cret@db.example.com"}, stdin: "carol-password-2\n", wantErr: "neither a postgres:// URL"},
		{args: []string{"user", "list"}, wantOut: "carol\n"},
		{args: []string{"user", "list", "--users", filepath.Join(t.TempDir(), "none.txt")}, wantOut: ""},
	}
	defer func() {
		if _, err := os.Stat(noDB); err == nil {
			t.Errorf("a user command created the database %s", noDB)
		}
	}()
	for _, s := range steps {
		out, stderr, err := run(t, opts, env, s.stdin, s.args...)
		if s.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), s.wantErr) || strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("%q: error = %v, want %q (and no password)", s.args, err, s.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", s.args, err)
		}
		if !strings.Contains(stderr, s.wantStderr) {
			t.Errorf("%q: stderr = %q, want %q", s.args, stderr, s.wantStderr)
		}
		if s.args[1] == "list" && out != s.wantOut {
			t.Errorf("%q: stdout = %q, want %q", s.args, out, s.wantOut)
		}
	}
}

// startServer runs serve on a free loopback port and returns it with its
// log.
func startServer(t *testing.T, opts mcpserver.Options, args ...string) (*mcpserver.Running, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	args = append([]string{
		"--addr", "127.0.0.1:0",
		"--db", filepath.Join(t.TempDir(), "auth.db"),
		"--users", writeUsers(t),
	}, args...)
	srv, err := mcpserver.Start(t.Context(), opts, args, mcpserver.Env{Stderr: logs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return srv, logs
}

// signIn runs the OAuth flow as testUser and returns an access token.
func signIn(t *testing.T, base string) string {
	t.Helper()
	return signInAs(t, base, testUser, testPassword)
}

// signInAs is signIn as another user.
func signInAs(t *testing.T, base, user, password string) string {
	t.Helper()
	ctx := t.Context()
	c, err := mcpauthtest.Register(ctx, base, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Authorize(ctx, mcpauthtest.AuthorizeOptions{Username: user, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.Exchange(ctx, res.Code, res.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

func get(t *testing.T, url, token string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(body)
}

// TestServe starts the server as serve does and checks what an operator
// and a client see: one log line, the pages, the probes, the healthcheck
// command and an authenticated tool call.
func TestServe(t *testing.T) {
	srv, logs := startServer(t, testOptions())
	if got := logs.String(); strings.Count(got, "\n") != 1 || !strings.Contains(got, "msg=listening url="+srv.URL+"/mcp") {
		t.Errorf("log after start = %q, want one listening line with the MCP URL", got)
	}

	if status, _, body := get(t, srv.URL+"/", ""); status != http.StatusOK || !strings.Contains(body, "test-server") || !strings.Contains(body, srv.URL+"/mcp") {
		t.Errorf("GET / = %d %q, want 200 naming the server and its MCP URL", status, body)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if status, _, _ := get(t, srv.URL+p, ""); status != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", p, status)
		}
	}
	if out, _, err := run(t, testOptions(), nil, "", "healthcheck", "--url", srv.URL); err != nil || !strings.Contains(out, "200") {
		t.Errorf("healthcheck --url %s: %q, %v; want success", srv.URL, out, err)
	}
	addr := strings.TrimPrefix(srv.URL, "http://")
	if _, _, err := run(t, testOptions(), map[string]string{"MCP_ADDR": addr}, "", "healthcheck"); err != nil {
		t.Errorf("healthcheck with MCP_ADDR=%s: %v", addr, err)
	}

	token := signIn(t, srv.URL)
	res, err := mcpauthtest.CallTool(t.Context(), srv.URL+"/mcp", token, "whoami", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := mcpauthtest.ResultText(res); got != testUser {
		t.Errorf("whoami = %q, want %q", got, testUser)
	}
}

func TestHealthcheckFails(t *testing.T) {
	_, _, err := run(t, testOptions(), nil, "", "healthcheck", "--url", "http://127.0.0.1:1")
	if err == nil || !strings.Contains(err.Error(), "not ready") {
		t.Fatalf("healthcheck of a closed port: %v, want not ready", err)
	}
	_, _, err = run(t, testOptions(), nil, "", "healthcheck", "--url", "ftp://x")
	if !errors.As(err, new(*mcpserver.UsageError)) {
		t.Fatalf("healthcheck --url ftp://x: %v, want a usage error", err)
	}
}

// TestServeRefuses checks that serve stops before binding, logging nothing,
// when something is wrong, and names the flag and its variable.
func TestServeRefuses(t *testing.T) {
	users := writeUsers(t)
	empty := filepath.Join(t.TempDir(), "users.txt")
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []string
	}{
		{"no users", []string{"--users", empty}, nil, []string{"no users in " + empty, "user add NAME --users " + empty}},
		{"negative duration", []string{"--access-ttl", "-5m"}, nil, []string{"--access-ttl", "MCP_ACCESS_TTL", "from 1m to 24h"}},
		{"absurd duration", []string{"--refresh-ttl", "100000h"}, nil, []string{"--refresh-ttl", "MCP_REFRESH_TTL"}},
		{"bad env duration", nil, map[string]string{"MCP_REFRESH_TTL": "30 days"}, []string{"MCP_REFRESH_TTL", "--refresh-ttl", `"30 days"`}},
		{"refresh shorter than access", []string{"--access-ttl", "2h", "--refresh-ttl", "1h"}, nil, []string{"--refresh-ttl", "--access-ttl", "shorter"}},
		{"every interface needs a base URL", []string{"--addr", "0.0.0.0:8080"}, nil, []string{"--base-url", "MCP_BASE_URL", "--addr"}},
		{"plain http on a public host", []string{"--base-url", "http://mcp.example.com"}, nil, []string{"--base-url", "MCP_BASE_URL", "https"}},
		{"base URL with a path", []string{"--base-url", "https://mcp.example.com/mcp"}, nil, []string{"--base-url", "scheme, host and port"}},
		{"base URL with an empty fragment", []string{"--base-url", "https://mcp.example.com/#"}, nil, []string{"--base-url", "scheme, host and port"}},
		{"base URL with an empty port", []string{"--base-url", "https://mcp.example.com:"}, nil, []string{"--base-url", `port ""`}},
		{"bad trusted proxies", nil, map[string]string{"MCP_TRUSTED_PROXIES": "10.0.0.0/8,nonsense"}, []string{"MCP_TRUSTED_PROXIES", "--trusted-proxies", "nonsense"}},
		{"bad origin", []string{"--allowed-origins", "localhost:6274"}, nil, []string{"--allowed-origins", "MCP_ALLOWED_ORIGINS"}},
		{"bad log format", []string{"--log-format", "xml"}, nil, []string{"--log-format", "MCP_LOG_FORMAT", "text or json"}},
		{"bad addr", []string{"--addr", "8080"}, nil, []string{"--addr", "MCP_ADDR", "host:port"}},
		{"no connections", []string{"--max-connections", "0"}, nil, []string{"--max-connections", "MCP_MAX_CONNECTIONS", "from 1 to 1000000"}},
		{"connections not a number", nil, map[string]string{"MCP_MAX_CONNECTIONS": "lots"}, []string{"MCP_MAX_CONNECTIONS", "--max-connections", "whole number"}},
		{"unused clients kept a minute", []string{"--unused-client-ttl", "1m"}, nil, []string{"--unused-client-ttl", "MCP_UNUSED_CLIENT_TTL", "from 10m to 8784h"}},
		{"unused clients negative", nil, map[string]string{"MCP_UNUSED_CLIENT_TTL": "-1h"}, []string{"MCP_UNUSED_CLIENT_TTL", "--unused-client-ttl"}},
		{"database in a missing directory", []string{"--db", filepath.Join(t.TempDir(), "gone", "auth.db")}, nil, []string{"--db", "MCP_DB", "no such file"}},
		{"database server unreachable", []string{"--db", "postgres://mcp:s3cret-pw@127.0.0.1:1/mcp?connect_timeout=5"}, nil, []string{"--db", "MCP_DB", "mcp:xxxxx@127.0.0.1:1"}},
		{"database URL mistyped", []string{"--db", "postgress://mcp:s3cret-pw@db.example.com/mcp"}, nil, []string{"--db", "MCP_DB", "postgress:xxxxx@db.example.com/mcp", "neither a postgres:// URL nor a SQLite file path"}},
		{"database URL without a scheme", []string{"--db", "mcp:s3cret-pw@db.example.com"}, nil, []string{"--db", "neither a postgres:// URL"}},
		{"unknown flag", []string{"--acces-ttl", "1h"}, nil, []string{"unknown flag --acces-ttl"}},
		{"positional argument", []string{"now"}, nil, []string{"takes no arguments"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			args := append([]string{"--users", users, "--addr", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "auth.db")}, tt.args...)
			srv, err := mcpserver.Start(t.Context(), testOptions(), args, mcpserver.Env{
				Stderr: &logs,
				Getenv: func(k string) string { return tt.env[k] },
			})
			if err == nil {
				srv.Stop()
				t.Fatal("serve started")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cret-pw") {
				t.Errorf("error %q shows the database password", err)
			}
			if logs.Len() != 0 {
				t.Errorf("logged before failing: %q", logs.String())
			}
		})
	}
}

// TestMaxConnections checks that --max-connections reaches the listener:
// with one connection open, the next is answered 503.
func TestMaxConnections(t *testing.T) {
	srv, _ := startServer(t, testOptions(), "--max-connections", "1")
	held, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	// The server answers a connection past the limit at once, without
	// reading a request, and closes it: read that answer on a raw
	// connection (an http.Client may take it for an unsolicited response).
	second, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	second.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(second), nil)
	if err != nil {
		t.Fatalf("second connection: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("second connection: answered %d, want 503", resp.StatusCode)
	}
}

// TestServeAddrInUse checks the message when the port is taken.
func TestServeAddrInUse(t *testing.T) {
	srv, _ := startServer(t, testOptions())
	addr := strings.TrimPrefix(srv.URL, "http://")
	_, err := mcpserver.Start(t.Context(), testOptions(), []string{"--addr", addr, "--users", writeUsers(t), "--db", filepath.Join(t.TempDir(), "auth.db")}, mcpserver.Env{})
	if err == nil || !strings.Contains(err.Error(), "--addr "+addr+" (env MCP_ADDR)") {
		t.Fatalf("second serve on %s: %v, want an error naming --addr", addr, err)
	}
}

// TestEnvAndFlags checks that a flag wins over its variable, which wins
// over the default: through the page at /, which shows the base URL.
func TestEnvAndFlags(t *testing.T) {
	users := writeUsers(t)
	env := map[string]string{"MCP_USERS": users, "MCP_ADDR": "127.0.0.1:0", "MCP_LOG_FORMAT": "json"}
	var logs syncBuffer
	srv, err := mcpserver.Start(t.Context(), testOptions(), []string{"--db", filepath.Join(t.TempDir(), "auth.db")}, mcpserver.Env{
		Stderr: &logs,
		Getenv: func(k string) string { return env[k] },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	if !strings.HasPrefix(logs.String(), `{"time":`) {
		t.Errorf("MCP_LOG_FORMAT=json: log = %q, want JSON", logs.String())
	}

	env["MCP_LOG_FORMAT"] = "nonsense" // the flag wins over a bad variable
	srv2, err := mcpserver.Start(t.Context(), testOptions(), []string{"--log-format", "text", "--db", filepath.Join(t.TempDir(), "auth.db")}, mcpserver.Env{
		Stderr: io.Discard,
		Getenv: func(k string) string { return env[k] },
	})
	if err != nil {
		t.Fatalf("--log-format text with MCP_LOG_FORMAT=nonsense: %v", err)
	}
	srv2.Stop()
}

// TestExtensions checks every extension point of Options.
func TestExtensions(t *testing.T) {
	var greeting string
	opts := testOptions()
	opts.Flags = func(fs *flag.FlagSet) {
		fs.StringVar(&greeting, "greeting", "hello", "what the greet tool says")
	}
	opts.Tools = append(opts.Tools, server.ServerTool{
		Tool: mcp.NewTool("greet", mcp.WithDescription("Greets.")),
		Handler: func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText(greeting), nil
		},
	})
	opts.Setup = func(s *server.MCPServer) {
		s.AddPrompt(mcp.NewPrompt("hint", mcp.WithPromptDescription("A hint.")), func(ctx context.Context, _ mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			return mcp.NewGetPromptResult("hint", []mcp.PromptMessage{mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent("think"))}), nil
		})
	}
	opts.Routes = []mcpserver.Route{
		{Pattern: "GET /status", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, "fine")
		})},
		{Pattern: "GET /api/me", Bearer: true, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id, _ := mcpauth.IdentityFromContext(r.Context())
			fmt.Fprint(w, id.User)
		})},
	}
	opts.Middleware = []func(http.Handler) http.Handler{func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Test", "wrapped")
			next.ServeHTTP(w, r)
		})
	}}
	srv, _ := startServer(t, opts, "--greeting", "bonjour")

	if status, h, body := get(t, srv.URL+"/status", ""); status != http.StatusOK || body != "fine" || h.Get("X-Test") != "wrapped" {
		t.Errorf("GET /status = %d %q (X-Test %q), want 200 fine, wrapped", status, body, h.Get("X-Test"))
	}
	if _, h, _ := get(t, srv.URL+"/.well-known/oauth-authorization-server", ""); h.Get("X-Test") != "wrapped" {
		t.Error("middleware does not wrap the built-in endpoints")
	}
	if status, h, _ := get(t, srv.URL+"/api/me", ""); status != http.StatusUnauthorized || h.Get("WWW-Authenticate") == "" {
		t.Errorf("GET /api/me without a token = %d, want 401 with a challenge", status)
	}
	token := signIn(t, srv.URL)
	if status, _, body := get(t, srv.URL+"/api/me", token); status != http.StatusOK || body != testUser {
		t.Errorf("GET /api/me with a token = %d %q, want 200 %q", status, body, testUser)
	}
	res, err := mcpauthtest.CallTool(t.Context(), srv.URL+"/mcp", token, "greet", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := mcpauthtest.ResultText(res); got != "bonjour" {
		t.Errorf("greet = %q, want the --greeting flag's bonjour", got)
	}
	c, err := mcpauthtest.Connect(t.Context(), srv.URL+"/mcp", token, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.GetPrompt(t.Context(), mcp.GetPromptRequest{Params: mcp.GetPromptParams{Name: "hint"}}); err != nil {
		t.Errorf("prompt added by Setup: %v", err)
	}

	// The program's flags have variables too, and their errors name both.
	_, _, err = run(t, opts, map[string]string{"MCP_GREETING": "hi"}, "", "serve", "--users", filepath.Join(t.TempDir(), "none"))
	if err == nil || !strings.Contains(err.Error(), "no users") {
		t.Errorf("serve with MCP_GREETING: %v, want to get as far as the users check", err)
	}
}

// TestRouteConflict checks that a route overlapping a built-in endpoint
// stops serve with an error naming it.
func TestRouteConflict(t *testing.T) {
	opts := testOptions()
	opts.Routes = []mcpserver.Route{{Pattern: "POST /token", Handler: http.NotFoundHandler()}}
	_, err := mcpserver.Start(t.Context(), opts, []string{"--addr", "127.0.0.1:0", "--users", writeUsers(t), "--db", filepath.Join(t.TempDir(), "auth.db")}, mcpserver.Env{})
	if err == nil || !strings.Contains(err.Error(), `"POST /token"`) {
		t.Fatalf("route POST /token: %v, want an error naming it", err)
	}
}

// TestStdio drives the stdio command with JSON-RPC lines: calls run as the
// local user.
func TestStdio(t *testing.T) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- mcpserver.Run(t.Context(), testOptions(), []string{"stdio"}, mcpserver.Env{
			Stdin: inR, Stdout: outW, Stderr: io.Discard,
			Getenv: func(k string) string { return map[string]string{"USER": "carol"}[k] },
		})
		outW.Close()
	}()
	answers := bufio.NewScanner(outR)
	// send writes a request and returns the answer with its id.
	send := func(id int, line string) string {
		t.Helper()
		if _, err := io.WriteString(inW, line+"\n"); err != nil {
			t.Fatal(err)
		}
		for answers.Scan() {
			if strings.Contains(answers.Text(), fmt.Sprintf(`"id":%d`, id)) {
				return answers.Text()
			}
		}
		t.Fatalf("no answer to request %d: %v", id, answers.Err())
		return ""
	}
	send(1, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	io.WriteString(inW, `{"jsonrpc":"2.0","method":"notifications/initialized"}`+"\n")
	if got := send(2, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami","arguments":{}}}`); !strings.Contains(got, `"text":"carol"`) {
		t.Errorf("stdio whoami: %s, want carol", got)
	}
	if got := send(3, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"add","arguments":{"a":1}}}`); !strings.Contains(got, `missing required argument \"b\"`) {
		t.Errorf("stdio add without b: %s, want an error naming b", got)
	}
	inW.Close()
	go io.Copy(io.Discard, outR)
	if err := <-done; err != nil {
		t.Fatalf("stdio: %v", err)
	}
}

// TestMetricsAndAudit checks --metrics-addr (a bare port listens on
// loopback) and the audit event of a tool call.
func TestMetricsAndAudit(t *testing.T) {
	srv, logs := startServer(t, testOptions(), "--metrics-addr", "0")
	if !strings.HasPrefix(srv.MetricsURL, "http://127.0.0.1:") {
		t.Fatalf("MetricsURL = %q, want a loopback URL", srv.MetricsURL)
	}
	if !strings.Contains(logs.String(), "metrics="+srv.MetricsURL) {
		t.Errorf("the listening line does not name the metrics URL: %q", logs.String())
	}
	token := signIn(t, srv.URL)
	if _, err := mcpauthtest.CallTool(t.Context(), srv.URL+"/mcp", token, "add", map[string]any{"a": 1}); err != nil {
		t.Fatal(err)
	}
	status, _, body := get(t, srv.MetricsURL, "")
	if status != http.StatusOK || !strings.Contains(body, `mcp_tool_calls_total{outcome="tool_error",tool="add"} 1`) {
		t.Errorf("GET %s = %d, want the refused call counted:\n%s", srv.MetricsURL, status, body)
	}
	if status, _, _ := get(t, srv.URL+"/metrics", ""); status != http.StatusNotFound {
		t.Errorf("GET /metrics on the public listener = %d, want 404", status)
	}
	// The log is buffered: the audit event (INFO) is out at the latest
	// when the server stops.
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), `msg="tool call" user=alice`) || !strings.Contains(logs.String(), "tool=add") {
		t.Errorf("no audit event for the tool call:\n%s", logs.String())
	}
}

// TestLogFlush: serve's log is buffered, but a warning is written at once,
// with the lines before it, and everything is written when the server
// stops.
func TestLogFlush(t *testing.T) {
	srv, logs := startServer(t, testOptions())
	token := signIn(t, srv.URL)
	if _, err := mcpauthtest.CallTool(t.Context(), srv.URL+"/mcp", token, "whoami", nil); err != nil {
		t.Fatal(err)
	}
	// X-Forwarded-For from a peer that is not a trusted proxy: one
	// warning, logged before the response.
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/healthz", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Forwarded-For", "203.0.113.7")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got := logs.String()
	warn := strings.Index(got, "level=WARN msg=\"mcpauth: ignoring X-Forwarded-For")
	call := strings.Index(got, `msg="tool call" user=alice`)
	if warn < 0 || call < 0 || call > warn {
		t.Errorf("once the response arrived, the log should hold the tool call, then the warning:\n%s", got)
	}

	if _, err := mcpauthtest.CallTool(t.Context(), srv.URL+"/mcp", token, "whoami", nil); err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	got = logs.String()
	if n := strings.Count(got, `msg="tool call" user=alice`); n != 2 || !strings.HasSuffix(got, "level=INFO msg=stopped\n") {
		t.Errorf("after Stop the log holds %d tool calls, want 2, and ends with the stopped line:\n%s", n, got)
	}
}
