// Command create-mcp-server writes a new Go module for an MCP server whose
// Streamable HTTP endpoint is protected by an OAuth 2.1 authorization server
// built into the same binary.
//
// Usage:
//
//	create-mcp-server [DIR] [--module PATH] [--name NAME] [--description TEXT]
//	                  [--tools a,b,c] [--tool NAME]... [-y|--yes] [--force]
//	create-mcp-server version
//
// Run "create-mcp-server --help" for the details.
package main

import (
	"os"

	"github.com/mcpgen/create-mcp-server/internal/cli"
)

func main() {
	os.Exit(cli.Main())
}
