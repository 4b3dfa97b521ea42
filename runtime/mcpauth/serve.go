package mcpauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/server"
)

// ListenAndServe runs New(cfg, mcp) on cfg.Addr until ctx is cancelled, then
// shuts down gracefully (see Server.Serve) and closes the database.
func ListenAndServe(ctx context.Context, cfg Config, mcp *server.MCPServer) error {
	s, err := New(cfg, mcp)
	if err != nil {
		return err
	}
	defer s.Close()
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("mcpauth: listen: %w", err)
	}
	s.log.Info("listening", "url", s.resource, "addr", ln.Addr().String())
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx is cancelled, then shuts down gracefully: it
// stops accepting connections, ends MCP streams, gives requests in flight a
// few seconds, then cancels what is left. It does not Close s.
//
// Serve defends the listener against slow and greedy clients: request
// headers must arrive within 10 s; at most Config.MaxConnections
// connections are open at once, and at most Config.MaxConnectionsPerAddr
// from one client address (an IPv4 address or an IPv6 /64; trusted proxies
// are exempt, they carry many clients). A connection over either cap is
// answered 503 and closed at once.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	// Requests outlive ctx (so shutdown can be graceful) until baseCancel.
	base, baseCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer baseCancel()
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.timeouts.header,
		// No ReadTimeout or WriteTimeout: MCP responses may be long-lived
		// SSE streams, and an expiring read deadline cancels the request's
		// context. Request bodies get their own read deadline instead
		// (readBody), cleared once they are read.
		IdleTimeout:    120 * time.Second,
		MaxHeaderBytes: maxHeaderBytes,
		BaseContext:    func(net.Listener) context.Context { return base },
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	ln = s.capListener(ln)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("mcpauth: serve: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("mcpauth: shutting down")
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Long-lived streams never end by themselves: end the sessions' streams
	// now, and cancel whatever still runs after a grace period.
	s.mcpHandler.CloseSessions(shutCtx)
	stop := time.AfterFunc(5*time.Second, baseCancel)
	defer stop.Stop()
	err := srv.Shutdown(shutCtx)
	if err != nil {
		srv.Close()
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("mcpauth: shutdown: %w", err)
	}
	return nil
}

// timeouts are the read deadlines of a request.
type timeouts struct {
	header  time.Duration // request line and headers (http.Server.ReadHeaderTimeout)
	body    time.Duration // the body of an OAuth request (/authorize, /token, /revoke, /register)
	mcpBody time.Duration // the body of an MCP request; not its response, which may stream
}

// maxHeaderBytes bounds a request's headers; past it net/http answers 431.
const maxHeaderBytes = 64 << 10

var defaultTimeouts = timeouts{header: 10 * time.Second, body: 10 * time.Second, mcpBody: 30 * time.Second}

// setBodyDeadline sets the read deadline for r's body, d from now, on
// requests that have one. Readers of the body clear it once they are done
// (readBody); for handlers that never read the body, it bounds how long
// the server spends discarding it.
func setBodyDeadline(w http.ResponseWriter, r *http.Request, d time.Duration) {
	if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
		return
	}
	// Not every ResponseWriter supports deadlines (tests may use a
	// recorder): then there is simply none.
	http.NewResponseController(w).SetReadDeadline(time.Now().Add(d))
}

// readBody reads r's body, at most limit bytes, within d. Once the body is
// read it clears the read deadline, so that the deadline cannot cut a
// response that takes longer (the server cancels a request whose
// connection read fails). A body too large is a *http.MaxBytesError; one
// that stalls or is cut off is an I/O error, and then the deadline is left
// in the past, so that the server does not wait for the rest of the body
// either: it closes the connection after the answer.
func readBody(w http.ResponseWriter, r *http.Request, limit int64, d time.Duration) ([]byte, error) {
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Now().Add(d))
	body, err := readAll(http.MaxBytesReader(w, r.Body, limit), r.ContentLength, limit)
	if err != nil {
		rc.SetReadDeadline(time.Unix(1, 0))
		return nil, err
	}
	rc.SetReadDeadline(time.Time{})
	return body, nil
}

// readAll is io.ReadAll into a buffer of the announced size (a
// Content-Length within limit), so that a small body costs one small
// allocation rather than io.ReadAll's 512 bytes and up.
func readAll(r io.Reader, size, limit int64) ([]byte, error) {
	if size < 0 || size > limit {
		return io.ReadAll(r)
	}
	b := make([]byte, 0, size+1) // +1: room to see the end
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // more than announced: let append grow it
		}
	}
}

// capListener wraps ln with the connection caps.
func (s *Server) capListener(ln net.Listener) net.Listener {
	total := s.cfg.MaxConnections
	perAddr := s.cfg.MaxConnectionsPerAddr
	return &limitListener{Listener: ln, s: s, total: total, perAddr: perAddr, byAddr: make(map[string]int)}
}

// limitListener caps open connections, in total and per client address.
type limitListener struct {
	net.Listener
	s              *Server
	total, perAddr int

	mu     sync.Mutex
	open   int
	byAddr map[string]int
}

// tooMany is the whole answer to a connection over a cap.
const tooMany = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n" +
	"Retry-After: 1\r\nConnection: close\r\nContent-Length: 21\r\n\r\ntoo many connections\n"

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := ""
		if peer := peerAddr(c.RemoteAddr().String()); !peer.IsValid() || !l.s.trusted(peer) {
			key = addrKey(peer)
		}
		if l.acquire(key) {
			return &limitConn{Conn: c, l: l, key: key}, nil
		}
		l.s.metrics.throttled(throttleConnection)
		// The answer fits in any socket buffer: writing it does not block.
		c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		io.WriteString(c, tooMany)
		c.Close()
	}
}

// acquire takes a slot for a connection from key ("" for a trusted proxy).
func (l *limitListener) acquire(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open >= l.total || key != "" && l.byAddr[key] >= l.perAddr {
		return false
	}
	l.open++
	if key != "" {
		l.byAddr[key]++
	}
	return true
}

func (l *limitListener) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if key != "" {
		if l.byAddr[key]--; l.byAddr[key] <= 0 {
			delete(l.byAddr, key)
		}
	}
}

// limitConn gives its slot back when it is closed (once).
type limitConn struct {
	net.Conn
	l    *limitListener
	key  string
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.key) })
	return err
}
