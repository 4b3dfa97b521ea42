package mcpauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
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
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx is cancelled, then shuts down gracefully: it
// stops accepting connections, ends MCP streams, gives requests in flight a
// few seconds, then cancels what is left. It does not Close s.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	// Requests outlive ctx (so shutdown can be graceful) until baseCancel.
	base, baseCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer baseCancel()
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		// No ReadTimeout or WriteTimeout: MCP responses may be long-lived
		// SSE streams, and an expiring read deadline cancels the request's
		// context. Bodies are capped per endpoint instead.
		IdleTimeout:    120 * time.Second,
		MaxHeaderBytes: 64 << 10,
		BaseContext:    func(net.Listener) context.Context { return base },
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("mcpauth: serving", "addr", ln.Addr().String(), "base_url", s.issuer)
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
