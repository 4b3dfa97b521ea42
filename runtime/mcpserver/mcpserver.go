// Package mcpserver is the command line of an MCP server built on mcpauth:
// everything between main and the tools.
//
// A program's main is one call:
//
//	func main() {
//		mcpserver.Main(mcpserver.Options{
//			Name:    "weather",
//			Version: "1.0.0",
//			Tools:   []server.ServerTool{forecastTool()},
//		})
//	}
//
// and the binary then has these commands:
//
//	serve [flags]                        MCP over HTTP at <base-url>/mcp behind OAuth 2.1
//	stdio                                MCP over stdin/stdout as the local user, without OAuth
//	user add NAME [--password-stdin]     add a user to the users file, or change their password
//	user remove NAME | user list         manage the users file; remove and a password change
//	                                     also sign the user's apps out (--db), on every replica
//	grants list [--user U] [--client C]  the apps connected to users' accounts
//	grants revoke ID | --user U | --client C
//	                                     sign apps out, on every running replica
//	db copy --from FILE --to URL         move to another database, nobody signed out
//	healthcheck [--url URL]              exit 0 when the server's /readyz answers 200
//	version                              the server's name and version (also --version)
//	help                                 usage
//
// Every flag of serve (and the --users and --db flags of user, the --db
// flag of grants) can also be set with an environment variable: MCP_ and the flag name in capitals, dashes as
// underscores (--base-url is MCP_BASE_URL). A flag given on the command line
// wins. serve checks every value before it binds its port, then logs a
// single "listening" line with the MCP URL; a bad value is an error that
// names the flag and the variable. SIGINT or SIGTERM shuts the server down
// gracefully. Logs go to stderr (in stdio mode stdout carries the protocol),
// as text or, with --log-format json, as JSON lines. serve buffers them
// (32 KiB) and writes them out every 100 ms, at once after a WARN or ERROR
// line, and when it stops, also on an error: one system call per batch
// rather than per line. A server killed with SIGKILL may lose its last
// 100 ms of INFO lines.
//
// Tool calls are checked against each tool's input schema before the
// handler runs: a missing, unknown or mistyped argument is answered with a
// tool error (isError) that names the argument, which the model can read and
// correct.
//
// # Extending
//
// Options has a field for each thing a program may add without editing this
// package: mcp-go server options and a Setup function (resources, prompts,
// hooks), HTTP routes (public, or behind the bearer check of /mcp) and
// middleware, flags of its own (read from MCP_* variables like the built-in
// ones) and subcommands. Run runs a command line in-process, for tests;
// Start runs serve in the background and reports its URL.
package mcpserver

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpgen/create-mcp-server/runtime/mcpauth"
)

// Options describe a server: its identity, its tools and what it adds to
// the built-in commands. Only Name and Tools are required.
type Options struct {
	// Name is the server name shown to MCP clients, on the sign-in page and
	// by the version command.
	Name string
	// Version is the server's own version (default "0.0.0").
	Version string
	// Description says what the server does, in a sentence. It heads the
	// usage text and is sent to clients as the server's instructions.
	Description string
	// Tools are the server's tools.
	Tools []server.ServerTool

	// ServerOptions are extra mcp-go server options, added after the
	// built-in ones (for example server.WithResourceCapabilities or
	// server.WithHooks).
	ServerOptions []server.ServerOption
	// Setup, if set, is called with every new MCP server after its tools
	// are added: add resources, prompts or resource templates here.
	Setup func(s *server.MCPServer)

	// Routes are extra HTTP endpoints served by serve on the same origin
	// (see mcpauth.Route): public, or behind the same bearer check as /mcp.
	Routes []Route
	// Middleware wraps every HTTP endpoint of serve, built-in or extra, the
	// first one outermost.
	Middleware []func(http.Handler) http.Handler

	// Flags, if set, defines extra flags of serve and stdio on fs, for the
	// configuration the tools need. Like the built-in flags, each can also
	// be set with its MCP_* environment variable, and a value its
	// flag.Value refuses stops the command with an error naming both.
	Flags func(fs *flag.FlagSet)
	// Commands are extra subcommands, listed in the usage text after the
	// built-in ones.
	Commands []Command
}

// A Route is an extra HTTP endpoint; see mcpauth.Route.
type Route = mcpauth.Route

// A Command is an extra subcommand.
type Command struct {
	// Name is the word that selects the command, e.g. "import".
	Name string
	// Args describes its arguments for the usage text, e.g. "[--dry-run] FILE".
	Args string
	// Summary is one line for the usage text.
	Summary string
	// Run runs the command with the arguments after its name. An error
	// that wraps flag.ErrHelp exits 0; a UsageError exits 2 and points to
	// help; any other error exits 1.
	Run func(ctx context.Context, args []string, env Env) error
}

// Env is what a command sees of its process: the standard streams and the
// environment. Main passes the real ones; tests pass their own.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Getenv looks up an environment variable ("" when unset).
	Getenv func(key string) string

	// process is set by Main: Run may then change process-wide state (the
	// default slog logger).
	process bool
}

// UsageError is a mistake on the command line. Main prints it with a hint
// to run help, and exits with status 2.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usageErrorf(format string, args ...any) error {
	return &UsageError{fmt.Errorf(format, args...)}
}

// Main runs the command named by os.Args and exits: status 0 on success, 2
// for a usage error, 1 for anything else. SIGINT and SIGTERM cancel the
// command's context; a second signal kills the process at once.
func Main(opts Options) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // the next signal gets the default behaviour
	}()
	env := Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, process: true}
	err := Run(ctx, opts, os.Args[1:], env)
	stop()
	os.Exit(exitCode(err, progName(opts), env.Stderr))
}

// exitCode prints err, if any, and returns the process status for it.
func exitCode(err error, prog string, stderr io.Writer) int {
	var usage *UsageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "%s: %v\n(run \"%s help\" for usage)\n", prog, err, prog)
		return 2
	default:
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return 1
	}
}

// Run runs the command line args (without the program name) and returns
// when the command is done: for serve and stdio, when ctx is cancelled.
func Run(ctx context.Context, opts Options, args []string, env Env) error {
	if err := opts.check(); err != nil {
		return err
	}
	env = env.withDefaults()
	if len(args) == 0 {
		opts.usage(env.Stderr)
		return usageErrorf("missing command")
	}
	name, args := args[0], args[1:]
	switch name {
	case "serve":
		return serve(ctx, opts, args, env)
	case "stdio":
		return stdio(ctx, opts, args, env)
	case "user":
		return user(ctx, args, env)
	case "grants":
		return grants(ctx, args, env)
	case "db":
		return db(ctx, args, env)
	case "healthcheck":
		return healthcheck(ctx, args, env)
	case "version", "--version", "-version", "-v":
		fmt.Fprintln(env.Stdout, opts.Name, opts.version())
		return nil
	case "help", "--help", "-help", "-h":
		opts.usage(env.Stdout)
		return nil
	}
	for _, c := range opts.Commands {
		if c.Name == name {
			return c.Run(ctx, args, env)
		}
	}
	return usageErrorf("unknown command %q", name)
}

// builtin are the commands Run knows; Options.Commands may not reuse them.
var builtin = []string{"serve", "stdio", "user", "grants", "db", "healthcheck", "version", "help"}

// check reports a mistake of the program itself (not of its user).
func (o *Options) check() error {
	if strings.TrimSpace(o.Name) == "" {
		return errors.New("mcpserver: Options.Name is empty")
	}
	seen := map[string]bool{}
	for _, c := range o.Commands {
		switch {
		case c.Name == "" || strings.HasPrefix(c.Name, "-") || strings.ContainsAny(c.Name, " \t"):
			return fmt.Errorf("mcpserver: command name %q: want a single word", c.Name)
		case slices.Contains(builtin, c.Name):
			return fmt.Errorf("mcpserver: command %q is built in; choose another name", c.Name)
		case seen[c.Name]:
			return fmt.Errorf("mcpserver: command %q is defined twice", c.Name)
		case c.Run == nil:
			return fmt.Errorf("mcpserver: command %q has no Run", c.Name)
		}
		seen[c.Name] = true
	}
	return nil
}

func (o *Options) version() string {
	if o.Version == "" {
		return "0.0.0"
	}
	return o.Version
}

func (o *Options) usage(w io.Writer) {
	prog := progName(*o)
	if o.Description != "" {
		fmt.Fprintf(w, "%s: %s\n\n", prog, o.Description)
	}
	fmt.Fprintf(w, "Usage:\n")
	lines := [][2]string{
		{"serve [flags]", "serve MCP over HTTP behind OAuth (see \"" + prog + " serve -h\")"},
		{"stdio", "serve MCP over stdin/stdout as $USER, without OAuth"},
		{"user add NAME [flags]", "add a user, or change their password (signing their apps out)"},
		{"user remove NAME [flags]", "remove a user and sign their apps out"},
		{"user list [flags]", "list the users"},
		{"grants list [flags]", "list the apps connected to users' accounts"},
		{"grants revoke ID|--user U|--client C", "sign apps out, on every running replica"},
		{"db copy --from FILE --to URL", "copy to another database (e.g. PostgreSQL), nobody signed out"},
		{"healthcheck [--url URL]", "exit 0 when the server is ready (for container health checks)"},
		{"version", "print the server name and version"},
	}
	for _, c := range o.Commands {
		lines = append(lines, [2]string{strings.TrimSpace(c.Name + " " + c.Args), c.Summary})
	}
	width := 0
	for _, l := range lines {
		width = max(width, len(l[0]))
	}
	for _, l := range lines {
		fmt.Fprintf(w, "  %s %-*s  %s\n", prog, width, l[0], l[1])
	}
}

// progName is the name the program was started as, for messages.
func progName(o Options) string {
	if len(os.Args) > 0 && os.Args[0] != "" {
		return filepath.Base(os.Args[0])
	}
	return o.Name
}

func (e Env) withDefaults() Env {
	if e.Stdin == nil {
		e.Stdin = strings.NewReader("")
	}
	if e.Stdout == nil {
		e.Stdout = io.Discard
	}
	if e.Stderr == nil {
		e.Stderr = io.Discard
	}
	if e.Getenv == nil {
		e.Getenv = func(string) string { return "" }
	}
	return e
}
