package mcpauth

// The account page: a signed-in user sees the applications connected to
// their account (the grants they gave, grouped by application) and can
// disconnect any of them, like the "Authorized OAuth apps" page of a code
// host.
//
//	GET  /account             the sign-in form, or the list once signed in
//	POST /account             sign in (username, password, csrf)
//	POST /account/disconnect  revoke every grant of one application (client_id, csrf)
//	POST /account/signout     end the account session (csrf)
//
// The sign-in form is the authorization endpoint's (same template, same
// headers: CSP, frame-ancestors 'none', no-store) and its attempts count in
// the same throttles. Signing in starts an account session, a random
// cookie whose hash is stored (web sessions, in the database: any replica
// knows it). The session ends after accountSessionTTL, at sign-out, and as
// soon as the user is removed or their password changes.
//
// Login CSRF (an attacker signing the victim in to the attacker's account)
// is stopped as on the authorization endpoint: Sec-Fetch-Site and Origin
// must not say cross-site, and the form carries a token derived from the
// browser cookie. Every state-changing form of a signed-in page carries a
// token derived from the account session cookie, which a cross-site page
// cannot read; the cookie itself is SameSite=Strict.
//
// Disconnecting revokes through the store's revocation path: when the
// answer comes back, no replica accepts the application's tokens any more.

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/mcpgen/create-mcp-server/runtime/authstore"
)

const (
	accountCookie     = "mcpauth_account"
	accountSessionTTL = 8 * time.Hour
	maxAccountBody    = 16 << 10
)

// accountApp is one application on the account page: the grants one
// client holds for the user, together.
type accountApp struct {
	ClientID    string
	Name        string
	Hosts       []string // where it sends the user back to: redirect URI hosts (or "scheme:")
	FirstUsed   time.Time
	LastUsed    time.Time // zero: never used since it was connected
	Grants      []string  // grant ids
	MetadataURL bool      // ClientID is a client metadata document URL
}

// accountStyle is the account page's style, after pageStyle.
const accountStyle = `
.apps{list-style:none;padding:0;margin:1rem 0}
.apps li{padding:.75rem 1rem;background:#f4f5f7;border-radius:8px;margin:.75rem 0;overflow-wrap:anywhere}
.apps form{margin-top:.5rem}
.apps button{flex:none;padding:.45rem .9rem;font-size:.9rem}
.done{color:#135c2e;background:#e7f6ec;padding:.5rem .75rem;border-radius:6px}
.signout{margin-top:1.5rem}
`

// accountPage lists the applications connected to the signed-in user's
// account, each with a Disconnect button. Values are escaped as on every
// page (page.text).
func accountPage(d accountData) *page {
	date := func(t time.Time) string { return t.UTC().Format("2 Jan 2006, 15:04 UTC") }
	p := new(page)
	p.start("Connected applications · "+d.Server, accountStyle)
	p.raw("<h1>Connected applications</h1>\n<p>Signed in to ")
	p.text(d.Server)
	p.raw(" as <strong>")
	p.text(d.User)
	p.raw("</strong>.</p>\n")
	if d.Done != "" {
		p.raw(`<p class="done" role="status">`)
		p.text(d.Done)
		p.raw("</p>")
	}
	p.raw("\n")
	if len(d.Apps) == 0 {
		p.raw("<p>No application is connected to your account.</p>\n")
	} else {
		p.raw(`<p class="note">These applications can use this server on your behalf. Disconnecting one signs it out at once; it has to ask you again to reconnect.</p>
<ul class="apps">
`)
		for _, app := range d.Apps {
			p.raw("<li>\n<p><strong>")
			p.text(app.Name)
			p.raw("</strong>")
			if !app.MetadataURL {
				p.raw(` <span class="note">(name given by the application, not verified)</span>`)
			}
			p.raw("</p>\n")
			if app.MetadataURL {
				p.raw(`<p class="note">Application ID: `)
				p.text(app.ClientID)
				p.raw("</p>")
			}
			p.raw("\n<p class=\"note\">Sends you back to ")
			for i, h := range app.Hosts {
				if i > 0 {
					p.raw(", ")
				}
				p.raw("<strong>")
				p.text(h)
				p.raw("</strong>")
			}
			p.raw("</p>\n<p class=\"note\">Connected ")
			p.text(date(app.FirstUsed))
			p.raw(" · ")
			if app.LastUsed.IsZero() {
				p.raw("not used since")
			} else {
				p.raw("last used ")
				p.text(date(app.LastUsed))
			}
			p.raw(`</p>
<form method="post" action="/account/disconnect">
<input type="hidden" name="csrf" value="`)
			p.text(d.CSRF)
			p.raw(`">
<input type="hidden" name="client_id" value="`)
			p.text(app.ClientID)
			p.raw(`">
<button type="submit" class="secondary">Disconnect</button>
</form>
</li>
`)
		}
		p.raw("</ul>\n")
	}
	p.raw(`<form method="post" action="/account/signout" class="signout">
<input type="hidden" name="csrf" value="`)
	p.text(d.CSRF)
	p.raw(`">
<button type="submit" class="secondary">Sign out</button>
</form>
`)
	p.end()
	return p
}

// accountData is what accountPage shows.
type accountData struct {
	Server, User, CSRF, Done string
	Apps                     []accountApp
}

// handleAccount serves GET /account.
func (s *Server) handleAccount(w http.ResponseWriter, r *http.Request) {
	setPageHeaders(w.Header())
	sess, cookie, err := s.accountSession(r)
	if err != nil {
		s.renderError(w, storeErrorPage(r.Context(), s, "account: session", err))
		return
	}
	if sess == nil {
		s.renderAccountLogin(w, r, http.StatusOK, "", "")
		return
	}
	apps, err := s.connectedApps(r.Context(), sess.User)
	if err != nil {
		s.renderError(w, storeErrorPage(r.Context(), s, "account: list grants", err))
		return
	}
	done := ""
	if r.URL.Query().Get("disconnected") != "" {
		done = "The application was disconnected."
	}
	s.renderPage(w, http.StatusOK, accountPage(accountData{
		Server: s.serverName, User: sess.User, CSRF: accountCSRF(cookie), Done: done, Apps: apps,
	}))
}

// handleAccountSignIn serves POST /account: the sign-in form.
func (s *Server) handleAccountSignIn(w http.ResponseWriter, r *http.Request) {
	setPageHeaders(w.Header())
	form, ok := s.accountForm(w, r)
	if !ok {
		return
	}
	browser := ""
	if c, err := r.Cookie(s.cookieName); err == nil {
		browser = c.Value
	}
	if browser == "" || !tokenEqual(form.Get("csrf"), accountLoginCSRF(browser)) {
		s.renderAccountLogin(w, r, http.StatusForbidden, "This sign-in page has expired. Sign in again.", "")
		return
	}
	username, password := form.Get("username"), form.Get("password")
	if username == "" || password == "" {
		s.renderAccountLogin(w, r, http.StatusOK, "Enter your username and password.", username)
		return
	}
	if status, msg := s.checkSignIn(w, r, username, password, "", viaAccount); status != 0 {
		s.renderAccountLogin(w, r, status, msg, username)
		return
	}
	stamp, exists, err := s.users.Stamp(username)
	if err != nil || !exists {
		s.renderAccountLogin(w, r, http.StatusServiceUnavailable, "The server could not sign you in. Try again.", username)
		return
	}
	now := s.now()
	id := newSecret()
	err = s.store.CreateWebSession(r.Context(), &authstore.WebSession{
		IDHash: hashSecret(id), User: username, Stamp: stamp, CreatedAt: now, ExpiresAt: now.Add(accountSessionTTL),
	})
	if err != nil {
		s.renderError(w, storeErrorPage(r.Context(), s, "account: create session", err))
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: s.accountCookieName(), Value: id, Path: "/", HttpOnly: true,
		Secure: s.secureCookies, SameSite: http.SameSiteStrictMode, MaxAge: int(accountSessionTTL / time.Second),
	})
	seeOther(w, "/account")
}

// handleAccountDisconnect serves POST /account/disconnect.
func (s *Server) handleAccountDisconnect(w http.ResponseWriter, r *http.Request) {
	setPageHeaders(w.Header())
	sess, ok := s.accountPost(w, r)
	if !ok {
		return
	}
	clientID := r.PostForm.Get("client_id")
	ctx := r.Context()
	now := s.now()
	grants, err := s.store.Grants(ctx, authstore.GrantFilter{User: sess.User, ClientID: clientID}, now)
	if err == nil && len(grants) > 0 && clientID != "" {
		_, err = s.revokeGrants(ctx, authstore.GrantFilter{User: sess.User, ClientID: clientID}, now)
		if err == nil {
			for _, g := range grants {
				s.audit.grantRevoked(ctx, sess.User, clientID, g.ID, revokedByAccount)
			}
		}
	}
	if err != nil {
		s.renderError(w, storeErrorPage(ctx, s, "account: disconnect", err))
		return
	}
	seeOther(w, "/account?disconnected=1")
}

// handleAccountSignOut serves POST /account/signout.
func (s *Server) handleAccountSignOut(w http.ResponseWriter, r *http.Request) {
	setPageHeaders(w.Header())
	if _, ok := s.accountPost(w, r); !ok {
		return
	}
	c, _ := r.Cookie(s.accountCookieName())
	if err := s.store.EndWebSession(r.Context(), hashSecret(c.Value)); err != nil {
		s.renderError(w, storeErrorPage(r.Context(), s, "account: sign out", err))
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: s.accountCookieName(), Value: "", Path: "/", HttpOnly: true,
		Secure: s.secureCookies, SameSite: http.SameSiteStrictMode, MaxAge: -1,
	})
	seeOther(w, "/account")
}

// revokeGrants revokes the grants f selects and, like revokeGrant, returns
// once no replica accepts their tokens any more (coherence.go).
func (s *Server) revokeGrants(ctx context.Context, f authstore.GrantFilter, now time.Time) (int, error) {
	n, err := s.store.RevokeGrants(ctx, f, now)
	if err != nil {
		s.invalidateCaches()
		return n, err
	}
	s.revoked(ctx)
	return n, nil
}

// accountForm checks that a POST to the account page comes from one of
// this server's pages and parses its form. On failure it has answered.
func (s *Server) accountForm(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	if s.crossSiteForm(r) {
		s.renderError(w, &pageError{Status: http.StatusForbidden, Title: "Forbidden", Message: "Cross-site requests are refused."})
		return nil, false
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxAccountBody)
	if err := r.ParseForm(); err != nil {
		s.renderError(w, badRequest("The form could not be read."))
		return nil, false
	}
	for k, v := range r.PostForm {
		if len(v) > 1 {
			s.renderError(w, badRequest("The field "+k+" appears more than once."))
			return nil, false
		}
	}
	return r.PostForm, true
}

// accountPost checks a signed-in page's form: same origin, a live account
// session, and the CSRF token bound to it. On failure it has answered
// (a request without a session goes back to the sign-in form).
func (s *Server) accountPost(w http.ResponseWriter, r *http.Request) (*authstore.WebSession, bool) {
	form, ok := s.accountForm(w, r)
	if !ok {
		return nil, false
	}
	sess, cookie, err := s.accountSession(r)
	if err != nil {
		s.renderError(w, storeErrorPage(r.Context(), s, "account: session", err))
		return nil, false
	}
	if sess == nil {
		seeOther(w, "/account")
		return nil, false
	}
	if !tokenEqual(form.Get("csrf"), accountCSRF(cookie)) {
		s.renderError(w, &pageError{Status: http.StatusForbidden, Title: "Forbidden",
			Message: "This page has expired. Go back to your account page and try again."})
		return nil, false
	}
	return sess, true
}

// accountSession returns the request's live account session and its
// cookie, or nil if it has none (or the user was removed or changed their
// password since).
func (s *Server) accountSession(r *http.Request) (*authstore.WebSession, string, error) {
	c, err := r.Cookie(s.accountCookieName())
	if err != nil || len(c.Value) != 43 {
		return nil, "", nil
	}
	sess, err := s.store.WebSession(r.Context(), hashSecret(c.Value), s.now())
	if errors.Is(err, authstore.ErrNotFound) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	if !s.userCurrent(sess.User, sess.Stamp) {
		return nil, "", nil
	}
	return sess, c.Value, nil
}

// connectedApps lists user's live grants, one entry per client, most
// recently used first.
func (s *Server) connectedApps(ctx context.Context, user string) ([]accountApp, error) {
	grants, err := s.store.Grants(ctx, authstore.GrantFilter{User: user}, s.now())
	if err != nil {
		return nil, err
	}
	var apps []accountApp
	index := map[string]int{}
	for _, g := range grants {
		i, ok := index[g.ClientID]
		if !ok {
			name := g.ClientName
			if name == "" {
				name = g.ClientID
			}
			i = len(apps)
			index[g.ClientID] = i
			apps = append(apps, accountApp{ClientID: g.ClientID, Name: name, FirstUsed: g.CreatedAt,
				Hosts: redirectHosts(g.RedirectURIs), MetadataURL: s.cimd.isMetadataURL(g.ClientID)})
		}
		a := &apps[i]
		a.Grants = append(a.Grants, g.ID)
		if g.CreatedAt.Before(a.FirstUsed) {
			a.FirstUsed = g.CreatedAt
		}
		if g.LastUsedAt.After(a.LastUsed) {
			a.LastUsed = g.LastUsedAt
		}
	}
	slices.SortStableFunc(apps, func(a, b accountApp) int { return latest(b).Compare(latest(a)) })
	return apps, nil
}

// redirectTarget is where a redirect URI sends the user, as the pages name
// it: the host of an http(s) URI, and only the scheme ("myapp:") of any
// other. An app scheme's host part is chosen by whoever registered the
// client: "evilapp://claude.ai/cb" opens whichever local app handles
// evilapp:, so showing "claude.ai" would vouch for a site not involved.
func redirectTarget(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	if u.Scheme == "http" || u.Scheme == "https" {
		return u.Host
	}
	return u.Scheme + ":"
}

func latest(a accountApp) time.Time {
	if a.LastUsed.After(a.FirstUsed) {
		return a.LastUsed
	}
	return a.FirstUsed
}

// redirectHosts returns the distinct redirectTargets of redirect URIs, in
// order.
func redirectHosts(uris []string) []string {
	var hosts []string
	for _, raw := range uris {
		h := redirectTarget(raw)
		if !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	return hosts
}

// renderAccountLogin shows the sign-in form of the account page, setting
// the browser cookie its CSRF token is bound to if the browser has none.
func (s *Server) renderAccountLogin(w http.ResponseWriter, r *http.Request, status int, msg, username string) {
	browser := ""
	if c, err := r.Cookie(s.cookieName); err == nil && len(c.Value) == 43 {
		browser = c.Value
	} else {
		browser = newSecret()
		http.SetCookie(w, &http.Cookie{
			Name: s.cookieName, Value: browser, Path: "/", HttpOnly: true,
			Secure: s.secureCookies, SameSite: http.SameSiteLaxMode,
		})
	}
	s.renderPage(w, status, loginPage(loginData{
		Server: s.serverName, Account: true, Error: msg, Username: username, Tx: accountLoginCSRF(browser),
	}))
}

// accountCookieName is the account session cookie's name: with the
// __Host- prefix over https (no Domain, Path=/, Secure: no subdomain can
// set or shadow it).
func (s *Server) accountCookieName() string {
	if s.secureCookies {
		return "__Host-" + accountCookie
	}
	return accountCookie
}

// accountLoginCSRF is the CSRF token of the account sign-in form, bound to
// the browser cookie.
func accountLoginCSRF(browser string) string {
	return deriveToken("mcpauth account sign-in\x00", browser)
}

// accountCSRF is the CSRF token of a signed-in account page's forms, bound
// to the account session cookie.
func accountCSRF(session string) string {
	return deriveToken("mcpauth account csrf\x00", session)
}

func deriveToken(purpose, secret string) string {
	h := sha256.Sum256([]byte(purpose + secret))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

func tokenEqual(got, want string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// seeOther answers 303 See Other to a path of this server.
func seeOther(w http.ResponseWriter, path string) {
	w.Header().Set("Location", path)
	w.WriteHeader(http.StatusSeeOther)
}

// storeErrorPage logs a storage failure and returns the page to show:
// 503 when the database is unavailable, else 500.
func storeErrorPage(ctx context.Context, s *Server, what string, err error) *pageError {
	s.log.ErrorContext(ctx, what, "error", err)
	if oe := serverError(err); oe.Status == http.StatusServiceUnavailable {
		return &pageError{Status: http.StatusServiceUnavailable, Title: "Try again", Message: "The server is busy. Try again in a moment."}
	}
	return &pageError{Status: http.StatusInternalServerError, Title: "Server error", Message: "Something went wrong. Try again."}
}
