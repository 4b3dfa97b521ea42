package mcpserver

// The MCP server that serve and stdio run, and the middleware every tool
// call goes through.

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpgen/create-mcp-server/runtime/mcpauth"
)

// NewMCPServer returns the MCP server that serve and stdio run: the tools,
// the argument checks, Options.ServerOptions and Options.Setup, but not the
// audit log of tool calls. Tests call tools through it in-process
// (client.NewInProcessClient).
func (o Options) NewMCPServer() *server.MCPServer {
	return o.newMCPServer(nil, nil)
}

// newMCPServer returns the MCP server of serve and stdio. With a logger,
// every tool call is logged (and counted in m).
func (o Options) newMCPServer(log *slog.Logger, m *mcpauth.Metrics) *server.MCPServer {
	opts := []server.ServerOption{
		server.WithToolCapabilities(false),
		// Tools built without a Go struct (mcp.WithString, ...) refuse
		// unknown arguments too; mcp.WithInputSchema[T] already does.
		server.WithStrictInputSchemaDefault(),
	}
	if o.Description != "" {
		opts = append(opts, server.WithInstructions(o.Description))
	}
	s := server.NewMCPServer(o.Name, o.version(), append(opts, o.ServerOptions...)...)
	s.Use(toolMiddleware(s, log, m)...)
	s.AddTools(o.Tools...)
	if o.Setup != nil {
		o.Setup(s)
	}
	return s
}

// toolMiddleware is what every tool call goes through before its handler,
// outermost first:
//
//   - the audit log and metrics of tool calls (mcpauth.ToolAudit), first so
//     that they see every outcome, refused arguments included; only with a
//     logger;
//   - guardTool: the argument check, and recovery from a panicking tool.
//
// mcp-go wraps the handler in each middleware on every call, so they are
// few.
func toolMiddleware(s *server.MCPServer, log *slog.Logger, m *mcpauth.Metrics) []server.ToolHandlerMiddleware {
	var mw []server.ToolHandlerMiddleware
	if log != nil {
		mw = append(mw, mcpauth.ToolAudit(log, m))
	} else {
		log = slog.Default()
	}
	return append(mw, guardTool(s, log))
}

// guardTool checks a call's arguments against the tool's input schema
// (JSON Schema, as advertised by tools/list) before the handler runs, and
// turns a panic in the handler into an error, instead of taking the whole
// server down.
//
// A call that does not match its schema gets a tool error result naming
// each problem ("missing required argument \"b\""), which the model reads
// and can correct (MCP tools: input validation errors are tool execution
// errors). Schemas are compiled once per tool.
func guardTool(s *server.MCPServer, log *slog.Logger) server.ToolHandlerMiddleware {
	var compiled sync.Map // tool name -> *toolSchema
	return func(next server.ToolHandlerFunc) server.ToolHandlerFunc {
		return func(ctx context.Context, req mcp.CallToolRequest) (res *mcp.CallToolResult, err error) {
			defer func() {
				if p := recover(); p != nil {
					log.ErrorContext(ctx, "tool panicked", "tool", req.Params.Name, "panic", fmt.Sprint(p))
					res, err = nil, fmt.Errorf("tool %s failed", req.Params.Name)
				}
			}()
			ts, ok := compiled.Load(req.Params.Name)
			if !ok {
				st := s.GetTool(req.Params.Name)
				if st == nil {
					return next(ctx, req)
				}
				ts, _ = compiled.LoadOrStore(req.Params.Name, compileToolSchema(st.Tool))
			}
			if problems := ts.(*toolSchema).check(req.Params.Arguments); len(problems) > 0 {
				return mcp.NewToolResultError("invalid arguments: " + strings.Join(problems, "; ")), nil
			}
			return next(ctx, req)
		}
	}
}
