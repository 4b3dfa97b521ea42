package mcpauth_test

// Crash safety (security rules E10 and J5, see security_test.go): a server
// in a subprocess (this test binary, re-executed) serves refreshes and
// revocations from concurrent clients and is killed with SIGKILL mid-load,
// then restarted on the same database and port. Afterwards:
//   - PRAGMA integrity_check is ok;
//   - every token the server had returned (and not revoked) still works,
//     including the refresh token of a chain whose refresh was in flight
//     (a committed rotation is still within the retry grace);
//   - no revoked token works, and no rotated refresh token whose successor
//     the client had used works.

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"math/rand/v2"
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

	"github.com/mcpgen/create-mcp-server/runtime/mcpauth"
	"github.com/mcpgen/create-mcp-server/runtime/mcpauthtest"
)

// TestCrashServerProcess is the server side of TestCrashKill9: it runs only
// in the subprocess, configured by environment variables.
func TestCrashServerProcess(t *testing.T) {
	db := os.Getenv("MCPAUTH_CRASH_DB")
	if db == "" {
		t.Skip("runs as the subprocess of TestCrashKill9")
	}
	addr := os.Getenv("MCPAUTH_CRASH_ADDR")
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s, err := mcpauth.New(mcpauth.Config{
		BaseURL:   "http://" + addr,
		Database:  db,
		UsersPath: os.Getenv("MCPAUTH_CRASH_USERS"),
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, nil)),
	}, newMCPServer())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("READY")
	http.Serve(ln, s) // until SIGKILL
}

type crashServer struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
}

func startCrashServer(t *testing.T, addr, db, users string) *crashServer {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashServerProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "MCPAUTH_CRASH_DB="+db, "MCPAUTH_CRASH_ADDR="+addr, "MCPAUTH_CRASH_USERS="+users)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cs := &crashServer{cmd: cmd, stderr: &syncBuffer{}}
	cmd.Stderr = cs.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "READY" {
				ready <- true
				return
			}
		}
		ready <- false
	}()
	select {
	case ok := <-ready:
		if !ok {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("server subprocess exited: %s", cs.stderr.String())
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("server subprocess not ready: %s", cs.stderr.String())
	}
	t.Cleanup(func() { cs.kill() })
	return cs
}

func (cs *crashServer) kill() {
	if cs.cmd.ProcessState == nil {
		cs.cmd.Process.Signal(syscall.SIGKILL)
		cs.cmd.Wait()
	}
}

// chain is one client sign-in as the client sees it.
type chain struct {
	mu         sync.Mutex
	at, rt     string   // latest pair returned
	ats        []string // every access token returned, not revoked
	revokedATs []string
	rotated    []string // refresh tokens whose successor the client used
	prevRT     string   // the refresh token rt replaced
	revoked    bool     // the refresh token (so the family) was revoked
	inflight   string   // operation without an answer when the server died
}

func TestCrashKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts subprocesses")
	}
	dir := t.TempDir()
	db, users := filepath.Join(dir, "auth.db"), filepath.Join(dir, "users.txt")
	writeUsers(t, users, testUsers)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	base := "http://" + addr
	srv := startCrashServer(t, addr, db, users)

	c, err := mcpauthtest.Register(ctx(t), base, nil)
	if err != nil {
		t.Fatal(err)
	}
	chains := make([]*chain, 8)
	for i := range chains {
		res, err := c.Authorize(ctx(t), mcpauthtest.AuthorizeOptions{Username: "alice", Password: testUsers["alice"]})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := c.Exchange(ctx(t), res.Code, res.Verifier)
		if err != nil {
			t.Fatal(err)
		}
		chains[i] = &chain{at: tok.AccessToken, rt: tok.RefreshToken, ats: []string{tok.AccessToken}}
	}

	// Load: each chain refreshes in a loop, sometimes revoking its access
	// token (the chain goes on); two chains end by revoking their refresh
	// token (the family).
	loadCtx, stop := context.WithCancel(ctx(t))
	var wg sync.WaitGroup
	for i, ch := range chains {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 9))
			for n := 0; loadCtx.Err() == nil; n++ {
				ch.mu.Lock()
				switch r := rng.IntN(100); {
				case r < 8:
					ch.inflight = "revoke access token"
					at := ch.at
					ch.mu.Unlock()
					err := c.Revoke(loadCtx, at, "access_token")
					ch.mu.Lock()
					if err != nil {
						ch.mu.Unlock()
						return
					}
					ch.revokedATs = append(ch.revokedATs, at)
					ch.ats = remove(ch.ats, at)
				case i < 2 && n == 20: // two chains end with a revocation
					ch.inflight = "revoke refresh token"
					rt := ch.rt
					ch.mu.Unlock()
					err := c.Revoke(loadCtx, rt, "refresh_token")
					ch.mu.Lock()
					if err != nil {
						ch.mu.Unlock()
						return
					}
					ch.revoked = true
					ch.inflight = ""
					ch.mu.Unlock()
					return
				default:
					ch.inflight = "refresh"
					rt := ch.rt
					ch.mu.Unlock()
					tok, err := c.Refresh(loadCtx, rt)
					ch.mu.Lock()
					if err != nil {
						if st := mcpauthtest.ErrorStatus(err); st != 0 {
							t.Errorf("refresh under load: %v", err)
						}
						ch.mu.Unlock()
						return
					}
					if ch.prevRT != "" {
						ch.rotated = append(ch.rotated, ch.prevRT)
					}
					ch.prevRT, ch.rt, ch.at = rt, tok.RefreshToken, tok.AccessToken
					ch.ats = append(ch.ats, tok.AccessToken)
				}
				ch.inflight = ""
				ch.mu.Unlock()
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	srv.kill()
	stop()
	wg.Wait()
	t.Logf("server log before the kill:\n%s", lastLines(srv.stderr.String(), 5))

	// The database survived.
	sdb, err := sql.Open("sqlite", "file:"+db)
	if err != nil {
		t.Fatal(err)
	}
	var integrity string
	if err := sdb.QueryRow("PRAGMA integrity_check").Scan(&integrity); err != nil || integrity != "ok" {
		t.Errorf("integrity_check after kill -9: %q %v", integrity, err)
	}
	sdb.Close()

	srv2 := startCrashServer(t, addr, db, users)
	hc := &http.Client{Timeout: 30 * time.Second}
	live := func(at string) bool {
		st, _, err := mcpauthtest.BearerStatus(ctx(t), hc, base+"/mcp", at)
		if err != nil {
			t.Fatal(err)
		}
		return st != 401 && st != 403
	}
	var rotations, revocations, inflight int
	next := make([]*mcpauthtest.Token, len(chains))
	// Pass 1: what must work. (Before pass 2, whose failures count against
	// the server's guessing throttle and whose reuse detection revokes.)
	for i, ch := range chains {
		rotations += len(ch.rotated)
		revocations += len(ch.revokedATs)
		if ch.inflight != "" {
			inflight++
		}
		if ch.revoked || strings.HasPrefix(ch.inflight, "revoke") {
			continue // a revocation in flight may have happened or not
		}
		for _, at := range ch.ats {
			if !live(at) {
				t.Errorf("chain %d: an access token the server returned was lost in the crash", i)
			}
		}
		tok, err := c.Refresh(ctx(t), ch.rt)
		if err != nil {
			t.Errorf("chain %d (in flight: %q): the latest refresh token was lost in the crash: %v", i, ch.inflight, err)
			continue
		}
		next[i] = tok
	}
	// Pass 2: what must not work.
	for i, ch := range chains {
		for _, at := range ch.revokedATs {
			if live(at) {
				t.Errorf("chain %d: a revoked access token works after the crash", i)
			}
		}
		if ch.inflight == "revoke refresh token" {
			continue
		}
		if ch.revoked {
			if _, err := c.Refresh(ctx(t), ch.rt); err == nil {
				t.Errorf("chain %d: a revoked refresh token works after the crash", i)
			}
			for _, at := range ch.ats {
				if live(at) {
					t.Errorf("chain %d: an access token of a revoked family works after the crash", i)
				}
			}
			continue
		}
		// The most recent rotations are the ones a lost commit would undo.
		old := ch.rotated
		if len(old) > 5 {
			old = old[len(old)-5:]
		}
		for _, rt := range old {
			_, err := c.Refresh(ctx(t), rt)
			if err == nil {
				t.Errorf("chain %d: a rotated refresh token works after the crash", i)
			} else if mcpauthtest.ErrorCode(err) != "invalid_grant" {
				t.Errorf("chain %d: rotated refresh token: %v, want invalid_grant", i, err)
			}
		}
		if len(old) > 0 && next[i] != nil && live(next[i].AccessToken) {
			t.Errorf("chain %d: reuse of a rotated token after the crash did not revoke the family", i)
		}
	}
	// No token of the run is in the database, its WAL or either log.
	var secrets []string
	for _, ch := range chains {
		secrets = append(secrets, ch.rt, ch.at)
		secrets = append(secrets, ch.ats...)
		secrets = append(secrets, ch.revokedATs...)
		secrets = append(secrets, ch.rotated...)
	}
	for _, tok := range next {
		if tok != nil {
			secrets = append(secrets, tok.AccessToken, tok.RefreshToken)
		}
	}
	files := map[string]string{"log before the kill": srv.stderr.String(), "log after the restart": srv2.stderr.String()}
	for _, suffix := range []string{"", "-wal"} {
		if data, err := os.ReadFile(db + suffix); err == nil {
			files["auth.db"+suffix] = string(data)
		}
	}
	for name, data := range files {
		for _, sec := range secrets {
			if sec != "" && strings.Contains(data, sec) {
				t.Errorf("%s contains a token", name)
				break
			}
		}
	}
	t.Logf("%d rotations, %d access-token revocations, %d operations in flight at the kill", rotations, revocations, inflight)
	if rotations == 0 {
		t.Error("no load reached the server before the kill")
	}
}

func remove(list []string, v string) []string {
	out := list[:0]
	for _, x := range list {
		if x != v {
			out = append(out, x)
		}
	}
	return out
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
