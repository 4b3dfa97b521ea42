package mcpauthtest

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// Connect returns an initialized mcp-go client for the MCP endpoint mcpURL
// that sends accessToken as a static bearer header. protocolVersion pins
// the protocol ("2025-11-25" forces the initialize handshake); "" lets the
// client negotiate the newest one. The caller closes the client.
func Connect(ctx context.Context, mcpURL, accessToken, protocolVersion string) (*client.Client, error) {
	c, err := client.NewStreamableHttpClient(mcpURL,
		transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + accessToken}))
	if err != nil {
		return nil, fmt.Errorf("mcp: connect: %w", err)
	}
	if err := c.Start(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("mcp: start: %w", err)
	}
	var req mcp.InitializeRequest
	req.Params.ProtocolVersion = protocolVersion
	req.Params.ClientInfo = mcp.Implementation{Name: "mcpauthtest", Version: "0.1.0"}
	if _, err := c.Initialize(ctx, req); err != nil {
		c.Close()
		return nil, fmt.Errorf("mcp: initialize: %w", err)
	}
	return c, nil
}

// CallTool connects to mcpURL with accessToken, calls the tool name with
// args and closes the connection. A tool that reports an error is returned
// as a result with IsError set, not as an error.
func CallTool(ctx context.Context, mcpURL, accessToken, name string, args map[string]any) (*mcp.CallToolResult, error) {
	c, err := Connect(ctx, mcpURL, accessToken, "")
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var req mcp.CallToolRequest
	req.Params.Name = name
	req.Params.Arguments = args
	res, err := c.CallTool(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("mcp: call tool %s: %w", name, err)
	}
	return res, nil
}

// ResultText returns the concatenated text content of a tool result.
func ResultText(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if t, ok := mcp.AsTextContent(c); ok {
			b.WriteString(t.Text)
		}
	}
	return b.String()
}

// BearerStatus posts a stateless tools/list request (protocol 2026-07-28)
// to mcpURL with accessToken (none if empty) and returns the HTTP status and
// the response headers. A live token gets 200; a dead one gets 401 with
// WWW-Authenticate error="invalid_token". hc nil means http.DefaultClient.
func BearerStatus(ctx context.Context, hc *http.Client, mcpURL, accessToken string) (int, http.Header, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{` +
		`"io.modelcontextprotocol/protocolVersion":"` + mcp.LATEST_PROTOCOL_VERSION + `",` +
		`"io.modelcontextprotocol/clientCapabilities":{}}}}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, mcpURL, strings.NewReader(body))
	if err != nil {
		return 0, nil, fmt.Errorf("mcp: bearer check: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", mcp.LATEST_PROTOCOL_VERSION)
	req.Header.Set("Mcp-Method", "tools/list")
	if accessToken != "" {
		req.Header.Set("Authorization", "Bearer "+accessToken)
	}
	resp, _, err := do(hc, req)
	if err != nil {
		return 0, nil, fmt.Errorf("mcp: bearer check: %w", err)
	}
	return resp.StatusCode, resp.Header, nil
}
