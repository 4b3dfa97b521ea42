package mcpserver

// The grants commands: the operator's view of the apps connected to users'
// accounts, and the way to cut them off.
//
// A grant is what one sign-in of one user in one app produced; every token
// the app holds from that sign-in, refreshed or not, belongs to it. The
// commands work on the database of a deployment (--db, as serve's), beside
// the running servers: a revocation is written there, and the command
// returns once every running replica refuses the revoked tokens. An app in
// the middle of signing in (holding a code it has not exchanged yet) is cut
// off too: its code no longer buys tokens.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mcpgen/create-mcp-server/runtime/authstore"
	"github.com/mcpgen/create-mcp-server/runtime/mcpauth"
)

// grants runs grants list|revoke.
func grants(ctx context.Context, args []string, env Env) error {
	if len(args) == 0 {
		return usageErrorf("grants: missing subcommand: list or revoke")
	}
	sub, args := args[0], args[1:]
	if sub != "list" && sub != "revoke" {
		return usageErrorf("grants: unknown subcommand %q: want list or revoke", sub)
	}
	flags := newFlagSet("grants " + sub)
	db := addDBFlag(flags, "")
	var f authstore.GrantFilter
	flags.StringVar(&f.User, "user", "", "only the grants of `USER`")
	flags.StringVar(&f.ClientID, "client", "", "only the grants of the app with this client `ID`")
	asJSON := flags.Bool("json", false, "print JSON instead of a table")
	flags.bindEnv("db")

	synopsis := "grants list [--user USER] [--client ID] [flags]"
	npos := 0
	if sub == "revoke" {
		synopsis = "grants revoke [flags] GRANT_ID | --user USER | --client ID"
		npos = -1
	}
	if err := flags.parse(args, npos, env.Getenv); err != nil {
		return helpOr(err, flags, env, synopsis)
	}
	if sub == "revoke" {
		switch {
		case flags.NArg() > 1:
			return usageErrorf("grants revoke takes one grant ID, got %q", flags.Args())
		case flags.NArg() == 1 && (f.User != "" || f.ClientID != ""):
			return usageErrorf("grants revoke: give a grant ID, or --user and --client, not both")
		case flags.NArg() == 1:
			f.ID = flags.Arg(0)
		case f == authstore.GrantFilter{}:
			return usageErrorf("grants revoke: say which grants: a grant ID (see \"grants list\"), --user USER or --client ID")
		}
	}

	st, err := openDatabase(ctx, *db, "--db", "MCP_DB")
	if err != nil {
		return err
	}
	defer st.Close()
	now := time.Now()
	list, err := st.Grants(ctx, f, now)
	if err != nil {
		return fmt.Errorf("list grants in %s: %w", authstore.Redact(*db), err)
	}
	if sub == "list" {
		if *asJSON {
			return writeJSON(env.Stdout, grantsJSON(list))
		}
		if len(list) == 0 {
			fmt.Fprintf(env.Stderr, "no active grants%s\n", describeFilter(f))
			return nil
		}
		return writeGrants(env.Stdout, list)
	}

	if len(list) == 0 {
		if f.ID != "" {
			return fmt.Errorf("no active grant %s in %s (\"grants list\" shows them)", printable(f.ID), authstore.Redact(*db))
		}
		// No grant yet, but an app may be signing in: its code, not yet
		// exchanged for tokens, must not create one after this.
		n, err := st.RevokeGrants(ctx, f, now)
		if err != nil {
			return fmt.Errorf("revoke grants in %s: %w", authstore.Redact(*db), err)
		}
		if n > 0 { // created since the list was read
			waitRevoked(ctx, st, env)
		}
		if *asJSON {
			return writeJSON(env.Stdout, revokedJSON{Revoked: n, Grants: grantsJSON(nil)})
		}
		if n > 0 {
			fmt.Fprintf(env.Stderr, "revoked %s%s, created while this command ran; no running server accepts their tokens any more\n",
				quantity(n, "grant", "grants"), describeFilter(f))
			return nil
		}
		fmt.Fprintf(env.Stderr, "nothing to revoke: no active grants%s\n", describeFilter(f))
		return nil
	}
	n, err := st.RevokeGrants(ctx, f, now)
	if err != nil {
		return fmt.Errorf("revoke grants in %s: %w", authstore.Redact(*db), err)
	}
	if n > 0 {
		waitRevoked(ctx, st, env)
	}
	if *asJSON {
		return writeJSON(env.Stdout, revokedJSON{Revoked: n, Grants: grantsJSON(list)})
	}
	if err := writeGrants(env.Stdout, list); err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "revoked %s%s; no running server accepts their tokens any more\n", quantity(n, "grant", "grants"), describeFilter(f))
	return nil
}

// waitRevoked returns once every running server refuses the tokens of the
// grants just revoked in st (mcpauth.Revoked).
func waitRevoked(ctx context.Context, st authstore.Store, env Env) {
	if err := mcpauth.Revoked(ctx, st); err != nil {
		fmt.Fprintf(env.Stderr, "warning: the database could not confirm that every running server saw the revocation (%v); waited until each one's %s lease ran out instead\n",
			err, authstore.DefaultLease)
	}
}

// addDBFlag defines --db, the database a command works on, as serve's;
// why, if set, says what the command does there.
func addDBFlag(flags *flagSet, why string) *string {
	usage := "the server's database: a SQLite `FILE` or a postgres:// URL, as for serve"
	if why != "" {
		usage += ",\n" + why + " (a SQLite file that does not exist is left alone)"
	}
	return flags.String("db", "auth.db", usage)
}

// openDatabase opens the database of a deployment for a command that reads
// or changes it. A SQLite file must exist already: a command run in the
// wrong directory must not create an empty database and report that it
// holds nothing. flag and env name where dsn came from, for messages.
func openDatabase(ctx context.Context, dsn, flag, env string) (authstore.Store, error) {
	if err := checkDatabase(dsn, flag, env); err != nil {
		return nil, err
	}
	if !isDatabaseURL(dsn) {
		if _, err := os.Stat(dsn); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s %s (env %s): no such database; run the command where the server keeps its database, or name it with %s", flag, authstore.Redact(dsn), env, flag)
		}
	}
	st, err := authstore.Open(ctx, dsn, authstore.Options{})
	if err != nil {
		return nil, fmt.Errorf("%s %s (env %s): %w", flag, authstore.Redact(dsn), env, err)
	}
	return st, nil
}

// checkDatabase refuses a dsn that is neither a postgres:// URL nor a SQLite
// file path (authstore.CheckDSN), before a command changes anything. flag
// and env name where dsn came from, for the message.
func checkDatabase(dsn, flag, env string) error {
	if err := authstore.CheckDSN(dsn); err != nil {
		return &UsageError{fmt.Errorf("%s (env %s): %w", flag, env, err)}
	}
	return nil
}

// isDatabaseURL reports whether dsn names a database server (PostgreSQL)
// rather than a SQLite file.
func isDatabaseURL(dsn string) bool {
	lower := strings.ToLower(dsn)
	return strings.HasPrefix(lower, "postgres://") || strings.HasPrefix(lower, "postgresql://")
}

// describeFilter says which grants f selects, for messages: " of alice in
// client Zk3…" (empty for all).
func describeFilter(f authstore.GrantFilter) string {
	var s string
	if f.ID != "" {
		s += " " + printable(f.ID)
	}
	if f.User != "" {
		s += " of " + printable(f.User)
	}
	if f.ClientID != "" {
		s += " of client " + printable(f.ClientID)
	}
	return s
}

// writeGrants prints grants as a table, one line each.
func writeGrants(w io.Writer, list []authstore.GrantInfo) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GRANT ID\tUSER\tAPP\tCLIENT ID\tCREATED\tLAST USED\tEXPIRES")
	for _, g := range list {
		used := "never"
		if !g.LastUsedAt.IsZero() {
			used = formatTime(g.LastUsedAt)
		}
		name := "-"
		if g.ClientName != "" {
			name = shorten(g.ClientName, 40)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", printable(g.ID), printable(g.User), name,
			printable(g.ClientID), formatTime(g.CreatedAt), used, formatTime(g.ExpiresAt))
	}
	return tw.Flush()
}

// formatTime writes t in UTC, to the second (RFC 3339).
func formatTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339)
}

// printable returns s as it is if every rune in it is printable, and
// quoted with Go escapes otherwise: client names are chosen by whoever
// registered the client, and must not move the cursor or forge a line of
// the operator's terminal.
func printable(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsGraphic(r) || r == '\t' }) < 0 && utf8.ValidString(s) {
		return s
	}
	return strconv.QuoteToGraphic(s)
}

// shorten returns printable(s) cut to at most n runes.
func shorten(s string, n int) string {
	if utf8.RuneCountInString(s) > n {
		s = string([]rune(s)[:n-1]) + "…"
	}
	return printable(s)
}

// quantity writes n and the noun: "1 grant", "2 grants".
func quantity(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// grantJSON is a grant as grants list --json prints it.
type grantJSON struct {
	ID           string     `json:"id"`
	User         string     `json:"user"`
	ClientID     string     `json:"client_id"`
	ClientName   string     `json:"client_name"`
	RedirectURIs []string   `json:"redirect_uris"`
	Scope        string     `json:"scope"`
	Resource     string     `json:"resource"`
	CreatedAt    time.Time  `json:"created_at"`
	LastUsedAt   *time.Time `json:"last_used_at"` // null: not used since it was created
	ExpiresAt    time.Time  `json:"expires_at"`
}

// revokedJSON is what grants revoke --json prints.
type revokedJSON struct {
	Revoked int         `json:"revoked"`
	Grants  []grantJSON `json:"grants"`
}

func grantsJSON(list []authstore.GrantInfo) []grantJSON {
	out := []grantJSON{}
	for _, g := range list {
		j := grantJSON{
			ID: g.ID, User: g.User, ClientID: g.ClientID, ClientName: g.ClientName,
			RedirectURIs: g.RedirectURIs, Scope: g.Scope, Resource: g.Resource,
			CreatedAt: g.CreatedAt.UTC(), ExpiresAt: g.ExpiresAt.UTC(),
		}
		if j.RedirectURIs == nil {
			j.RedirectURIs = []string{}
		}
		if !g.LastUsedAt.IsZero() {
			t := g.LastUsedAt.UTC()
			j.LastUsedAt = &t
		}
		out = append(out, j)
	}
	return out
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
