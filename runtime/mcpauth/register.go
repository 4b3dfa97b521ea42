package mcpauth

// RFC 7591 OAuth 2.0 Dynamic Client Registration, open (no initial access
// token), as the MCP authorization spec expects.
//
// Supported metadata: redirect_uris (required), token_endpoint_auth_method
// (none, client_secret_post, client_secret_basic; default none),
// grant_types (authorization_code, refresh_token; default both),
// response_types (code), client_name, scope. Other fields are ignored, as is
// any client_id the client proposes. Not supported: the registration access
// token and client configuration endpoint (RFC 7592), software statements,
// jwks.
//
// Registration is rate-limited per client IP and the body is capped.

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mcpgen/create-mcp-server/runtime/authstore"
)

const (
	maxRegisterBody  = 64 << 10
	maxRedirectURIs  = 20
	maxClientNameLen = 200
	// maxClientMetadata caps what one client stores: its redirect URIs,
	// name and scope together (each redirect URI is at most
	// maxRedirectURILen), so that open registration cannot be used to
	// store bulk data.
	maxClientMetadata = 8 << 10
)

// registerRequest is the part of the client metadata this server reads.
type registerRequest struct {
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	ClientName              string   `json:"client_name"`
	Scope                   string   `json:"scope"`
}

// registerResponse is the RFC 7591 §3.2.1 response. Empty fields are
// omitted: clients' schemas reject null and some reject "".
type registerResponse struct {
	ClientID                string   `json:"client_id"`
	ClientIDIssuedAt        int64    `json:"client_id_issued_at"`
	ClientSecret            string   `json:"client_secret,omitempty"`
	ClientSecretExpiresAt   *int64   `json:"client_secret_expires_at,omitempty"`
	RedirectURIs            []string `json:"redirect_uris"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	ClientName              string   `json:"client_name,omitempty"`
	Scope                   string   `json:"scope,omitempty"`
}

func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	now := s.now()
	d, ok, err := s.limits.Allow(r.Context(), registerAddrLimit, s.clientKey(r), now)
	if err != nil {
		s.writeError(w, r, serverError(err))
		return
	}
	if !ok {
		s.metrics.throttled(throttleRegistration)
		s.writeError(w, r, &oauthError{Code: "rate_limited", Description: "too many registrations, try later",
			Status: http.StatusTooManyRequests, retryAfter: retryAfter(d)})
		return
	}
	resp, err := s.register(w, r, now)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, resp)
}

func (s *Server) register(w http.ResponseWriter, r *http.Request, now time.Time) (*registerResponse, error) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return nil, badRequestError("invalid_client_metadata", "the body must be application/json")
	}
	body, err := readBody(w, r, maxRegisterBody, s.timeouts.body)
	if err != nil {
		oe := bodyError(err)
		oe.Code = "invalid_client_metadata"
		return nil, oe
	}
	var req registerRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, badRequestError("invalid_client_metadata", "the body is not a JSON object of client metadata")
	}
	c, err := newClientFromMetadata(&req)
	if err != nil {
		return nil, err
	}
	c.ID = rand.Text()
	c.CreatedAt = now
	var secret string
	if c.AuthMethod != "none" {
		secret = newSecret()
		c.SecretHash = hashSecret(secret)
	}
	// At the cap (authstore.Limits.Clients) the oldest never-used clients
	// make room; only when every client has been used is this refused.
	if err := s.store.CreateClient(r.Context(), c); errors.Is(err, authstore.ErrFull) {
		return nil, &oauthError{Code: "temporarily_unavailable", Description: "too many registered clients, try later",
			Status: http.StatusServiceUnavailable, Err: err, retryAfter: "3600"}
	} else if err != nil {
		return nil, serverError(err)
	}
	s.audit.clientRegistered(r.Context(), c.ID, c.Name, s.clientIP(r).String())
	resp := &registerResponse{
		ClientID:                c.ID,
		ClientIDIssuedAt:        now.Unix(),
		ClientSecret:            secret,
		RedirectURIs:            c.RedirectURIs,
		GrantTypes:              c.GrantTypes,
		ResponseTypes:           c.ResponseTypes,
		TokenEndpointAuthMethod: c.AuthMethod,
		ClientName:              c.Name,
		Scope:                   c.Scope,
	}
	if secret != "" {
		var never int64
		resp.ClientSecretExpiresAt = &never
	}
	return resp, nil
}

// newClientFromMetadata validates registration metadata.
func newClientFromMetadata(req *registerRequest) (*authstore.Client, error) {
	if len(req.RedirectURIs) == 0 {
		return nil, badRequestError("invalid_redirect_uri", "redirect_uris is required")
	}
	if len(req.RedirectURIs) > maxRedirectURIs {
		return nil, badRequestError("invalid_redirect_uri", "too many redirect_uris")
	}
	for _, u := range req.RedirectURIs {
		if err := validRedirectURI(u); err != nil {
			return nil, badRequestError("invalid_redirect_uri", err.Error())
		}
	}
	c := &authstore.Client{
		RedirectURIs:  slices.Compact(slices.Clone(req.RedirectURIs)),
		AuthMethod:    req.TokenEndpointAuthMethod,
		GrantTypes:    req.GrantTypes,
		ResponseTypes: req.ResponseTypes,
		Name:          strings.TrimSpace(req.ClientName),
		Scope:         filterScopes(req.Scope),
	}
	if c.AuthMethod == "" {
		c.AuthMethod = "none"
	}
	if !slices.Contains(authMethods, c.AuthMethod) {
		return nil, badRequestError("invalid_client_metadata", "token_endpoint_auth_method must be none, client_secret_post or client_secret_basic")
	}
	if len(c.GrantTypes) == 0 {
		c.GrantTypes = []string{"authorization_code", "refresh_token"}
	}
	for _, g := range c.GrantTypes {
		if g != "authorization_code" && g != "refresh_token" {
			return nil, badRequestError("invalid_client_metadata", "grant_types may contain only authorization_code and refresh_token")
		}
	}
	if !slices.Contains(c.GrantTypes, "authorization_code") {
		return nil, badRequestError("invalid_client_metadata", "grant_types must include authorization_code")
	}
	c.GrantTypes = slices.Compact(c.GrantTypes)
	if len(c.ResponseTypes) == 0 {
		c.ResponseTypes = []string{"code"}
	}
	for _, rt := range c.ResponseTypes {
		if rt != "code" {
			return nil, badRequestError("invalid_client_metadata", "response_types may contain only code")
		}
	}
	c.ResponseTypes = []string{"code"}
	if len(c.Name) > maxClientNameLen {
		return nil, badRequestError("invalid_client_metadata", "client_name is too long")
	}
	size := len(c.Name) + len(c.Scope)
	for _, u := range c.RedirectURIs {
		size += len(u)
	}
	if size > maxClientMetadata {
		return nil, badRequestError("invalid_client_metadata", "the client metadata is too large (redirect_uris, client_name and scope together)")
	}
	return c, nil
}
