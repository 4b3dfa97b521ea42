package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

// FlagError is a mistake on the command line: a bad or missing flag or
// argument. It exits with status 2 and points to --help; every other error
// is a runtime failure and exits with status 1.
type FlagError struct{ Err error }

func (e *FlagError) Error() string { return e.Err.Error() }
func (e *FlagError) Unwrap() error { return e.Err }

// flagErrorf returns a FlagError with a formatted message.
func flagErrorf(format string, args ...any) error {
	return &FlagError{Err: fmt.Errorf(format, args...)}
}

// ExitError is a failure with its own exit status, reported as
// "create-mcp-server: <Err>" without the usage hint of a FlagError. Commands
// use it when the status tells scripts something, e.g. upgrade refusing
// with 2 because DIR has no manifest.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// ErrCancelled is returned when the user declines the confirmation or
// interrupts a prompt. Nothing has been written when it is returned.
var ErrCancelled = errors.New("cancelled; nothing was written")

// Exit statuses.
const (
	exitOK        = 0
	exitError     = 1
	exitUsage     = 2
	exitInterrupt = 130
)

// atMostOneDir is the positional-argument check of the commands that take an
// optional DIR.
func atMostOneDir(cmd *cobra.Command, args []string) error {
	if len(args) > 1 {
		return flagErrorf("want at most one argument (DIR), got %d: %q", len(args), args)
	}
	return nil
}
