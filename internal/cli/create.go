package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mcpgen/create-mcp-server/internal/gen"
)

// CreateOptions are the inputs of creating a project.
type CreateOptions struct {
	IO        *IOStreams
	Prompter  iprompter // nil unless IO.CanPrompt()
	Templates fs.FS
	Runtime   fs.FS

	Dir         string // "" means the current directory
	Module      string
	Name        string
	Description string
	Tools       []string // from --tools, then each --tool
	Yes         bool
	Force       bool

	// Which answers were given as flags; the rest are prompted for, or
	// defaulted with --yes.
	ModuleSet, NameSet, DescriptionSet, ToolsSet bool
}

// iprompter is the part of prompt.Prompter that create uses.
type iprompter interface {
	Input(message, help, def string, validate func(string) error) (string, error)
	MultiInput(message, help string, def []string, validate func([]string) error) ([]string, error)
	Confirm(message string, def bool) (bool, error)
}

// NewCmdCreate returns the command that creates a project. runF, if not nil,
// replaces createRun (for tests of flag handling).
func NewCmdCreate(f *Factory, runF func(context.Context, *CreateOptions) error) *cobra.Command {
	opts := &CreateOptions{IO: f.IO, Templates: f.Templates, Runtime: f.Runtime}
	var toolList, toolEach []string
	cmd := &cobra.Command{
		Use:   "create-mcp-server [DIR]",
		Short: "Create a Go MCP server protected by its own OAuth 2.1 authorization server",
		Long: `create-mcp-server writes a new Go module for an MCP server into DIR (asked for
on a terminal; otherwise the current directory). Its Streamable HTTP endpoint is protected by an OAuth 2.1
authorization server built into the same binary, with a login page, a users file
and SQLite storage. The project builds, passes its own tests and works with
Claude, VS Code, Cursor and MCP Inspector as generated.

On a terminal it asks for whatever the flags leave open, shows what it will write
and asks for confirmation. Elsewhere, pass every answer as a flag or use --yes to
take the defaults. Tool names follow the MCP rule (1 to 64 of A-Z a-z 0-9 _ - .);
with none given, the project gets one tool, "echo".

DIR must not exist or be empty; with --force it may hold other files, but nothing
existing is ever overwritten. (For a DIR named like a command, write ./version.)`,
		Example: `  create-mcp-server weather
  create-mcp-server --yes --module example.com/weather --tools forecast,alerts weather`,
		Args: atMostOneDir,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Dir = args[0]
			}
			flags := cmd.Flags()
			opts.ModuleSet = flags.Changed("module")
			opts.NameSet = flags.Changed("name")
			opts.DescriptionSet = flags.Changed("description")
			opts.ToolsSet = flags.Changed("tools") || flags.Changed("tool")
			opts.Tools = slices.Concat(toolList, toolEach)
			if opts.IO.CanPrompt() && !opts.Yes && f.Prompter != nil {
				opts.Prompter = f.Prompter()
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return createRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Module, "module", "", "Go module `path` (default: base name of DIR)")
	cmd.Flags().StringVar(&opts.Name, "name", "", "server `name` shown to clients (default: base name of DIR)")
	cmd.Flags().StringVar(&opts.Description, "description", "", "one-line `text` describing the server, shown in the README and to clients")
	cmd.Flags().StringSliceVar(&toolList, "tools", nil, "comma-separated tool `names` (default: echo)")
	cmd.Flags().StringArrayVar(&toolEach, "tool", nil, "a tool `name`; may be repeated")
	cmd.Flags().BoolVarP(&opts.Yes, "yes", "y", false, "never prompt: take the default for every unanswered question")
	cmd.Flags().BoolVar(&opts.Force, "force", false, "allow a non-empty DIR (nothing existing is overwritten)")
	cmd.Flags().SortFlags = false
	return cmd
}

// createRun asks what is missing, renders the project in memory, confirms
// and only then writes it.
func createRun(ctx context.Context, opts *CreateOptions) error {
	// Flags are checked before anything else: a usage error comes first.
	a, missing, err := flagAnswers(opts, gen.Defaults("."))
	if err != nil {
		return err
	}
	dir := opts.Dir
	switch {
	case dir != "":
	case opts.Prompter != nil:
		if dir, err = askDir(opts.Prompter, opts.Force); err != nil {
			return err
		}
		opts.Dir = dir
	default:
		dir = "."
	}
	// Refuse a non-empty directory before asking anything else.
	if err := gen.CheckDir(dir, nil, opts.Force); err != nil {
		return err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	def := gen.Defaults(filepath.Base(abs))
	if a, err = askMissing(opts, a, missing, def); err != nil {
		return err
	}
	files, err := gen.Render(opts.Templates, opts.Runtime, a, gen.Version)
	if err != nil {
		return err
	}
	if err := gen.CheckDir(dir, files, opts.Force); err != nil {
		return err
	}

	if opts.Prompter != nil {
		fmt.Fprint(opts.IO.Out, summary(a, dir, files))
		ok, err := opts.Prompter.Confirm(fmt.Sprintf("Create these %d files?", len(files)), true)
		if err != nil {
			return err
		}
		if !ok {
			return ErrCancelled
		}
	}
	if err := gen.Write(ctx, dir, files, opts.Force); err != nil {
		return err
	}
	fmt.Fprint(opts.IO.Out, nextSteps(a, opts.Dir, len(files)))
	return nil
}

// flagAnswers returns the answers given as flags, all validated, and the
// flags of those missing. Without a terminal and without --yes, a missing
// answer is a FlagError naming the flags to pass.
func flagAnswers(opts *CreateOptions, def gen.Answers) (a gen.Answers, missing []string, err error) {
	a = gen.Answers{Module: opts.Module, Name: opts.Name, Description: opts.Description, Tools: opts.Tools}
	if opts.ToolsSet && len(a.Tools) == 0 {
		a.Tools = def.Tools // --tools "" asks for the default tool
	}
	validTools := func(names []string) error { _, err := gen.ToolList(names); return err }
	checks := []struct {
		flag  string
		set   bool
		check func() error
	}{
		{"--module", opts.ModuleSet, func() error { return gen.ValidateModule(a.Module) }},
		{"--name", opts.NameSet, func() error { return gen.ValidateName(a.Name) }},
		{"--description", opts.DescriptionSet, func() error { return gen.ValidateDescription(a.Description) }},
		{"--tools", opts.ToolsSet, func() error { return validTools(a.Tools) }},
	}
	for _, c := range checks {
		if !c.set {
			missing = append(missing, c.flag)
		} else if err := c.check(); err != nil {
			return a, nil, &FlagError{Err: fmt.Errorf("%s: %w", c.flag, err)}
		}
	}
	if len(missing) > 0 && opts.Prompter == nil && !opts.Yes {
		return a, nil, flagErrorf("not running in a terminal, so there is nobody to ask: pass %s, or --yes to take the defaults",
			joinAnd(missing))
	}
	return a, missing, nil
}

// askMissing fills in the answers whose flags were not given: from a
// prompt on a terminal, or from the defaults with --yes.
func askMissing(opts *CreateOptions, a gen.Answers, missing []string, def gen.Answers) (gen.Answers, error) {
	if len(missing) == 0 {
		return a, nil
	}
	// With p == nil (--yes), each missing answer takes its default.
	p := opts.Prompter
	validTools := func(names []string) error { _, err := gen.ToolList(names); return err }
	var err error
	if !opts.ModuleSet {
		a.Module, err = askString(p, "--module", def.Module, gen.ValidateModule,
			"Go module path:", "The path the module is imported by, e.g. github.com/you/weather. A plain name works until you publish it.")
		if err != nil {
			return a, err
		}
	}
	if !opts.NameSet {
		a.Name, err = askString(p, "--name", def.Name, gen.ValidateName,
			"Server name:", "The name MCP clients show for this server.")
		if err != nil {
			return a, err
		}
	}
	if !opts.DescriptionSet {
		a.Description, err = askString(p, "--description", gen.DefaultDescription, gen.ValidateDescription,
			"Description:", "One line, shown in the README and to clients.")
		if err != nil {
			return a, err
		}
	}
	if !opts.ToolsSet {
		a.Tools = def.Tools
		if p != nil {
			a.Tools, err = p.MultiInput("Tool names (comma-separated):",
				`The MCP tools to stub out in tools.go: 1 to 64 of A-Z a-z 0-9 _ - . each, e.g. "forecast, fetch-page". Each gets an echo placeholder to replace.`,
				def.Tools, func(names []string) error {
					if len(names) == 0 {
						return nil // the default
					}
					return validTools(names)
				})
			if err != nil {
				return a, err
			}
			if len(a.Tools) == 0 {
				a.Tools = def.Tools
			}
		}
	}
	return a, nil
}

// askDir asks where to create the project when DIR was not given: the
// current directory if it is empty, else a new directory beside it.
func askDir(p iprompter, force bool) (string, error) {
	def := "."
	if gen.CheckDir(def, nil, force) != nil {
		def = "mcp-server"
	}
	return p.Input("Project directory:", "Where to create the project: a new or empty directory.", def, func(dir string) error {
		if dir == "" {
			return errors.New("directory: must not be empty")
		}
		return gen.CheckDir(dir, nil, force)
	})
}

// askString asks one question, or with p == nil takes def, which must be
// valid: a default derived from the directory name may not be.
func askString(p iprompter, flag, def string, check func(string) error, message, help string) (string, error) {
	if p == nil {
		if err := check(def); err != nil {
			return "", flagErrorf("%v (the default, from the directory name); pass %s", err, flag)
		}
		return def, nil
	}
	if check(def) != nil {
		def = ""
	}
	return p.Input(message, help, def, check)
}

// joinAnd joins ["a", "b", "c"] as "a, b and c".
func joinAnd(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

// summary describes what is about to be written, for the confirmation.
func summary(a gen.Answers, dir string, files []gen.File) string {
	var b strings.Builder
	tools, _ := gen.ToolList(a.Tools)
	fmt.Fprintf(&b, "\n  Module:       %s\n  Server name:  %s\n  Description:  %s\n  Tools:        ", a.Module, a.Name, a.Description)
	for i, t := range tools {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s (%sTool in tools.go)", t.Name, t.Go)
	}
	abs, _ := filepath.Abs(dir)
	fmt.Fprintf(&b, "\n\n  Files to create in %s:\n", abs)
	runtime := map[string]int{}
	var runtimeDirs []string
	for _, f := range files {
		switch f.Policy {
		case gen.PolicyRuntime:
			d := strings.Join(strings.SplitN(f.Path, "/", 3)[:2], "/") + "/"
			if runtime[d] == 0 {
				runtimeDirs = append(runtimeDirs, d)
			}
			runtime[d]++
		case gen.PolicyState:
		case gen.PolicyUser:
			fmt.Fprintf(&b, "    %-28s  yours: never touched by upgrades\n", f.Path)
		case gen.PolicyGenerated:
			fmt.Fprintf(&b, "    %-28s  guide to the vendored runtime (replaced by upgrades)\n", f.Path)
		default:
			fmt.Fprintf(&b, "    %s\n", f.Path)
		}
	}
	for _, d := range runtimeDirs {
		fmt.Fprintf(&b, "    %-28s  %d files of vendored runtime (replaced by upgrades)\n", d, runtime[d])
	}
	fmt.Fprintf(&b, "    %-28s  manifest and merge base, for create-mcp-server upgrade\n\n", gen.StateDir+"/")
	return b.String()
}

// nextSteps tells the user what to do with the new project.
func nextSteps(a gen.Answers, dir string, n int) string {
	var b strings.Builder
	where := dir
	if where == "" {
		where = "the current directory"
	}
	fmt.Fprintf(&b, "Created %s in %s (%d files).\n\nNext:\n", a.Name, where, n)
	if dir != "" && dir != "." {
		fmt.Fprintf(&b, "  cd %s\n", dir)
	}
	b.WriteString("  go run . user add alice     # choose a user name and password\n")
	b.WriteString("  go run . serve              # MCP at http://127.0.0.1:8080/mcp\n")
	b.WriteString("\nREADME.md shows how to connect Claude, VS Code, Cursor and MCP Inspector.\n")
	return b.String()
}
