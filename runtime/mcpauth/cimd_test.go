package mcpauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestPublicAddr(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"8.8.8.8", true},
		{"1.1.1.1", true},
		{"2606:4700::1111", true},
		{"127.0.0.1", false},
		{"127.5.6.7", false},
		{"10.1.2.3", false},
		{"172.16.0.1", false},
		{"192.168.1.1", false},
		{"169.254.169.254", false}, // cloud metadata
		{"100.64.0.1", false},
		{"0.0.0.0", false},
		{"0.1.2.3", false},
		{"224.0.0.1", false},
		{"255.255.255.255", false},
		{"198.18.0.1", false},
		{"192.0.2.1", false},
		{"::1", false},
		{"::", false},
		{"fe80::1", false},
		{"fc00::1", false},
		{"fd12:3456::1", false},
		{"::ffff:127.0.0.1", false},
		{"::ffff:10.0.0.1", false},
		{"64:ff9b::a00:1", false}, // NAT64 of 10.0.0.1
		{"2002:a00:1::1", false},  // 6to4 of 10.0.0.1
		{"2001:db8::1", false},
		{"ff02::1", false},
	} {
		if got := publicAddr(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("publicAddr(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
}

// TestCIMDRefusesNonPublicAddress: without the test option, a metadata URL
// whose name resolves to loopback is never contacted, even over https.
func TestCIMDRefusesNonPublicAddress(t *testing.T) {
	var hits atomic.Int32
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
	}))
	defer ts.Close()
	f := newCIMDFetcher(false, time.Now)
	f.anyPort = true // the test server is not on 443; the address check must refuse it anyway
	for _, id := range []string{
		strings.Replace(ts.URL, "127.0.0.1", "localhost", 1) + "/client.json",
		ts.URL + "/client.json",
	} {
		_, _, err := f.get(t.Context(), id, "203.0.113.7")
		if !errors.Is(err, errNotPublic) {
			t.Errorf("get(%s) = %v, want errNotPublic", id, err)
		}
	}
	if _, _, err := f.get(t.Context(), "http://127.0.0.1:1/client.json", "203.0.113.7"); err == nil {
		t.Error("plain http metadata URL accepted without the test option")
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the loopback server was contacted %d times", n)
	}
}

// docServer serves metadata documents by path for the tests below.
func docServer(t *testing.T, docs map[string]func(w http.ResponseWriter, url string)) (base string, hits *atomic.Int32) {
	t.Helper()
	hits = new(atomic.Int32)
	var ts *httptest.Server
	ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		h, ok := docs[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h(w, ts.URL+r.URL.Path)
	}))
	t.Cleanup(ts.Close)
	return ts.URL, hits
}

func jsonDoc(cacheControl, format string) func(w http.ResponseWriter, url string) {
	return func(w http.ResponseWriter, url string) {
		if cacheControl != "" {
			w.Header().Set("Cache-Control", cacheControl)
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, format, url)
	}
}

func TestCIMDDocumentRules(t *testing.T) {
	const good = `{"client_id":%q,"client_name":"Doc App","redirect_uris":["http://localhost/callback"]}`
	base, _ := docServer(t, map[string]func(http.ResponseWriter, string){
		"/good.json":     jsonDoc("", good),
		"/mismatch.json": jsonDoc("", `{"client_id":"https://other.example/x%.0s","redirect_uris":["https://a.example/cb"]}`),
		"/secret.json":   jsonDoc("", `{"client_id":%q,"client_secret":"s","redirect_uris":["https://a.example/cb"]}`),
		"/basic.json":    jsonDoc("", `{"client_id":%q,"token_endpoint_auth_method":"client_secret_basic","redirect_uris":["https://a.example/cb"]}`),
		"/js.json":       jsonDoc("", `{"client_id":%q,"redirect_uris":["javascript:alert(1)"]}`),
		"/none.json":     jsonDoc("", `{"client_id":%q}`),
		"/notjson.json":  jsonDoc("", `<html>%s</html>`),
		"/big.json": func(w http.ResponseWriter, url string) {
			fmt.Fprintf(w, `{"client_id":%q,"redirect_uris":["https://a.example/cb"],"pad":"%s"}`, url, strings.Repeat("x", 6000))
		},
		"/redirect.json": func(w http.ResponseWriter, url string) {
			w.Header().Set("Location", strings.Replace(url, "redirect", "good", 1))
			w.WriteHeader(http.StatusFound)
		},
		"/": jsonDoc("", good),
	})
	f := newCIMDFetcher(true, time.Now)
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{"/good.json", true},
		{"/mismatch.json", false},
		{"/secret.json", false},
		{"/basic.json", false},
		{"/js.json", false},
		{"/none.json", false},
		{"/notjson.json", false},
		{"/big.json", false},
		{"/redirect.json", false},
		{"/missing.json", false},
		{"/", false}, // no path
		{"/a/../good.json", false},
	} {
		t.Run(tc.path, func(t *testing.T) {
			id := base + tc.path
			c, _, err := f.get(t.Context(), id, "203.0.113.7")
			if tc.ok != (err == nil) {
				t.Fatalf("get(%s) = %+v, %v; want ok=%v", tc.path, c, err, tc.ok)
			}
			if err != nil {
				return
			}
			if c.ID != id || !c.Metadata || c.SecretHash != nil || c.AuthMethod != "none" || c.Name != "Doc App" {
				t.Fatalf("client from document: %+v", c)
			}
		})
	}
}

func TestCIMDCache(t *testing.T) {
	const doc = `{"client_id":%q,"redirect_uris":["https://a.example/cb"]}`
	base, hits := docServer(t, map[string]func(http.ResponseWriter, string){
		"/maxage.json":  jsonDoc("public, max-age=60", doc),
		"/nostore.json": jsonDoc("no-store", doc),
		"/plain.json":   jsonDoc("", doc),
	})
	for _, tc := range []struct {
		path    string
		advance time.Duration // between the second and third get
		want    int32         // fetches for three gets
	}{
		{"/maxage.json", 61 * time.Second, 2},
		{"/maxage.json", 30 * time.Second, 1},
		{"/nostore.json", 0, 3},
		{"/plain.json", time.Minute, 1},
		{"/plain.json", 6 * time.Minute, 2},
	} {
		t.Run(fmt.Sprintf("%s+%v", tc.path, tc.advance), func(t *testing.T) {
			now := time.Now()
			f := newCIMDFetcher(true, func() time.Time { return now })
			hits.Store(0)
			for i := range 3 {
				if i == 2 {
					now = now.Add(tc.advance)
				}
				if _, _, err := f.get(t.Context(), base+tc.path, "203.0.113.7"); err != nil {
					t.Fatal(err)
				}
			}
			if got := hits.Load(); got != tc.want {
				t.Fatalf("%d fetches, want %d", got, tc.want)
			}
		})
	}
}

// TestCIMDFailuresCachedApart: what any stranger can cause (malformed
// URLs, failed fetches) never pushes a working document out of the cache;
// a malformed URL is not fetched, cached or reported as fetched; a failed
// fetch is reported as fetched once, then served from the cache.
func TestCIMDFailuresCachedApart(t *testing.T) {
	const doc = `{"client_id":%q,"redirect_uris":["https://a.example/cb"]}`
	base, hits := docServer(t, map[string]func(http.ResponseWriter, string){"/good.json": jsonDoc("", doc)})
	f := newCIMDFetcher(true, time.Now)
	const addr = "203.0.113.7"
	if _, fetched, err := f.get(t.Context(), base+"/good.json", addr); err != nil || !fetched {
		t.Fatalf("first get of the document: fetched %v, %v", fetched, err)
	}
	malformed := "https://x.invalid/" + strings.Repeat("a", 7000)
	for range 3 {
		if _, fetched, err := f.get(t.Context(), malformed, addr); err == nil || fetched {
			t.Fatalf("malformed URL: fetched %v, %v; want a refusal without a fetch", fetched, err)
		}
	}
	for i := range maxMetadataCache + 10 {
		_, fetched, err := f.get(t.Context(), fmt.Sprintf("%s/missing-%d.json", base, i), addr)
		if err == nil || !fetched {
			t.Fatalf("missing document %d: fetched %v, %v; want a fetch that fails", i, fetched, err)
		}
	}
	if _, fetched, err := f.get(t.Context(), base+"/missing-1009.json", addr); err == nil || fetched {
		t.Errorf("a failure just cached: fetched %v, %v; want the cached failure", fetched, err)
	}
	before := hits.Load()
	if _, fetched, err := f.get(t.Context(), base+"/good.json", addr); err != nil || fetched {
		t.Errorf("the document after %d failures: fetched %v, %v; want it from the cache", maxMetadataCache+10, fetched, err)
	}
	if hits.Load() != before {
		t.Error("the document was fetched again: failures pushed it out of the cache")
	}
	f.mu.Lock()
	_, cached := f.failed.entries[malformed]
	f.mu.Unlock()
	if cached {
		t.Error("a malformed URL was cached")
	}
}

func TestCacheTTL(t *testing.T) {
	for _, tc := range []struct {
		cc   string
		want time.Duration
	}{
		{"", metadataDefaultTTL},
		{"max-age=120", 2 * time.Minute},
		{"public, max-age=0", 0},
		{"no-store", 0},
		{"max-age=999999999", metadataMaxTTL},
		{"max-age=bogus", 0},
	} {
		h := http.Header{}
		if tc.cc != "" {
			h.Set("Cache-Control", tc.cc)
		}
		if got := cacheTTL(h); got != tc.want {
			t.Errorf("cacheTTL(%q) = %v, want %v", tc.cc, got, tc.want)
		}
	}
}

// TestCIMDFetchesPerAddress: one client address that keeps fetches of
// documents on a stalled host under way cannot start more, while another
// address still gets its document; and a fetch refused as busy is not
// cached, so the attacker's own later fetch works once the flood is over.
func TestCIMDFetchesPerAddress(t *testing.T) {
	release := make(chan struct{})
	var stalled sync.WaitGroup
	slowBase, _ := docServer(t, map[string]func(http.ResponseWriter, string){
		"/slow.json": func(w http.ResponseWriter, url string) {
			<-release
			jsonDoc("", `{"client_id":%q,"redirect_uris":["https://a.example/cb"]}`)(w, url)
		},
	})
	goodBase, _ := docServer(t, map[string]func(http.ResponseWriter, string){
		"/good.json": jsonDoc("no-store", `{"client_id":%q,"redirect_uris":["https://a.example/cb"]}`),
	})
	f := newCIMDFetcher(true, time.Now)
	const attacker, other = "198.51.100.1", "198.51.100.2"
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	for i := range maxFetchingPerAddr {
		stalled.Go(func() { f.get(ctx, fmt.Sprintf("%s/slow.json?n=%d", slowBase, i), attacker) })
	}
	// Wait until the attacker's fetches are all under way.
	for deadline := time.Now().Add(10 * time.Second); ; {
		f.mu.Lock()
		n := f.addrs[attacker]
		f.mu.Unlock()
		if n == maxFetchingPerAddr {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of the attacker's fetches under way, want %d", n, maxFetchingPerAddr)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, _, err := f.get(t.Context(), goodBase+"/good.json", attacker); !errors.Is(err, errFetchBusy) {
		t.Errorf("one more fetch from the attacker's address: %v, want errFetchBusy", err)
	}
	if _, _, err := f.get(t.Context(), goodBase+"/good.json", other); err != nil {
		t.Errorf("another address's fetch while the attacker's stall: %v", err)
	}
	close(release)
	stalled.Wait()
	if _, _, err := f.get(t.Context(), goodBase+"/good.json", attacker); err != nil {
		t.Errorf("the attacker's address once its fetches ended: %v (a busy refusal was cached?)", err)
	}
	f.mu.Lock()
	left := len(f.addrs)
	f.mu.Unlock()
	if left != 0 {
		t.Errorf("%d addresses still counted after every fetch ended", left)
	}
}

// A document that was cached and expired, whose host then fails: the
// failure is remembered like any other, not fetched again on every request.
func TestCIMDFailureAfterExpiredDocument(t *testing.T) {
	var down atomic.Bool
	good := jsonDoc("", `{"client_id":%q,"redirect_uris":["https://a.example/cb"]}`)
	base, hits := docServer(t, map[string]func(http.ResponseWriter, string){
		"/app.json": func(w http.ResponseWriter, url string) {
			if down.Load() {
				http.Error(w, "down", http.StatusInternalServerError)
				return
			}
			good(w, url)
		},
	})
	var offset atomic.Int64
	f := newCIMDFetcher(true, func() time.Time { return time.Now().Add(time.Duration(offset.Load())) })
	const addr = "203.0.113.7"
	if _, fetched, err := f.get(t.Context(), base+"/app.json", addr); err != nil || !fetched {
		t.Fatalf("first get: fetched %v, %v", fetched, err)
	}
	offset.Add(int64(metadataDefaultTTL + time.Minute))
	down.Store(true)
	if _, fetched, err := f.get(t.Context(), base+"/app.json", addr); err == nil || !fetched {
		t.Fatalf("get after expiry, host down: fetched %v, %v; want a fetch that fails", fetched, err)
	}
	before := hits.Load()
	for range 3 {
		if _, fetched, err := f.get(t.Context(), base+"/app.json", addr); err == nil || fetched {
			t.Errorf("get again: fetched %v, %v; want the remembered failure", fetched, err)
		}
	}
	if n := hits.Load() - before; n != 0 {
		t.Errorf("the failing host was contacted %d more times within the failure's minute", n)
	}
}
