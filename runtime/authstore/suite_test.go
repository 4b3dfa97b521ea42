package authstore

// The store test suite. Every test here runs once per engine, through the
// Store interface only, each on a fresh database: what passes on SQLite
// must pass on PostgreSQL. Engine-specific behaviour (SQLite pragmas and
// file modes, PostgreSQL connection errors) is tested in the engines' own
// test files.

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mcpgen/create-mcp-server/runtime/authstoretest"
)

// testEngine makes fresh, empty databases of one engine.
type testEngine struct {
	name string
	// newDSN returns the name of a new database, deleted when t ends.
	newDSN func(t testing.TB) string
}

// open returns a Store on a new database, closed when t ends.
func (e testEngine) open(t *testing.T, opts Options) Store {
	t.Helper()
	return openDSN(t, e.newDSN(t), opts)
}

// openDSN opens dsn for the duration of t.
func openDSN(t testing.TB, dsn string, opts Options) Store {
	t.Helper()
	s, err := Open(t.Context(), dsn, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// testEngines lists the engines the suite runs on: SQLite always,
// PostgreSQL when MCP_TEST_POSTGRES names a database (see authstoretest).
func testEngines() []testEngine {
	var out []testEngine
	for _, e := range authstoretest.Engines() {
		out = append(out, testEngine{e.Name, e.NewDSN})
	}
	return out
}

// testPostgresURL is a new PostgreSQL schema, or skips t.
func testPostgresURL(t testing.TB) string { return authstoretest.Postgres(t) }

// forEachEngineDSN runs test as a subtest per engine, with the name of a
// new database, for tests that open it more than once.
func forEachEngineDSN(t *testing.T, test func(t *testing.T, dsn string)) {
	t.Helper()
	for _, e := range testEngines() {
		t.Run(e.name, func(t *testing.T) {
			test(t, e.newDSN(t))
		})
	}
}

// forEachEngine runs test as a subtest per engine, each with a new store.
func forEachEngine(t *testing.T, test func(t *testing.T, s Store)) {
	t.Helper()
	for _, e := range testEngines() {
		t.Run(e.name, func(t *testing.T) {
			test(t, e.open(t, Options{}))
		})
	}
}

func hashOf(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// seedClient stores a public client with this id if it is not there yet.
func seedClient(t testing.TB, s Store, id string, created time.Time) {
	t.Helper()
	ctx := t.Context()
	if _, err := s.Client(ctx, id); err == nil {
		return
	} else if !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	if err := s.CreateClient(ctx, &Client{ID: id, AuthMethod: "none", RedirectURIs: []string{"https://x/cb"},
		GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"},
		CreatedAt: created}); err != nil {
		t.Fatal(err)
	}
}

// seedCode stores a code for client "c" (created if needed), expiring then.
func seedCode(t testing.TB, s Store, raw string, expires time.Time) *Code {
	t.Helper()
	seedClient(t, s, "c", time.Now())
	c := &Code{Hash: hashOf(raw), GrantID: "grant-" + raw, ClientID: "c", User: "alice", RedirectURI: "https://x/cb",
		CodeChallenge: "x", Scope: "mcp", Resource: "https://h/mcp", Stamp: "s", ExpiresAt: expires}
	if err := s.CreateCode(t.Context(), c, time.Now()); err != nil {
		t.Fatal(err)
	}
	return c
}

// grantFor is the grant that redeeming c creates.
func grantFor(c *Code, expires time.Time) *Grant {
	return &Grant{ID: c.GrantID, ClientID: c.ClientID, User: c.User, Scope: c.Scope, Resource: c.Resource,
		Stamp: c.Stamp, ExpiresAt: expires}
}

// pairFor is a token pair named after raw, valid for an hour.
func pairFor(raw string) *Tokens {
	return &Tokens{AccessHash: hashOf("at-" + raw), AccessScope: "mcp", AccessExpires: time.Now().Add(time.Hour),
		RefreshHash: hashOf("rt-" + raw), RefreshExpires: time.Now().Add(time.Hour)}
}

// redeem redeems c at now, storing pair, and fails the test if it does not.
func redeem(t testing.TB, s Store, c *Code, pair *Tokens, now time.Time) *Grant {
	t.Helper()
	g := grantFor(c, now.Add(time.Hour))
	if ok, err := s.RedeemCode(t.Context(), c.Hash, g, pair, now); !ok || err != nil {
		t.Fatalf("redeem code: %v, %v", ok, err)
	}
	return g
}

// TestClients stores, reads and replaces clients.
func TestClients(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		created := time.UnixMilli(time.Now().UnixMilli())
		want := &Client{ID: "c1", SecretHash: hashOf("secret"), AuthMethod: "client_secret_basic",
			RedirectURIs: []string{"https://a/cb", "http://127.0.0.1/cb"}, GrantTypes: []string{"authorization_code"},
			ResponseTypes: []string{"code"}, Name: "Client «one»", Scope: "mcp", CreatedAt: created}
		if err := s.CreateClient(ctx, want); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateClient(ctx, want); err == nil {
			t.Error("a second client with the same ID was stored")
		}
		got, err := s.Client(ctx, "c1")
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) || !got.CreatedAt.Equal(created) {
			t.Errorf("client read back:\n got %+v\nwant %+v", got, want)
		}
		if _, err := s.Client(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown client: %v, want ErrNotFound", err)
		}

		doc := &Client{ID: "https://app.example/client.json", AuthMethod: "none", RedirectURIs: []string{"https://app/cb"},
			GrantTypes: []string{"authorization_code"}, ResponseTypes: []string{"code"}, Name: "App", CreatedAt: created}
		for _, name := range []string{"App", "App renamed"} {
			doc.Name = name
			if err := s.SaveMetadataClient(ctx, doc); err != nil {
				t.Fatal(err)
			}
			got, err := s.Client(ctx, doc.ID)
			if err != nil || got.Name != name || got.SecretHash != nil || got.AuthMethod != "none" {
				t.Fatalf("metadata client: %+v, %v", got, err)
			}
		}
		if st, err := s.Stats(ctx, time.Now()); err != nil || st.Clients != 2 {
			t.Errorf("Stats = %+v, %v; want 2 clients", st, err)
		}
	})
}

// TestRedeemCodeSingleUse: of many concurrent redemptions of one code
// exactly one stores tokens; an expired code stores none.
func TestRedeemCodeSingleUse(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s Store) {
		now := time.Now()
		c := seedCode(t, s, "code1", now.Add(time.Minute))

		const n = 20
		var wg sync.WaitGroup
		results := make([]bool, n)
		errs := make([]error, n)
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				results[i], errs[i] = s.RedeemCode(context.Background(), c.Hash, grantFor(c, now.Add(time.Hour)), pairFor(fmt.Sprint(i)), now)
			})
		}
		close(start)
		wg.Wait()
		wins := 0
		for i := range n {
			if errs[i] != nil {
				t.Errorf("redemption %d: %v", i, errs[i])
			}
			if results[i] {
				wins++
			}
		}
		if wins != 1 {
			t.Fatalf("%d redemptions succeeded, want exactly 1", wins)
		}
		// Only the winner's pair was stored.
		ctx := t.Context()
		for i := range n {
			p := pairFor(fmt.Sprint(i))
			_, errA := s.LookupAccess(ctx, p.AccessHash, now)
			_, errR := s.Refresh(ctx, p.RefreshHash)
			if results[i] != (errA == nil) || results[i] != (errR == nil) {
				t.Errorf("redemption %d (won: %v): access token %v, refresh token %v", i, results[i], errA, errR)
			}
		}
		got, err := s.Code(ctx, c.Hash)
		if err != nil || !got.Used {
			t.Fatalf("code after redemption: %+v, %v", got, err)
		}

		expired := seedCode(t, s, "code2", now.Add(-time.Second))
		ok, err := s.RedeemCode(ctx, expired.Hash, grantFor(expired, now.Add(time.Hour)), pairFor("x"), now)
		if err != nil || ok {
			t.Fatalf("expired code redeemed: %v, %v", ok, err)
		}
		if _, err := s.Code(ctx, hashOf("never issued")); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown code: %v, want ErrNotFound", err)
		}
	})
}

// TestRotateRefresh covers rotation, the retry grace and reuse detection.
func TestRotateRefresh(t *testing.T) {
	const grace = time.Minute
	tests := []struct {
		name string
		// after the first rotation at t0: optionally use the successor,
		// then present the old token again at t0+delay.
		useSuccessor bool
		delay        time.Duration
		want         Rotation
	}{
		{"retry within grace", false, 10 * time.Second, Retried},
		{"retry after grace", false, grace + time.Second, Reused},
		{"reuse after successor used", true, time.Second, Reused},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			forEachEngine(t, func(t *testing.T, s Store) {
				ctx := t.Context()
				t0 := time.Now()
				c := seedCode(t, s, "code", t0.Add(time.Minute))
				first := pairFor("1") // refresh token "rt-1"
				redeem(t, s, c, first, t0)
				second := pairFor("2")
				if out, err := s.RotateRefresh(ctx, first.RefreshHash, second, grace, t0); out != Rotated || err != nil {
					t.Fatalf("first rotation: %v, %v", out, err)
				}
				if tc.useSuccessor {
					if out, err := s.RotateRefresh(ctx, second.RefreshHash, pairFor("3"), grace, t0); out != Rotated || err != nil {
						t.Fatalf("successor rotation: %v, %v", out, err)
					}
				}
				retry := pairFor("2") // same successor, as the server derives it
				retry.AccessHash = hashOf("at-retry")
				out, err := s.RotateRefresh(ctx, first.RefreshHash, retry, grace, t0.Add(tc.delay))
				if err != nil || out != tc.want {
					t.Fatalf("old token again: %v, %v; want %v", out, err, tc.want)
				}
				_, err = s.LookupAccess(ctx, second.AccessHash, t0)
				if tc.want == Reused {
					if !errors.Is(err, ErrNotFound) {
						t.Fatalf("access token of a revoked grant still valid: %v", err)
					}
					if out, _ := s.RotateRefresh(ctx, second.RefreshHash, pairFor("4"), grace, t0); out != Dead {
						t.Fatalf("successor of a revoked grant: %v, want dead", out)
					}
					if r, err := s.Refresh(ctx, second.RefreshHash); err != nil || !r.Revoked {
						t.Fatalf("successor after reuse: %+v, %v; want revoked", r, err)
					}
				} else {
					if err != nil {
						t.Fatalf("access token after retry: %v", err)
					}
					if _, err := s.LookupAccess(ctx, retry.AccessHash, t0); err != nil {
						t.Fatalf("access token issued by the retry: %v", err)
					}
				}
			})
		})
	}
}

// TestRefreshRead: Refresh returns the token with its grant; a rotated one
// says when it was used; unknown tokens and expired ones rotate to Dead.
func TestRefreshRead(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		now := time.UnixMilli(time.Now().UnixMilli())
		c := seedCode(t, s, "code", now.Add(time.Minute))
		p := pairFor("1")
		g := redeem(t, s, c, p, now)
		r, err := s.Refresh(ctx, p.RefreshHash)
		if err != nil {
			t.Fatal(err)
		}
		if r.Grant.ID != g.ID || r.Grant.User != "alice" || r.Grant.ClientID != "c" || r.Grant.Stamp != "s" ||
			!r.Grant.CreatedAt.Equal(now) || r.Revoked || !r.UsedAt.IsZero() {
			t.Fatalf("refresh token: %+v", r)
		}
		if _, err := s.RotateRefresh(ctx, p.RefreshHash, pairFor("2"), time.Minute, now.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		if r, err := s.Refresh(ctx, p.RefreshHash); err != nil || !r.UsedAt.Equal(now.Add(time.Second)) {
			t.Fatalf("rotated refresh token: %+v, %v", r, err)
		}
		if _, err := s.Refresh(ctx, hashOf("unknown")); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown refresh token: %v", err)
		}
		if out, err := s.RotateRefresh(ctx, hashOf("unknown"), pairFor("3"), time.Minute, now); out != Dead || err != nil {
			t.Fatalf("unknown refresh token rotates: %v, %v", out, err)
		}
		if out, err := s.RotateRefresh(ctx, pairFor("2").RefreshHash, pairFor("3"), time.Minute, now.Add(2*time.Hour)); out != Dead || err != nil {
			t.Fatalf("expired refresh token rotates: %v, %v", out, err)
		}
		// An access token is not a refresh token.
		if _, err := s.Refresh(ctx, p.AccessHash); !errors.Is(err, ErrNotFound) {
			t.Fatalf("access token read as a refresh token: %v", err)
		}
	})
}

// TestRevokeToken: only the owning client revokes; a refresh token takes
// its grant with it, an access token only itself.
func TestRevokeToken(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		now := time.Now()
		c1 := seedCode(t, s, "one", now.Add(time.Minute))
		p1 := pairFor("1")
		g1 := redeem(t, s, c1, p1, now)

		if id, err := s.RevokeToken(ctx, p1.AccessHash, "other-client", now); id != "" || err != nil {
			t.Fatalf("revoked by another client: %q, %v", id, err)
		}
		if _, err := s.LookupAccess(ctx, p1.AccessHash, now); err != nil {
			t.Fatalf("token revoked by another client: %v", err)
		}
		if id, err := s.RevokeToken(ctx, hashOf("unknown"), "c", now); id != "" || err != nil {
			t.Fatalf("unknown token: %q, %v", id, err)
		}
		if id, err := s.RevokeToken(ctx, p1.AccessHash, "c", now); id != g1.ID || err != nil {
			t.Fatalf("revoke access token: %q, %v", id, err)
		}
		if _, err := s.LookupAccess(ctx, p1.AccessHash, now); !errors.Is(err, ErrNotFound) {
			t.Fatalf("revoked access token: %v", err)
		}
		if r, err := s.Refresh(ctx, p1.RefreshHash); err != nil || r.Revoked {
			t.Fatalf("refresh token after its access token was revoked: %+v, %v", r, err)
		}

		c2 := seedCode(t, s, "two", now.Add(time.Minute))
		p2 := pairFor("2")
		g2 := redeem(t, s, c2, p2, now)
		if id, err := s.RevokeToken(ctx, p2.RefreshHash, "c", now); id != g2.ID || err != nil {
			t.Fatalf("revoke refresh token: %q, %v", id, err)
		}
		if _, err := s.LookupAccess(ctx, p2.AccessHash, now); !errors.Is(err, ErrNotFound) {
			t.Fatalf("access token of a revoked refresh token's grant: %v", err)
		}
	})
}

// TestLookupAccess: what the bearer check gets, and what it never gets.
func TestLookupAccess(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		now := time.UnixMilli(time.Now().UnixMilli())
		c := seedCode(t, s, "code", now.Add(time.Minute))
		p := pairFor("1")
		p.AccessScope = "narrow"
		p.AccessExpires = now.Add(time.Hour)
		g := redeem(t, s, c, p, now)
		a, err := s.LookupAccess(ctx, p.AccessHash, now)
		if err != nil {
			t.Fatal(err)
		}
		want := Access{GrantID: g.ID, ClientID: "c", User: "alice", Scope: "narrow", Resource: c.Resource, Stamp: "s", ExpiresAt: p.AccessExpires}
		if *a != want {
			t.Fatalf("LookupAccess:\n got %+v\nwant %+v", *a, want)
		}
		for _, tc := range []struct {
			name string
			hash []byte
			at   time.Time
		}{
			{"expired", p.AccessHash, p.AccessExpires},
			{"refresh token", p.RefreshHash, now},
			{"unknown", hashOf("unknown"), now},
		} {
			if _, err := s.LookupAccess(ctx, tc.hash, tc.at); !errors.Is(err, ErrNotFound) {
				t.Errorf("%s: %v, want ErrNotFound", tc.name, err)
			}
		}
		if err := s.RevokeGrant(ctx, g.ID, now); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeGrant(ctx, g.ID, now); err != nil {
			t.Fatalf("revoking twice: %v", err)
		}
		if _, err := s.LookupAccess(ctx, p.AccessHash, now); !errors.Is(err, ErrNotFound) {
			t.Errorf("token of a revoked grant: %v", err)
		}
	})
}

// TestCleanupKeepsConsumedCodes: cleanup deletes expired rows but keeps a
// consumed code until it expires, so a replay can still be detected.
// Whether a token row still exists is seen by looking it up at a time when
// it was valid.
func TestCleanupKeepsConsumedCodes(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		now := time.Now()
		c := seedCode(t, s, "code", now.Add(time.Minute))
		p := pairFor("1")
		p.AccessExpires = now.Add(30 * time.Second)
		g := redeem(t, s, c, p, now)

		if err := s.Cleanup(ctx, now.Add(10*time.Second), 0); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Code(ctx, c.Hash); err != nil || !got.Used {
			t.Fatalf("consumed code removed before expiry: %v, %v", got, err)
		}
		if _, err := s.LookupAccess(ctx, p.AccessHash, now.Add(10*time.Second)); err != nil {
			t.Fatalf("live access token removed: %v", err)
		}

		later := now.Add(45 * time.Second) // access token expired, code not
		if err := s.Cleanup(ctx, later, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.LookupAccess(ctx, p.AccessHash, now); !errors.Is(err, ErrNotFound) {
			t.Fatal("expired access token kept")
		}
		if _, err := s.Refresh(ctx, p.RefreshHash); err != nil {
			t.Fatalf("live refresh token removed: %v", err)
		}

		if err := s.Cleanup(ctx, now.Add(2*time.Minute), 0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Code(ctx, c.Hash); !errors.Is(err, ErrNotFound) {
			t.Fatalf("expired code kept: %v", err)
		}

		if err := s.RevokeGrant(ctx, g.ID, now); err != nil {
			t.Fatal(err)
		}
		if err := s.Cleanup(ctx, now.Add(2*time.Minute), 0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Refresh(ctx, p.RefreshHash); !errors.Is(err, ErrNotFound) {
			t.Fatalf("revoked grant's refresh token kept: %v", err)
		}
	})
}

// TestCleanupUnusedClients: a client with nothing stored is deleted after
// clientIdleTTL; one with a live grant is kept.
func TestCleanupUnusedClients(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		now := time.Now()
		for _, id := range []string{"idle", "used"} {
			seedClient(t, s, id, now)
		}
		later := now.Add(clientIdleTTL + time.Hour)
		code := &Code{Hash: hashOf("c"), GrantID: "g", ClientID: "used", User: "alice", RedirectURI: "https://x/cb",
			CodeChallenge: "x", Scope: "mcp", Resource: "r", Stamp: "s", ExpiresAt: now.Add(time.Minute)}
		if err := s.CreateCode(ctx, code, now); err != nil {
			t.Fatal(err)
		}
		p := pairFor("1")
		p.AccessExpires, p.RefreshExpires = later.Add(time.Hour), later.Add(time.Hour)
		if ok, err := s.RedeemCode(ctx, code.Hash, grantFor(code, later.Add(time.Hour)), p, now); !ok || err != nil {
			t.Fatal(ok, err)
		}

		if err := s.Cleanup(ctx, now.Add(time.Hour), 0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Client(ctx, "idle"); err != nil {
			t.Fatalf("idle client deleted before clientIdleTTL: %v", err)
		}
		if err := s.Cleanup(ctx, later, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Client(ctx, "idle"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("idle client kept after clientIdleTTL: %v", err)
		}
		if _, err := s.Client(ctx, "used"); err != nil {
			t.Fatalf("client with a live grant deleted: %v", err)
		}
		if st, err := s.Stats(ctx, now); err != nil || st.Clients != 1 || st.Grants != 1 {
			t.Fatalf("Stats = %+v, %v; want 1 client, 1 grant", st, err)
		}
	})
}

// TestRotationKey: 32 bytes, the same on every call.
func TestRotationKey(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s Store) {
		k := s.RotationKey()
		if len(k) != 32 || string(k) != string(s.RotationKey()) {
			t.Fatalf("rotation key %x", k)
		}
		if err := s.Ping(t.Context()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
}

// TestObserve: the hook sees every operation with its outcome.
func TestObserve(t *testing.T) {
	for _, e := range testEngines() {
		t.Run(e.name, func(t *testing.T) {
			var mu sync.Mutex
			seen := map[string]error{}
			s := e.open(t, Options{Observe: func(op string, d time.Duration, err error) {
				mu.Lock()
				defer mu.Unlock()
				if d < 0 {
					t.Errorf("%s: negative duration %v", op, d)
				}
				seen[op] = err
			}})
			ctx := t.Context()
			s.Client(ctx, "nope")
			s.LookupAccess(ctx, hashOf("nope"), time.Now())
			s.Ping(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err, ok := seen["client"]; !ok || !errors.Is(err, ErrNotFound) {
				t.Errorf("client: observed %v, %v", ok, err)
			}
			if err, ok := seen["lookup_access"]; !ok || !errors.Is(err, ErrNotFound) {
				t.Errorf("lookup_access: observed %v, %v", ok, err)
			}
			if err, ok := seen["ping"]; !ok || err != nil {
				t.Errorf("ping: observed %v, %v", ok, err)
			}
		})
	}
}

// forEachEngineWith is forEachEngine with options.
func forEachEngineWith(t *testing.T, opts Options, test func(t *testing.T, s Store)) {
	t.Helper()
	for _, e := range testEngines() {
		t.Run(e.name, func(t *testing.T) {
			test(t, e.open(t, opts))
		})
	}
}

// TestClientsUsedAndEvicted: a code marks its client used; at the cap the
// oldest never-used clients make room, and only used clients fill it.
func TestClientsUsedAndEvicted(t *testing.T) {
	forEachEngineWith(t, Options{Limits: Limits{Clients: 3}}, func(t *testing.T, s Store) {
		ctx := t.Context()
		t0 := time.UnixMilli(time.Now().UnixMilli())
		for i, id := range []string{"c1", "c2", "c3"} {
			seedClient(t, s, id, t0.Add(time.Duration(i)*time.Second))
		}
		if c, _ := s.Client(ctx, "c1"); !c.UsedAt.IsZero() {
			t.Fatal("a new client is marked used")
		}
		code := &Code{Hash: hashOf("k"), GrantID: "g", ClientID: "c1", User: "alice", RedirectURI: "https://x/cb",
			CodeChallenge: "x", Scope: "mcp", Resource: "r", Stamp: "s", ExpiresAt: t0.Add(time.Minute)}
		if err := s.CreateCode(ctx, code, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if c, _ := s.Client(ctx, "c1"); !c.UsedAt.Equal(t0.Add(time.Hour)) {
			t.Fatalf("client after its first code: UsedAt %v", c.UsedAt)
		}
		// c1 is used, so c2 (the oldest never-used) makes room for c4.
		seedClient(t, s, "c4", t0.Add(time.Minute))
		for id, want := range map[string]bool{"c1": true, "c2": false, "c3": true, "c4": true} {
			if _, err := s.Client(ctx, id); (err == nil) != want {
				t.Errorf("client %s: %v, want present=%v", id, err, want)
			}
		}
		for _, id := range []string{"c3", "c4"} {
			code := &Code{Hash: hashOf("k" + id), GrantID: "g" + id, ClientID: id, User: "alice", RedirectURI: "https://x/cb",
				CodeChallenge: "x", Scope: "mcp", Resource: "r", Stamp: "s", ExpiresAt: t0.Add(time.Minute)}
			if err := s.CreateCode(ctx, code, t0); err != nil {
				t.Fatal(err)
			}
		}
		err := s.CreateClient(ctx, &Client{ID: "c5", AuthMethod: "none", RedirectURIs: []string{"https://x/cb"}, CreatedAt: t0})
		if !errors.Is(err, ErrFull) {
			t.Fatalf("registering with every client used: %v, want ErrFull", err)
		}
		if _, err := s.Client(ctx, "c5"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("refused client stored: %v", err)
		}
		if st, err := s.Stats(ctx, t0); err != nil || st.Clients != 3 {
			t.Fatalf("Stats = %+v, %v; want 3 clients", st, err)
		}
	})
}

// TestCleanupNeverUsedClients: never-used clients go after the TTL; used
// ones stay; a zero TTL keeps them.
func TestCleanupNeverUsedClients(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		now := time.Now()
		seedClient(t, s, "unused", now)
		seedCode(t, s, "code", now.Add(48*time.Hour)) // client "c", used
		later := now.Add(25 * time.Hour)
		if err := s.Cleanup(ctx, later, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Client(ctx, "unused"); err != nil {
			t.Fatalf("zero TTL deleted a never-used client: %v", err)
		}
		if err := s.Cleanup(ctx, now.Add(time.Hour), 24*time.Hour); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Client(ctx, "unused"); err != nil {
			t.Fatalf("never-used client deleted before its TTL: %v", err)
		}
		if err := s.Cleanup(ctx, later, 24*time.Hour); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Client(ctx, "unused"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("never-used client kept after its TTL: %v", err)
		}
		if _, err := s.Client(ctx, "c"); err != nil {
			t.Fatalf("used client deleted: %v", err)
		}
	})
}

func newSignIn(id, browser, addr string, now time.Time) *SignIn {
	return &SignIn{IDHash: hashOf(id), BrowserHash: hashOf(browser), AddrKey: addr, ClientID: "c", ClientName: "App",
		RedirectURI: "https://x/cb", State: "st-" + id, HasState: true, CodeChallenge: "ch", Scope: "mcp",
		Resource: "https://h/mcp", CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute)}
}

// TestSignIns: a pending sign-in is taken once, by its browser, before it
// expires.
func TestSignIns(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		now := time.UnixMilli(time.Now().UnixMilli())
		want := newSignIn("one", "browser", "192.0.2.1", now)
		if err := s.CreateSignIn(ctx, want); err != nil {
			t.Fatal(err)
		}
		if _, err := s.TakeSignIn(ctx, hashOf("one"), hashOf("other browser"), now); !errors.Is(err, ErrNotFound) {
			t.Fatalf("taken by another browser: %v", err)
		}
		got, err := s.TakeSignIn(ctx, hashOf("one"), hashOf("browser"), now)
		if err != nil {
			t.Fatalf("taken by its browser after another browser tried: %v", err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) || !got.ExpiresAt.Equal(want.ExpiresAt) {
			t.Fatalf("sign-in read back:\n got %+v\nwant %+v", got, want)
		}
		if _, err := s.TakeSignIn(ctx, hashOf("one"), hashOf("browser"), now); !errors.Is(err, ErrNotFound) {
			t.Fatalf("taken twice: %v", err)
		}
		if err := s.CreateSignIn(ctx, newSignIn("two", "browser", "192.0.2.1", now)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.TakeSignIn(ctx, hashOf("two"), hashOf("browser"), now.Add(10*time.Minute)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("taken after expiry: %v", err)
		}
		if err := s.Cleanup(ctx, now.Add(10*time.Minute), 0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.TakeSignIn(ctx, hashOf("two"), hashOf("browser"), now); !errors.Is(err, ErrNotFound) {
			t.Fatalf("expired sign-in kept by cleanup: %v", err)
		}
	})
}

// TestSignInBounds: a flood from one address or one browser evicts its own
// oldest pending sign-ins, never another's; the global bound evicts the
// oldest overall.
func TestSignInBounds(t *testing.T) {
	lim := Limits{SignIns: 5, SignInsPerAddr: 3, SignInsPerBrowser: 2}
	type signIn struct{ id, browser, addr string }
	for _, tc := range []struct {
		name  string
		flood []signIn
		gone  []string // evicted, in order of creation
	}{
		{"one address, many browsers", []signIn{
			{"a0", "b0", "192.0.2.1"}, {"a1", "b1", "192.0.2.1"}, {"a2", "b2", "192.0.2.1"}, {"a3", "b3", "192.0.2.1"},
		}, []string{"a0"}},
		{"one browser, many addresses", []signIn{
			{"x0", "flood", "203.0.113.0"}, {"x1", "flood", "203.0.113.1"}, {"x2", "flood", "203.0.113.2"},
		}, []string{"x0"}},
		{"everyone", []signIn{
			{"g0", "gb0", "233.252.0.0"}, {"g1", "gb1", "233.252.0.1"}, {"g2", "gb2", "233.252.0.2"},
			{"g3", "gb3", "233.252.0.3"}, {"g4", "gb4", "233.252.0.4"},
		}, []string{"victim"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachEngineWith(t, Options{Limits: lim}, func(t *testing.T, s Store) {
				ctx := t.Context()
				now := time.Now()
				all := append([]signIn{{"victim", "victim-browser", "198.51.100.7"}}, tc.flood...)
				for _, si := range all {
					if err := s.CreateSignIn(ctx, newSignIn(si.id, si.browser, si.addr, now)); err != nil {
						t.Fatal(err)
					}
				}
				for _, si := range all {
					_, err := s.TakeSignIn(ctx, hashOf(si.id), hashOf(si.browser), now)
					if err != nil && !errors.Is(err, ErrNotFound) {
						t.Fatal(err)
					}
					if live, want := err == nil, !slices.Contains(tc.gone, si.id); live != want {
						t.Errorf("sign-in %s: live=%v, want %v", si.id, live, want)
					}
				}
			})
		})
	}
}

// TestThrottle: fixed windows, Allow never overshoots, Undo, Reset,
// Blocked, Add, and keys that are arbitrary strings.
func TestThrottle(t *testing.T) {
	l := Limit{Name: "test", Max: 3, Window: time.Minute}
	forEachEngine(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		t0 := time.UnixMilli(time.Now().UnixMilli())
		key := "alice\x00192.0.2.1" // keys may hold any byte
		for i := range 3 {
			if _, ok, err := s.Allow(ctx, l, key, t0); !ok || err != nil {
				t.Fatalf("attempt %d refused: %v", i+1, err)
			}
		}
		if _, b, _ := s.Blocked(ctx, l, "alice\x00192.0.2.2", t0); b {
			t.Fatal("another key is blocked")
		}
		retry, ok, err := s.Allow(ctx, l, key, t0.Add(10*time.Second))
		if ok || err != nil || retry != 50*time.Second {
			t.Fatalf("4th attempt: ok=%v retry=%v err=%v; want refused, retry 50s", ok, retry, err)
		}
		if d, b, err := s.Blocked(ctx, l, key, t0.Add(20*time.Second)); !b || d != 40*time.Second || err != nil {
			t.Fatalf("Blocked = %v, %v, %v; want true, 40s", d, b, err)
		}
		// The window is fixed: it ends a minute after the first event.
		if _, ok, _ := s.Allow(ctx, l, key, t0.Add(time.Minute)); !ok {
			t.Fatal("refused in a new window")
		}
		// Undo takes an attempt back.
		s.Allow(ctx, l, key, t0.Add(time.Minute))
		s.Allow(ctx, l, key, t0.Add(time.Minute))
		if err := s.Undo(ctx, l, key, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := s.Allow(ctx, l, key, t0.Add(time.Minute)); !ok {
			t.Fatal("undo did not give the attempt back")
		}
		if _, ok, _ := s.Allow(ctx, l, key, t0.Add(time.Minute)); ok {
			t.Fatal("allowed past the limit after an undo")
		}
		if err := s.Reset(ctx, l, key); err != nil {
			t.Fatal(err)
		}
		if _, b, _ := s.Blocked(ctx, l, key, t0.Add(time.Minute)); b {
			t.Fatal("blocked after reset")
		}
		// Add counts without checking; Blocked sees it.
		for range 3 {
			if err := s.Add(ctx, l, "guesser", t0); err != nil {
				t.Fatal(err)
			}
		}
		if _, b, _ := s.Blocked(ctx, l, "guesser", t0); !b {
			t.Fatal("not blocked after Max events")
		}
		// The same key under another rule is another counter.
		if _, b, _ := s.Blocked(ctx, Limit{Name: "other", Max: 3, Window: time.Minute}, "guesser", t0); b {
			t.Fatal("rules share counters")
		}
		if err := s.Cleanup(ctx, t0.Add(time.Minute), 0); err != nil {
			t.Fatal(err)
		}
		if _, b, _ := s.Blocked(ctx, l, "guesser", t0); b {
			t.Fatal("an ended window survived cleanup")
		}
	})
}

// TestThrottleConcurrent: parallel attempts never overshoot the limit.
func TestThrottleConcurrent(t *testing.T) {
	l := Limit{Name: "parallel", Max: 10, Window: time.Hour}
	forEachEngine(t, func(t *testing.T, s Store) {
		now := time.Now()
		const n = 40
		var wg sync.WaitGroup
		var mu sync.Mutex
		allowed := 0
		start := make(chan struct{})
		for range n {
			wg.Go(func() {
				<-start
				_, ok, err := s.Allow(context.Background(), l, "k", now)
				if err != nil {
					t.Error(err)
				}
				if ok {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			})
		}
		close(start)
		wg.Wait()
		if allowed != l.Max {
			t.Fatalf("%d of %d parallel attempts allowed, want exactly %d", allowed, n, l.Max)
		}
	})
}

// TestThrottleEviction: at the key cap the least recently seen keys go,
// but a locked key survives any flood of new keys.
func TestThrottleEviction(t *testing.T) {
	l := Limit{Name: "lru", Max: 2, Window: time.Hour}
	forEachEngineWith(t, Options{Limits: Limits{ThrottleKeys: 4}}, func(t *testing.T, s Store) {
		ctx := t.Context()
		t0 := time.Now()
		// The oldest key is locked out.
		s.Add(ctx, l, "locked", t0)
		s.Add(ctx, l, "locked", t0)
		s.Add(ctx, l, "counted", t0.Add(time.Millisecond))
		for i := range 20 {
			if _, _, err := s.Allow(ctx, l, fmt.Sprint("flood-", i), t0.Add(time.Duration(2+i)*time.Millisecond)); err != nil {
				t.Fatal(err)
			}
		}
		if _, b, _ := s.Blocked(ctx, l, "locked", t0.Add(time.Second)); !b {
			t.Fatal("a flood of new keys lifted a lockout")
		}
		// "counted" (one event, not locked) was evicted: it may try twice.
		s.Add(ctx, l, "counted", t0.Add(time.Second))
		if _, b, _ := s.Blocked(ctx, l, "counted", t0.Add(time.Second)); b {
			t.Fatal("an unlocked old key was not evicted")
		}
		if _, b, _ := s.Blocked(ctx, l, "flood-19", t0.Add(time.Second)); b {
			t.Fatal("the newest key is blocked")
		}
	})
}

// TestSessions: MCP sessions are owned, touched at most once a minute,
// expire when idle and are capped per user (evicting revokes nothing).
func TestSessions(t *testing.T) {
	forEachEngineWith(t, Options{Limits: Limits{SessionsPerUser: 2}}, func(t *testing.T, s Store) {
		ctx := t.Context()
		t0 := time.Now()
		if err := s.CreateSession(ctx, hashOf("s1"), "alice", t0); err != nil {
			t.Fatal(err)
		}
		if u, err := s.Session(ctx, hashOf("s1"), t0); u != "alice" || err != nil {
			t.Fatalf("Session = %q, %v", u, err)
		}
		if _, err := s.Session(ctx, hashOf("never issued"), t0); !errors.Is(err, ErrNotFound) {
			t.Fatalf("never-issued session: %v", err)
		}
		// Used 20 minutes later, then idle: it lives 30 minutes past that use.
		if err := s.TouchSession(ctx, hashOf("s1"), t0.Add(20*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Session(ctx, hashOf("s1"), t0.Add(45*time.Minute)); err != nil {
			t.Fatalf("session idle for 25 minutes: %v", err)
		}
		if _, err := s.Session(ctx, hashOf("s1"), t0.Add(50*time.Minute)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("session idle for 30 minutes: %v", err)
		}
		// A touch within a minute of the last one is not recorded.
		s.CreateSession(ctx, hashOf("s2"), "alice", t0)
		s.TouchSession(ctx, hashOf("s2"), t0.Add(30*time.Second))
		if _, err := s.Session(ctx, hashOf("s2"), t0.Add(SessionIdle+20*time.Second)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("a touch within a minute was recorded: %v", err)
		}
		// The cap (2) ends the user's least recently used session,
		// without moving the revocation epoch: evicting is not revoking.
		s.CreateSession(ctx, hashOf("c1"), "carol", t0)
		s.CreateSession(ctx, hashOf("c2"), "carol", t0)
		s.TouchSession(ctx, hashOf("c1"), t0.Add(2*time.Minute))
		before, err := s.Epoch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		s.CreateSession(ctx, hashOf("c3"), "carol", t0.Add(3*time.Minute))
		if after, err := s.Epoch(ctx); after != before || err != nil {
			t.Errorf("evicting a session moved the epoch from %d to %d (%v)", before, after, err)
		}
		s.CreateSession(ctx, hashOf("b1"), "bob", t0.Add(3*time.Minute))
		at := t0.Add(4 * time.Minute)
		for id, want := range map[string]string{"c1": "carol", "c2": "", "c3": "carol", "b1": "bob"} {
			u, err := s.Session(ctx, hashOf(id), at)
			if u != want || (want == "") != errors.Is(err, ErrNotFound) {
				t.Errorf("session %s: %q, %v; want %q", id, u, err, want)
			}
		}
		if ok, err := s.EndSession(ctx, hashOf("c3")); !ok || err != nil {
			t.Fatalf("EndSession = %v, %v", ok, err)
		}
		if ok, _ := s.EndSession(ctx, hashOf("c3")); ok {
			t.Fatal("ended twice")
		}
		if _, err := s.Session(ctx, hashOf("c3"), at); !errors.Is(err, ErrNotFound) {
			t.Fatalf("ended session: %v", err)
		}
	})
}

// TestWebSessions: account-page sessions live until they expire or end.
func TestWebSessions(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		now := time.UnixMilli(time.Now().UnixMilli())
		ws := &WebSession{IDHash: hashOf("w"), User: "alice", Stamp: "s", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := s.CreateWebSession(ctx, ws); err != nil {
			t.Fatal(err)
		}
		got, err := s.WebSession(ctx, hashOf("w"), now)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(ws) {
			t.Fatalf("WebSession = %+v, %v; want %+v", got, err, ws)
		}
		if _, err := s.WebSession(ctx, hashOf("w"), now.Add(time.Hour)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("expired web session: %v", err)
		}
		if err := s.EndWebSession(ctx, hashOf("w")); err != nil {
			t.Fatal(err)
		}
		if _, err := s.WebSession(ctx, hashOf("w"), now); !errors.Is(err, ErrNotFound) {
			t.Fatalf("ended web session: %v", err)
		}
	})
}

// seedGrant creates client clientID (named after it) and a grant of user
// with one token pair; it returns the grant and the pair.
func seedGrant(t *testing.T, s Store, id, clientID, user, stamp string, now time.Time) (*Grant, *Tokens) {
	t.Helper()
	ctx := t.Context()
	if _, err := s.Client(ctx, clientID); errors.Is(err, ErrNotFound) {
		if err := s.CreateClient(ctx, &Client{ID: clientID, AuthMethod: "none", RedirectURIs: []string{"https://" + clientID + "/cb"},
			Name: "Name of " + clientID, CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	c := &Code{Hash: hashOf("code-" + id), GrantID: id, ClientID: clientID, User: user, RedirectURI: "https://x/cb",
		CodeChallenge: "x", Scope: "mcp", Resource: "r", Stamp: stamp, ExpiresAt: now.Add(time.Minute)}
	if err := s.CreateCode(ctx, c, now); err != nil {
		t.Fatal(err)
	}
	p := pairFor(id)
	return redeem(t, s, c, p, now), p
}

// TestGrantsListAndRevoke: the operator's and the account page's view.
func TestGrantsListAndRevoke(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		t0 := time.UnixMilli(time.Now().UnixMilli())
		seedGrant(t, s, "g1", "app1", "alice", "s", t0)
		seedGrant(t, s, "g2", "app2", "alice", "s", t0.Add(time.Second))
		_, p3 := seedGrant(t, s, "g3", "app1", "bob", "s", t0.Add(2*time.Second))
		if err := s.TouchGrant(ctx, "g2", t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		ids := func(f GrantFilter) string {
			t.Helper()
			gs, err := s.Grants(ctx, f, t0.Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, g := range gs {
				out = append(out, g.ID)
			}
			return fmt.Sprint(out)
		}
		for _, tc := range []struct {
			f    GrantFilter
			want string
		}{
			{GrantFilter{}, "[g1 g2 g3]"},
			{GrantFilter{User: "alice"}, "[g1 g2]"},
			{GrantFilter{ClientID: "app1"}, "[g1 g3]"},
			{GrantFilter{User: "alice", ClientID: "app1"}, "[g1]"},
			{GrantFilter{ID: "g3"}, "[g3]"},
			{GrantFilter{User: "carol"}, "[]"},
		} {
			if got := ids(tc.f); got != tc.want {
				t.Errorf("Grants(%+v) = %s, want %s", tc.f, got, tc.want)
			}
		}
		gs, _ := s.Grants(ctx, GrantFilter{ID: "g2"}, t0)
		if len(gs) != 1 {
			t.Fatal(gs)
		}
		g := gs[0]
		if g.ClientName != "Name of app2" || fmt.Sprint(g.RedirectURIs) != "[https://app2/cb]" || g.User != "alice" ||
			!g.CreatedAt.Equal(t0.Add(time.Second)) || !g.LastUsedAt.Equal(t0.Add(time.Minute)) || g.ExpiresAt.IsZero() {
			t.Errorf("grant info: %+v", g)
		}

		if _, err := s.RevokeGrants(ctx, GrantFilter{}, t0); err == nil {
			t.Fatal("revoked with an empty filter")
		}
		if n, err := s.RevokeGrants(ctx, GrantFilter{ClientID: "app1"}, t0); n != 2 || err != nil {
			t.Fatalf("revoke by client: %d, %v", n, err)
		}
		if _, err := s.LookupAccess(ctx, p3.AccessHash, t0); !errors.Is(err, ErrNotFound) {
			t.Fatalf("token of a revoked grant: %v", err)
		}
		if got := ids(GrantFilter{}); got != "[g2]" {
			t.Fatalf("after revoking app1: %s", got)
		}
		if n, err := s.RevokeGrants(ctx, GrantFilter{User: "alice"}, t0); n != 1 || err != nil {
			t.Fatalf("revoke by user: %d, %v", n, err)
		}
		if n, err := s.RevokeGrants(ctx, GrantFilter{ID: "g2"}, t0); n != 0 || err != nil {
			t.Fatalf("revoke a revoked grant: %d, %v", n, err)
		}
	})
}

// TestDeleteGrants: a removed user's grants, or those of a changed
// password, are deleted for good, with their codes and sessions.
func TestDeleteGrants(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		now := time.Now()
		_, alice := seedGrant(t, s, "ga", "app", "alice", "a1", now)
		_, bob := seedGrant(t, s, "gb", "app", "bob", "b1", now)
		_, bobOld := seedGrant(t, s, "gb0", "app", "bob", "b0", now)
		_, carol := seedGrant(t, s, "gc", "app", "carol", "c1", now)
		s.CreateSession(ctx, hashOf("alice-session"), "alice", now)
		s.CreateSession(ctx, hashOf("carol-session"), "carol", now)

		// alice removed (her stamp a1 goes); bob's password changed from
		// b0 (b0 grants go, b1 stay).
		for _, del := range [][2]string{{"alice", "a1"}, {"bob", "b0"}} {
			if n, err := s.DeleteStampGrants(ctx, del[0], del[1]); n != 1 || err != nil {
				t.Fatalf("DeleteStampGrants(%s, %s) = %d, %v; want 1", del[0], del[1], n, err)
			}
		}
		for _, tc := range []struct {
			name string
			p    *Tokens
			live bool
		}{{"alice", alice, false}, {"bob", bob, true}, {"bob's old password", bobOld, false}, {"carol", carol, true}} {
			_, errA := s.LookupAccess(ctx, tc.p.AccessHash, now)
			_, errR := s.Refresh(ctx, tc.p.RefreshHash)
			if (errA == nil) != tc.live || (errR == nil) != tc.live {
				t.Errorf("%s: access %v, refresh %v; want live=%v (deleted, not merely revoked)", tc.name, errA, errR, tc.live)
			}
		}
		if _, err := s.Session(ctx, hashOf("carol-session"), now); err != nil {
			t.Errorf("kept user's session: %v", err)
		}
		if n, err := s.DeleteStampGrants(ctx, "alice", "a1"); n != 0 || err != nil {
			t.Fatalf("second DeleteStampGrants = %d, %v; want 0 (idempotent)", n, err)
		}
		if n, err := s.DeleteUserGrants(ctx, "carol"); n != 1 || err != nil {
			t.Fatalf("DeleteUserGrants = %d, %v", n, err)
		}
		if _, err := s.Refresh(ctx, carol.RefreshHash); !errors.Is(err, ErrNotFound) {
			t.Errorf("carol's refresh token after DeleteUserGrants: %v", err)
		}
		if _, err := s.Session(ctx, hashOf("carol-session"), now); !errors.Is(err, ErrNotFound) {
			t.Errorf("carol's session after DeleteUserGrants: %v", err)
		}
	})
}

// TestRevocationEpoch: every revoking write moves the epoch in its own
// transaction; nothing else does.
func TestRevocationEpoch(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		now := time.Now()
		epoch := func() uint64 {
			t.Helper()
			n, err := s.Epoch(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		step := 0
		seed := func() (*Grant, *Tokens) {
			step++
			return seedGrant(t, s, fmt.Sprint("g", step), "app", "alice", "s", now)
		}
		for _, tc := range []struct {
			name    string
			do      func()
			revokes bool
		}{
			{"issue tokens", func() { seed() }, false},
			{"list and touch grants", func() {
				g, _ := seed()
				s.TouchGrant(ctx, g.ID, now)
				s.Grants(ctx, GrantFilter{}, now)
			}, false},
			{"rotate a refresh token", func() {
				_, p := seed()
				s.RotateRefresh(ctx, p.RefreshHash, pairFor("next"), time.Minute, now)
			}, false},
			{"revoke an access token", func() {
				_, p := seed()
				s.RevokeToken(ctx, p.AccessHash, "app", now)
			}, true},
			{"revoke a refresh token", func() {
				_, p := seed()
				s.RevokeToken(ctx, p.RefreshHash, "app", now)
			}, true},
			{"revoke a grant", func() {
				g, _ := seed()
				s.RevokeGrant(ctx, g.ID, now)
			}, true},
			{"reuse a refresh token", func() {
				_, p := seed()
				next := pairFor(fmt.Sprint("next", step))
				s.RotateRefresh(ctx, p.RefreshHash, next, time.Minute, now)
				s.RotateRefresh(ctx, next.RefreshHash, pairFor(fmt.Sprint("next2", step)), time.Minute, now)
				s.RotateRefresh(ctx, p.RefreshHash, next, time.Minute, now)
			}, true},
			{"revoke grants", func() {
				seed()
				s.RevokeGrants(ctx, GrantFilter{User: "alice"}, now)
			}, true},
			{"delete a user's grants", func() {
				seed()
				s.DeleteUserGrants(ctx, "alice")
			}, true},
			{"delete a stamp's grants", func() {
				seed()
				s.DeleteStampGrants(ctx, "alice", "s")
			}, true},
			{"end a session", func() {
				s.CreateSession(ctx, hashOf(fmt.Sprint("sess", step)), "alice", now)
				s.EndSession(ctx, hashOf(fmt.Sprint("sess", step)))
			}, true},
			{"end a web session", func() {
				s.CreateWebSession(ctx, &WebSession{IDHash: hashOf("web"), User: "alice", CreatedAt: now, ExpiresAt: now.Add(time.Hour)})
				s.EndWebSession(ctx, hashOf("web"))
			}, true},
		} {
			before := epoch()
			tc.do()
			if moved := epoch() > before; moved != tc.revokes {
				t.Errorf("%s: epoch moved=%v, want %v", tc.name, moved, tc.revokes)
			}
		}
	})
}

// TestReplicas: acknowledgements, and who counts as lagging.
func TestReplicas(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		lagging := func(self string, epoch uint64) int {
			t.Helper()
			n, err := s.Lagging(ctx, self, epoch, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		if err := s.Ack(ctx, "r1", 5); err != nil {
			t.Fatal(err)
		}
		if err := s.Ack(ctx, "r2", 3); err != nil {
			t.Fatal(err)
		}
		if n := lagging("r1", 5); n != 1 {
			t.Errorf("lagging behind 5 (as r1) = %d, want 1 (r2)", n)
		}
		if n := lagging("r2", 5); n != 0 {
			t.Errorf("lagging behind 5 (as r2) = %d, want 0 (self excluded)", n)
		}
		// An acknowledgement never goes backwards.
		s.Ack(ctx, "r1", 2)
		if n := lagging("r2", 4); n != 0 {
			t.Errorf("r1 went back to epoch 2")
		}
		// Replicas not seen within the lease are not waited for.
		if n, err := s.Lagging(ctx, "r1", 10, 0); n != 0 || err != nil {
			t.Errorf("with no lease: %d, %v", n, err)
		}
		if err := s.LeaveReplica(ctx, "r2"); err != nil {
			t.Fatal(err)
		}
		if n := lagging("r1", 5); n != 0 {
			t.Errorf("a replica that left is waited for")
		}
	})
}

// TestRotateRefreshConcurrent: 20 parallel rotations of one refresh token
// (each naming the same successor, as the server derives it) continue one
// chain: one rotation, the others retries within the grace; without a
// grace, the first of the others is reuse, which revokes the chain, and
// the rest find it dead.
func TestRotateRefreshConcurrent(t *testing.T) {
	for _, tc := range []struct {
		name   string
		grace  time.Duration
		others Rotation
	}{
		{"within grace", time.Minute, Retried},
		{"no grace", -1, Reused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachEngine(t, func(t *testing.T, s Store) {
				ctx := t.Context()
				now := time.Now()
				c := seedCode(t, s, "code", now.Add(time.Minute))
				first := pairFor("first")
				redeem(t, s, c, first, now)

				const n = 20
				outs := make([]Rotation, n)
				errs := make([]error, n)
				var wg sync.WaitGroup
				start := make(chan struct{})
				for i := range n {
					wg.Go(func() {
						<-start
						next := pairFor("next") // the derived successor
						next.AccessHash = hashOf(fmt.Sprint("access-", i))
						outs[i], errs[i] = s.RotateRefresh(context.Background(), first.RefreshHash, next, tc.grace, now)
					})
				}
				close(start)
				wg.Wait()
				count := map[Rotation]int{}
				for i := range n {
					if errs[i] != nil {
						t.Errorf("rotation %d: %v", i, errs[i])
					}
					count[outs[i]]++
				}
				want := map[Rotation]int{Rotated: 1, Retried: n - 1}
				if tc.others == Reused {
					want = map[Rotation]int{Rotated: 1, Reused: 1, Dead: n - 2}
				}
				if fmt.Sprint(count) != fmt.Sprint(want) {
					t.Fatalf("outcomes %v, want %v", count, want)
				}
				succ, err := s.Refresh(ctx, pairFor("next").RefreshHash)
				if err != nil {
					t.Fatalf("successor: %v", err)
				}
				if succ.Revoked != (tc.others == Reused) {
					t.Fatalf("successor revoked=%v", succ.Revoked)
				}
			})
		})
	}
}
