package mcpserver

// The MCP server that serve and stdio run, and the middleware every tool
// call goes through.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

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
//   - recovery: a panicking tool answers its call with an error instead of
//     taking the whole server down;
//   - argument checks against the tool's input schema.
func toolMiddleware(s *server.MCPServer, log *slog.Logger, m *mcpauth.Metrics) []server.ToolHandlerMiddleware {
	var mw []server.ToolHandlerMiddleware
	if log != nil {
		mw = append(mw, mcpauth.ToolAudit(log, m))
	} else {
		log = slog.Default()
	}
	return append(mw, recoverTool(log), checkArguments(s))
}

// recoverTool turns a panic in a handler into an error result.
func recoverTool(log *slog.Logger) server.ToolHandlerMiddleware {
	return func(next server.ToolHandlerFunc) server.ToolHandlerFunc {
		return func(ctx context.Context, req mcp.CallToolRequest) (res *mcp.CallToolResult, err error) {
			defer func() {
				if p := recover(); p != nil {
					log.ErrorContext(ctx, "tool panicked", "tool", req.Params.Name, "panic", fmt.Sprint(p))
					res, err = nil, fmt.Errorf("tool %s failed", req.Params.Name)
				}
			}()
			return next(ctx, req)
		}
	}
}

// checkArguments validates a call's arguments against the tool's input
// schema (JSON Schema, as advertised by tools/list) before the handler
// runs. A call that does not match gets a tool error result naming each
// problem ("missing required argument \"b\""), which the model reads and can
// correct (MCP tools: input validation errors are tool execution errors).
// Schemas are compiled once per tool.
func checkArguments(s *server.MCPServer) server.ToolHandlerMiddleware {
	var compiled sync.Map // tool name -> *toolSchema
	return func(next server.ToolHandlerFunc) server.ToolHandlerFunc {
		return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
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

// toolSchema is a tool's compiled input schema; nil schema means none to
// check (or one that does not compile, which is the tool author's bug and
// should not stop every call).
type toolSchema struct {
	schema *jsonschema.Schema
}

func compileToolSchema(tool mcp.Tool) *toolSchema {
	raw := tool.RawInputSchema
	if len(raw) == 0 {
		var err error
		if raw, err = json.Marshal(tool.InputSchema); err != nil {
			return &toolSchema{}
		}
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return &toolSchema{}
	}
	c := jsonschema.NewCompiler()
	const loc = "mem:///input-schema.json"
	if err := c.AddResource(loc, doc); err != nil {
		return &toolSchema{}
	}
	sch, err := c.Compile(loc)
	if err != nil {
		return &toolSchema{}
	}
	return &toolSchema{schema: sch}
}

// check returns the problems of args, none if they match.
func (ts *toolSchema) check(args any) []string {
	if ts.schema == nil {
		return nil
	}
	var value any = map[string]any{} // no arguments is an empty object
	if args != nil {
		// Decode the JSON again the way the validator wants it (numbers as
		// json.Number, so 1.5 is not an integer).
		raw, err := json.Marshal(args)
		if err != nil {
			return []string{"arguments are not JSON"}
		}
		if value, err = jsonschema.UnmarshalJSON(bytes.NewReader(raw)); err != nil {
			return []string{"arguments are not JSON"}
		}
	}
	err := ts.schema.Validate(value)
	if err == nil {
		return nil
	}
	verr, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return []string{err.Error()}
	}
	var problems []string
	leaves(verr, func(e *jsonschema.ValidationError) {
		problems = append(problems, describe(e))
	})
	return problems
}

// leaves calls f for each most specific error of a validation error tree.
func leaves(e *jsonschema.ValidationError, f func(*jsonschema.ValidationError)) {
	if len(e.Causes) == 0 {
		f(e)
		return
	}
	for _, c := range e.Causes {
		leaves(c, f)
	}
}

var english = message.NewPrinter(language.English)

// describe says what is wrong in words a model (and a person) understands,
// naming the argument.
func describe(e *jsonschema.ValidationError) string {
	at := ""
	if len(e.InstanceLocation) > 0 {
		at = strings.Join(e.InstanceLocation, ".")
	}
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		return fmt.Sprintf("missing required %s %s", plural("argument", k.Missing), quoteList(prefixed(at, k.Missing)))
	case *kind.AdditionalProperties:
		return fmt.Sprintf("unknown %s %s", plural("argument", k.Properties), quoteList(prefixed(at, k.Properties)))
	case *kind.Type:
		return fmt.Sprintf("argument %q must be %s, not %s", at, strings.Join(k.Want, " or "), k.Got)
	}
	msg := e.ErrorKind.LocalizedString(english)
	if at == "" {
		return msg
	}
	return fmt.Sprintf("argument %q: %s", at, msg)
}

func prefixed(at string, names []string) []string {
	if at == "" {
		return names
	}
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = at + "." + n
	}
	return out
}

func plural(word string, items []string) string {
	if len(items) == 1 {
		return word
	}
	return word + "s"
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}
