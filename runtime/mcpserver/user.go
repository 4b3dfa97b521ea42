package mcpserver

// The user commands: add, remove and list the people who may sign in.

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"

	"golang.org/x/term"

	"github.com/mcpgen/create-mcp-server/runtime/userfile"
)

// minPasswordLen is the shortest password "user add" accepts. bcrypt also
// caps passwords at 72 bytes (userfile.MaxPasswordLen).
const minPasswordLen = 8

// user runs user add|remove|list.
func user(opts Options, args []string, env Env) error {
	if len(args) == 0 {
		return usageErrorf("user: missing subcommand: add, remove or list")
	}
	sub, args := args[0], args[1:]
	flags := newFlagSet("user " + sub)
	path := flags.String("users", "users.txt", "users `FILE`")
	switch sub {
	case "add":
		passwordStdin := flags.Bool("password-stdin", false, "read the password from the first line of stdin instead of prompting")
		flags.bindEnv("users")
		if err := flags.parse(args, 1, env.Getenv); err != nil {
			return helpOr(err, flags, env, "user add NAME [flags]")
		}
		name := flags.Arg(0)
		if err := userfile.ValidateUsername(name); err != nil {
			return &UsageError{err}
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
		if slices.Contains(existing, name) {
			fmt.Fprintf(env.Stderr, "changed the password of %s in %s (their apps must sign in again; a running server picks it up without a restart)\n", name, *path)
		} else {
			fmt.Fprintf(env.Stderr, "added %s to %s (a running server picks it up without a restart)\n", name, *path)
		}
		return nil
	case "remove":
		flags.bindEnv("users")
		if err := flags.parse(args, 1, env.Getenv); err != nil {
			return helpOr(err, flags, env, "user remove NAME [flags]")
		}
		if err := userfile.Remove(*path, flags.Arg(0)); err != nil {
			return err
		}
		fmt.Fprintf(env.Stderr, "removed %s from %s (their apps are signed out)\n", flags.Arg(0), *path)
		return nil
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
