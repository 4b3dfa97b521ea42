package mcpauth

import (
	"context"
	"time"

	"github.com/mcpgen/create-mcp-server/runtime/authstore"
)

// SetReadTimeouts shortens s's read deadlines (headers, OAuth bodies, MCP
// bodies), so that tests of slow clients need not wait for the defaults.
// Call it before Serve.
func SetReadTimeouts(s *Server, header, body, mcpBody time.Duration) {
	s.timeouts = timeouts{header: header, body: body, mcpBody: mcpBody}
}

// SetStoreLimits sets the bounds of the shared tables the server opens
// (zero fields: the defaults), so that tests can reach them.
func SetStoreLimits(c *Config, l authstore.Limits) { c.storeLimits = l }

// SetUsersCheckInterval sets how often the server's background loop
// applies removals from the users file (zero: every usersCheckInterval).
// A test that runs SyncReplica itself makes it long, so that the loop,
// which runs on the wall clock, cannot apply a version the test means to
// be short-lived however slowly the test runs.
func SetUsersCheckInterval(c *Config, d time.Duration) { c.usersCheckInterval = d }

// AuditEvents exposes the audit event table to the external tests.
var AuditEvents = auditEvents

// SyncReplica applies removals from the users file now (coherence.go), as
// the background loop does after a version has stayed the same for two
// of its checks.
func SyncReplica(s *Server) {
	s.applyUserRemovals(context.Background())
	s.applyUserRemovals(context.Background())
}

// UsersVersion is the version of the users file s serves; it changes at
// every reload.
func UsersVersion(s *Server) uint64 {
	_, v := s.users.Stamps()
	return v
}
