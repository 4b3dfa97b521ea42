package mcpserver

// The user commands: add, remove and list the people who may sign in.
//
// A running server rereads the users file within userfile.PollInterval of
// a change, and then refuses the tokens of a removed user, or of a user
// whose password changed. "user remove" and "user add" (a password change)
// do not leave it at that: they also delete the user's grants in the
// deployment's database (--db, as serve's), the way "grants revoke" does,
// and return once no running replica accepts the user's tokens.

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"

	"golang.org/x/term"

	"github.com/mcpgen/create-mcp-server/runtime/authstore"
	"github.com/mcpgen/create-mcp-server/runtime/mcpauth"
	"github.com/mcpgen/create-mcp-server/runtime/userfile"
)

// minPasswordLen is the shortest password "user add" accepts. bcrypt also
// caps passwords at 72 bytes (userfile.MaxPasswordLen).
const minPasswordLen = 8

// user runs user add|remove|list.
func user(ctx context.Context, args []string, env Env) error {
	if len(args) == 0 {
		return usageErrorf("user: missing subcommand: add, remove or list")
	}
	sub, args := args[0], args[1:]
	flags := newFlagSet("user " + sub)
	path := flags.String("users", "users.txt", "users `FILE`")
	switch sub {
	case "add":
		passwordStdin := flags.Bool("password-stdin", false, "read the password from the first line of stdin instead of prompting")
		db := addDBFlag(flags, "where a password change signs the user's apps out")
		flags.bindEnv("users", "db")
		if err := flags.parse(args, 1, env.Getenv); err != nil {
			return helpOr(err, flags, env, "user add NAME [flags]")
		}
		name := flags.Arg(0)
		if err := userfile.ValidateUsername(name); err != nil {
			return &UsageError{err}
		}
		if err := checkDatabase(*db, "--db", "MCP_DB"); err != nil {
			return err
		}
		existing, err := userfile.List(*path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("--users %s (env MCP_USERS): %w", *path, err)
		}
		password, err := readPassword(env, *passwordStdin)
		if err != nil {
			return err
		}
		if err := userfile.Add(*path, name, password); err != nil {
			return err
		}
		if !slices.Contains(existing, name) {
			fmt.Fprintf(env.Stderr, "added %s to %s (a running server picks it up without a restart)\n", name, *path)
			return nil
		}
		fmt.Fprintf(env.Stderr, "changed the password of %s in %s\n", name, *path)
		return signOut(ctx, env, *db, name, "changed the password of")
	case "remove":
		db := addDBFlag(flags, "where the user's apps are signed out")
		flags.bindEnv("users", "db")
		if err := flags.parse(args, 1, env.Getenv); err != nil {
			return helpOr(err, flags, env, "user remove NAME [flags]")
		}
		name := flags.Arg(0)
		if err := checkDatabase(*db, "--db", "MCP_DB"); err != nil {
			return err
		}
		if err := userfile.Remove(*path, name); err != nil {
			return err
		}
		fmt.Fprintf(env.Stderr, "removed %s from %s\n", name, *path)
		return signOut(ctx, env, *db, name, "removed")
	case "list":
		flags.bindEnv("users")
		if err := flags.parse(args, 0, env.Getenv); err != nil {
			return helpOr(err, flags, env, "user list [flags]")
		}
		users, err := userfile.List(*path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		for _, u := range users {
			fmt.Fprintln(env.Stdout, u)
		}
		return nil
	}
	return usageErrorf("user: unknown subcommand %q: want add, remove or list", sub)
}

// signOut deletes, for good, the grants (and codes and sessions) of a
// user just removed from the users file or whose password just changed,
// in the database dsn, and returns once no running replica accepts their
// tokens. A SQLite file that does not exist is left alone (never created):
// the servers, if any, use another database and refuse the user's tokens
// when they reload the users file. done says what was done to the user,
// for messages.
func signOut(ctx context.Context, env Env, dsn, name, done string) error {
	when := fmt.Sprintf("running servers refuse their tokens within %s of seeing the users file change", userfile.PollInterval)
	if !isDatabaseURL(dsn) {
		if _, err := os.Stat(dsn); errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(env.Stderr, "no database %s here, so no apps signed out at once; %s (pass --db or set MCP_DB to sign them out now)\n", authstore.Redact(dsn), when)
			return nil
		}
	}
	st, err := openDatabase(ctx, dsn, "--db", "MCP_DB")
	if err != nil {
		return fmt.Errorf("%s %s, but could not sign out their apps: %w; %s", done, name, err, when)
	}
	defer st.Close()
	n, err := st.DeleteUserGrants(ctx, name)
	if err != nil {
		return fmt.Errorf("%s %s, but could not sign out their apps in %s: %w; %s", done, name, authstore.Redact(dsn), err, when)
	}
	if err := mcpauth.Revoked(ctx, st); err != nil {
		fmt.Fprintf(env.Stderr, "warning: the database could not confirm that every running server saw the revocation (%v); waited until each one's %s lease ran out instead\n",
			err, authstore.DefaultLease)
	}
	fmt.Fprintf(env.Stderr, "signed out %s's apps (%s deleted in %s); no running server accepts their tokens any more\n",
		name, quantity(n, "grant", "grants"), authstore.Redact(dsn))
	return nil
}

// helpOr prints the usage of a command for -h and returns err.
func helpOr(err error, flags *flagSet, env Env, synopsis string) error {
	if errors.Is(err, flag.ErrHelp) {
		flags.printUsage(env.Stdout, synopsis)
	}
	return err
}

// readPassword reads a new password: from the first line of stdin with
// --password-stdin (for scripts), otherwise twice from the terminal without
// echo.
func readPassword(env Env, fromStdin bool) (string, error) {
	var password string
	if fromStdin {
		line, err := bufio.NewReader(env.Stdin).ReadString('\n')
		if err != nil && (err != io.EOF || line == "") {
			return "", fmt.Errorf("read password from stdin: %w", err)
		}
		password = strings.TrimRight(line, "\r\n")
	} else {
		f, ok := env.Stdin.(*os.File)
		if !ok || !term.IsTerminal(int(f.Fd())) {
			return "", usageErrorf("stdin is not a terminal: pipe the password in and pass --password-stdin")
		}
		fd := int(f.Fd())
		first, err := promptPassword(env, fd, "Password: ")
		if err != nil {
			return "", err
		}
		second, err := promptPassword(env, fd, "Repeat password: ")
		if err != nil {
			return "", err
		}
		if first != second {
			return "", errors.New("the passwords do not match")
		}
		password = first
	}
	if len(password) < minPasswordLen {
		return "", fmt.Errorf("the password must be at least %d characters long", minPasswordLen)
	}
	return password, nil
}

func promptPassword(env Env, fd int, prompt string) (string, error) {
	fmt.Fprint(env.Stderr, prompt)
	b, err := term.ReadPassword(fd)
	fmt.Fprintln(env.Stderr)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	return string(b), nil
}
