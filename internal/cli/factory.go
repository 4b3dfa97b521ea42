package cli

import (
	"io/fs"
	"os"

	createmcpserver "github.com/mcpgen/create-mcp-server"
	"github.com/mcpgen/create-mcp-server/internal/prompt"
)

// Factory holds what commands depend on, so tests can replace it.
type Factory struct {
	IO *IOStreams
	// Prompter returns the prompter; called only when IO.CanPrompt().
	Prompter func() prompt.Prompter
	// Templates and Runtime are the sources rendered into a project.
	Templates, Runtime fs.FS
}

// NewFactory returns the Factory of the real program: the process's
// streams, survey prompts and the embedded sources.
func NewFactory() *Factory {
	io := System()
	return &Factory{
		IO:        io,
		Prompter:  func() prompt.Prompter { return prompt.NewSurvey(os.Stdin, os.Stdout, os.Stderr) },
		Templates: createmcpserver.Templates(),
		Runtime:   createmcpserver.Runtime(),
	}
}
