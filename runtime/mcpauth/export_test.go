package mcpauth

import "time"

// SetReadTimeouts shortens s's read deadlines (headers, OAuth bodies, MCP
// bodies), so that tests of slow clients need not wait for the defaults.
// Call it before Serve.
func SetReadTimeouts(s *Server, header, body, mcpBody time.Duration) {
	s.timeouts = timeouts{header: header, body: body, mcpBody: mcpBody}
}
