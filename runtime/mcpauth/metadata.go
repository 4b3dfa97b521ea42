package mcpauth

// Discovery documents:
//   - RFC 9728 OAuth 2.0 Protected Resource Metadata, served at the
//     path-inserted well-known URL of the MCP endpoint
//     (/.well-known/oauth-protected-resource/mcp) and, with the same body, at
//     the root form; a trailing slash is tolerated.
//   - RFC 8414 OAuth 2.0 Authorization Server Metadata at
//     /.well-known/oauth-authorization-server.
//
// /.well-known/openid-configuration is deliberately not served (404): this is
// not an OpenID provider, and clients that find an OIDC document expect fields
// (jwks_uri, id_token_signing_alg_values_supported) it cannot honestly give.
//
// Both documents are built once from the configured base URL; nothing in
// them is derived from request headers.

import (
	"encoding/json"
	"net/http"

	"github.com/mark3labs/mcp-go/server"
)

// Paths of the metadata documents.
const (
	prmPath        = "/.well-known/oauth-protected-resource"
	prmPathMCP     = prmPath + "/mcp"
	asMetadataPath = "/.well-known/oauth-authorization-server"
)

// asMetadata is the RFC 8414 document. Every field advertises something
// implemented and tested.
type asMetadata struct {
	Issuer                            string   `json:"issuer"`                                // required
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`                // required
	TokenEndpoint                     string   `json:"token_endpoint"`                        // required
	RegistrationEndpoint              string   `json:"registration_endpoint"`                 // RFC 7591
	RevocationEndpoint                string   `json:"revocation_endpoint"`                   // RFC 7009
	ScopesSupported                   []string `json:"scopes_supported"`                      // recommended
	ResponseTypesSupported            []string `json:"response_types_supported"`              // required
	ResponseModesSupported            []string `json:"response_modes_supported"`              // optional
	GrantTypesSupported               []string `json:"grant_types_supported"`                 // optional
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"` // optional
	RevocationEndpointAuthMethods     []string `json:"revocation_endpoint_auth_methods_supported"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported"`               // RFC 7636
	IssParameterSupported             bool     `json:"authorization_response_iss_parameter_supported"` // RFC 9207
	ClientIDMetadataDocumentSupported bool     `json:"client_id_metadata_document_supported,omitempty"`
}

var authMethods = []string{"none", "client_secret_post", "client_secret_basic"}

// buildMetadata renders both documents.
func (s *Server) buildMetadata() error {
	prm := server.ProtectedResourceMetadataConfig{
		Resource:               s.resource,
		AuthorizationServers:   []string{s.issuer},
		ScopesSupported:        supportedScopes,
		BearerMethodsSupported: []string{"header"},
		ResourceName:           s.serverName, // Config.ResourceName, else the host
	}
	as := asMetadata{
		Issuer:                            s.issuer,
		AuthorizationEndpoint:             s.issuer + "/authorize",
		TokenEndpoint:                     s.issuer + "/token",
		RegistrationEndpoint:              s.issuer + "/register",
		RevocationEndpoint:                s.issuer + "/revoke",
		ScopesSupported:                   supportedScopes,
		ResponseTypesSupported:            []string{"code"},
		ResponseModesSupported:            []string{"query"},
		GrantTypesSupported:               []string{"authorization_code", "refresh_token"},
		TokenEndpointAuthMethodsSupported: authMethods,
		RevocationEndpointAuthMethods:     authMethods,
		CodeChallengeMethodsSupported:     []string{"S256"},
		IssParameterSupported:             true,
		ClientIDMetadataDocumentSupported: cimdSupported,
	}
	var err error
	if s.prmBody, err = json.Marshal(prm); err != nil {
		return err
	}
	s.asBody, err = json.Marshal(as)
	return err
}

// handlePRM serves the protected-resource metadata.
func (s *Server) handlePRM(w http.ResponseWriter, r *http.Request) {
	serveDocument(w, r, s.prmBody)
}

// handleASMetadata serves the authorization-server metadata.
func (s *Server) handleASMetadata(w http.ResponseWriter, r *http.Request) {
	serveDocument(w, r, s.asBody)
}

// serveDocument writes a public JSON document with CORS open to any origin
// (it holds nothing secret and browser-based clients must read it).
func serveDocument(w http.ResponseWriter, r *http.Request, body []byte) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", "GET, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "MCP-Protocol-Version, Content-Type, Authorization")
	h.Set("Access-Control-Max-Age", "86400")
	if r.Method == http.MethodOptions {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=300")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}
