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
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// testEngine opens fresh, empty databases of one engine.
type testEngine struct {
	name string
	// open returns a Store on a new database, closed when t ends.
	open func(t *testing.T, opts Options) Store
}

// testEngines lists the engines the suite runs on.
func testEngines() []testEngine {
	return []testEngine{
		{"sqlite", openTestSQLite},
	}
}

// openTestSQLite opens a SQLite file in t's temporary directory.
func openTestSQLite(t *testing.T, opts Options) Store {
	t.Helper()
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "auth.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
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
func seedClient(t *testing.T, s Store, id string, created time.Time) {
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
func seedCode(t *testing.T, s Store, raw string, expires time.Time) *Code {
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
func redeem(t *testing.T, s Store, c *Code, pair *Tokens, now time.Time) *Grant {
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
		if n, err := s.CountClients(ctx); err != nil || n != 2 {
			t.Errorf("CountClients = %d, %v; want 2", n, err)
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

		if err := s.Cleanup(ctx, now.Add(10*time.Second)); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Code(ctx, c.Hash); err != nil || !got.Used {
			t.Fatalf("consumed code removed before expiry: %v, %v", got, err)
		}
		if _, err := s.LookupAccess(ctx, p.AccessHash, now.Add(10*time.Second)); err != nil {
			t.Fatalf("live access token removed: %v", err)
		}

		later := now.Add(45 * time.Second) // access token expired, code not
		if err := s.Cleanup(ctx, later); err != nil {
			t.Fatal(err)
		}
		if _, err := s.LookupAccess(ctx, p.AccessHash, now); !errors.Is(err, ErrNotFound) {
			t.Fatal("expired access token kept")
		}
		if _, err := s.Refresh(ctx, p.RefreshHash); err != nil {
			t.Fatalf("live refresh token removed: %v", err)
		}

		if err := s.Cleanup(ctx, now.Add(2*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Code(ctx, c.Hash); !errors.Is(err, ErrNotFound) {
			t.Fatalf("expired code kept: %v", err)
		}

		if err := s.RevokeGrant(ctx, g.ID, now); err != nil {
			t.Fatal(err)
		}
		if err := s.Cleanup(ctx, now.Add(2*time.Minute)); err != nil {
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

		if err := s.Cleanup(ctx, now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Client(ctx, "idle"); err != nil {
			t.Fatalf("idle client deleted before clientIdleTTL: %v", err)
		}
		if err := s.Cleanup(ctx, later); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Client(ctx, "idle"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("idle client kept after clientIdleTTL: %v", err)
		}
		if _, err := s.Client(ctx, "used"); err != nil {
			t.Fatalf("client with a live grant deleted: %v", err)
		}
		if n, err := s.CountClients(ctx); err != nil || n != 1 {
			t.Fatalf("CountClients = %d, %v; want 1", n, err)
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
