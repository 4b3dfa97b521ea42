package mcpauth_test

// Several replicas on one database: no process holds authority of its own.
// Each test runs three servers on one SQLite file (the same protocol runs
// on PostgreSQL; interop/ drives real processes on it) and sends the steps
// of one flow to different replicas.

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgen/create-mcp-server/runtime/mcpauth"
	"github.com/mcpgen/create-mcp-server/runtime/mcpauthtest"
)

// cluster is n replicas of one server on one database and users file,
// behind one front address (a load balancer): a request goes to the
// replica its X-Replica header names, else round-robin.
type cluster struct {
	t       *testing.T
	url     string
	servers []*mcpauth.Server
	users   string
	next    atomic.Uint32
}

func newCluster(t *testing.T, n int, mutate ...func(*mcpauth.Config)) *cluster {
	t.Helper()
	dir := t.TempDir()
	c := &cluster{t: t, users: filepath.Join(dir, "users.txt")}
	writeUsers(t, c.users, testUsers)
	front := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i, err := strconv.Atoi(r.Header.Get("X-Replica"))
		if err != nil {
			i = int(c.next.Add(1)) % len(c.servers)
		}
		c.servers[i].ServeHTTP(w, r)
	}))
	c.url = "http://" + front.Listener.Addr().String()
	for range n {
		cfg := mcpauth.Config{
			BaseURL:   c.url,
			Database:  filepath.Join(dir, "auth.db"),
			UsersPath: c.users,
			Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		}
		for _, m := range mutate {
			m(&cfg)
		}
		s, err := mcpauth.New(cfg, newMCPServer())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		c.servers = append(c.servers, s)
	}
	front.Start()
	t.Cleanup(front.Close)
	return c
}

// replica is an http.RoundTripper that sends every request to replica i.
type replica int

func (i replica) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("X-Replica", strconv.Itoa(int(i)))
	return http.DefaultTransport.RoundTrip(req)
}

// client returns a new client registered through replica 0.
func (c *cluster) client() *mcpauthtest.Client {
	c.t.Helper()
	cl, err := mcpauthtest.Register(ctx(c.t), c.url, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	return c.on(cl, 0)
}

// on returns a copy of cl whose requests go to replica i.
func (c *cluster) on(cl *mcpauthtest.Client, i int) *mcpauthtest.Client {
	out := *cl
	out.HTTP = &http.Client{Transport: replica(i)}
	return &out
}

// bearer returns the status of /mcp on replica i with token.
func (c *cluster) bearer(i int, token string) int {
	c.t.Helper()
	st, _, err := mcpauthtest.BearerStatus(ctx(c.t), &http.Client{Transport: replica(i)}, c.url+"/mcp", token)
	if err != nil {
		c.t.Fatal(err)
	}
	return st
}

// A sign-in started on one replica (GET /authorize) completes on another
// (POST), and its code is redeemed on a third.
func TestReplicasSignInAcross(t *testing.T) {
	c := newCluster(t, 3)
	cl := c.client()
	page, err := cl.OpenAuthorize(ctx(t), mcpauthtest.AuthorizeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	page.Browser.Transport = replica(1) // the form is posted to another replica
	res, err := page.Submit(ctx(t), "alice", testUsers["alice"], false)
	if err != nil {
		t.Fatalf("sign-in form posted to another replica: %v", err)
	}
	tok, err := c.on(cl, 2).Exchange(ctx(t), res.Code, res.Verifier)
	if err != nil {
		t.Fatalf("code redeemed on a third replica: %v", err)
	}
	for i := range 3 {
		if st := c.bearer(i, tok.AccessToken); st == http.StatusUnauthorized {
			t.Errorf("replica %d refuses the token", i)
		}
	}
	// The code is single use across replicas too.
	if _, err := c.on(cl, 0).Exchange(ctx(t), res.Code, res.Verifier); err == nil {
		t.Error("the code was redeemed twice, on two replicas")
	}
}

// signInTokens signs user in with cl (through whichever replica cl talks to)
// and redeems the code.
func signInTokens(t *testing.T, cl *mcpauthtest.Client, user string) *mcpauthtest.Token {
	t.Helper()
	res, err := cl.Authorize(ctx(t), mcpauthtest.AuthorizeOptions{Username: user, Password: testUsers[user]})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cl.Exchange(ctx(t), res.Code, res.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// A revocation on one replica holds on every other by the time its answer
// arrives, even where the token was cached.
func TestReplicasRevocationHoldsEverywhere(t *testing.T) {
	c := newCluster(t, 3)
	cl := c.client()
	tok := signInTokens(t, cl, "alice")
	for i := range 3 { // every replica validates, and caches, the token
		for range 2 {
			if st := c.bearer(i, tok.AccessToken); st == http.StatusUnauthorized {
				t.Fatalf("replica %d refuses a fresh token", i)
			}
		}
	}
	if err := c.on(cl, 1).Revoke(ctx(t), tok.AccessToken, ""); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if st := c.bearer(i, tok.AccessToken); st != http.StatusUnauthorized {
			t.Errorf("replica %d accepts the access token revoked on replica 1: %d", i, st)
		}
	}
	// Revoking the refresh token revokes the grant: refreshed access
	// tokens die on every replica too.
	next, err := c.on(cl, 2).Refresh(ctx(t), tok.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		c.bearer(i, next.AccessToken)
	}
	if err := c.on(cl, 0).Revoke(ctx(t), next.RefreshToken, ""); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if st := c.bearer(i, next.AccessToken); st != http.StatusUnauthorized {
			t.Errorf("replica %d accepts a token of a grant revoked on replica 0: %d", i, st)
		}
	}
}

// Sign-in throttling counts attempts across replicas: five wrong passwords
// spread over three replicas lock the (user, address) pair on all of them.
func TestReplicasLockoutAcross(t *testing.T) {
	c := newCluster(t, 3)
	cl := c.client()
	for i := range 5 {
		if st := trySignIn(t, c.on(cl, i%3), "alice", "wrong"); st != http.StatusOK {
			t.Fatalf("wrong password %d: %d", i, st)
		}
	}
	for i := range 3 {
		if st := trySignIn(t, c.on(cl, i), "alice", testUsers["alice"]); st != http.StatusTooManyRequests {
			t.Errorf("replica %d after 5 failures spread over 3 replicas: %d, want 429", i, st)
		}
	}
}

// A legacy MCP session opened on one replica works on the others, for its
// owner only, and ending it on one ends it everywhere.
func TestReplicasSessions(t *testing.T) {
	c := newCluster(t, 3)
	cl := c.client()
	tokenFor := func(user string) string {
		tok := signInTokens(t, cl, user)
		return tok.AccessToken
	}
	alice, bob := tokenFor("alice"), tokenFor("bob")
	send := func(i int, method, token, session, body string) (int, string) {
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, _ := http.NewRequestWithContext(ctx(t), method, c.url+"/mcp", rd)
		req.Header.Set("X-Replica", strconv.Itoa(i))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("MCP-Protocol-Version", "2025-11-25")
		if session != "" {
			req.Header.Set("Mcp-Session-Id", session)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Mcp-Session-Id")
	}
	st, session := send(0, http.MethodPost, alice, "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	if st != http.StatusOK || session == "" {
		t.Fatalf("initialize on replica 0: %d %q", st, session)
	}
	list := `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`
	if st, _ := send(1, http.MethodPost, alice, session, list); st != http.StatusOK {
		t.Errorf("the owner on replica 1: %d, want 200", st)
	}
	if st, _ := send(2, http.MethodPost, bob, session, list); st != http.StatusNotFound {
		t.Errorf("another user on replica 2: %d, want 404", st)
	}
	if st, _ := send(2, http.MethodGet, bob, session, ""); st != http.StatusNotFound {
		t.Errorf("another user's GET on replica 2: %d, want 404", st)
	}
	if st, _ := send(1, http.MethodDelete, alice, session, ""); st != http.StatusOK {
		t.Errorf("the owner ends it on replica 1: %d, want 200", st)
	}
	for i := range 3 {
		if st, _ := send(i, http.MethodPost, alice, session, list); st != http.StatusNotFound {
			t.Errorf("the ended session on replica %d: %d, want 404", i, st)
		}
	}
}

// Issue item 8: removing a user only suspended their grants; restoring the
// old line in the users file brought back their access and refresh tokens.
// Removal now deletes the grants for good, on every replica.
func TestHostileRemovedUserStaysRemoved(t *testing.T) {
	c := newCluster(t, 2)
	cl := c.client()
	tok := signInTokens(t, cl, "alice")
	before, err := os.ReadFile(c.users)
	if err != nil {
		t.Fatal(err)
	}
	editUsers(t, func() { writeUsers(t, c.users, map[string]string{"bob": testUsers["bob"]}) }, c.servers...)
	for i := range 2 {
		if st := c.bearer(i, tok.AccessToken); st != http.StatusUnauthorized {
			t.Errorf("replica %d accepts a removed user's token: %d", i, st)
		}
	}
	// Each replica deletes the grants of removed users at its next
	// heartbeat (about a second); run one now instead of waiting.
	mcpauth.SyncReplica(c.servers[0])
	editUsers(t, func() { writeFileNewer(t, c.users, string(before)) }, c.servers...) // restore the old line, same hash
	for i := range 2 {
		if st := c.bearer(i, tok.AccessToken); st != http.StatusUnauthorized {
			t.Errorf("replica %d accepts the token of a user removed and restored: %d", i, st)
		}
	}
	if _, err := c.on(cl, 0).Refresh(ctx(t), tok.RefreshToken); err == nil {
		t.Error("a user removed and restored refreshed an old token")
	}
	// The restored user signs in again like anyone.
	if _, err := cl.Authorize(ctx(t), mcpauthtest.AuthorizeOptions{Username: "alice", Password: testUsers["alice"]}); err != nil {
		t.Errorf("the restored user cannot sign in: %v", err)
	}
}

// TestHostileUsersFileGlitch: a users file that is briefly emptied, or
// caught half-written, refuses tokens while it lasts but deletes no grant,
// so restoring it brings every user's apps back; a removal that stays is
// applied as usual.
func TestHostileUsersFileGlitch(t *testing.T) {
	for _, tc := range []struct {
		name  string
		keep  []string // the users left in the file while the glitch lasts
		stays bool     // the glitch lasts for two checks of the file
		bobOK bool     // bob's token works again once the file is restored
	}{
		{"emptied, then restored", nil, true, true},
		{"half-written, then completed", []string{"alice"}, false, true},
		{"bob removed, then restored", []string{"alice"}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Only SyncReplica applies removals here: the background
			// loop, on the wall clock, would apply the glitch too once
			// it lasted two of its checks, as it may on a busy machine.
			c := newCluster(t, 2, func(cfg *mcpauth.Config) { mcpauth.SetUsersCheckInterval(cfg, time.Hour) })
			full, err := os.ReadFile(c.users)
			if err != nil {
				t.Fatal(err)
			}
			var glitch strings.Builder
			for line := range strings.Lines(string(full)) {
				name, _, _ := strings.Cut(line, ":")
				if strings.HasPrefix(line, "#") || slices.Contains(tc.keep, name) {
					glitch.WriteString(line)
				}
			}
			waitBearer := func(i int, tok string, want int) {
				t.Helper()
				deadline := time.Now().Add(10 * time.Second)
				for c.bearer(i, tok) != want {
					if time.Now().After(deadline) {
						t.Fatalf("replica %d: the token is still not answered %d after 10s", i, want)
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
			cl := c.client()
			tokens := map[string]string{}
			for _, u := range []string{"alice", "bob"} {
				tokens[u] = signInTokens(t, cl, u).AccessToken
			}
			editUsers(t, func() { writeFileNewer(t, c.users, glitch.String()) }, c.servers...)
			waitBearer(0, tokens["bob"], http.StatusUnauthorized)
			if tc.stays {
				mcpauth.SyncReplica(c.servers[0])
			}
			editUsers(t, func() { writeFileNewer(t, c.users, string(full)) }, c.servers...)
			mcpauth.SyncReplica(c.servers[0])
			want := http.StatusUnauthorized
			if tc.bobOK {
				want = http.StatusOK
			}
			for i := range 2 {
				waitBearer(i, tokens["alice"], http.StatusOK)
				waitBearer(i, tokens["bob"], want)
			}
		})
	}
}
