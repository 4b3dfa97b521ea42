package mcpauth

// Extension points: endpoints and middleware of the application that embeds
// the server, served on the same origin as the OAuth and MCP endpoints.

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// A Route is an extra endpoint served beside the built-in ones.
type Route struct {
	// Pattern is an http.ServeMux pattern, e.g. "GET /api/status". It must
	// not take any request for the path of a built-in endpoint, whatever
	// its method ("POST /mcp", "PUT /token" and "/{page}" all do), and must
	// not name a host; New fails otherwise.
	Pattern string
	// Handler serves the route.
	Handler http.Handler
	// Bearer protects the route like /mcp: the request needs an access token
	// issued by this server (from the Authorization header, never the
	// query), the Host and Origin checks apply, and the handler finds the
	// caller with IdentityFromContext. Without it the route is public.
	Bearer bool
}

// addRoutes registers cfg.Routes on mux, after the built-in endpoints.
// ServeMux panics on a pattern that is malformed or conflicts with one
// already registered; that is turned into an error naming the route. A
// pattern that names a host, or that the mux would prefer to a built-in
// endpoint for some request (such as "POST /mcp", more specific than the
// built-in "/mcp"), is refused too.
func (s *Server) addRoutes(mux *http.ServeMux, routes []Route) (err error) {
	own := make(map[string]bool, len(routes))
	for _, rt := range routes {
		if rt.Handler == nil {
			return fmt.Errorf("route %q has no handler", rt.Pattern)
		}
		own[rt.Pattern] = true
		h := rt.Handler
		if rt.Bearer {
			h = s.protect(h, false)
		}
		if err := handleSafely(mux, rt.Pattern, h); err != nil {
			return err
		}
		if namesHost(rt.Pattern) { // checked once the mux has parsed it
			return fmt.Errorf("route %q names a host; routes are served on every host the server answers", rt.Pattern)
		}
	}
	if len(own) == 0 {
		return nil
	}
	for _, path := range builtinPaths {
		for _, method := range probeMethods {
			_, pattern := mux.Handler(&http.Request{Method: method, URL: &url.URL{Path: path}, Host: "localhost"})
			if own[pattern] {
				return fmt.Errorf("route %q overlaps the built-in endpoint %s %s", pattern, method, path)
			}
		}
	}
	return nil
}

// probeMethods are the methods addRoutes tries on every built-in path.
var probeMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "QUERY"}

// namesHost reports whether a ServeMux pattern ("[METHOD ][HOST]/[PATH]")
// names a host.
func namesHost(pattern string) bool {
	rest := strings.TrimLeft(pattern, " \t")
	if i := strings.IndexAny(rest, " \t"); i >= 0 {
		rest = strings.TrimLeft(rest[i:], " \t") // after the method
	}
	return rest != "" && !strings.HasPrefix(rest, "/")
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
