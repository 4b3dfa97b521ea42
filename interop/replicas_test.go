package interop

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgen/create-mcp-server/runtime/mcpauthtest"

	_ "modernc.org/sqlite" // database/sql driver "sqlite", to make bad databases
)

// More users, each for one subtest, so that what one subtest does to its
// user (locking it out, removing it) leaves the others alone.
const (
	bobUser, bobPassword     = "bob", "interop-bob-Passw0rd!"
	carolUser, carolPassword = "carol", "interop-carol-Passw0rd!"
	daveUser, davePassword   = "dave", "interop-dave-Passw0rd!"
)

// TestReplicas runs three replicas of a generated server on one PostgreSQL
// database behind a round-robin reverse proxy and drives them with real
// clients: every request may land on any replica, as behind any load
// balancer without sticky sessions.
func TestReplicas(t *testing.T) {
	if os.Getenv("MCP_INTEROP") != "1" {
		t.Skip("interop tests drive real clients against generated servers; enable with MCP_INTEROP=1 (scripts/test does)")
	}
	admin := postgresURL(t)

	t.Run("clients", func(t *testing.T) {
		d := newDeployment(t, "clients", 3, newDatabase(t, admin, "clients"))
		for _, u := range [][2]string{{bobUser, bobPassword}, {carolUser, carolPassword}, {daveUser, davePassword}} {
			addUser(t, d.Project, d.Users, u[0], u[1])
		}
		d.start(t)
		t.Run("sign-in across replicas", func(t *testing.T) { testSignInAcross(t, d) })
		t.Run("mcp-go", func(t *testing.T) {
			m := d.Proxy.mark()
			testMCPGo(t, d.Srv)
			checkSpread(t, d, d.Proxy.hitsSince(m))
		})
		t.Run("ts-sdk", func(t *testing.T) {
			m := d.Proxy.mark()
			testTSSDK(t, d.Srv)
			checkSpread(t, d, d.Proxy.hitsSince(m))
		})
		t.Run("refresh chain across replicas", func(t *testing.T) { testRefreshChain(t, d) })
		t.Run("20 concurrent refreshes", func(t *testing.T) { testConcurrentRefresh(t, d) })
		t.Run("revocation", func(t *testing.T) { testRevocation(t, d) })
		t.Run("lockout across replicas", func(t *testing.T) { testLockout(t, d) })
	})
	t.Run("replica killed", func(t *testing.T) {
		d := newDeployment(t, "killed", 3, newDatabase(t, admin, "killed"))
		d.start(t)
		testKill(t, d)
	})
	t.Run("db copy from SQLite", func(t *testing.T) {
		testDBCopy(t, admin)
	})
	t.Run("database lost while serving", func(t *testing.T) { testDatabaseLost(t, admin) })
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// testSignInAcross: the login page comes from one replica, the form is
// posted to a second and the code redeemed at a third; the tokens work on
// every replica.
func testSignInAcross(t *testing.T, d *deployment) {
	ctx := testCtx(t, time.Minute)
	c := d.client(t, ctx, "interop sign-in across replicas")
	m := d.Proxy.mark()
	tok := d.signIn(t, ctx, c, testUser, testPassword)
	hits := d.Proxy.hitsSince(m)
	get := findHit(hits, http.MethodGet, "/authorize", "")
	post := findHit(hits, http.MethodPost, "/authorize", "")
	redeem := findHit(hits, http.MethodPost, "/token", "authorization_code")
	if get == nil || post == nil || redeem == nil {
		t.Fatalf("the proxy did not see the sign-in's three requests:\n%s", formatHits(hits))
	}
	if get.Replica == post.Replica || post.Replica == redeem.Replica || get.Replica == redeem.Replica {
		t.Fatalf("the round-robin proxy did not spread the sign-in over three replicas (a harness problem):\n%s", formatHits(hits))
	}
	t.Logf("sign-in: login page from replica %d, form posted to replica %d, code redeemed at replica %d",
		get.Replica, post.Replica, redeem.Replica)
	for _, r := range d.Replicas {
		if code := d.bearerOn(t, ctx, r, tok.AccessToken); code != http.StatusOK {
			t.Errorf("the access token from the sign-in: replica %d answers HTTP %d, want 200", r.Index, code)
		}
	}
}

// findHit returns the first hit with method, path and grant type.
func findHit(hits []hit, method, path, grant string) *hit {
	for i := range hits {
		h := &hits[i]
		if h.Method == method && h.Path == path && h.GrantType == grant {
			return h
		}
	}
	return nil
}

// checkSpread checks that a client's session was spread over every
// replica and that each of its sign-ins crossed replicas: the form was
// posted to another replica than the one that showed it.
func checkSpread(t *testing.T, d *deployment, hits []hit) {
	t.Helper()
	served := make([]int, len(d.Replicas))
	for _, h := range hits {
		if h.Replica >= 0 {
			served[h.Replica]++
		}
	}
	for i, n := range served {
		if n == 0 {
			t.Errorf("replica %d served none of the client's %d requests: the test did not spread them", i, len(hits))
		}
	}
	signIns := 0
	for i, h := range hits {
		if h.Method != http.MethodPost || h.Path != "/authorize" {
			continue
		}
		for j := i - 1; j >= 0; j-- {
			if hits[j].Method == http.MethodGet && hits[j].Path == "/authorize" {
				signIns++
				if hits[j].Replica == h.Replica {
					t.Logf("a sign-in's page and form post both landed on replica %d", h.Replica)
				}
				break
			}
		}
	}
	t.Logf("requests per replica: %v; sign-ins: %d", served, signIns)
	if signIns == 0 {
		t.Errorf("no sign-in went through the proxy:\n%s", formatHits(hits))
	}
}

// testRefreshChain refreshes one grant six times, each time on the next
// replica; every new access token works on every replica.
func testRefreshChain(t *testing.T, d *deployment) {
	ctx := testCtx(t, 2*time.Minute)
	c := d.client(t, ctx, "interop refresh chain")
	tok := d.signIn(t, ctx, c, testUser, testPassword)
	for i := range 6 {
		r := d.Replicas[i%len(d.Replicas)]
		next, err := on(c, r).Refresh(ctx, tok.RefreshToken)
		if err != nil {
			t.Fatalf("refresh %d on replica %d: %v", i+1, r.Index, err)
		}
		if next.RefreshToken == "" || next.RefreshToken == tok.RefreshToken {
			t.Fatalf("refresh %d on replica %d: the refresh token did not rotate", i+1, r.Index)
		}
		for _, r2 := range d.Replicas {
			if code := d.bearerOn(t, ctx, r2, next.AccessToken); code != http.StatusOK {
				t.Errorf("refresh %d (on replica %d): the new access token gets HTTP %d on replica %d, want 200",
					i+1, r.Index, code, r2.Index)
			}
		}
		tok = next
	}
}

// testConcurrentRefresh sends one refresh token 20 times at once through
// the proxy, so over every replica: at least one succeeds, all successes
// continue one chain (the same successor), none is a 5xx, and revoking
// that chain on one replica leaves nothing working on any replica.
func testConcurrentRefresh(t *testing.T, d *deployment) {
	ctx := testCtx(t, 2*time.Minute)
	c := d.client(t, ctx, "interop concurrent refresh")
	first := d.signIn(t, ctx, c, testUser, testPassword)

	const parallel = 20
	var (
		start  = make(chan struct{})
		wg     sync.WaitGroup
		mu     sync.Mutex
		tokens []*mcpauthtest.Token
	)
	m := d.Proxy.mark()
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			tok, err := c.Refresh(ctx, first.RefreshToken)
			mu.Lock()
			defer mu.Unlock()
			switch st := mcpauthtest.ErrorStatus(err); {
			case err == nil:
				tokens = append(tokens, tok)
			case st >= 500 || st == 0:
				t.Errorf("parallel refresh: %v (never 5xx)", err)
			case st != http.StatusBadRequest:
				t.Errorf("parallel refresh: %v, want 200 or 400", err)
			}
		}()
	}
	close(start)
	wg.Wait()

	perReplica := make([]int, len(d.Replicas))
	for _, h := range d.Proxy.hitsSince(m) {
		if h.Path == "/token" && h.Replica >= 0 {
			perReplica[h.Replica]++
		}
	}
	t.Logf("%d parallel refreshes: %d succeeded; per replica %v", parallel, len(tokens), perReplica)
	for i, n := range perReplica {
		if n == 0 {
			t.Errorf("replica %d got none of the parallel refreshes (a harness problem)", i)
		}
	}
	if len(tokens) == 0 {
		t.Fatal("no parallel refresh succeeded: the client lost its sign-in")
	}
	succ := map[string]bool{}
	for _, tok := range tokens {
		succ[tok.RefreshToken] = true
	}
	if len(succ) > 1 {
		t.Errorf("%d distinct successor refresh tokens from one refresh token: more than one chain", len(succ))
	}
	live := 0
	for _, tok := range tokens {
		if d.bearerOn(t, ctx, d.Replicas[0], tok.AccessToken) == http.StatusOK {
			live++
		}
	}
	if live == 0 {
		t.Error("no access token returned by the parallel refreshes works")
	}
	// Revoking the chain (RFC 7009 revokes the whole family) on one replica
	// must leave nothing returned working on any replica: a second chain
	// would survive.
	if err := on(c, d.Replicas[0]).Revoke(ctx, tokens[0].RefreshToken, "refresh_token"); err != nil {
		t.Fatalf("revoke the chain on replica 0: %v", err)
	}
	for i, tok := range append(tokens, first) {
		for _, r := range d.Replicas {
			if code := d.bearerOn(t, ctx, r, tok.AccessToken); code != http.StatusUnauthorized {
				t.Errorf("access token %d after the chain was revoked: replica %d answers HTTP %d, want 401", i, r.Index, code)
			}
		}
		r := d.Replicas[1+i%(len(d.Replicas)-1)]
		if _, err := on(c, r).Refresh(ctx, tok.RefreshToken); err == nil {
			t.Errorf("refresh token %d survives the revocation of the chain on replica %d: a second live chain", i, r.Index)
		} else if st := mcpauthtest.ErrorStatus(err); st != http.StatusBadRequest {
			t.Errorf("refresh token %d after the chain was revoked, on replica %d: %v, want 400 invalid_grant", i, r.Index, err)
		}
	}
}

// testRevocation revokes on one replica and expects every other replica to
// refuse on the very next request, each having accepted the token (and so
// possibly cached it) just before.
func testRevocation(t *testing.T, d *deployment) {
	ctx := testCtx(t, 3*time.Minute)
	// warm has every replica accept tok, so that a replica that caches
	// validated tokens has it cached.
	warm := func(t *testing.T, step, tok string) {
		t.Helper()
		for _, r := range d.Replicas {
			if code := d.bearerOn(t, ctx, r, tok); code != http.StatusOK {
				t.Fatalf("%s: before the revocation, replica %d answers HTTP %d, want 200", step, r.Index, code)
			}
		}
	}
	refused := func(t *testing.T, step string, tok string) {
		t.Helper()
		for _, r := range d.Replicas {
			if code := d.bearerOn(t, ctx, r, tok); code != http.StatusUnauthorized {
				t.Errorf("%s: replica %d still answers HTTP %d to the token, want 401", step, r.Index, code)
			}
		}
	}

	t.Run("access token revoked", func(t *testing.T) {
		c := d.client(t, ctx, "interop revoke access token")
		tok := d.signIn(t, ctx, c, testUser, testPassword)
		warm(t, "access token", tok.AccessToken)
		if err := on(c, d.Replicas[0]).Revoke(ctx, tok.AccessToken, "access_token"); err != nil {
			t.Fatalf("revoke on replica 0: %v", err)
		}
		refused(t, "access token revoked on replica 0", tok.AccessToken)
	})

	t.Run("refresh token revoked", func(t *testing.T) {
		c := d.client(t, ctx, "interop revoke refresh token")
		tok := d.signIn(t, ctx, c, testUser, testPassword)
		warm(t, "refresh token", tok.AccessToken)
		if err := on(c, d.Replicas[1]).Revoke(ctx, tok.RefreshToken, "refresh_token"); err != nil {
			t.Fatalf("revoke on replica 1: %v", err)
		}
		refused(t, "grant revoked (its refresh token) on replica 1", tok.AccessToken)
		if _, err := on(c, d.Replicas[2]).Refresh(ctx, tok.RefreshToken); mcpauthtest.ErrorCode(err) != "invalid_grant" {
			t.Errorf("refresh with the revoked refresh token on replica 2: %v, want 400 invalid_grant", err)
		}
	})

	t.Run("code replayed", func(t *testing.T) {
		c := d.client(t, ctx, "interop code replay")
		res, err := on(c, d.Replicas[0]).Authorize(ctx, mcpauthtest.AuthorizeOptions{Username: testUser, Password: testPassword})
		if err != nil || res.Code == "" {
			t.Fatalf("sign in on replica 0: %v %+v", err, res)
		}
		tok, err := on(c, d.Replicas[1]).Exchange(ctx, res.Code, res.Verifier)
		if err != nil {
			t.Fatalf("redeem the code on replica 1: %v", err)
		}
		warm(t, "code replay", tok.AccessToken)
		if _, err := on(c, d.Replicas[2]).Exchange(ctx, res.Code, res.Verifier); mcpauthtest.ErrorCode(err) != "invalid_grant" {
			t.Fatalf("replay the code on replica 2: %v, want 400 invalid_grant", err)
		}
		// A replay by the right client with the right verifier means the
		// code may have been stolen: the grant it created is revoked.
		refused(t, "code replayed on replica 2", tok.AccessToken)
	})

	t.Run("user removed", func(t *testing.T) {
		c := d.client(t, ctx, "interop user removed")
		tok := d.signIn(t, ctx, c, bobUser, bobPassword)
		warm(t, "user removed", tok.AccessToken)
		// With --db the command also deletes the user's grants and
		// returns once every replica refuses them; without it the
		// replicas would refuse them when they reread the file.
		run(t, "user remove "+bobUser, filepath.Dir(d.Users), nil, nil,
			d.Project.Bin, "user", "remove", bobUser, "--users", d.Users, "--db", d.DB)
		refused(t, "user remove (the command returned)", tok.AccessToken)
	})

	t.Run("password changed", func(t *testing.T) {
		c := d.client(t, ctx, "interop password changed")
		tok := d.signIn(t, ctx, c, carolUser, carolPassword)
		warm(t, "password changed", tok.AccessToken)
		run(t, "user add "+carolUser+" (new password)", filepath.Dir(d.Users), nil, strings.NewReader("changed-"+carolPassword+"\n"),
			d.Project.Bin, "user", "add", carolUser, "--users", d.Users, "--password-stdin", "--db", d.DB)
		refused(t, "password changed by user add (the command returned)", tok.AccessToken)
	})

	t.Run("grants revoke", func(t *testing.T) {
		c := d.client(t, ctx, "interop grants revoke")
		tok := d.signIn(t, ctx, c, daveUser, davePassword)
		warm(t, "grants revoke", tok.AccessToken)
		run(t, "grants revoke --user "+daveUser, filepath.Dir(d.Users), nil, nil,
			d.Project.Bin, "grants", "revoke", "--user", daveUser, "--db", d.DB)
		refused(t, "grants revoke --user (the command returned)", tok.AccessToken)
	})
}

// testLockout: a person guessing passwords through the load balancer gets
// as many attempts as against a single replica, not three times as many.
// Each measurement uses its own user and client address (X-Forwarded-For,
// which the replicas believe from the trusted proxy).
func testLockout(t *testing.T, d *deployment) {
	ctx := testCtx(t, 3*time.Minute)
	c := d.client(t, ctx, "interop lockout")

	// attempts posts wrong passwords for user from addr through rc until
	// the answer is 429 and returns how many were allowed, and the
	// replicas that answered.
	attempts := func(rc *mcpauthtest.Client, user, addr string) (int, []int) {
		t.Helper()
		page, err := rc.OpenAuthorize(ctx, mcpauthtest.AuthorizeOptions{})
		if err != nil {
			t.Fatalf("open the login page: %v", err)
		}
		hdr := http.Header{"X-Forwarded-For": {addr}}
		var replicas []int
		for n := 0; n < 40; n++ {
			fields, err := page.Form.Values(user, "wrong-"+fmt.Sprint(n), false)
			if err != nil {
				t.Fatalf("login form: %v", err)
			}
			resp, body, err := page.Post(ctx, fields, hdr)
			if err != nil {
				t.Fatalf("attempt %d: %v", n+1, err)
			}
			replicas = append(replicas, replicaOf(resp))
			switch resp.StatusCode {
			case http.StatusTooManyRequests:
				return n, replicas
			case http.StatusOK:
				form, err := mcpauthtest.ParseForm(page.URL, body)
				if err != nil {
					t.Fatalf("attempt %d: the page after a wrong password has no login form: %v", n+1, err)
				}
				page.Form = form
			default:
				t.Fatalf("attempt %d with a wrong password: HTTP %d (replica %d), want 200 (try again) or 429: %.300s",
					n+1, resp.StatusCode, replicaOf(resp), body)
			}
		}
		t.Fatalf("40 wrong passwords for %s and no 429", user)
		return 0, nil
	}

	one, _ := attempts(on(c, d.Replicas[0]), carolUser, "198.51.100.7")
	if one == 0 {
		t.Fatalf("a single replica refused the very first attempt")
	}
	all, replicas := attempts(c, daveUser, "198.51.100.8")
	t.Logf("wrong passwords allowed: %d against one replica, %d through the proxy (replicas %v)", one, all, replicas)
	if distinct(replicas) < len(d.Replicas) {
		t.Fatalf("the attempts through the proxy reached only replicas %v (a harness problem)", replicas)
	}
	if all != one {
		t.Errorf("through the round-robin proxy %d wrong passwords were allowed before the lockout, against one replica %d: "+
			"the lockout does not count attempts across replicas", all, one)
	}
	// Locked out everywhere, even with the right password.
	for i := range len(d.Replicas) {
		page, err := c.OpenAuthorize(ctx, mcpauthtest.AuthorizeOptions{})
		if err != nil {
			t.Fatalf("open the login page: %v", err)
		}
		fields, _ := page.Form.Values(daveUser, davePassword, false)
		resp, body, err := page.Post(ctx, fields, http.Header{"X-Forwarded-For": {"198.51.100.8"}})
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusTooManyRequests {
			t.Errorf("locked out, right password, try %d: replica %d answers HTTP %d, want 429: %.200s",
				i+1, replicaOf(resp), resp.StatusCode, body)
		}
	}
}

// replicaOf returns the replica that served resp (from the proxy's
// header), or -1.
func replicaOf(resp *http.Response) int {
	var i int
	if _, err := fmt.Sscan(resp.Header.Get(replicaHeader), &i); err != nil {
		return -1
	}
	return i
}

func distinct(xs []int) int {
	seen := map[int]bool{}
	for _, x := range xs {
		seen[x] = true
	}
	return len(seen)
}

// testKill: clients refresh and call tools through the proxy in a loop;
// one replica is killed with SIGKILL while they do; they carry on through
// the other two, and every grant survives.
func testKill(t *testing.T, d *deployment) {
	ctx := testCtx(t, 5*time.Minute)
	const (
		clients = 4
		rounds  = 8
		killAt  = clients * 3 // operations done before the kill
	)
	type grant struct {
		c   *mcpauthtest.Client
		tok *mcpauthtest.Token
	}
	grants := make([]*grant, clients)
	for i := range grants {
		c := d.client(t, ctx, fmt.Sprintf("interop kill %d", i))
		grants[i] = &grant{c: c, tok: d.signIn(t, ctx, c, testUser, testPassword)}
	}

	// A session-based (2025-11-25) MCP client, whose session starts on
	// some replica and must carry on on the others.
	session, err := client.NewStreamableHttpClient(d.Srv.MCPURL,
		transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + grants[0].tok.AccessToken}))
	if err != nil {
		t.Fatal(err)
	}
	if err := session.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer session.Close()
	var init mcp.InitializeRequest
	init.Params.ProtocolVersion = "2025-11-25"
	init.Params.ClientInfo = mcp.Implementation{Name: "interop-kill-session", Version: "0.1.0"}
	if _, err := session.Initialize(ctx, init); err != nil {
		t.Fatalf("2025-11-25 session: initialize: %v", err)
	}

	var (
		ops       atomic.Int64
		killed    = make(chan struct{})
		wg        sync.WaitGroup
		retries   atomic.Int64
		afterKill int
	)
	// retry runs op until it succeeds, up to 5 times when transient says
	// the failure is a request caught by the kill (the proxy's 502, a cut
	// connection), as a client retries a network failure.
	retry := func(what string, transient func(error) bool, op func() error) error {
		var err error
		for range 5 {
			if err = op(); err == nil || !transient(err) {
				return err
			}
			retries.Add(1)
			time.Sleep(100 * time.Millisecond)
		}
		return fmt.Errorf("%s: still failing after 5 tries: %w", what, err)
	}
	// An OAuth error answer is final; a 502 or no answer is not.
	oauthTransient := func(err error) bool {
		st := mcpauthtest.ErrorStatus(err)
		return st == 0 || st == http.StatusBadGateway
	}
	// mcp-go's errors carry no status; only a 401 means the grant is gone.
	mcpTransient := func(err error) bool { return !strings.Contains(err.Error(), "401") }
	for i, g := range grants {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range rounds {
				err := retry("refresh", oauthTransient, func() error {
					tok, err := g.c.Refresh(ctx, g.tok.RefreshToken)
					if err == nil {
						g.tok = tok
					}
					return err
				})
				if err != nil {
					t.Errorf("client %d, round %d: refresh through the proxy: %v (a grant lost)", i, round, err)
					return
				}
				err = retry("tools/call", mcpTransient, func() error {
					res, err := mcpauthtest.CallTool(ctx, d.Srv.MCPURL, g.tok.AccessToken, "echo", map[string]any{"text": "kill"})
					if err == nil && res.IsError {
						return fmt.Errorf("tool error (401 or not, final): %s", mcpauthtest.ResultText(res))
					}
					return err
				})
				if err != nil {
					t.Errorf("client %d, round %d: tools/call through the proxy: %v", i, round, err)
					return
				}
				ops.Add(1)
				if round == rounds/2 {
					select { // the second half runs after the kill
					case <-killed:
					case <-ctx.Done():
						return
					}
				}
			}
		}()
	}
	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()

	for ops.Load() < killAt {
		select {
		case <-allDone:
			t.Fatalf("the clients stopped before the kill (after %d operations)", ops.Load())
		case <-time.After(10 * time.Millisecond):
		}
	}
	victim := 1
	d.kill(t, victim)
	m := d.Proxy.mark()
	t.Logf("killed replica %d with SIGKILL after %d client operations", victim, ops.Load())
	close(killed)
	for i := range 6 {
		if _, err := session.ListTools(ctx, mcp.ListToolsRequest{}); err != nil {
			t.Errorf("2025-11-25 session after the kill, request %d: %v", i+1, err)
		}
	}
	<-allDone
	t.Logf("%d operations; %d retried after a 502 or a cut connection", ops.Load(), retries.Load())

	// The proxy learns that the replica is gone from a failed request (a
	// refused connection, or a reset one it had kept alive), so requests
	// may still be sent its way; none may be answered by it.
	for _, h := range d.Proxy.hitsSince(m) {
		if h.Replica == victim && h.Status > 0 && h.Status != http.StatusBadGateway {
			afterKill++
		}
	}
	if afterKill > 0 {
		t.Errorf("the killed replica answered %d requests after the kill (a harness problem)", afterKill)
	}
	// Every grant still works, on every surviving replica.
	for i, g := range grants {
		for _, r := range d.live() {
			if code := d.bearerOn(t, ctx, r, g.tok.AccessToken); code != http.StatusOK {
				t.Errorf("client %d after the kill: its access token gets HTTP %d on replica %d, want 200", i, code, r.Index)
			}
		}
		tok, err := on(g.c, d.live()[i%len(d.live())]).Refresh(ctx, g.tok.RefreshToken)
		if err != nil {
			t.Errorf("client %d after the kill: refresh: %v (a grant lost)", i, err)
		} else {
			g.tok = tok
		}
	}
}

// testDBCopy moves a deployment from SQLite to PostgreSQL with db copy:
// nobody signs in again.
func testDBCopy(t *testing.T, admin string) {
	ctx := testCtx(t, 3*time.Minute)
	sqlite := filepath.Join(t.TempDir(), "auth.db")
	d := newDeployment(t, "db-copy", 1, sqlite)
	d.start(t)
	c := d.client(t, ctx, "interop db copy")
	tok := d.signIn(t, ctx, c, testUser, testPassword)
	d.stop(t)

	pg := newDatabase(t, admin, "copy")
	out := run(t, "db copy", filepath.Dir(d.Users), nil, nil, d.Project.Bin, "db", "copy", "--from", sqlite, "--to", pg)
	checkNoPassword(t, "db copy", out, pg)

	d.DB = pg
	d.start(t)
	for _, r := range d.Replicas {
		if code := d.bearerOn(t, ctx, r, tok.AccessToken); code != http.StatusOK {
			t.Errorf("the access token issued by the SQLite-backed server: HTTP %d from the PostgreSQL-backed one, want 200", code)
		}
	}
	next, err := c.Refresh(ctx, tok.RefreshToken)
	if err != nil {
		t.Fatalf("refresh with the refresh token issued by the SQLite-backed server: %v", err)
	}
	if code := d.bearerOn(t, ctx, d.Replicas[0], next.AccessToken); code != http.StatusOK {
		t.Errorf("the access token refreshed after the move: HTTP %d, want 200", code)
	}

	// A second copy into the now non-empty database is refused.
	out, err = runE(filepath.Dir(d.Users), nil, nil, d.Project.Bin, "db", "copy", "--from", sqlite, "--to", pg)
	if err == nil {
		t.Errorf("db copy into a database that is not empty succeeded; want a refusal:\n%s", out)
	}
	checkNoPassword(t, "db copy (refused)", out, pg)
}

// stop stops every replica with SIGTERM and waits for them to exit.
func (d *deployment) stop(t *testing.T) {
	t.Helper()
	for _, r := range d.Replicas {
		if r.killed {
			continue
		}
		_ = syscall.Kill(-r.pid, syscall.SIGTERM)
		select {
		case <-r.exited:
		case <-time.After(30 * time.Second):
			t.Fatalf("replica %d did not stop within 30s of SIGTERM", r.Index)
		}
		r.killed = true
	}
}

// checkNoPassword fails if out contains the password of dsn.
func checkNoPassword(t *testing.T, step, out, dsn string) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return
	}
	if pw, ok := u.User.Password(); ok && pw != "" && strings.Contains(out, pw) {
		t.Errorf("%s: the output shows the database password:\n%s", step, strings.ReplaceAll(out, pw, "<PASSWORD>"))
	}
}

// flagNamed matches a message that names the database flag or its
// environment variable.
var flagNamed = regexp.MustCompile(`--db\b|MCP_DB\b`)

// TestBadDatabase starts serve with a database it cannot use: it must exit
// non-zero at start with a message naming --db (or MCP_DB), and never show
// the password. SQLite cases always run; PostgreSQL ones need
// MCP_TEST_POSTGRES.
func TestBadDatabase(t *testing.T) {
	if os.Getenv("MCP_INTEROP") != "1" {
		t.Skip("interop tests run generated servers; enable with MCP_INTEROP=1 (scripts/test does)")
	}
	p := buildProject(t)
	closed := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	// postgres returns MCP_TEST_POSTGRES for the PostgreSQL cases.
	postgres := postgresURL
	cases := []struct {
		name string
		db   func(t *testing.T) string
	}{
		{"SQLite file in a missing directory", func(t *testing.T) string {
			return filepath.Join(t.TempDir(), "no-such-dir", "auth.db")
		}},
		{"SQLite at a newer schema version", func(t *testing.T) string {
			path := filepath.Join(t.TempDir(), "auth.db")
			setSQLiteVersion(t, path, 1000)
			return path
		}},
		{"PostgreSQL unreachable", func(t *testing.T) string {
			return withHost(withPassword(postgres(t), "secret-unreachable-pw"), closed)
		}},
		{"PostgreSQL wrong password", func(t *testing.T) string {
			return withPassword(newDatabase(t, postgres(t), "wrongpw"), "secret-wrong-pw-7f3a")
		}},
		{"PostgreSQL at a newer schema version", func(t *testing.T) string {
			db := newDatabase(t, postgres(t), "newer")
			// Where runtime/authstore records how many migrations have run.
			execSQL(t, db, "CREATE TABLE schema_version (version integer NOT NULL)")
			execSQL(t, db, "INSERT INTO schema_version (version) VALUES (1000)")
			return db
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			db := tc.db(t)
			users := filepath.Join(t.TempDir(), "users.txt")
			addUser(t, p, users, testUser, testPassword)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
			out, err := runCtx(ctx, filepath.Dir(users), nil, nil, p.Bin, "serve", "--addr", addr, "--db", db, "--users", users)
			if ctx.Err() != nil {
				t.Fatalf("serve with a bad database (%s) was still running after 2 minutes; want an exit at start:\n%s", tc.name, out)
			}
			if err == nil {
				t.Fatalf("serve with a bad database (%s) exited 0; want a non-zero exit:\n%s", tc.name, out)
			}
			checkNoPassword(t, "serve with a bad database ("+tc.name+")", out, db)
			t.Logf("serve with a bad database (%s) exited non-zero:\n%s", tc.name, strings.TrimSpace(out))
			if !flagNamed.MatchString(out) {
				t.Errorf("serve with a bad database (%s): the message does not name --db or MCP_DB:\n%s", tc.name, out)
			}
		})
	}
}

// setSQLiteVersion creates an SQLite database at path whose schema version
// (PRAGMA user_version, where runtime/authstore records it) is version.
func setSQLiteVersion(t *testing.T, path string, version int) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(fmt.Sprintf("PRAGMA user_version = %d", version)); err != nil {
		t.Fatalf("set the schema version of %s: %v", path, err)
	}
}

// testDatabaseLost takes the database away from a serving replica (a TCP
// proxy in between is cut): requests get 503 temporarily_unavailable, never
// 500 and never a sign-out (401), and service resumes when the database is
// back.
func testDatabaseLost(t *testing.T, admin string) {
	ctx := testCtx(t, 4*time.Minute)
	db := newDatabase(t, admin, "lost")
	u, _ := url.Parse(db)
	tp := newTCPProxy(t, u.Host)
	d := newDeployment(t, "db-lost", 1, withHost(db, tp.Addr))
	d.start(t)
	r := d.Replicas[0]
	c := d.client(t, ctx, "interop database lost")
	tok := d.signIn(t, ctx, c, testUser, testPassword)
	if code := d.bearerOn(t, ctx, r, tok.AccessToken); code != http.StatusOK {
		t.Fatalf("MCP request before the database goes: HTTP %d, want 200", code)
	}

	tp.stop()
	cut := time.Now()
	t.Log("database cut off")
	// A replica may keep serving tokens it validated (as this one) for a
	// short lease; then it must answer 503, never 500 or 401.
	deadline := time.Now().Add(30 * time.Second)
	for {
		code := d.bearerOn(t, ctx, r, tok.AccessToken)
		if code == http.StatusServiceUnavailable {
			t.Logf("MCP requests answer 503 %v after the database went", time.Since(cut).Round(100*time.Millisecond))
			break
		}
		if code != http.StatusOK {
			t.Fatalf("MCP request while the database is away: HTTP %d, want 503 (or 200 while a validated token is still trusted)", code)
		}
		if time.Now().After(deadline) {
			t.Fatal("MCP requests still succeed 30s after the database went away")
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The OAuth endpoints answer 503 temporarily_unavailable in JSON.
	_, err := on(c, r).Refresh(ctx, tok.RefreshToken)
	if st, code := mcpauthtest.ErrorStatus(err), mcpauthtest.ErrorCode(err); st != http.StatusServiceUnavailable || code != "temporarily_unavailable" {
		t.Errorf("refresh while the database is away: %v, want HTTP 503 temporarily_unavailable", err)
	}
	if _, err := mcpauthtest.Register(ctx, d.Proxy.URL, nil); mcpauthtest.ErrorStatus(err) != http.StatusServiceUnavailable ||
		mcpauthtest.ErrorCode(err) != "temporarily_unavailable" {
		t.Errorf("register while the database is away: %v, want HTTP 503 temporarily_unavailable", err)
	}
	if _, err := c.OpenAuthorize(ctx, mcpauthtest.AuthorizeOptions{}); mcpauthtest.ErrorStatus(err) != http.StatusServiceUnavailable {
		t.Errorf("login page while the database is away: %v, want HTTP 503", err)
	}

	if err := tp.restart(); err != nil {
		t.Fatalf("bring the database back: %v", err)
	}
	back := time.Now()
	t.Log("database back")
	deadline = time.Now().Add(60 * time.Second)
	for {
		code := d.bearerOn(t, ctx, r, tok.AccessToken)
		if code == http.StatusOK {
			t.Logf("MCP requests answer 200 again %v after the database came back", time.Since(back).Round(100*time.Millisecond))
			break
		}
		if code != http.StatusServiceUnavailable {
			t.Fatalf("MCP request after the database came back: HTTP %d, want 200 (or 503 until it reconnects)", code)
		}
		if time.Now().After(deadline) {
			t.Fatal("MCP requests still fail 60s after the database came back")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if _, err := on(c, r).Refresh(ctx, tok.RefreshToken); err != nil {
		t.Errorf("refresh after the database came back: %v", err)
	}
}
