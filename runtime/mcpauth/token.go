package mcpauth

// The token endpoint: RFC 6749 §3.2 and §4.1.3 (authorization_code), §6
// (refresh_token), as profiled by OAuth 2.1; RFC 7636 §4.6 PKCE
// verification; RFC 8707 resource.
//
// Codes are single use: one conditional UPDATE consumes a code inside the
// transaction that stores its tokens. Requests that fail (wrong client,
// redirect URI, verifier, resource) leave the code alone. A replay by the
// right client with the right verifier revokes the grant the code created;
// a replay by someone holding only the code just fails.
//
// Refresh tokens always rotate. The successor is derived from the presented
// token with a server key (HMAC), so a client that retries a refresh (real
// clients refresh concurrently) gets the same successor, plus a new access
// token, as long as the successor has not been used and RefreshGrace has not
// passed. Reuse after that revokes the whole grant (RFC 9700 §4.14.2).

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/mcpgen/create-mcp-server/runtime/authstore"
)

const maxTokenBody = 64 << 10

// tokenResponse is the RFC 6749 §5.1 success body.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope"`
}

// handleOnlyPost answers other methods of /token and /revoke: a JSON
// error, not cacheable, like every other answer of those endpoints.
func (s *Server) handleOnlyPost(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Allow", "POST, OPTIONS")
	s.writeError(w, r, &oauthError{Code: "invalid_request", Description: "use POST", Status: http.StatusMethodNotAllowed})
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	resp, err := s.token(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) (*tokenResponse, error) {
	ctx := r.Context()
	addr := s.clientKey(r)
	if err := s.guessThrottled(ctx, addr, ""); err != nil {
		return nil, err
	}
	form, err := s.readForm(w, r, maxTokenBody)
	if err != nil {
		return nil, err
	}
	cid := presentedClientID(r, form)
	if err := s.guessThrottled(ctx, addr, cid); err != nil {
		return nil, err
	}
	c, err := s.authenticateClient(r, form)
	if err != nil {
		s.guessFailed(ctx, addr, cid, err)
		return nil, err
	}
	resp, err := s.grant(r, c, form)
	if err != nil {
		s.guessFailed(ctx, addr, "", err)
	}
	return resp, err
}

// guessThrottled refuses requests from an address, or for a client from an
// address, that made too many failed token or revocation requests: online
// guessing of codes, refresh tokens and client secrets (RFC 6819 §4.3.5,
// §4.4.1.3, §4.5.3). Nothing blocks a client everywhere: client ids are
// public, so a stranger's failures must not sign out its users.
func (s *Server) guessThrottled(ctx context.Context, addr, clientID string) error {
	now := s.now()
	l, key := guessAddrLimit, addr
	if clientID != "" {
		l, key = guessClientAddrLimit, clientID+"\x00"+addr
	}
	d, blocked, err := s.limits.Blocked(ctx, l, key, now)
	if err != nil {
		return serverError(err)
	}
	if !blocked {
		return nil
	}
	s.metrics.throttled(throttleToken)
	return &oauthError{Code: "temporarily_unavailable", Description: "too many failed requests, slow down",
		Status: http.StatusTooManyRequests, retryAfter: retryAfter(d)}
}

// guessFailed counts a failed request that may be a guess against the
// address and, when clientID is set (its client authentication failed),
// against the pair (client, address). Server faults and unreadable bodies
// are not guesses.
func (s *Server) guessFailed(ctx context.Context, addr, clientID string, err error) {
	oe := asOAuthError(err)
	switch oe.Code {
	case "invalid_grant", "invalid_client", "invalid_request", "unauthorized_client":
	default:
		return
	}
	if oe.io {
		return
	}
	now := s.now()
	if err := s.limits.Add(ctx, guessAddrLimit, addr, now); err != nil {
		s.log.WarnContext(ctx, "token: throttle", "error", err)
	}
	if clientID != "" && oe.Code == "invalid_client" {
		if err := s.limits.Add(ctx, guessClientAddrLimit, clientID+"\x00"+addr, now); err != nil {
			s.log.WarnContext(ctx, "token: throttle", "error", err)
		}
	}
}

// presentedClientID is the client id a request names, authenticated or not.
func presentedClientID(r *http.Request, form url.Values) string {
	if id, _, ok := parseBasic(r.Header.Get("Authorization")); ok {
		return id
	}
	return form.Get("client_id")
}

// grant runs the grant the form asks for, for the authenticated client c.
func (s *Server) grant(r *http.Request, c *authstore.Client, form url.Values) (*tokenResponse, error) {
	switch gt := form.Get("grant_type"); gt {
	case "authorization_code":
		return s.exchangeCode(r.Context(), c, form)
	case "refresh_token":
		if !slices.Contains(c.GrantTypes, "refresh_token") {
			return nil, badRequestError("unauthorized_client", "the client is not registered for the refresh_token grant")
		}
		return s.refresh(r.Context(), c, form)
	case "":
		return nil, badRequestError("invalid_request", "grant_type is required")
	default:
		return nil, badRequestError("unsupported_grant_type", "only authorization_code and refresh_token are supported")
	}
}

// readForm reads an application/x-www-form-urlencoded POST body, refusing
// other content types and repeated parameters. The query string is ignored.
func (s *Server) readForm(w http.ResponseWriter, r *http.Request, limit int64) (url.Values, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, badRequestError("invalid_request", "the body must be application/x-www-form-urlencoded")
	}
	body, err := readBody(w, r, limit, s.timeouts.body)
	if err != nil {
		return nil, bodyError(err)
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, badRequestError("invalid_request", "the body is not valid form encoding")
	}
	for k, v := range form {
		if len(v) > 1 {
			return nil, badRequestError("invalid_request", "the parameter "+k+" is repeated")
		}
	}
	return form, nil
}

// authenticateClient identifies the client: client_secret_basic
// (Authorization: Basic), client_secret_post (client_id and client_secret in
// the body), or none (client_id only). Confidential clients may use either
// secret method; public clients must not present a secret (an empty
// client_secret, or Basic credentials with an empty secret, count as none).
func (s *Server) authenticateClient(r *http.Request, form url.Values) (*authstore.Client, error) {
	id, secret := form.Get("client_id"), form.Get("client_secret")
	if h := r.Header.Get("Authorization"); h != "" {
		bid, bsecret, ok := parseBasic(h)
		if !ok {
			return nil, &oauthError{Code: "invalid_client", Description: "malformed Basic credentials", Status: http.StatusUnauthorized}
		}
		if secret != "" || (id != "" && id != bid) {
			return nil, badRequestError("invalid_request", "use one client authentication method")
		}
		id, secret = bid, bsecret
	}
	fail := &oauthError{Code: "invalid_client", Description: "client authentication failed", Status: http.StatusUnauthorized}
	if id == "" {
		return nil, fail
	}
	// Clients described by a metadata document were stored when they were
	// authorized; the token and revocation endpoints use that record
	// rather than fetch the document again.
	c, err := s.store.Client(r.Context(), id)
	if errors.Is(err, authstore.ErrNotFound) {
		c, err = nil, nil
	}
	if err != nil {
		return nil, serverError(err)
	}
	if c == nil {
		return nil, fail
	}
	if c.SecretHash == nil {
		// A public client has no secret; an empty one (in the body or in
		// Basic credentials, as some clients send) counts as none.
		if secret != "" {
			return nil, fail
		}
		return c, nil
	}
	if secret == "" || subtle.ConstantTimeCompare(hashSecret(secret), c.SecretHash) != 1 {
		return nil, fail
	}
	return c, nil
}

// parseBasic decodes RFC 6749 §2.3.1 Basic credentials: base64 of
// urlencoded(id):urlencoded(secret).
func parseBasic(h string) (id, secret string, ok bool) {
	scheme, enc, found := strings.Cut(h, " ")
	if !found || !strings.EqualFold(scheme, "Basic") {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(enc))
	if err != nil {
		return "", "", false
	}
	rid, rsecret, found := strings.Cut(string(raw), ":")
	if !found {
		return "", "", false
	}
	if id, err = url.QueryUnescape(rid); err != nil {
		return "", "", false
	}
	if secret, err = url.QueryUnescape(rsecret); err != nil {
		return "", "", false
	}
	return id, secret, id != ""
}

var errBadGrant = badRequestError("invalid_grant", "the authorization code is invalid, expired or already used")

func (s *Server) exchangeCode(ctx context.Context, c *authstore.Client, form url.Values) (*tokenResponse, error) {
	code := form.Get("code")
	if code == "" {
		return nil, badRequestError("invalid_request", "code is required")
	}
	if len(code) != 43 {
		return nil, errBadGrant
	}
	ac, err := s.store.Code(ctx, hashSecret(code))
	if errors.Is(err, authstore.ErrNotFound) {
		return nil, errBadGrant
	}
	if err != nil {
		return nil, serverError(err)
	}
	// Checks that leave the code unconsumed.
	if ac.ClientID != c.ID {
		return nil, errBadGrant
	}
	if form.Get("redirect_uri") != ac.RedirectURI {
		return nil, badRequestError("invalid_grant", "redirect_uri does not match the authorization request")
	}
	if !verifyPKCE(form.Get("code_verifier"), ac.CodeChallenge) {
		return nil, badRequestError("invalid_grant", "code_verifier does not match the code_challenge")
	}
	if res := form.Get("resource"); res != "" && !resourceMatches(res, ac.Resource) {
		return nil, badRequestError("invalid_target", "resource does not match the authorization request")
	}
	now := s.now()
	if ac.Used {
		// Replay by the legitimate client: the code may have been stolen;
		// revoke everything it produced (RFC 6749 §4.1.2).
		if err := s.revokeGrant(ctx, ac.GrantID, now); err != nil {
			return nil, serverError(err)
		}
		s.audit.codeReplay(ctx, ac.User, c.ID, ac.GrantID)
		return nil, errBadGrant
	}
	if !now.Before(ac.ExpiresAt) {
		return nil, errBadGrant
	}
	if !s.userCurrent(ac.User, ac.Stamp) {
		return nil, badRequestError("invalid_grant", "the user's account has changed; sign in again")
	}
	access, refresh := newSecret(), ""
	t := &authstore.Tokens{AccessHash: hashSecret(access), AccessScope: ac.Scope, AccessExpires: now.Add(s.cfg.AccessTTL)}
	if slices.Contains(c.GrantTypes, "refresh_token") {
		refresh = newSecret()
		t.RefreshHash = hashSecret(refresh)
		t.RefreshExpires = now.Add(s.cfg.RefreshTTL)
	}
	g := &authstore.Grant{ID: ac.GrantID, ClientID: c.ID, User: ac.User, Scope: ac.Scope, Resource: ac.Resource,
		Stamp: ac.Stamp, ExpiresAt: now.Add(s.maxGrantAge())}
	ok, err := s.store.RedeemCode(ctx, ac.Hash, g, t, now)
	if err != nil {
		return nil, serverError(err)
	}
	if !ok {
		// Redeemed concurrently by the same client and verifier: a replay.
		if err := s.revokeGrant(ctx, ac.GrantID, now); err != nil {
			return nil, serverError(err)
		}
		s.audit.codeReplay(ctx, ac.User, c.ID, ac.GrantID)
		return nil, errBadGrant
	}
	s.audit.tokensIssued(ctx, ac.User, c.ID, ac.GrantID, ac.Scope)
	return &tokenResponse{AccessToken: access, TokenType: "Bearer", ExpiresIn: int64(s.cfg.AccessTTL / time.Second),
		RefreshToken: refresh, Scope: ac.Scope}, nil
}

// maxGrantAge bounds how long rotation can keep a grant alive.
func (s *Server) maxGrantAge() time.Duration {
	return max(365*24*time.Hour, s.cfg.RefreshTTL)
}

// verifyPKCE checks an RFC 7636 code_verifier against an S256 challenge.
func verifyPKCE(verifier, challenge string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	for i := 0; i < len(verifier); i++ {
		b := verifier[i]
		if !isBase64URL(b) && b != '.' && b != '~' {
			return false
		}
	}
	sum := sha256.Sum256([]byte(verifier))
	got := base64.RawURLEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(got), []byte(challenge)) == 1
}

// userCurrent reports whether user still exists with the password they had
// when stamp was taken.
func (s *Server) userCurrent(user, stamp string) bool {
	cur, ok, err := s.users.Stamp(user)
	if err != nil {
		s.log.Error("read users file", "error", err)
		return false
	}
	return ok && cur == stamp
}

var errBadRefresh = badRequestError("invalid_grant", "the refresh token is invalid, expired or revoked")

func (s *Server) refresh(ctx context.Context, c *authstore.Client, form url.Values) (*tokenResponse, error) {
	rt := form.Get("refresh_token")
	if rt == "" {
		return nil, badRequestError("invalid_request", "refresh_token is required")
	}
	if len(rt) != 43 {
		return nil, errBadRefresh
	}
	hash := hashSecret(rt)
	info, err := s.store.Refresh(ctx, hash)
	if errors.Is(err, authstore.ErrNotFound) {
		return nil, errBadRefresh
	}
	if err != nil {
		return nil, serverError(err)
	}
	if info.Grant.ClientID != c.ID {
		return nil, errBadRefresh
	}
	now := s.now()
	if info.Revoked || !now.Before(info.ExpiresAt) || !now.Before(info.Grant.ExpiresAt) {
		return nil, errBadRefresh
	}
	granted := strings.Fields(info.Grant.Scope)
	scope := info.Grant.Scope
	// An empty scope or resource counts as omitted (RFC 6749 §3.1).
	if req := strings.Fields(form.Get("scope")); len(req) > 0 {
		var narrowed []string
		for _, x := range req {
			if !slices.Contains(granted, x) {
				return nil, badRequestError("invalid_scope", "scope exceeds what was granted")
			}
			if !slices.Contains(narrowed, x) {
				narrowed = append(narrowed, x)
			}
		}
		scope = strings.Join(narrowed, " ")
	}
	if res := form.Get("resource"); res != "" && !resourceMatches(res, info.Grant.Resource) {
		return nil, badRequestError("invalid_target", "resource does not match the grant")
	}
	if !s.userCurrent(info.Grant.User, info.Grant.Stamp) {
		if err := s.revokeGrant(ctx, info.Grant.ID, now); err != nil {
			return nil, serverError(err)
		}
		return nil, badRequestError("invalid_grant", "the user's account has changed; sign in again")
	}
	access, next := newSecret(), s.successor(rt)
	t := &authstore.Tokens{
		AccessHash: hashSecret(access), AccessScope: scope, AccessExpires: now.Add(s.cfg.AccessTTL),
		RefreshHash: hashSecret(next), RefreshExpires: minTime(now.Add(s.cfg.RefreshTTL), info.Grant.ExpiresAt),
	}
	out, err := s.store.RotateRefresh(ctx, hash, t, s.cfg.RefreshGrace, now)
	if err != nil {
		return nil, serverError(err)
	}
	switch out {
	case authstore.Rotated, authstore.Retried:
		s.audit.tokenRefreshed(ctx, info.Grant.User, c.ID, info.Grant.ID)
		return &tokenResponse{AccessToken: access, TokenType: "Bearer", ExpiresIn: int64(s.cfg.AccessTTL / time.Second),
			RefreshToken: next, Scope: scope}, nil
	case authstore.Reused:
		s.revoked(ctx)
		s.audit.refreshReuse(ctx, info.Grant.User, c.ID, info.Grant.ID)
	}
	return nil, errBadRefresh
}

// successor derives the refresh token that replaces rt.
func (s *Server) successor(rt string) string {
	m := hmac.New(sha256.New, s.store.RotationKey())
	m.Write([]byte("mcpauth refresh successor\x00"))
	m.Write([]byte(rt))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// revokeGrant revokes every token of a grant and returns once no replica
// accepts them any more (coherence.go).
func (s *Server) revokeGrant(ctx context.Context, grantID string, now time.Time) error {
	if err := s.store.RevokeGrant(ctx, grantID, now); err != nil {
		s.invalidateCaches()
		return err
	}
	s.revoked(ctx)
	return nil
}
