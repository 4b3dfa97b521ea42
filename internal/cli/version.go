package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mcpgen/create-mcp-server/internal/gen"
)

// NewCmdVersion returns the version command (the same as --version).
func NewCmdVersion(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the generator version",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(f.IO.Out, "create-mcp-server %s\n", gen.Version)
			return err
		},
	}
}

// noArgs is cobra.NoArgs returning a FlagError.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return flagErrorf("%s takes no arguments, got %q", cmd.CommandPath(), args)
	}
	return nil
}
