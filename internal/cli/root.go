// Package cli implements the create-mcp-server command line: one file per
// command, each with a NewCmdX constructor that only fills an options struct
// and an xRun function that does the work, so tests can check either half.
package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"

	"github.com/spf13/cobra"

	"github.com/mcpgen/create-mcp-server/internal/gen"
	"github.com/mcpgen/create-mcp-server/internal/prompt"
)

// NewCmdRoot returns the create-mcp-server command: creating a project is
// the root command itself, and the other commands hang below it.
func NewCmdRoot(f *Factory) *cobra.Command {
	cmd := NewCmdCreate(f, nil)
	cmd.Version = gen.Version
	cmd.SetVersionTemplate("create-mcp-server {{.Version}}\n")
	cmd.SilenceErrors = true
	cmd.SilenceUsage = true
	cmd.SetIn(f.IO.In)
	cmd.SetOut(f.IO.Out)
	cmd.SetErr(f.IO.ErrOut)
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &FlagError{Err: err} })

	cmd.AddCommand(NewCmdVersion(f))
	cmd.AddCommand(NewCmdUpgrade(f, nil))
	return cmd
}

// Main runs create-mcp-server with the process's arguments and returns its
// exit status.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	f := NewFactory()
	cmd := NewCmdRoot(f)
	cmd.SetArgs(os.Args[1:])
	return exitStatus(f, cmd.ExecuteContext(ctx))
}

func exitStatus(f *Factory, err error) int {
	var flagErr *FlagError
	var exitErr *ExitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &exitErr):
		fmt.Fprintf(f.IO.ErrOut, "create-mcp-server: %v\n", err)
		return exitErr.Code
	case errors.As(err, &flagErr):
		fmt.Fprintf(f.IO.ErrOut, "create-mcp-server: %v\nRun 'create-mcp-server --help' for usage.\n", err)
		return exitUsage
	case errors.Is(err, prompt.ErrInterrupted), errors.Is(err, context.Canceled):
		fmt.Fprintln(f.IO.ErrOut, "create-mcp-server: interrupted; nothing was written")
		return exitInterrupt
	default:
		fmt.Fprintf(f.IO.ErrOut, "create-mcp-server: %v\n", err)
		return exitError
	}
}
