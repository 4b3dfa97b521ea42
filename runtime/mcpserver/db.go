package mcpserver

// The db command: move a deployment to another database without signing
// anyone out, typically from its SQLite file to PostgreSQL when it grows
// into several replicas.

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/mcpgen/create-mcp-server/runtime/authstore"
)

// db runs db copy.
func db(ctx context.Context, args []string, env Env) error {
	if len(args) == 0 {
		return usageErrorf("db: missing subcommand: copy")
	}
	sub, args := args[0], args[1:]
	if sub != "copy" {
		return usageErrorf("db: unknown subcommand %q: want copy", sub)
	}
	flags := newFlagSet("db copy")
	from := flags.String("from", "", "the database to copy: a SQLite `FILE` or a postgres:// URL\n(default $MCP_DB, or auth.db)")
	to := flags.String("to", "", "the database to copy into, e.g. postgres://mcp@db.example.com/mcp\n(a SQLite file path works too)")
	overwrite := flags.Bool("overwrite", false, "replace the clients, grants and tokens the target holds already\n(signing out whoever used it); without it a target that holds any is refused")
	if err := flags.parse(args, 0, env.Getenv); err != nil {
		return helpOr(err, flags, env, "db copy --from FILE --to URL [--overwrite]")
	}
	if *from == "" {
		*from = env.Getenv("MCP_DB")
	}
	if *from == "" {
		*from = "auth.db"
	}
	switch {
	case *to == "":
		return usageErrorf("db copy: --to is required: the database to copy into, e.g. postgres://mcp@db.example.com/mcp")
	case *to == *from:
		return usageErrorf("db copy: --from and --to name the same database, %s", authstore.Redact(*to))
	}

	if sameFile(*from, *to) {
		return usageErrorf("db copy: --from %s and --to %s are the same file", *from, *to)
	}

	src, err := openDatabase(ctx, *from, "--from", "MCP_DB")
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := authstore.Open(ctx, *to, authstore.Options{})
	if err != nil {
		return fmt.Errorf("--to %s: %w", authstore.Redact(*to), err)
	}
	defer dst.Close()
	n, err := authstore.Copy(ctx, src, dst, authstore.CopyOptions{Overwrite: *overwrite})
	if errors.Is(err, authstore.ErrTargetNotEmpty) {
		return fmt.Errorf("--to %s already holds clients, grants or tokens, and copying would mix two deployments; "+
			"pass --overwrite to replace them (whoever signed in there must sign in again)", authstore.Redact(*to))
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "copied %s, %s, %s and %s from %s to %s\n"+
		"start the servers with --db (or MCP_DB) set to the new database: everyone stays signed in\n",
		quantity(n.Clients, "client", "clients"), quantity(n.Grants, "grant", "grants"),
		quantity(n.Codes, "code", "codes"), quantity(n.Tokens, "token", "tokens"),
		authstore.Redact(*from), authstore.Redact(*to))
	return nil
}

// sameFile reports whether two SQLite paths name one existing file.
func sameFile(a, b string) bool {
	if isDatabaseURL(a) || isDatabaseURL(b) {
		return false
	}
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(fa, fb)
}
