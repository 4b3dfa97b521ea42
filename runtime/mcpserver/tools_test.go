package mcpserver_test

import (
	"context"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpgen/create-mcp-server/runtime/mcpauthtest"
	"github.com/mcpgen/create-mcp-server/runtime/mcpserver"
)

type nested struct {
	Point struct {
		X float64 `json:"x"`
		Y float64 `json:"y"`
	} `json:"point"`
	Tags []string `json:"tags,omitempty"`
}

// TestArgumentsChecked calls tools in-process with arguments that do and do
// not match their input schemas.
func TestArgumentsChecked(t *testing.T) {
	opts := testOptions()
	opts.Tools = append(opts.Tools,
		server.ServerTool{
			Tool: mcp.NewTool("nested", mcp.WithDescription("Nested arguments."), mcp.WithInputSchema[nested]()),
			Handler: mcp.NewTypedToolHandler(func(ctx context.Context, _ mcp.CallToolRequest, args nested) (*mcp.CallToolResult, error) {
				return mcp.NewToolResultText("ok"), nil
			}),
		},
		// A schema built with the option helpers instead of a struct.
		server.ServerTool{
			Tool: mcp.NewTool("helpers", mcp.WithDescription("Helper-built schema."), mcp.WithString("q", mcp.Required())),
			Handler: func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				return mcp.NewToolResultText(req.GetString("q", "")), nil
			},
		},
	)
	// A program's own middleware (Options.ServerOptions runs it before the
	// checks) may hand the tools Go values rather than decoded JSON: the
	// arguments {"go": …} become that value.
	opts.ServerOptions = append(opts.ServerOptions, server.WithToolHandlerMiddleware(
		func(next server.ToolHandlerFunc) server.ToolHandlerFunc {
			return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				if m, ok := req.Params.Arguments.(map[string]any); ok && m["go"] != nil {
					req.Params.Arguments = goValues[m["go"].(string)]
				}
				return next(ctx, req)
			}
		}))
	c := startInProcess(t, opts)

	tests := []struct {
		name    string
		tool    string
		args    any
		want    string
		isError bool
	}{
		{name: "valid", tool: "add", args: map[string]any{"a": 2, "b": 3}, want: "5"},
		{name: "optional given", tool: "add", args: map[string]any{"a": 2, "b": 3, "label": "x"}, want: "5"},
		{name: "missing", tool: "add", args: map[string]any{"a": 2}, want: `invalid arguments: missing required argument "b"`, isError: true},
		{name: "none", tool: "add", args: nil, want: `invalid arguments: missing required arguments "a", "b"`, isError: true},
		{name: "unknown", tool: "add", args: map[string]any{"a": 2, "b": 3, "c": 4}, want: `invalid arguments: unknown argument "c"`, isError: true},
		{name: "mistyped", tool: "add", args: map[string]any{"a": "2", "b": 3}, want: `invalid arguments: argument "a" must be integer, not string`, isError: true},
		{name: "not an integer", tool: "add", args: map[string]any{"a": 2.5, "b": 3}, want: `invalid arguments: argument "a" must be integer, not number`, isError: true},
		{name: "two problems", tool: "add", args: map[string]any{"a": "2", "c": 1}, isError: true},
		{name: "nested valid", tool: "nested", args: map[string]any{"point": map[string]any{"x": 1, "y": 2}}, want: "ok"},
		{name: "nested missing", tool: "nested", args: map[string]any{"point": map[string]any{"x": 1}}, want: `invalid arguments: missing required argument "point.y"`, isError: true},
		{name: "nested mistyped", tool: "nested", args: map[string]any{"point": map[string]any{"x": 1, "y": 2}, "tags": []any{"a", 3}}, want: `invalid arguments: argument "tags.1" must be string, not number`, isError: true},
		{name: "helper schema valid", tool: "helpers", args: map[string]any{"q": "x"}, want: "x"},
		{name: "helper schema unknown", tool: "helpers", args: map[string]any{"q": "x", "r": "y"}, want: `invalid arguments: unknown argument "r"`, isError: true},
		// Go values that match pass the check (what the handler makes of
		// them is its own business).
		{name: "Go struct", tool: "add", args: map[string]any{"go": "struct"}},
		{name: "Go struct mismatched", tool: "add", args: map[string]any{"go": "struct without b"}, want: `invalid arguments: missing required argument "b"; unknown argument "c"`, isError: true},
		{name: "Go map of ints", tool: "add", args: map[string]any{"go": "map of ints"}},
		{name: "Go map mistyped", tool: "add", args: map[string]any{"go": "map of floats"}, want: `invalid arguments: argument "a" must be integer, not number`, isError: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var req mcp.CallToolRequest
			req.Params.Name = tt.tool
			req.Params.Arguments = tt.args
			res, err := c.CallTool(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			got := mcpauthtest.ResultText(res)
			if res.IsError != tt.isError || (tt.want != "" && got != tt.want) {
				t.Errorf("%s(%v) = %q (error: %v), want %q (error: %v)", tt.tool, tt.args, got, res.IsError, tt.want, tt.isError)
			}
		})
	}
}

// goValues are arguments as a program's middleware might set them.
var goValues = map[string]any{
	"struct": struct {
		A int `json:"a"`
		B int `json:"b"`
	}{2, 3},
	"struct without b": struct {
		A int `json:"a"`
		C int `json:"c"`
	}{2, 3},
	"map of ints":   map[string]int{"a": 2, "b": 3},
	"map of floats": map[string]float64{"a": 2.5, "b": 3},
}

// startInProcess starts an in-process client of opts' MCP server and
// initializes it.
func startInProcess(t *testing.T, opts mcpserver.Options) *client.Client {
	t.Helper()
	c, err := client.NewInProcessClient(opts.NewMCPServer())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	var init mcp.InitializeRequest
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	if _, err := c.Initialize(t.Context(), init); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestToolPanics checks that a panicking tool answers with an error and the
// server keeps serving.
func TestToolPanics(t *testing.T) {
	opts := mcpserver.Options{Name: "p", Tools: []server.ServerTool{{
		Tool: mcp.NewTool("boom", mcp.WithDescription("Panics.")),
		Handler: func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			panic("boom")
		},
	}, whoamiTool()}}
	c := startInProcess(t, opts)
	var req mcp.CallToolRequest
	req.Params.Name = "boom"
	if _, err := c.CallTool(t.Context(), req); err == nil {
		t.Error("a panicking tool returned no error")
	}
	req.Params.Name = "whoami"
	if _, err := c.CallTool(t.Context(), req); err != nil {
		t.Errorf("after a panic: %v", err)
	}
}
