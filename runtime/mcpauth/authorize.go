package mcpauth

// The authorization endpoint: RFC 6749 §4.1.1 (authorization code grant)
// as profiled by OAuth 2.1, with RFC 7636 PKCE (S256 only), RFC 8707
// resource indicators and RFC 9207 iss in every response to the client.
//
// GET /authorize validates the request. Every error found before the user
// has signed in is an HTML 400 page, never a redirect: anyone can register a
// client, so redirecting unauthenticated errors would make this server an
// open redirector (RFC 9700 §4.11.2). A valid request becomes a server-side
// transaction (short-lived, single-use, bound to the browser by a cookie)
// and the page shows a sign-in and consent form whose only hidden field is
// the transaction id.
//
// POST /authorize checks the transaction, the browser cookie and the
// request's origin (login CSRF), throttles by username and client IP, checks
// the password (with a bounded number of concurrent bcrypt comparisons), and
// then answers 303 See Other to the registered redirect URI with code, state
// and iss, or with error=access_denied if the user pressed Deny. Everything
// the code is bound to comes from the stored transaction, never the form.

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mcpgen/create-mcp-server/runtime/authstore"
)

const (
	maxAuthorizeQuery = 8 << 10
	maxStateLen       = 2 << 10
	maxLoginBody      = 16 << 10
	txTTL             = 10 * time.Minute
	browserCookie     = "mcpauth_browser"
)

// authRequest is a validated authorization request.
type authRequest struct {
	Client        *authstore.Client
	RedirectURI   string
	State         string
	HasState      bool
	CodeChallenge string
	Scope         string
	Resource      string
}

// Pending sign-ins live in the store (authstore.SignInStore), so that the
// form GET /authorize shows may be posted to any replica. A pending sign-in
// holds what GET /authorize validated, small and fixed in size: the client
// id and name, one redirect URI, the state, the PKCE challenge, the scope
// and the resource, never the client. The store bounds them per client
// address, per browser and overall, evicting the oldest, so a flood from
// one address never stops another's sign-in; starting one is throttled per
// address (signInAddrLimit).

// startSignIn stores req as a pending sign-in of the browser with cookie,
// from the address key addr, and returns the id the form carries.
func (s *Server) startSignIn(ctx context.Context, req *authRequest, cookie, addr string, now time.Time) (string, error) {
	id := newSecret()
	err := s.store.CreateSignIn(ctx, &authstore.SignIn{
		IDHash: hashSecret(id), BrowserHash: hashSecret(cookie), AddrKey: addr,
		ClientID: req.Client.ID, ClientName: req.Client.Name,
		RedirectURI: req.RedirectURI, State: req.State, HasState: req.HasState,
		CodeChallenge: req.CodeChallenge, Scope: req.Scope, Resource: req.Resource,
		CreatedAt: now, ExpiresAt: now.Add(txTTL),
	})
	if err != nil {
		return "", err
	}
	return id, nil
}

// takeSignIn takes (single use) the pending sign-in id of the browser with
// cookie and rebuilds the request: the client is resolved again (it may
// have been deleted, or its metadata document changed, since the form was
// shown) and the redirect URI checked against it again. A sign-in that is
// unknown, expired, another browser's or no longer valid is a page error.
func (s *Server) takeSignIn(ctx context.Context, id, cookie string, now time.Time) (*authRequest, *pageError) {
	expired := &pageError{Status: http.StatusForbidden, Title: "Sign-in expired",
		Message: "This sign-in page has expired or was opened in another browser. Go back to your app and connect again."}
	if id == "" || cookie == "" {
		return nil, expired
	}
	si, err := s.store.TakeSignIn(ctx, hashSecret(id), hashSecret(cookie), now)
	if errors.Is(err, authstore.ErrNotFound) {
		return nil, expired
	}
	if err != nil {
		s.log.ErrorContext(ctx, "authorize: take sign-in", "error", err)
		return nil, unavailablePage(err)
	}
	c, err := s.lookupClient(ctx, si.ClientID, si.AddrKey)
	if err != nil {
		if pe, ok := err.(*pageError); ok {
			return nil, pe
		}
		s.log.ErrorContext(ctx, "authorize: client lookup", "error", err)
		return nil, unavailablePage(err)
	}
	if c == nil || !anyRedirectMatches(c.RedirectURIs, si.RedirectURI) {
		return nil, badRequest("The application's registration changed during sign-in. Go back to your app and connect again.")
	}
	return &authRequest{Client: c, RedirectURI: si.RedirectURI, State: si.State, HasState: si.HasState,
		CodeChallenge: si.CodeChallenge, Scope: si.Scope, Resource: si.Resource}, nil
}

// unavailablePage is the page for a failure of the database (or of
// something else the server needs): 503, try again, never a 500.
func unavailablePage(err error) *pageError {
	return &pageError{Status: http.StatusServiceUnavailable, Title: "Temporarily unavailable",
		Message: "The server cannot complete the sign-in right now. Try again in a moment."}
}

// pageError is an error shown as an HTML page.
type pageError struct {
	Status  int
	Title   string
	Message string
}

func (e *pageError) Error() string { return e.Title + ": " + e.Message }

func badRequest(msg string) *pageError {
	return &pageError{Status: http.StatusBadRequest, Title: "Invalid sign-in request", Message: msg}
}

// handleAuthorize serves GET /authorize.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	setPageHeaders(w.Header())
	req, perr := s.parseAuthorize(r)
	if perr != nil {
		s.renderError(w, perr)
		return
	}
	addr := s.clientKey(r)
	d, ok, err := s.limits.Allow(r.Context(), signInAddrLimit, addr, s.now())
	if err != nil {
		s.log.ErrorContext(r.Context(), "authorize: sign-in throttle", "error", err)
		s.renderError(w, unavailablePage(err))
		return
	}
	if !ok {
		s.metrics.throttled(throttleAuthorize)
		w.Header().Set("Retry-After", retryAfter(d))
		s.renderError(w, &pageError{Status: http.StatusTooManyRequests, Title: "Too many sign-ins",
			Message: "Too many sign-ins were started from your network. Wait a few minutes and try again."})
		return
	}
	cookie := ""
	if c, err := r.Cookie(s.cookieName); err == nil && len(c.Value) == 43 {
		cookie = c.Value
	} else {
		cookie = newSecret()
		http.SetCookie(w, &http.Cookie{
			Name: s.cookieName, Value: cookie, Path: "/", HttpOnly: true,
			Secure: s.secureCookies, SameSite: http.SameSiteLaxMode,
		})
	}
	now := s.now()
	id, err := s.startSignIn(r.Context(), req, cookie, addr, now)
	if err != nil {
		s.log.ErrorContext(r.Context(), "authorize: store sign-in", "error", err)
		s.renderError(w, unavailablePage(err))
		return
	}
	s.renderLogin(w, http.StatusOK, id, req, "", "")
}

// parseAuthorize validates an authorization request.
func (s *Server) parseAuthorize(r *http.Request) (*authRequest, *pageError) {
	if len(r.URL.RawQuery) > maxAuthorizeQuery {
		return nil, badRequest("The request is too long.")
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, badRequest("The request's parameters are malformed.")
	}
	for k, v := range q {
		if len(v) > 1 {
			return nil, badRequest("The parameter " + k + " appears more than once.")
		}
	}
	clientID := q.Get("client_id")
	if clientID == "" {
		return nil, badRequest("The request has no client_id.")
	}
	c, err := s.lookupClient(r.Context(), clientID, s.clientKey(r))
	if err != nil {
		if pe, ok := err.(*pageError); ok {
			return nil, pe
		}
		s.log.ErrorContext(r.Context(), "authorize: client lookup", "error", err)
		return nil, unavailablePage(err)
	}
	if c == nil {
		return nil, badRequest("The application is not registered with this server. Remove and re-add the server in your app.")
	}
	redirectURI := q.Get("redirect_uri")
	if redirectURI == "" {
		return nil, badRequest("The request has no redirect_uri.")
	}
	if !anyRedirectMatches(c.RedirectURIs, redirectURI) {
		return nil, badRequest("The redirect_uri is not registered for this application.")
	}
	// The client and redirect URI are known now, but the user has not
	// signed in: errors are still pages, never redirects.
	if rt := q.Get("response_type"); rt != "code" {
		return nil, badRequest("Unsupported response_type: only code is supported.")
	}
	if m := q.Get("code_challenge_method"); m != "S256" {
		return nil, badRequest("PKCE with code_challenge_method=S256 is required.")
	}
	challenge := q.Get("code_challenge")
	if !validChallenge(challenge) {
		return nil, badRequest("The code_challenge must be 43 base64url characters (S256).")
	}
	// A parameter sent without a value is treated as omitted (RFC 6749 §3.1).
	resource := s.resource
	if res := q.Get("resource"); res != "" {
		if !resourceMatches(res, s.resource) {
			return nil, badRequest("invalid_target: the resource parameter must be " + s.resource + ".")
		}
	}
	state, hasState := q["state"]
	st := ""
	if hasState {
		st = state[0]
		if len(st) > maxStateLen {
			return nil, badRequest("The state parameter is too long.")
		}
	}
	scope := filterScopes(q.Get("scope"))
	if scope == "" {
		scope = scopeMCP
	}
	return &authRequest{
		Client: c, RedirectURI: redirectURI, State: st, HasState: hasState && st != "",
		CodeChallenge: challenge, Scope: scope, Resource: resource,
	}, nil
}

// validChallenge checks an S256 code_challenge: 43 base64url characters.
func validChallenge(c string) bool {
	if len(c) != 43 {
		return false
	}
	for i := 0; i < len(c); i++ {
		if !isBase64URL(c[i]) {
			return false
		}
	}
	return true
}

func isBase64URL(b byte) bool {
	return b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '-' || b == '_'
}

// handleLogin serves POST /authorize: sign in, then approve or deny.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	setPageHeaders(w.Header())
	if s.crossSiteForm(r) {
		s.renderError(w, &pageError{Status: http.StatusForbidden, Title: "Forbidden", Message: "Cross-site sign-in requests are refused."})
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		s.renderError(w, badRequest("The form could not be read."))
		return
	}
	body, err := readBody(w, r, maxLoginBody, s.timeouts.body)
	if err != nil {
		s.renderError(w, badRequest("The form could not be read."))
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		s.renderError(w, badRequest("The form could not be read."))
		return
	}
	for k, v := range form {
		if len(v) > 1 {
			s.renderError(w, badRequest("The field "+k+" appears more than once."))
			return
		}
	}
	now := s.now()
	cookie := ""
	if c, err := r.Cookie(s.cookieName); err == nil {
		cookie = c.Value
	}
	req, perr := s.takeSignIn(r.Context(), form.Get("tx"), cookie, now)
	if perr != nil {
		s.renderError(w, perr)
		return
	}
	username := form.Get("username")
	password := form.Get("password")
	// retry shows the form again, as a new pending sign-in, keeping the
	// username (never the password).
	retry := func(status int, msg string) {
		newID, err := s.startSignIn(r.Context(), req, cookie, s.clientKey(r), now)
		if err != nil {
			s.log.ErrorContext(r.Context(), "authorize: store sign-in", "error", err)
			s.renderError(w, unavailablePage(err))
			return
		}
		s.renderLogin(w, status, newID, req, msg, username)
	}

	if username == "" || password == "" {
		retry(http.StatusOK, "Enter your username and password.")
		return
	}
	if status, msg := s.checkSignIn(w, r, username, password, req.Client.ID, viaAuthorize); status != 0 {
		retry(status, msg)
		return
	}

	if form.Get("action") == "deny" {
		s.audit.consent(r.Context(), false, username, req.Client.ID, req.Scope)
		s.redirect(w, r, req, url.Values{"error": {"access_denied"}, "error_description": {"the user denied access"}})
		return
	}
	stamp, exists, err := s.users.Stamp(username)
	if err != nil || !exists {
		if err != nil {
			s.log.ErrorContext(r.Context(), "authorize: user stamp", "error", err)
		}
		s.redirect(w, r, req, url.Values{"error": {"server_error"}})
		return
	}
	code, grantID := newSecret(), newID()
	stored := *req.Client // req.Client may be shared with the metadata cache
	stored.CreatedAt = now
	err = s.rememberClient(r.Context(), &stored)
	if err == nil {
		err = s.store.CreateCode(r.Context(), &authstore.Code{
			Hash: hashSecret(code), GrantID: grantID, ClientID: req.Client.ID, User: username,
			RedirectURI: req.RedirectURI, CodeChallenge: req.CodeChallenge, Scope: req.Scope,
			Resource: req.Resource, Stamp: stamp, ExpiresAt: now.Add(s.cfg.CodeTTL),
		}, now)
	}
	if err != nil {
		s.log.ErrorContext(r.Context(), "authorize: store code", "error", err)
		errCode := "server_error"
		if oe := serverError(err); oe.Status == http.StatusServiceUnavailable {
			errCode = "temporarily_unavailable"
		}
		s.redirect(w, r, req, url.Values{"error": {errCode}})
		return
	}
	s.audit.consent(r.Context(), true, username, req.Client.ID, req.Scope)
	s.audit.codeIssued(r.Context(), username, req.Client.ID, grantID)
	s.redirect(w, r, req, url.Values{"code": {code}})
}

// crossSiteForm reports whether a form POST comes from another site
// (login CSRF): Sec-Fetch-Site says so, or Origin names another origin.
// Browsers send "Origin: null" on a same-origin POST from a page with
// Referrer-Policy: no-referrer; Sec-Fetch-Site then says same-origin.
func (s *Server) crossSiteForm(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
		return true
	}
	o := r.Header.Get("Origin")
	return o != "" && normalizeOrigin(o) != s.origin &&
		(o != "null" || r.Header.Get("Sec-Fetch-Site") != "same-origin")
}

// checkSignIn checks a username and password typed into a sign-in form
// (of the authorization or the account page: via), under the sign-in
// throttles, and records the attempt in the audit log. It returns 0 when
// the user signed in; else the status and message to show with the form
// again (and Retry-After is set when throttled).
func (s *Server) checkSignIn(w http.ResponseWriter, r *http.Request, username, password, clientID, via string) (int, string) {
	ctx, now := r.Context(), s.now()
	ip := s.clientIP(r)
	keys := s.loginKeys(username, addrKey(ip), s.knownDevice(r, username, now))
	logged := s.loggedUser(username)
	d, refused, err := s.countLogin(ctx, keys, now)
	if err != nil {
		s.log.ErrorContext(ctx, "sign-in: throttle", "error", err)
		return http.StatusServiceUnavailable, "The server could not check your password. Try again."
	}
	if refused != "" {
		// Logged once per lockout: each refusal hands out a new form, so
		// a stranger can repeat it at no cost.
		quiet := refused
		for _, k := range keys {
			if k.limit.Name == refused {
				quiet += "\x00" + k.key
			}
		}
		if s.refusals.first("sign-in\x00"+quiet, now, now.Add(d)) {
			s.audit.signIn(ctx, signInThrottled, logged, clientID, ip.String(), via, refused)
		} else {
			s.audit.signInRefused()
		}
		w.Header().Set("Retry-After", retryAfter(d))
		return http.StatusTooManyRequests, "Too many failed sign-ins. Wait a while and try again."
	}
	ok, err := s.checkPassword(r, username, password)
	if err != nil {
		s.uncountLogin(ctx, keys, len(keys), now)
		s.log.ErrorContext(ctx, "sign-in: password check", "error", err)
		return http.StatusServiceUnavailable, "The server could not check your password. Try again."
	}
	if !ok {
		s.audit.signIn(ctx, signInFailed, logged, clientID, ip.String(), via, "")
		return http.StatusOK, "Wrong username or password."
	}
	s.audit.signIn(ctx, signInSucceeded, username, clientID, ip.String(), via, "")
	// The right password: this address may try again for this user, and
	// the attempt is taken back from the others (earlier failures stay).
	s.uncountLogin(ctx, keys, len(keys), now)
	if err := s.limits.Reset(ctx, keys[0].limit, keys[0].key); err != nil {
		s.log.WarnContext(ctx, "sign-in: throttle reset", "error", err)
	}
	s.rememberDevice(w, username, now)
	return 0, ""
}

// throttleKey is one counter a request is counted against.
type throttleKey struct {
	limit authstore.Limit
	key   string
}

// loginKeys are the counters a sign-in attempt for username from the
// address key addr counts against; the (user, address) pair comes first.
// An attempt from a browser where the user signed in before (known,
// device.go) does not count against the user's ceiling, nor is it stopped
// by it: strangers spraying guesses cannot lock the user out of it.
// The counters name the user by a keyed hash of what was typed
// (typedName): a password typed into the username field by mistake must not
// be stored in the database.
func (s *Server) loginKeys(username, addr string, known bool) []throttleKey {
	user := hex.EncodeToString(s.typedName(username)[:16])
	keys := []throttleKey{
		{loginUserAddrLimit, user + "\x00" + addr},
		{loginAddrLimit, addr},
	}
	if !known {
		keys = append(keys, throttleKey{loginUserLimit, user})
	}
	return keys
}

// loggedUser is how the audit log names the user of a failed or throttled
// sign-in: the username if the users file has it, else "unknown-" and a
// short keyed hash of what was typed (typedName), which tells repeated
// attempts with one name apart without writing a password typed into the
// wrong field to the log.
func (s *Server) loggedUser(username string) string {
	if _, ok, _ := s.users.Stamp(username); ok {
		return username
	}
	return "unknown-" + hex.EncodeToString(s.typedName(username)[:6])
}

// typedName hashes what was typed into the username field, keyed with the
// deployment's rotation key (shared by every replica, so they all count
// and log one name alike). A plain SHA-256 would not do: people type
// passwords there, and whoever reads the log could hash a list of common
// passwords until one matched, at billions a second. The key lives in the
// database, so this protects the log, not the database: whoever can read
// the database can test guesses against its throttle counters too.
func (s *Server) typedName(username string) []byte {
	m := hmac.New(sha256.New, s.store.RotationKey())
	m.Write([]byte("mcpauth typed username\x00"))
	m.Write([]byte(username))
	return m.Sum(nil)
}

// countLogin counts an attempt against every key before the password is
// checked (so parallel guesses cannot overshoot a limit). If one key is at
// its limit, the counts already made are taken back and it reports how long
// to wait and the name of the limit that refused ("" if none did).
func (s *Server) countLogin(ctx context.Context, keys []throttleKey, now time.Time) (time.Duration, string, error) {
	for i, k := range keys {
		d, ok, err := s.limits.Allow(ctx, k.limit, k.key, now)
		if err != nil || !ok {
			s.uncountLogin(ctx, keys, i, now)
			if err != nil {
				return d, "", err
			}
			return d, k.limit.Name, nil
		}
	}
	return 0, "", nil
}

// uncountLogin takes back the attempt from the first n keys.
func (s *Server) uncountLogin(ctx context.Context, keys []throttleKey, n int, now time.Time) {
	for _, k := range keys[:n] {
		if err := s.limits.Undo(ctx, k.limit, k.key, now); err != nil {
			s.log.WarnContext(ctx, "authorize: login throttle undo", "error", err)
		}
	}
}

// checkPassword runs the bcrypt comparison, at most cap(s.bcryptSem) at a time.
func (s *Server) checkPassword(r *http.Request, username, password string) (bool, error) {
	select {
	case s.bcryptSem <- struct{}{}:
	case <-r.Context().Done():
		return false, r.Context().Err()
	}
	defer func() { <-s.bcryptSem }()
	return s.users.Authenticate(r.Context(), username, password)
}

// redirect sends the authorization response to the client: 303 See Other
// (never 307/308, which would re-post the password) to the validated
// redirect URI with params, state and iss.
func (s *Server) redirect(w http.ResponseWriter, r *http.Request, req *authRequest, params url.Values) {
	if req.HasState {
		params.Set("state", req.State)
	}
	params.Set("iss", s.issuer)
	sep := "?"
	if strings.Contains(req.RedirectURI, "?") {
		sep = "&"
	}
	w.Header().Set("Location", req.RedirectURI+sep+params.Encode())
	w.WriteHeader(http.StatusSeeOther)
}

// setPageHeaders sets the headers every HTML page of the authorization
// endpoint carries: no framing (clickjacking), no sniffing, no referrer
// (the URL holds the request), no caching. No CORS headers, ever.
func setPageHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
}
