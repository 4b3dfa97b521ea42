package mcpauth

// OAuth Client ID Metadata Documents
// (draft-ietf-oauth-client-id-metadata-document-00), as the MCP
// authorization spec (2025-11-25 and later) uses them: a client_id that is
// an https URL with a path names a JSON document, published by the client,
// that describes it. The server fetches the document instead of requiring a
// registration.
//
// Fetching a URL a stranger chose is server-side request forgery waiting to
// happen, so the fetch:
//   - accepts only https URLs without userinfo, fragment or dot segments;
//   - dials only public addresses: the check runs on the address actually
//     dialed (net.Dialer.Control), after DNS resolution, so a name that
//     resolves (or rebinds) to a private, loopback, link-local or otherwise
//     special address is refused; no proxy from the environment is used;
//   - contacts only the default https port (443): a client_id cannot aim
//     the server at another service on a public host;
//   - follows no redirects, reads at most 5 KB, and gives up after 5 s,
//     counted from when the fetch has its slots: a failure that is
//     remembered is the remote host's own, never the wait for a slot;
//   - runs at most 4 fetches for one client address at a time. The only
//     fetch under way for an address waits for no slot; further ones take
//     one of 2 slots per host and of 32 in all (waiting at most 5 s), so a
//     host that stalls delays only the sign-ins of its own clients, and a
//     few addresses naming many stalling hosts, or stalling pages of an
//     app's own host, cannot make other addresses' sign-ins wait. A
//     failing document is remembered briefly, a fetch refused for want of
//     a slot is not;
//   - never shows the browser what the remote server answered (its status
//     or body): that would make this server a probe of other hosts.
//
// The document must be JSON whose client_id equals the URL exactly, with
// valid redirect_uris; it describes a public client (no secret, auth method
// none). Documents are cached as their Cache-Control max-age allows (at most
// a day; five minutes without caching headers; not at all with no-store).
// A full cache makes room at the expense of the address that filled it
// most (docCache).
//
// The authorization endpoint fetches (or takes from the cache) the document
// on every request; when the user approves, the client is recorded in the
// database, and the token and revocation endpoints use that record.
//
// Config.AllowLoopbackClientMetadata lifts the address check and also
// accepts http URLs on loopback hosts; it exists for tests only.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mcpgen/create-mcp-server/runtime/authstore"
)

// cimdSupported says whether client ID metadata documents are advertised.
const cimdSupported = true

const (
	maxMetadataDoc      = 5 << 10
	metadataTimeout     = 5 * time.Second
	metadataDefaultTTL  = 5 * time.Minute
	metadataMaxTTL      = 24 * time.Hour
	metadataFailureTTL  = time.Minute
	maxMetadataCache    = 1000
	maxMetadataFetching = 32 // in all
	maxFetchingPerHost  = 2
	maxFetchingPerAddr  = 4 // started by one client address (key), waiting or not
	busyLogQuiet        = time.Minute
)

// errFetchBusy is a fetch not made because too many were under way: from
// the same client address, or waiting for a slot. It is never cached, so
// that a flood of fetches leaves nothing behind once it stops.
var errFetchBusy = errors.New("too many client metadata documents are being fetched")

// docError is a problem with the document itself, safe to show the user.
type docError struct{ msg string }

func (e *docError) Error() string { return e.msg }

func docErrorf(format string, args ...any) error { return &docError{fmt.Sprintf(format, args...)} }

// cimdFetcher fetches and caches client ID metadata documents.
type cimdFetcher struct {
	allowLoopback bool
	anyPort       bool // tests: reach the address check with a server on a random port
	client        *http.Client
	now           func() time.Time
	sem           chan struct{}

	mu     sync.Mutex
	cache  docCache              // documents, by URL
	failed docCache              // failed fetches, by URL
	hosts  map[string]*hostSlots // hosts being fetched from
	addrs  map[string]int        // fetches under way per client address key
}

// hostSlots are the fetch slots of one host; users counts the fetches
// holding or waiting for one, and the entry is dropped when it reaches 0.
type hostSlots struct {
	sem   chan struct{}
	users int
}

type cimdEntry struct {
	client  *authstore.Client
	err     error
	expires time.Time
	owner   string // the client address key whose request fetched it
	seq     uint64 // order of arrival
}

// docCache holds at most maxMetadataCache entries. At the cap, the client
// address whose requests fetched the most entries loses its oldest one: a
// stranger naming many documents of its own pushes out only those, never
// the documents that other users' sign-ins fetched.
type docCache struct {
	entries map[string]cimdEntry
	owners  map[string]int // entries per owner
	next    uint64
}

func newDocCache() docCache {
	return docCache{entries: make(map[string]cimdEntry), owners: make(map[string]int)}
}

// put stores e for id, fetched for the client address key owner.
func (c *docCache) put(id string, e cimdEntry, owner string) {
	if old, ok := c.entries[id]; ok {
		c.remove(id, old)
	}
	if len(c.entries) >= maxMetadataCache {
		c.evict()
	}
	e.owner, e.seq = owner, c.next
	c.next++
	c.entries[id] = e
	c.owners[owner]++
}

// evict removes the oldest entry of the owner with the most entries.
func (c *docCache) evict() {
	top, most := "", 0
	for o, n := range c.owners {
		if n > most {
			top, most = o, n
		}
	}
	victim, oldest := "", uint64(math.MaxUint64)
	for id, e := range c.entries {
		if e.owner == top && e.seq < oldest {
			victim, oldest = id, e.seq
		}
	}
	c.remove(victim, c.entries[victim])
}

func (c *docCache) remove(id string, e cimdEntry) {
	delete(c.entries, id)
	if c.owners[e.owner]--; c.owners[e.owner] <= 0 {
		delete(c.owners, e.owner)
	}
}

func newCIMDFetcher(allowLoopback bool, now func() time.Time) *cimdFetcher {
	f := &cimdFetcher{
		allowLoopback: allowLoopback,
		now:           now,
		sem:           make(chan struct{}, maxMetadataFetching),
		cache:         newDocCache(),
		failed:        newDocCache(),
		hosts:         make(map[string]*hostSlots),
		addrs:         make(map[string]int),
	}
	dialer := &net.Dialer{Timeout: metadataTimeout, Control: f.checkDial}
	f.client = &http.Client{
		Timeout: metadataTimeout,
		Transport: &http.Transport{
			Proxy:                 nil, // a proxy would dial for us, past checkDial
			DialContext:           dialer.DialContext,
			TLSHandshakeTimeout:   metadataTimeout,
			ResponseHeaderTimeout: metadataTimeout,
			MaxIdleConns:          10,
			IdleConnTimeout:       30 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return errors.New("client metadata document redirects; redirects are not followed")
		},
	}
	return f
}

// errNotPublic is returned when a metadata URL resolves to an address the
// server must not contact.
var errNotPublic = errors.New("client metadata URL resolves to a non-public address")

// checkDial refuses connections to non-public addresses. It runs after
// name resolution, on the address being dialed.
func (f *cimdFetcher) checkDial(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s", errNotPublic, address)
	}
	if f.allowLoopback || publicAddr(ap.Addr()) {
		return nil
	}
	return fmt.Errorf("%w: %s", errNotPublic, ap.Addr())
}

// specialPrefixes are non-public ranges that netip's predicates miss
// (RFC 6890 and successors).
var specialPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), // shared address space (CGNAT)
	netip.MustParsePrefix("192.0.0.0/24"),  // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),  // documentation
	netip.MustParsePrefix("198.18.0.0/15"), // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),  // reserved, broadcast
	netip.MustParsePrefix("64:ff9b::/96"), // NAT64: may embed a private IPv4
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("100::/64"),      // discard
	netip.MustParsePrefix("2001::/23"),     // IETF protocol assignments, Teredo
	netip.MustParsePrefix("2001:db8::/32"), // documentation
	netip.MustParsePrefix("2002::/16"),     // 6to4: may embed a private IPv4
	netip.MustParsePrefix("fec0::/10"),     // site-local (deprecated)
}

// publicAddr reports whether a is a globally routable unicast address.
func publicAddr(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || !a.IsGlobalUnicast() || a.IsPrivate() || a.IsLoopback() ||
		a.IsLinkLocalUnicast() || a.IsMulticast() || a.IsUnspecified() {
		return false
	}
	for _, p := range specialPrefixes {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// isMetadataURL reports whether a client_id names a metadata document.
func (f *cimdFetcher) isMetadataURL(id string) bool {
	if strings.HasPrefix(id, "https://") {
		return true
	}
	return f.allowLoopback && strings.HasPrefix(id, "http://")
}

// validMetadataURL checks the form of a metadata document URL.
func (f *cimdFetcher) validMetadataURL(id string) error {
	if len(id) > maxRedirectURILen {
		return docErrorf("the client_id URL is too long")
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return docErrorf("the client_id URL contains invalid characters")
		}
	}
	u, err := url.Parse(id)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" || strings.Contains(id, "#") {
		return docErrorf("the client_id is not a valid https URL")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && f.allowLoopback && isLoopbackHost(u.Hostname()):
	default:
		return docErrorf("the client_id URL must use https")
	}
	if p := u.Port(); p != "" && p != "443" && !f.allowLoopback && !f.anyPort {
		return docErrorf("the client_id URL must use the default https port")
	}
	if u.Path == "" || u.Path == "/" {
		return docErrorf("the client_id URL must have a path")
	}
	for _, seg := range strings.Split(u.EscapedPath(), "/") {
		if seg == "." || seg == ".." || strings.EqualFold(seg, "%2e") || strings.EqualFold(seg, "%2e%2e") {
			return docErrorf("the client_id URL must not contain dot segments")
		}
	}
	return nil
}

// get returns the client described by the document at id, fetching it
// for a request from the client address key addr if it is not cached. One
// address may have maxFetchingPerAddr fetches under way, so that it cannot
// take every slot of the pool (with documents on many slow hosts) and stop
// the sign-ins of other users' apps; its only fetch under way takes no
// slot at all (see fetch). fetched reports that this call
// fetched the document (or tried to), so that a failure is logged once per
// fetch rather than once per request.
//
// A malformed URL is refused without a fetch and without being cached:
// checking it again is cheaper than remembering it. Failed fetches are
// cached apart from documents, so that failures, which anyone can cause,
// never push a working document out of the cache.
func (f *cimdFetcher) get(ctx context.Context, id, addr string) (c *authstore.Client, fetched bool, err error) {
	if err := f.validMetadataURL(id); err != nil {
		return nil, false, err
	}
	now := f.now()
	f.mu.Lock()
	e, ok := f.cache.entries[id]
	if !ok || !now.Before(e.expires) {
		// A document cached before whose host now fails: its failure is
		// remembered apart, and must be found past the expired copy.
		e, ok = f.failed.entries[id]
	}
	if ok && now.Before(e.expires) {
		f.mu.Unlock()
		return e.client, false, e.err
	}
	if f.addrs[addr] >= maxFetchingPerAddr {
		f.mu.Unlock()
		return nil, false, errFetchBusy
	}
	f.addrs[addr]++
	// An address's only fetch under way takes no slot: slots shared by
	// every address could be held by a few of them, and then a user
	// signing in would wait behind the attackers' fetches. At most one
	// fetch per address runs this way (addrs counts every fetch).
	alone := f.addrs[addr] == 1
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		if f.addrs[addr]--; f.addrs[addr] <= 0 {
			delete(f.addrs, addr)
		}
		f.mu.Unlock()
	}()
	c, ttl, err := f.fetch(ctx, id, alone)
	cache := &f.cache
	if err != nil {
		cache, ttl = &f.failed, metadataFailureTTL
		if errors.Is(err, context.Canceled) || errors.Is(err, errFetchBusy) {
			ttl = 0
		}
	}
	if ttl > 0 {
		f.mu.Lock()
		cache.put(id, cimdEntry{client: c, err: err, expires: now.Add(ttl)}, addr)
		f.mu.Unlock()
	}
	return c, true, err
}

// hostOf is the host[:port] of a metadata URL (already validated).
func hostOf(id string) string {
	if u, err := url.Parse(id); err == nil {
		return strings.ToLower(u.Host)
	}
	return id
}

// acquire takes a fetch slot of host, then one of the global pool, waiting
// at most metadataTimeout, or until ctx is done. It returns the function
// that gives both back.
func (f *cimdFetcher) acquire(ctx context.Context, host string) (func(), error) {
	ctx, cancel := context.WithTimeout(ctx, metadataTimeout)
	defer cancel()
	f.mu.Lock()
	h, ok := f.hosts[host]
	if !ok {
		h = &hostSlots{sem: make(chan struct{}, maxFetchingPerHost)}
		f.hosts[host] = h
	}
	h.users++
	f.mu.Unlock()
	leave := func() {
		f.mu.Lock()
		if h.users--; h.users == 0 {
			delete(f.hosts, host)
		}
		f.mu.Unlock()
	}
	select {
	case h.sem <- struct{}{}:
	case <-ctx.Done():
		leave()
		return nil, fmt.Errorf("waiting for %s: %w (%w)", host, errFetchBusy, ctx.Err())
	}
	select {
	case f.sem <- struct{}{}:
	case <-ctx.Done():
		<-h.sem
		leave()
		return nil, fmt.Errorf("%w (%w)", errFetchBusy, ctx.Err())
	}
	return func() {
		<-f.sem
		<-h.sem
		leave()
	}, nil
}

// metadataDoc is the part of a client metadata document read here.
type metadataDoc struct {
	ClientID                string   `json:"client_id"`
	ClientName              string   `json:"client_name"`
	RedirectURIs            []string `json:"redirect_uris"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	Scope                   string   `json:"scope"`
	ClientSecret            *string  `json:"client_secret"`
}

// fetch retrieves and validates the document at id, a URL validMetadataURL
// accepted, returning how long it may be cached. Unless alone (the only
// fetch of its client address), it first takes the host's and the pool's
// slots. Its time limit starts only then: had the wait for a slot used up
// part of it, a document fetched in good time but late would fail, and
// its failure would be remembered for every user of the app.
func (f *cimdFetcher) fetch(ctx context.Context, id string, alone bool) (*authstore.Client, time.Duration, error) {
	if !alone {
		release, err := f.acquire(ctx, hostOf(id))
		if err != nil {
			return nil, 0, err
		}
		defer release()
	}
	ctx, cancel := context.WithTimeout(ctx, metadataTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, id, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("client metadata request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("fetch client metadata: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// Logged, never shown: the page must not report what other hosts answer.
		return nil, 0, fmt.Errorf("fetch client metadata: status %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataDoc+1))
	if err != nil {
		return nil, 0, fmt.Errorf("read client metadata: %w", err)
	}
	if len(body) > maxMetadataDoc {
		return nil, 0, docErrorf("the client metadata document is larger than %d bytes", maxMetadataDoc)
	}
	var doc metadataDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, 0, docErrorf("the client metadata document is not a JSON object")
	}
	c, err := clientFromDocument(id, &doc)
	if err != nil {
		return nil, 0, err
	}
	return c, cacheTTL(resp.Header), nil
}

// clientFromDocument validates a metadata document fetched from id.
func clientFromDocument(id string, doc *metadataDoc) (*authstore.Client, error) {
	if doc.ClientID != id {
		return nil, docErrorf("the client metadata document's client_id does not equal its URL")
	}
	if doc.ClientSecret != nil || (doc.TokenEndpointAuthMethod != "" && doc.TokenEndpointAuthMethod != "none") {
		return nil, docErrorf("a client metadata document describes a public client: no secret, token_endpoint_auth_method none")
	}
	c, err := newClientFromMetadata(&registerRequest{
		RedirectURIs:  doc.RedirectURIs,
		GrantTypes:    doc.GrantTypes,
		ResponseTypes: doc.ResponseTypes,
		ClientName:    doc.ClientName,
		Scope:         doc.Scope,
	})
	if err != nil {
		return nil, docErrorf("client metadata document: %v", err)
	}
	c.ID = id
	c.Metadata = true
	return c, nil
}

// cacheTTL derives how long a response may be cached from Cache-Control.
func cacheTTL(h http.Header) time.Duration {
	cc := h.Values("Cache-Control")
	if len(cc) == 0 {
		return metadataDefaultTTL
	}
	ttl := time.Duration(-1)
	for _, v := range cc {
		for d := range strings.SplitSeq(v, ",") {
			d = strings.ToLower(strings.TrimSpace(d))
			switch {
			case d == "no-store" || d == "no-cache" || d == "private":
				return 0
			case strings.HasPrefix(d, "max-age="):
				n, err := strconv.Atoi(strings.Trim(d[len("max-age="):], `"`))
				if err != nil || n < 0 {
					return 0
				}
				ttl = time.Duration(n) * time.Second
			}
		}
	}
	if ttl < 0 {
		return metadataDefaultTTL
	}
	return min(ttl, metadataMaxTTL)
}

// lookupClient returns the client with id, or nil if there is none. A
// client_id that is a URL is resolved through its metadata document; a
// document that cannot be used is a *pageError saying why.
func (s *Server) lookupClient(ctx context.Context, id, addr string) (*authstore.Client, error) {
	if s.cimd.isMetadataURL(id) {
		c, fetched, err := s.cimd.get(ctx, id, addr)
		if errors.Is(err, errFetchBusy) {
			// Logged once a minute per address: a stranger can repeat it
			// at no cost (refusalLog).
			if now := s.now(); s.refusals.first("metadata-busy\x00"+addr, now, now.Add(busyLogQuiet)) {
				s.log.WarnContext(ctx, "client metadata document not fetched: too many fetches under way", "client_id", untrusted(id), "error", err)
			}
			return nil, &pageError{Status: http.StatusServiceUnavailable, Title: "Busy",
				Message: "The server is fetching too many application descriptions right now. Go back to your app and try again in a moment."}
		}
		if err != nil {
			if fetched { // once per fetch, not once per request
				s.log.InfoContext(ctx, "client metadata document refused", "client_id", untrusted(id), "error", err)
			}
			msg := "it could not be fetched"
			if de, ok := errors.AsType[*docError](err); ok {
				msg = de.msg
			}
			return nil, badRequest("The application's client metadata document at " + id + " cannot be used: " + msg + ".")
		}
		return c, nil
	}
	c, err := s.store.Client(ctx, id)
	if errors.Is(err, authstore.ErrNotFound) {
		return nil, nil
	}
	return c, err
}

// rememberClient stores a metadata-document client so codes and grants can
// refer to it; lookups still go through the document.
func (s *Server) rememberClient(ctx context.Context, c *authstore.Client) error {
	if !c.Metadata {
		return nil
	}
	return s.store.SaveMetadataClient(ctx, c)
}
