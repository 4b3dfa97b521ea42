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
	g := &toolGuard{s: s, log: log}
	return func(next server.ToolHandlerFunc) server.ToolHandlerFunc {
		return func(ctx context.Context, req mcp.CallToolRequest) (res *mcp.CallToolResult, err error) {
			// The tool runs on top of this frame: the check and the
			// recovery have frames of their own, so that the stack a call
			// needs stays small.
			defer g.recoverTool(ctx, req.Params.Name, &res, &err)
			if refused := g.check(req.Params.Name, req.Params.Arguments); refused != nil {
				return refused, nil
			}
			return next(ctx, req)
		}
	}
}

// A toolGuard holds what guardTool needs between calls.
type toolGuard struct {
	s        *server.MCPServer
	log      *slog.Logger
	compiled sync.Map // tool name -> *toolSchema
}

// check returns the tool error result for arguments that do not match the
// tool's schema, nil for valid ones (and for a tool mcp-go does not know,
// which it answers itself).
func (g *toolGuard) check(tool string, args any) *mcp.CallToolResult {
	ts, ok := g.compiled.Load(tool)
	if !ok {
		st := g.s.GetTool(tool)
		if st == nil {
			return nil
		}
		ts, _ = g.compiled.LoadOrStore(tool, compileToolSchema(st.Tool))
	}
	if problems := ts.(*toolSchema).check(args); len(problems) > 0 {
		return mcp.NewToolResultError("invalid arguments: " + strings.Join(problems, "; "))
	}
	return nil
}

// recoverTool, deferred, turns a panic of the tool into an error result.
func (g *toolGuard) recoverTool(ctx context.Context, tool string, res **mcp.CallToolResult, err *error) {
	if p := recover(); p != nil {
		g.log.ErrorContext(ctx, "tool panicked", "tool", tool, "panic", fmt.Sprint(p))
		*res, *err = nil, fmt.Errorf("tool %s failed", tool)
	}
}
