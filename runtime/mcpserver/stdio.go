package mcpserver

// The stdio command: MCP over stdin and stdout, for clients that start the
// server as a local process.

import (
	"context"
	"errors"
	"flag"

	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpgen/create-mcp-server/runtime/mcpauth"
)

// stdio serves MCP on env's stdin and stdout until stdin ends or ctx is
// cancelled. There is no OAuth here: the MCP specification says a stdio
// server takes its credentials from the environment, so every call runs as
// the local user ($USER).
func stdio(ctx context.Context, opts Options, args []string, env Env) error {
	format := "text"
	flags := newFlagSet("stdio")
	addLogFlag(flags, &format)
	if opts.Flags != nil {
		opts.Flags(flags.FlagSet)
	}
	flags.bindEnv()
	if err := flags.parse(args, 0, env.Getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			flags.printUsage(env.Stdout, "stdio [flags]")
		}
		return err
	}
	log := newLogger(format, env.Stderr, env)
	id := mcpauth.Identity{User: localUser(env)}
	s := server.NewStdioServer(opts.newMCPServer(log, nil))
	s.SetErrorLogger(slogLogger(log))
	s.SetContextFunc(func(ctx context.Context) context.Context {
		return mcpauth.WithIdentity(ctx, id)
	})
	return s.Listen(ctx, env.Stdin, env.Stdout)
}

// localUser is the name stdio calls run as.
func localUser(env Env) string {
	for _, key := range []string{"USER", "USERNAME", "LOGNAME"} {
		if u := env.Getenv(key); u != "" {
			return u
		}
	}
	return "local"
}
