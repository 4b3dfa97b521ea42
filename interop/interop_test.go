package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The user the harness adds to the generated project's users file.
const (
	testUser     = "alice"
	testPassword = "interop-Passw0rd!"
)

// tools are the tool names the harness asks the generator for. "add-numbers"
// needs converting into a Go identifier, which is worth proving end to end.
var tools = []string{"echo", "add-numbers"}

// server is a generated project's binary serving on a loopback port.
type server struct {
	BaseURL   string // issuer, e.g. http://127.0.0.1:PORT
	MCPURL    string // BaseURL + "/mcp"
	Artifacts string // directory for screenshots and logs kept after the run
	Log       string // path of the server's log file
	// Metadata is the decoded authorization-server metadata.
	Metadata map[string]any
}

// TestInterop generates a project, builds it, adds a user, starts its server
// and drives it with real clients, one subtest each.
func TestInterop(t *testing.T) {
	if os.Getenv("MCP_INTEROP") != "1" {
		t.Skip("interop tests drive real clients (TypeScript SDK, mcp-go, the conformance suite, Chromium) " +
			"against a generated server; enable with MCP_INTEROP=1 (scripts/test does)")
	}
	srv := startGeneratedServer(t)

	t.Run("mcp-go", func(t *testing.T) { testMCPGo(t, srv) })
	t.Run("chromium", func(t *testing.T) { testChromium(t, srv) })
	t.Run("account", func(t *testing.T) { testAccount(t, srv) })
	t.Run("ts-sdk", func(t *testing.T) { testTSSDK(t, srv) })
	t.Run("conformance", func(t *testing.T) { testConformance(t, srv) })
	t.Run("inspector", func(t *testing.T) { testInspector(t, srv) })
}

// repoRoot returns the repository root (the parent of this package).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatalf("setup: repository root: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "cmd", "create-mcp-server")); err != nil {
		t.Fatalf("setup: repository root %s has no cmd/create-mcp-server: %v", root, err)
	}
	return root
}

// artifactsDir returns $MCP_ARTIFACTS (created if needed) or a new
// temporary directory that outlives the test, so screenshots and logs stay
// for a person to look at.
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("MCP_ARTIFACTS")
	if dir == "" {
		var err error
		dir, err = os.MkdirTemp("", "mcp-interop-artifacts-")
		if err != nil {
			t.Fatalf("setup: artifacts dir: %v", err)
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("setup: artifacts dir: %v", err)
	}
	dir, _ = filepath.Abs(dir)
	t.Logf("artifacts: %s", dir)
	return dir
}

// project is a generated project, built once for every test of this
// package that needs it.
type project struct {
	Bin  string // the project's server binary
	Work string // a directory for the tests' files
}

// built is the project buildProject made, with the error if it failed.
var built struct {
	once sync.Once
	dir  string // removed by TestMain
	p    *project
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// buildProject runs the generator and builds the project it writes (with
// the tools in tools), once per test binary.
func buildProject(t *testing.T) *project {
	t.Helper()
	root := repoRoot(t)
	built.once.Do(func() {
		start := time.Now()
		built.dir, built.err = os.MkdirTemp("", "mcp-interop-build-")
		if built.err != nil {
			return
		}
		bin := filepath.Join(built.dir, "bin")
		proj := filepath.Join(built.dir, "proj")
		steps := []struct {
			step, dir string
			env       []string
			args      []string
		}{
			{"build the generator", root, nil,
				[]string{"go", "build", "-o", filepath.Join(bin, "create-mcp-server"), "./cmd/create-mcp-server"}},
			{"generate a project", built.dir, nil,
				[]string{filepath.Join(bin, "create-mcp-server"), "--yes", "--tools", strings.Join(tools, ","), proj}},
			{"build the generated project", proj, []string{"GOFLAGS=-mod=readonly"},
				[]string{"go", "build", "-o", filepath.Join(bin, "server"), "."}},
		}
		for _, s := range steps {
			if _, built.err = runE(s.dir, s.env, nil, s.args[0], s.args[1:]...); built.err != nil {
				built.err = fmt.Errorf("setup: %s: %w", s.step, built.err)
				return
			}
		}
		built.p = &project{Bin: filepath.Join(bin, "server"), Work: built.dir}
		t.Logf("setup: generated and built in %v", time.Since(start).Round(time.Millisecond))
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.p
}

// addUser adds a user with password to the users file at path.
func addUser(t *testing.T, p *project, path, user, password string) {
	t.Helper()
	run(t, "setup: user add "+user, filepath.Dir(path), nil, strings.NewReader(password+"\n"),
		p.Bin, "user", "add", user, "--users", path, "--password-stdin")
}

// startGeneratedServer starts "serve" of the generated project on a free
// loopback port, with testUser in its users file. Every process it starts
// is stopped when t ends.
func startGeneratedServer(t *testing.T) *server {
	t.Helper()
	p := buildProject(t)
	work := t.TempDir()
	artifacts := artifactsDir(t)
	users := filepath.Join(work, "users.txt")
	addUser(t, p, users, testUser, testPassword)

	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	logPath := filepath.Join(artifacts, "server.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("setup: server log: %v", err)
	}
	t.Cleanup(func() { logFile.Close() })
	cmd := exec.Command(p.Bin, "serve",
		"--addr", fmt.Sprintf("127.0.0.1:%d", port),
		"--base-url", base,
		"--db", filepath.Join(work, "auth.db"),
		"--users", users)
	cmd.Dir = work
	cmd.Stdout, cmd.Stderr = logFile, logFile
	exited := startGroup(t, "setup: start serve", cmd)

	srv := &server{BaseURL: base, MCPURL: base + "/mcp", Artifacts: artifacts, Log: logPath}
	srv.Metadata = waitReady(t, srv, exited)
	t.Logf("setup: server ready at %s (log %s)", srv.MCPURL, logPath)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log (%s), last lines:\n%s", logPath, tail(logPath, 40))
		}
	})
	return srv
}

// waitReady polls the authorization-server metadata until it answers 200,
// failing early if the server exits.
func waitReady(t *testing.T, srv *server, exited <-chan error) map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			t.Fatalf("setup: wait for server: serve exited (%v); log:\n%s", err, tail(srv.Log, 40))
		default:
		}
		resp, err := http.Get(srv.BaseURL + "/.well-known/oauth-authorization-server")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				var md map[string]any
				if err := json.Unmarshal(body, &md); err != nil {
					t.Fatalf("setup: authorization-server metadata is not JSON: %v\n%s", err, body)
				}
				return md
			}
			err = fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("setup: wait for server: not ready after 30s (%v); log:\n%s", last, tail(srv.Log, 40))
	return nil
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("setup: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// run runs a command to completion in its own process group and fails the
// test, naming step and showing the output, if it does not exit 0. It
// returns the combined output.
func run(t *testing.T, step, dir string, env []string, stdin io.Reader, name string, args ...string) string {
	t.Helper()
	out, err := runE(dir, env, stdin, name, args...)
	if err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	return out
}

// runE runs a command to completion in its own process group (killed after
// 5 minutes) and returns its combined output, or an error that shows the
// command and its output if it does not exit 0.
func runE(dir string, env []string, stdin io.Reader, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	return runCtx(ctx, dir, env, stdin, name, args...)
}

// runCtx is runE with the process group killed when ctx is done.
func runCtx(ctx context.Context, dir string, env []string, stdin io.Reader, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = stdin
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	inGroup(cmd)
	err := cmd.Run()
	killGroup(cmd)
	if err != nil {
		return out.String(), fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}

// inGroup makes cmd the leader of a new process group that is killed as a
// whole when cmd's context is done.
func inGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = groupAttr()
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
}

// groupAttr puts a child in a new process group, and has the kernel kill it
// if the test process dies without cleaning up (for example when go test's
// -timeout panics).
func groupAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup kills whatever is left of cmd's process group (children that
// outlived it).
func killGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}

// startGroup starts a long-running cmd in its own process group and stops
// the group when t ends: SIGTERM, then SIGKILL after 5 seconds. The channel
// receives cmd's exit.
func startGroup(t *testing.T, step string, cmd *exec.Cmd) <-chan error {
	t.Helper()
	cmd.SysProcAttr = groupAttr()
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	exited := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		exited <- cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		pgid := cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Logf("%s: process group %d did not stop on SIGTERM; killing it", step, pgid)
		}
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
	})
	return exited
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// stringList returns md[key] as a list of strings.
func stringList(md map[string]any, key string) []string {
	raw, _ := md[key].([]any)
	var out []string
	for _, v := range raw {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// readAll reads and closes resp's body, at most 1 MiB of it.
func readAll(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
}
