package mcpauth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/mark3labs/mcp-go/server"
)

// ListenAndServe runs New(cfg, mcp) on cfg.Addr until ctx is cancelled, then
// shuts down gracefully: it stops accepting connections, ends MCP streams,
// waits up to 10 seconds for requests in flight and closes the database.
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

// Serve serves on ln until ctx is cancelled, then shuts down gracefully. It
// does not Close s.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		// No ReadTimeout or WriteTimeout: MCP responses may be long-lived
		// SSE streams, and an expiring read deadline cancels the request's
		// context. Bodies are capped per endpoint instead.
		IdleTimeout:    120 * time.Second,
		MaxHeaderBytes: 64 << 10,
		BaseContext:    func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("mcpauth: serving", "addr", ln.Addr().String(), "base_url", s.issuer)
	select {
	case err := <-errc:
		return fmt.Errorf("mcpauth: serve: %w", err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Long-lived GET streams never end by themselves: close them first.
	s.mcpHandler.CloseSessions(shutCtx)
	err := srv.Shutdown(shutCtx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("mcpauth: shutdown: %w", err)
	}
	return nil
}
