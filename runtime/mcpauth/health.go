package mcpauth

// The unauthenticated endpoints for people and probes:
//
//	GET /         a small page naming the server and its MCP URL, so that
//	              someone who opens the base URL in a browser learns what to
//	              paste into their MCP client instead of seeing a 404
//	GET /healthz  liveness: the process serves HTTP (Kubernetes livenessProbe)
//	GET /readyz   readiness: the database answers and the users file is
//	              loaded (readinessProbe, load balancer checks, the
//	              healthcheck command of the container image)
//
// They answer without a token and reveal nothing an anonymous caller could
// not learn from the metadata documents: no version, no counts, no error
// text (a failing readiness check is logged, with the reason, instead).

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"
)

// readyTimeout bounds the database check of /readyz: a probe that hangs is
// worse than one that fails.
const readyTimeout = 2 * time.Second

// homePage names the server and says what to do with its MCP URL.
func homePage(server, mcpURL string) *page {
	p := new(page)
	p.start(server, "")
	p.raw("<h1>")
	p.text(server)
	p.raw(`</h1>
<p>This is an MCP server. Add it to your MCP client (Claude, VS Code, Cursor, …) with this URL:</p>
<p class="app"><code>`)
	p.text(mcpURL)
	p.raw(`</code></p>
<p class="note">The client will send you to a sign-in page the first time it connects.</p>
`)
	p.end()
	return p
}

// handleHome serves the page at the base URL.
func (s *Server) handleHome(w http.ResponseWriter, r *http.Request) {
	s.renderPage(w, http.StatusOK, homePage(s.serverName, s.resource))
}

// handleHealthz answers 200 while the process serves requests.
func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	probeAnswer(w, http.StatusOK, "ok\n")
}

// handleReadyz answers 200 when the server can do its work: the database
// answers and the users file was loaded; otherwise 503, and the reason goes
// to the log (once per change from ready to not ready, so a probe every few
// seconds does not flood it).
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	err := s.store.Ping(ctx)
	if err == nil && s.users == nil {
		err = errNoUsersFile
	}
	if err != nil {
		if s.notReady.CompareAndSwap(false, true) {
			s.log.WarnContext(r.Context(), "not ready", "error", err)
		}
		probeAnswer(w, http.StatusServiceUnavailable, "not ready\n")
		return
	}
	if s.notReady.CompareAndSwap(true, false) {
		s.log.InfoContext(r.Context(), "ready again")
	}
	probeAnswer(w, http.StatusOK, "ready\n")
}

type healthError string

func (e healthError) Error() string { return string(e) }

const errNoUsersFile = healthError("the users file is not loaded")

func probeAnswer(w http.ResponseWriter, status int, body string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write([]byte(body))
}

// readiness is the state handleReadyz keeps between probes.
type readiness struct {
	notReady atomic.Bool // the last probe failed
}
