// Package mcpauthtest drives the OAuth 2.1 flow of an mcpauth server
// headlessly over real HTTP, the way net/http/httptest drives handlers.
//
// It relies only on the HTTP contract of the server (its endpoints, as the
// generated project's README lists them), never on its internals:
//
//	POST /register   dynamic client registration (RFC 7591)
//	GET  /authorize  an HTML page whose form has inputs named "username" and
//	                 "password"; every other input is carried along as is, and
//	                 the form is posted to its action
//	                 the POST answers 303 to the redirect URI
//	POST /token      authorization_code and refresh_token grants
//	POST /revoke     token revocation (RFC 7009)
//	/mcp             the bearer-protected MCP endpoint
//
// A typical test:
//
//	c, err := mcpauthtest.Register(ctx, srv.URL, nil)
//	res, err := c.Authorize(ctx, mcpauthtest.AuthorizeOptions{Username: "alice", Password: "pw"})
//	tok, err := c.Exchange(ctx, res.Code, res.Verifier)
//	out, err := mcpauthtest.CallTool(ctx, srv.URL+"/mcp", tok.AccessToken, "echo", map[string]any{"text": "hi"})
//
// Every error names the step that failed, for example
// "authorize: login form: no input named password". Errors that carry an
// HTTP answer are *Error values; use errors.As to inspect the status and the
// OAuth error code.
//
// The package uses only the standard library and mcp-go, so that it can be
// copied into generated projects together with the runtime.
package mcpauthtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"time"
)

// DefaultRedirectURI is the redirect URI registered by Register when the
// metadata names none. Nothing listens there: the helper catches the redirect
// before it is followed.
const DefaultRedirectURI = "http://127.0.0.1:9/callback"

// maxBody caps how much of any response the helper reads.
const maxBody = 1 << 20

// Client is a registered OAuth client of one server.
type Client struct {
	// BaseURL is the server's base URL (the issuer), without trailing slash.
	BaseURL string
	// HTTP sends the back-channel requests (/register, /token, /revoke).
	// Nil means a client with a 30-second timeout.
	HTTP *http.Client
	// ClientID and ClientSecret are the registered credentials. ClientSecret
	// is empty for public clients.
	ClientID, ClientSecret string
	// AuthMethod is the registered token_endpoint_auth_method: "none",
	// "client_secret_post" or "client_secret_basic".
	AuthMethod string
	// RedirectURI is the redirect URI sent to /authorize and /token.
	RedirectURI string
	// Registration is the decoded JSON body of the registration response.
	Registration map[string]any
}

// Error is an unexpected HTTP answer. Code and Description are the OAuth
// "error" and "error_description" when the body carried them.
type Error struct {
	Step        string // e.g. "token", "register", "authorize: login"
	Status      int
	Code        string
	Description string
	Header      http.Header
	Body        []byte
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%s: HTTP %d", e.Step, e.Status)
	if e.Code != "" {
		msg += " " + e.Code
	}
	if e.Description != "" {
		msg += ": " + e.Description
	} else if e.Code == "" && len(e.Body) > 0 {
		b := e.Body
		if len(b) > 200 {
			b = b[:200]
		}
		msg += ": " + strings.TrimSpace(string(b))
	}
	return msg
}

// ErrorCode returns the OAuth error code carried by err ("invalid_grant"), or
// "" if err is not an *Error.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// ErrorStatus returns the HTTP status carried by err, or 0 if err is not an
// *Error.
func ErrorStatus(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// newError builds an *Error from a response whose body has been read.
func newError(step string, resp *http.Response, body []byte) *Error {
	e := &Error{Step: step, Status: resp.StatusCode, Header: resp.Header, Body: body}
	var oe struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(body, &oe) == nil {
		e.Code, e.Description = oe.Error, oe.Description
	}
	return e
}

// PKCE returns a fresh RFC 7636 code verifier (43 characters, 256 random
// bits) and its S256 code challenge.
func PKCE() (verifier, challenge string) {
	b := make([]byte, 32)
	rand.Read(b) // never returns an error
	verifier = base64.RawURLEncoding.EncodeToString(b)
	return verifier, Challenge(verifier)
}

// Challenge returns the S256 code challenge of verifier.
func Challenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 30 * time.Second}
}

// Register registers a new client at baseURL + "/register" and returns it.
// meta is the RFC 7591 client metadata; keys it leaves out default to
// redirect_uris [DefaultRedirectURI], client_name "mcpauthtest", grant_types
// authorization_code and refresh_token, response_types code and
// token_endpoint_auth_method "none".
func Register(ctx context.Context, baseURL string, meta map[string]any) (*Client, error) {
	c := &Client{BaseURL: strings.TrimSuffix(baseURL, "/")}
	if err := c.Register(ctx, meta); err != nil {
		return nil, err
	}
	return c, nil
}

// Register registers c at c.BaseURL + "/register" (see the function
// Register for the defaults) and fills in its credentials.
func (c *Client) Register(ctx context.Context, meta map[string]any) error {
	m := map[string]any{
		"redirect_uris":              []string{DefaultRedirectURI},
		"client_name":                "mcpauthtest",
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"token_endpoint_auth_method": "none",
	}
	for k, v := range meta {
		m[k] = v
	}
	body, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("register: encode metadata: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BaseURL+"/register", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, respBody, err := do(c.httpClient(), req)
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	if resp.StatusCode != http.StatusCreated {
		return newError("register", resp, respBody)
	}
	var reg map[string]any
	if err := json.Unmarshal(respBody, &reg); err != nil {
		return fmt.Errorf("register: decode response: %w", err)
	}
	c.Registration = reg
	c.ClientID, _ = reg["client_id"].(string)
	if c.ClientID == "" {
		return fmt.Errorf("register: response has no client_id")
	}
	c.ClientSecret, _ = reg["client_secret"].(string)
	c.AuthMethod, _ = reg["token_endpoint_auth_method"].(string)
	if c.AuthMethod == "" {
		c.AuthMethod, _ = m["token_endpoint_auth_method"].(string)
	}
	c.RedirectURI = ""
	if uris, ok := reg["redirect_uris"].([]any); ok && len(uris) > 0 {
		c.RedirectURI, _ = uris[0].(string)
	}
	if c.RedirectURI == "" {
		return fmt.Errorf("register: response has no redirect_uris")
	}
	return nil
}

// do sends req and reads at most maxBody bytes of the response body.
func do(hc *http.Client, req *http.Request) (*http.Response, []byte, error) {
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, nil, fmt.Errorf("read response: %w", err)
	}
	return resp, body, nil
}

// AuthorizeOptions are the parameters of one authorization request and of
// the login that follows it.
type AuthorizeOptions struct {
	// Username and Password are typed into the login form.
	Username, Password string
	// Scope, State and Resource are sent when not empty.
	Scope, State, Resource string
	// RedirectURI overrides Client.RedirectURI.
	RedirectURI string
	// Deny presses the form's refuse button instead of approving.
	Deny bool
	// Query holds extra or overriding query parameters for /authorize
	// (for example a tampered code_challenge). A key with an empty slice
	// removes the parameter.
	Query url.Values
	// Browser is the browser to sign in with, keeping its cookies from one
	// sign-in to the next (see NewBrowser); nil means a fresh one, with the
	// Client's transport.
	Browser *http.Client
}

// AuthorizeResult is the outcome of an authorization: the parameters of the
// 303 redirect to the client's redirect URI.
type AuthorizeResult struct {
	// Code, State and Iss are the query parameters of the redirect.
	Code, State, Iss string
	// Error and ErrorDescription are set when the server redirected with an
	// error (for example access_denied after Deny).
	Error, ErrorDescription string
	// Verifier is the PKCE code verifier to send with Code.
	Verifier string
	// Location is the full redirect target.
	Location *url.URL
}

// Authorize runs the browser part of the flow with a fresh cookie jar: it
// GETs /authorize with a new PKCE S256 challenge, fills in the login form,
// posts it and returns the parameters of the 303 redirect.
func (c *Client) Authorize(ctx context.Context, opts AuthorizeOptions) (*AuthorizeResult, error) {
	page, err := c.OpenAuthorize(ctx, opts)
	if err != nil {
		return nil, err
	}
	return page.Submit(ctx, opts.Username, opts.Password, opts.Deny)
}

// AuthorizeURL returns the /authorize URL for opts with the given PKCE
// challenge.
func (c *Client) AuthorizeURL(opts AuthorizeOptions, challenge string) string {
	q := url.Values{}
	q.Set("response_type", "code")
	q.Set("client_id", c.ClientID)
	redirect := c.RedirectURI
	if opts.RedirectURI != "" {
		redirect = opts.RedirectURI
	}
	q.Set("redirect_uri", redirect)
	q.Set("code_challenge", challenge)
	q.Set("code_challenge_method", "S256")
	if opts.Scope != "" {
		q.Set("scope", opts.Scope)
	}
	if opts.State != "" {
		q.Set("state", opts.State)
	}
	if opts.Resource != "" {
		q.Set("resource", opts.Resource)
	}
	for k, v := range opts.Query {
		if len(v) == 0 {
			q.Del(k)
		} else {
			q[k] = v
		}
	}
	return c.BaseURL + "/authorize?" + q.Encode()
}

// LoginPage is the login page returned by /authorize, with the browser
// state needed to submit it.
type LoginPage struct {
	// URL is the page's URL.
	URL *url.URL
	// Header and Body are the page's response.
	Header http.Header
	Body   []byte
	// Form is the login form.
	Form *Form
	// Verifier is the PKCE code verifier matching the request's challenge.
	Verifier string
	// Browser holds the cookie jar of this login and follows no redirects.
	Browser *http.Client
}

// NewBrowser returns an HTTP client with a fresh cookie jar that follows no
// redirects, like a browser tab whose navigations the test inspects.
func NewBrowser() *http.Client {
	jar, _ := cookiejar.New(nil) // never fails without options
	return &http.Client{
		Jar:     jar,
		Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// OpenAuthorize GETs /authorize with a fresh browser and a new PKCE
// challenge and parses the login form. It fails unless the answer is 200
// with a form that has a password input.
func (c *Client) OpenAuthorize(ctx context.Context, opts AuthorizeOptions) (*LoginPage, error) {
	verifier, challenge := PKCE()
	u, err := url.Parse(c.AuthorizeURL(opts, challenge))
	if err != nil {
		return nil, fmt.Errorf("authorize: %w", err)
	}
	browser := opts.Browser
	if browser == nil {
		browser = NewBrowser()
		if c.HTTP != nil && c.HTTP.Transport != nil {
			browser.Transport = c.HTTP.Transport
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("authorize: %w", err)
	}
	req.Header.Set("Accept", "text/html")
	resp, body, err := do(browser, req)
	if err != nil {
		return nil, fmt.Errorf("authorize: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, newError("authorize", resp, body)
	}
	form, err := ParseForm(u, body)
	if err != nil {
		return nil, fmt.Errorf("authorize: %w", err)
	}
	return &LoginPage{URL: u, Header: resp.Header, Body: body, Form: form, Verifier: verifier, Browser: browser}, nil
}

// Post posts fields to the form's action with the page's cookies and the
// headers a browser sends on a same-origin form submission (Origin,
// Sec-Fetch-Site), plus any in extra (which override them; an empty value
// removes a header). It returns the response with its body already read.
func (p *LoginPage) Post(ctx context.Context, fields url.Values, extra http.Header) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, p.Form.Method, p.Form.Action.String(), strings.NewReader(fields.Encode()))
	if err != nil {
		return nil, nil, fmt.Errorf("authorize: login: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", p.URL.Scheme+"://"+p.URL.Host)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for k, v := range extra {
		if len(v) == 0 || v[0] == "" {
			req.Header.Del(k)
		} else {
			req.Header[http.CanonicalHeaderKey(k)] = v
		}
	}
	resp, body, err := do(p.Browser, req)
	if err != nil {
		return nil, nil, fmt.Errorf("authorize: login: %w", err)
	}
	return resp, body, nil
}

// Submit fills in username and password, presses the approve button (or
// the refuse button if deny), and returns the parameters of the redirect.
// It fails unless the answer is a 303 redirect.
func (p *LoginPage) Submit(ctx context.Context, username, password string, deny bool) (*AuthorizeResult, error) {
	fields, err := p.Form.Values(username, password, deny)
	if err != nil {
		return nil, fmt.Errorf("authorize: %w", err)
	}
	resp, body, err := p.Post(ctx, fields, nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusSeeOther {
		return nil, newError("authorize: login", resp, body)
	}
	res, err := ParseRedirect(resp)
	if err != nil {
		return nil, fmt.Errorf("authorize: login: %w", err)
	}
	res.Verifier = p.Verifier
	return res, nil
}

// ParseRedirect reads the authorization response from the Location header
// of resp.
func ParseRedirect(resp *http.Response) (*AuthorizeResult, error) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return nil, fmt.Errorf("redirect: no Location header")
	}
	u, err := resp.Request.URL.Parse(loc)
	if err != nil {
		return nil, fmt.Errorf("redirect: bad Location %q: %w", loc, err)
	}
	q := u.Query()
	return &AuthorizeResult{
		Code:             q.Get("code"),
		State:            q.Get("state"),
		Iss:              q.Get("iss"),
		Error:            q.Get("error"),
		ErrorDescription: q.Get("error_description"),
		Location:         u,
	}, nil
}

// Token is a successful token response (RFC 6749 section 5.1).
type Token struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

// Exchange redeems an authorization code at /token with its PKCE verifier
// and c.RedirectURI.
func (c *Client) Exchange(ctx context.Context, code, verifier string) (*Token, error) {
	return c.PostToken(ctx, url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"code_verifier": {verifier},
		"redirect_uri":  {c.RedirectURI},
	})
}

// Refresh redeems a refresh token at /token.
func (c *Client) Refresh(ctx context.Context, refreshToken string) (*Token, error) {
	return c.PostToken(ctx, url.Values{
		"grant_type":    {"refresh_token"},
		"refresh_token": {refreshToken},
	})
}

// PostToken posts form to /token, authenticated as c (see Authenticate),
// and decodes a 200 answer. Any other answer is an *Error.
func (c *Client) PostToken(ctx context.Context, form url.Values) (*Token, error) {
	resp, body, err := c.Post(ctx, "/token", form)
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, newError("token", resp, body)
	}
	var tok Token
	if err := json.Unmarshal(body, &tok); err != nil {
		return nil, fmt.Errorf("token: decode response: %w", err)
	}
	if tok.AccessToken == "" {
		return nil, fmt.Errorf("token: response has no access_token")
	}
	return &tok, nil
}

// Revoke revokes token at /revoke (RFC 7009); hint is the optional
// token_type_hint. Any answer but 200 is an *Error.
func (c *Client) Revoke(ctx context.Context, token, hint string) error {
	form := url.Values{"token": {token}}
	if hint != "" {
		form.Set("token_type_hint", hint)
	}
	resp, body, err := c.Post(ctx, "/revoke", form)
	if err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return newError("revoke", resp, body)
	}
	return nil
}

// Post posts form, authenticated as c, to the server path (for example
// "/token") and returns the response with its body already read.
func (c *Client) Post(ctx context.Context, path string, form url.Values) (*http.Response, []byte, error) {
	form = cloneValues(form)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BaseURL+path, nil)
	if err != nil {
		return nil, nil, err
	}
	c.Authenticate(req, form)
	req.Body = io.NopCloser(strings.NewReader(form.Encode()))
	req.ContentLength = int64(len(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(c.httpClient(), req)
}

// Authenticate adds c's client authentication to a token-endpoint request:
// client_id in form for public clients and client_secret_post, HTTP Basic
// (RFC 6749 section 2.3.1 encoding) for client_secret_basic. Values already
// in form are kept.
func (c *Client) Authenticate(req *http.Request, form url.Values) {
	switch {
	case c.AuthMethod == "client_secret_basic" && c.ClientSecret != "":
		req.SetBasicAuth(url.QueryEscape(c.ClientID), url.QueryEscape(c.ClientSecret))
	case c.ClientSecret != "":
		setDefault(form, "client_id", c.ClientID)
		setDefault(form, "client_secret", c.ClientSecret)
	default:
		setDefault(form, "client_id", c.ClientID)
	}
}

func setDefault(v url.Values, key, value string) {
	if _, ok := v[key]; !ok {
		v.Set(key, value)
	}
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}
