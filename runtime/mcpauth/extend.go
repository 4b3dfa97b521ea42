package mcpauth

// Extension points: endpoints and middleware of the application that embeds
// the server, served on the same origin as the OAuth and MCP endpoints.

import (
	"fmt"
	"net/http"
)

// A Route is an extra endpoint served beside the built-in ones.
type Route struct {
	// Pattern is an http.ServeMux pattern, e.g. "GET /api/status". It must
	// not overlap a built-in endpoint (New fails if it does) and must not
	// name a host.
	Pattern string
	// Handler serves the route.
	Handler http.Handler
	// Bearer protects the route like /mcp: the request needs an access token
	// issued by this server (from the Authorization header, never the
	// query), the Host and Origin checks apply, and the handler finds the
	// caller with IdentityFromContext. Without it the route is public.
	Bearer bool
}

// addRoutes registers cfg.Routes on mux. ServeMux panics on a pattern that
// is malformed or conflicts with one already registered; that is turned
// into an error naming the route.
func (s *Server) addRoutes(mux *http.ServeMux, routes []Route) (err error) {
	for _, rt := range routes {
		if rt.Handler == nil {
			return fmt.Errorf("route %q has no handler", rt.Pattern)
		}
		h := rt.Handler
		if rt.Bearer {
			h = s.protect(h, false)
		}
		if err := handleSafely(mux, rt.Pattern, h); err != nil {
			return err
		}
	}
	return nil
}

func handleSafely(mux *http.ServeMux, pattern string, h http.Handler) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("route %q: %v", pattern, p)
		}
	}()
	mux.Handle(pattern, h)
	return nil
}

// wrap applies middleware to h, the first one outermost.
func wrap(h http.Handler, middleware []func(http.Handler) http.Handler) http.Handler {
	for i := len(middleware) - 1; i >= 0; i-- {
		h = middleware[i](h)
	}
	return h
}
