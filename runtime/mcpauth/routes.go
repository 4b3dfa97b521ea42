package mcpauth

import "net/http"

// routes lists every endpoint once, then adds Config.Routes, and wraps the
// result in the metrics and Config.Middleware.
func (s *Server) routes() (http.Handler, error) {
	mux := http.NewServeMux()
	// The document is served at exactly these paths ({$}: not subtrees).
	for _, p := range []string{prmPath, prmPath + "/{$}", prmPathMCP, prmPathMCP + "/{$}"} {
		mux.HandleFunc("GET "+p, s.handlePRM) // GET also matches HEAD
		mux.HandleFunc("OPTIONS "+p, s.handlePRM)
	}
	mux.HandleFunc("GET "+asMetadataPath, s.handleASMetadata)
	mux.HandleFunc("OPTIONS "+asMetadataPath, s.handleASMetadata)

	mux.Handle("POST /register", s.cors(http.HandlerFunc(s.handleRegister)))
	mux.Handle("OPTIONS /register", s.cors(nil))
	mux.HandleFunc("GET /authorize", s.handleAuthorize)
	mux.HandleFunc("POST /authorize", s.handleLogin)
	mux.Handle("POST /token", s.cors(http.HandlerFunc(s.handleToken)))
	mux.Handle("OPTIONS /token", s.cors(nil))
	mux.HandleFunc("/token", s.handleOnlyPost)
	mux.Handle("POST /revoke", s.cors(http.HandlerFunc(s.handleRevoke)))
	mux.Handle("OPTIONS /revoke", s.cors(nil))
	mux.HandleFunc("/revoke", s.handleOnlyPost)

	mux.HandleFunc("GET /account", s.handleAccount)
	mux.HandleFunc("POST /account", s.handleAccountSignIn)
	mux.HandleFunc("POST /account/disconnect", s.handleAccountDisconnect)
	mux.HandleFunc("POST /account/signout", s.handleAccountSignOut)

	mcp := s.bearer(s.mcpHandler)
	mux.Handle(mcpPath, mcp)

	mux.HandleFunc("GET /{$}", s.handleHome)
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /readyz", s.handleReadyz)

	if err := s.addRoutes(mux, s.cfg.Routes); err != nil {
		return nil, err
	}
	// Metrics sit next to the mux, which sets the request's Pattern.
	return wrap(s.metrics.instrument(mcpFirst(mux, mcp)), s.cfg.Middleware), nil
}

// builtinPaths are the request paths of the built-in endpoints; no route
// of Config.Routes may take a request for one of them, whatever its method.
var builtinPaths = []string{
	prmPath, prmPath + "/", prmPathMCP, prmPathMCP + "/", asMetadataPath,
	"/register", "/authorize", "/token", "/revoke",
	"/account", "/account/disconnect", "/account/signout",
	mcpPath, "/", "/healthz", "/readyz",
}

// mcpFirst sends requests for the MCP endpoint, nearly all of a busy
// server's traffic, straight to mcp, without the mux's route matching.
// The mux would pick the same handler: no route names a host, and
// addRoutes refuses any route that would take a request for a built-in
// path. Pattern is set as the mux sets it, for the metrics.
func mcpFirst(mux *http.ServeMux, mcp http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != mcpPath {
			mux.ServeHTTP(w, r)
			return
		}
		r.Pattern = mcpPath
		mcp.ServeHTTP(w, r)
	})
}
