package mcpauth_test

// Slow and greedy clients, below HTTP: connections that trickle or stall a
// body, abort it, or just stay open. These tests speak raw TCP to
// Server.Serve (the production listener setup) or to the handler.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpgen/create-mcp-server/runtime/mcpauth"
	"github.com/mcpgen/create-mcp-server/runtime/mcpauthtest"
)

// served is a Server running Serve on a loopback port.
type served struct {
	*mcpauth.Server
	base, addr string
}

// startServeWith runs Serve with cfg (mutated) on a free loopback port
// until the test ends; prepare runs between New and Serve.
func startServeWith(t *testing.T, ms *server.MCPServer, mutate func(*mcpauth.Config), prepare func(*mcpauth.Server)) *served {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	dir := t.TempDir()
	users := filepath.Join(dir, "users.txt")
	writeUsers(t, users, testUsers)
	cfg := mcpauth.Config{BaseURL: "http://" + addr, Database: filepath.Join(dir, "auth.db"), UsersPath: users,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if mutate != nil {
		mutate(&cfg)
	}
	if ms == nil {
		ms = newMCPServer()
	}
	s, err := mcpauth.New(cfg, ms)
	if err != nil {
		t.Fatal(err)
	}
	if prepare != nil {
		prepare(s)
	}
	c, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(c, ln) }()
	t.Cleanup(func() {
		cancel()
		<-done
		s.Close()
	})
	return &served{Server: s, base: "http://" + addr, addr: addr}
}

// dial opens a raw TCP connection to addr that the test closes at its end.
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// answer reads what the server sends on conn until it closes it or sends a
// whole response head, and returns the status line ("" if it closed
// without one). It fails the test if nothing happens within a generous
// safety margin: the server was supposed to give up on the client first.
func answer(t *testing.T, conn net.Conn) string {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server still holds the connection open (no read deadline)")
	}
	return strings.TrimSpace(line)
}

// slowBodyTimeouts makes the body deadlines short enough for a test.
func slowBodyTimeouts(s *mcpauth.Server) {
	mcpauth.SetReadTimeouts(s, 10*time.Second, 300*time.Millisecond, 300*time.Millisecond)
}

// Issue item 4: connections that sent their headers and then trickled or
// stalled the body were held forever. Every request body now has a read
// deadline: OAuth endpoints and the /mcp request body (not its response).
func TestHostileSlowBodies(t *testing.T) {
	srv := startServeWith(t, nil, nil, slowBodyTimeouts)
	c, err := mcpauthtest.Register(ctx(t), srv.base, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Authorize(ctx(t), mcpauthtest.AuthorizeOptions{Username: "alice", Password: testUsers["alice"]})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.Exchange(ctx(t), res.Code, res.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path, contentType, auth string
	}{
		{"/token", "application/x-www-form-urlencoded", ""},
		{"/revoke", "application/x-www-form-urlencoded", ""},
		{"/register", "application/json", ""},
		{"/authorize", "application/x-www-form-urlencoded", ""},
		{"/mcp", "application/json", "Bearer " + tok.AccessToken},
		{"/mcp", "application/json", ""}, // refused unread: the deadline bounds the discard
		{"/.well-known/oauth-authorization-server", "text/plain", ""},
	} {
		for _, stall := range []string{"stalled", "trickled"} {
			t.Run(tc.path+" "+tc.auth[:min(len(tc.auth), 6)]+" "+stall, func(t *testing.T) {
				conn := dial(t, srv.addr)
				method := "POST"
				if strings.HasPrefix(tc.path, "/.well-known") {
					method = "GET"
				}
				head := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: 1000\r\nAccept: application/json, text/event-stream\r\n",
					method, tc.path, srv.addr, tc.contentType)
				if tc.auth != "" {
					head += "Authorization: " + tc.auth + "\r\n"
				}
				if _, err := io.WriteString(conn, head+"\r\n{\"a\""); err != nil {
					t.Fatal(err)
				}
				if stall == "trickled" {
					// One byte at a time, never finishing: the deadline is
					// on the whole body, not on each read.
					go func() {
						for range 200 {
							if _, err := io.WriteString(conn, " "); err != nil {
								return
							}
							time.Sleep(50 * time.Millisecond)
						}
					}()
				}
				status := answer(t, conn)
				if method == "POST" && (strings.Contains(status, " 200 ") || strings.Contains(status, " 201 ")) {
					t.Errorf("a request with an unfinished body was answered %q", status)
				}
			})
		}
	}
}

// The /mcp read deadline covers the request body only: a response that
// takes longer than it (a slow tool, a stream) is not cut.
func TestHostileMCPResponseOutlivesBodyDeadline(t *testing.T) {
	ms := newMCPServer()
	ms.AddTool(mcp.NewTool("slow", mcp.WithDescription("answers after a while")),
		func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			select {
			case <-time.After(time.Second): // > the 300 ms deadlines
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return mcp.NewToolResultText("done"), nil
		})
	srv := startServeWith(t, ms, nil, slowBodyTimeouts)
	c, err := mcpauthtest.Register(ctx(t), srv.base, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Authorize(ctx(t), mcpauthtest.AuthorizeOptions{Username: "alice", Password: testUsers["alice"]})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.Exchange(ctx(t), res.Code, res.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	out, err := mcpauthtest.CallTool(ctx(t), srv.base+"/mcp", tok.AccessToken, "slow", nil)
	if err != nil {
		t.Fatalf("slow tool: %v", err)
	}
	if got := mcpauthtest.ResultText(out); got != "done" {
		t.Errorf("slow tool answered %q, want done", got)
	}
	// A slow login (the bcrypt queue) is not cut either: the body deadline
	// is cleared once the form is read.
	if _, err := c.Authorize(ctx(t), mcpauthtest.AuthorizeOptions{Username: "bob", Password: testUsers["bob"]}); err != nil {
		t.Fatal(err)
	}
}

// Issue item 4: aborted bodies counted as invalid_request guesses against
// the sender, so a flaky network locked a client out. An aborted body is an
// I/O error now, never counted.
func TestHostileAbortedBodiesAreNotGuesses(t *testing.T) {
	e := newEnv(t)
	c := e.register(nil)
	addr := e.srv.Listener.Addr().String()
	for i := range 350 { // more than the 300 failures an address may make
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "POST /token HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 500\r\n\r\ngrant_type=refresh_token&client_id=%s&refresh_token=x%d", addr, c.ClientID, i)
		conn.(*net.TCPConn).CloseWrite() // the body ends early: the client gave up
		io.Copy(io.Discard, conn)
		conn.Close()
	}
	resp, body, err := c.Post(ctx(t), "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"junk"}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("after 350 aborted bodies: %d %s, want 400 invalid_grant (aborted bodies are not guesses)", resp.StatusCode, body)
	}
}

// Issue item 4: about 20,000 idle connections used up the file descriptors.
// Connections are capped per client address and in total; over a cap a
// connection is answered 503 and closed. Trusted proxies are exempt from
// the per-address cap (they carry everyone).
func TestHostileConnectionCaps(t *testing.T) {
	request := func(conn net.Conn, addr string) string {
		fmt.Fprintf(conn, "GET /.well-known/oauth-authorization-server HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
		return answer(t, conn)
	}
	t.Run("per address", func(t *testing.T) {
		metrics := mcpauth.NewMetrics()
		srv := startServeWith(t, nil, func(c *mcpauth.Config) {
			c.MaxConnections = 10
			c.MaxConnectionsPerAddr = 2
			c.Metrics = metrics
		}, nil)
		first, second := dial(t, srv.addr), dial(t, srv.addr)
		if st := answer(t, dial(t, srv.addr)); !strings.Contains(st, " 503 ") {
			t.Errorf("third connection from one address: %q, want 503", st)
		}
		if want := `mcp_throttle_rejections_total{kind="connection"} 1`; !strings.Contains(scrapeMetrics(t, metrics), want) {
			t.Errorf("the refused connection is not counted: no %q", want)
		}
		if st := request(second, srv.addr); !strings.Contains(st, " 200 ") {
			t.Errorf("a connection within the cap: %q", st)
		}
		first.Close()
		waitServed(t, srv.addr, request)
	})
	t.Run("total, trusted proxy", func(t *testing.T) {
		srv := startServeWith(t, nil, func(c *mcpauth.Config) {
			c.MaxConnections = 3
			c.MaxConnectionsPerAddr = 1
			c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		}, nil)
		conns := []net.Conn{dial(t, srv.addr), dial(t, srv.addr), dial(t, srv.addr)}
		if st := answer(t, dial(t, srv.addr)); !strings.Contains(st, " 503 ") {
			t.Errorf("fourth connection with a total cap of 3: %q, want 503", st)
		}
		if st := request(conns[2], srv.addr); !strings.Contains(st, " 200 ") {
			t.Errorf("a trusted proxy's third connection (per-address cap 1): %q, want 200", st)
		}
		conns[0].Close()
		waitServed(t, srv.addr, request)
	})
}

// waitServed dials until a connection is served: a closed connection's slot
// comes back once the server has noticed the close.
func waitServed(t *testing.T, addr string, request func(net.Conn, string) string) {
	t.Helper()
	for range 500 {
		conn := dial(t, addr)
		st := request(conn, addr)
		conn.Close()
		if strings.Contains(st, " 200 ") {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("a closed connection's slot never came back")
}
