package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/mod/modfile"
	"golang.org/x/mod/semver"

	"github.com/mcpgen/create-mcp-server/internal/gen"
	"github.com/mcpgen/create-mcp-server/internal/upgrade"
)

// UpgradeOptions are the inputs of upgrading a project.
type UpgradeOptions struct {
	IO        *IOStreams
	Templates fs.FS
	Runtime   fs.FS
	// Version is the generator version to upgrade to (gen.Version).
	Version string

	Dir         string // "" means the current directory
	DryRun      bool
	Tools       []string // tools to add, from --tools, then each --tool
	Name        string
	Description string

	NameSet, DescriptionSet bool // whether --name, --description were given
}

// ErrConflicts matches the error (exit status 1) of an upgrade that left
// conflict markers, or of a dry run that would; everything else the upgrade
// had to do is done.
var ErrConflicts = errors.New("upgrade conflicts")

type conflictsError struct {
	files int
	dry   bool
}

func (e *conflictsError) Error() string {
	if e.dry {
		return fmt.Sprintf("the upgrade would leave conflict markers in %d file(s), listed above", e.files)
	}
	return fmt.Sprintf("%d file(s) have conflict markers, listed above; resolve them (upgrade refuses to run again until you do)", e.files)
}

func (e *conflictsError) Is(target error) bool { return target == ErrConflicts }

// NewCmdUpgrade returns the upgrade command. runF, if not nil, replaces
// upgradeRun (for tests of flag handling).
func NewCmdUpgrade(f *Factory, runF func(context.Context, *UpgradeOptions) error) *cobra.Command {
	opts := &UpgradeOptions{IO: f.IO, Templates: f.Templates, Runtime: f.Runtime, Version: gen.Version}
	var toolList, toolEach []string
	cmd := &cobra.Command{
		Use:   "upgrade [DIR]",
		Short: "Bring a generated project up to date with this generator, keeping your edits",
		Long: `upgrade regenerates the project in DIR (default: the current directory) with
this version of create-mcp-server and the answers recorded in its manifest
(.create-mcp-server/manifest.json), and brings the result into the project
without losing an edit. It works offline: the files as last generated are
stored in .create-mcp-server/base.txtar.

  - The vendored runtime under internal/ is replaced. If you edited a runtime
    file, upgrade says so and keeps your copy beside it as FILE.user-edit.
  - tools.go, tools_test.go and tools_*.go are yours: never touched.
  - Every other generated file (main.go, README.md, go.mod, ...) gets a
    three-way merge of your version and the new one. Where both changed the
    same lines, the file gets conflict markers, upgrade lists it and exits
    with status 1. go.mod keeps the requirements you added while the
    generator's own move to their new versions.
  - A file you deleted stays deleted; files new in this version are added.

Running upgrade again right after changes nothing. --tools adds tools, each in
files of its own (tools_NAME.go and tools_NAME_test.go, yours from then on;
tools_NAME_tool.go where NAME is "test" or a GOOS or GOARCH, which the go
command reads in file names), and adds them to the end of the list tools() returns in main.go, after any
tools you listed there yourself; if tools() builds its list some other way,
upgrade says which line to add.
--name and --description change those answers and regenerate with them.`,
		Example: `  create-mcp-server upgrade --dry-run
  create-mcp-server upgrade
  create-mcp-server upgrade --tools forecast,alerts ./weather`,
		Args: atMostOneDir,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Dir = args[0]
			}
			opts.NameSet = cmd.Flags().Changed("name")
			opts.DescriptionSet = cmd.Flags().Changed("description")
			opts.Tools = slices.Concat(toolList, toolEach)
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return upgradeRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "print what would change as a unified diff; write nothing")
	cmd.Flags().StringSliceVar(&toolList, "tools", nil, "comma-separated `names` of tools to add")
	cmd.Flags().StringArrayVar(&toolEach, "tool", nil, "a tool `name` to add; may be repeated")
	cmd.Flags().StringVar(&opts.Name, "name", "", "change the server `name` shown to clients")
	cmd.Flags().StringVar(&opts.Description, "description", "", "change the one-line description")
	cmd.Flags().SortFlags = false
	return cmd
}

// upgradeRun checks that DIR is a project this generator may upgrade,
// renders it anew, plans every file, prints the plan and, unless it is a dry
// run, applies it.
func upgradeRun(ctx context.Context, opts *UpgradeOptions) error {
	dir := opts.Dir
	if dir == "" {
		dir = "."
	}
	out := opts.IO.Out

	m, err := readManifest(dir)
	if err != nil {
		return err
	}
	if err := checkVersion(dir, m.GeneratorVersion, opts.Version); err != nil {
		return err
	}
	recorded := m.Answers
	rename, err := moduleRename(dir, recorded.Module, opts.Version)
	if err != nil {
		return err
	}
	if rename != nil {
		fmt.Fprintf(out, "module path is now %s (go.mod); rendering with it\n", rename.To)
		recorded.Module = rename.To
	}
	a, added, err := upgradeAnswers(recorded, opts)
	if err != nil {
		return err
	}
	next, err := gen.Render(opts.Templates, opts.Runtime, a, opts.Version)
	if err != nil {
		return fmt.Errorf("render %s: %w", dir, err)
	}
	var decls map[string]string
	if len(added) > 0 {
		if decls, err = packageDecls(dir); err != nil {
			return err
		}
	}
	for _, tool := range added {
		// Render puts every tool in tools.go, which is the user's and is
		// kept; a tool added now gets files of its own.
		files, err := gen.RenderTool(opts.Templates, a, tool, opts.Version)
		if err != nil {
			return fmt.Errorf("render tool %s: %w", tool, err)
		}
		if err := checkToolFree(dir, tool, files, decls); err != nil {
			return err
		}
		next = append(next, files...)
	}

	base, err := gen.ReadBase(dir)
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(opts.IO.ErrOut, "warning: %s is missing, so files you edited cannot be merged line by line: where they differ from the new version you get a conflict showing both\n", gen.BasePath)
		base, err = map[string][]byte{}, nil
	}
	if err != nil {
		return err
	}
	current, err := upgrade.ReadProject(dir, m, next)
	if err != nil {
		return err
	}
	planOpts := upgrade.Options{Merge: map[string]upgrade.MergeFunc{}, Rename: rename}
	var mainMerge upgrade.MergeFunc
	if nextMain := fileData(next, "main.go"); upgrade.IsPlumbingMain(current["main.go"]) && nextMain != nil && !upgrade.IsPlumbingMain(nextMain) {
		// The project's main.go still holds the command line, which this
		// version moved into internal/mcpserver: carry the user's parts
		// over declaration by declaration (a line merge cannot).
		uses, err := packageIdents(dir)
		if err != nil {
			return err
		}
		mainMerge = func(base, yours, theirs []byte, _ upgrade.Labels) (upgrade.MergeResult, error) {
			return upgrade.MigrateMain(base, yours, theirs, uses)
		}
		planOpts.Merge["main.go"] = mainMerge
		planOpts.Merge["auth_test.go"] = replaceKeepingEdits("it tested the functions the old main.go had; " +
			"the new one tests internal/mcpserver through options(). Put tests of your own in files of their own")
	}
	if len(added) > 0 {
		merge, err := toolsMerge(opts, a, added, mainMerge)
		if err != nil {
			return err
		}
		planOpts.Merge["main.go"] = merge
	}
	res, err := upgrade.PlanWith(current, m, base, next, planOpts)
	var unresolved *upgrade.UnresolvedError
	if errors.As(err, &unresolved) {
		return &ExitError{Code: exitUsage, Err: fmt.Errorf("%s line %d still has a conflict from the last upgrade; "+
			"resolve every conflict first (keep the lines you want, delete the <<<<<<<, |||||||, ======= and >>>>>>> lines), "+
			"then run upgrade again; nothing changed",
			filepath.Join(dir, filepath.FromSlash(unresolved.Path)), unresolved.Line)}
	}
	if err != nil {
		return err
	}
	if len(added) > 0 {
		if err := warnMainGone(res, added); err != nil {
			return err
		}
	}

	if err := upgrade.CheckPaths(dir, res); err != nil {
		return &ExitError{Code: exitUsage, Err: err}
	}

	report(out, res)
	if opts.DryRun {
		for _, c := range res.Changes {
			if c.Writes() {
				out.Write(upgrade.UnifiedDiff("a/"+c.Path, "b/"+c.Path, c.Old, c.New))
			}
		}
		fmt.Fprintln(out, "dry run: nothing was written")
		if n := len(res.Conflicts()); n > 0 {
			return &conflictsError{files: n, dry: true}
		}
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	stateChanged := changesState(dir, res)
	if err := upgrade.Apply(dir, res); err != nil {
		return err
	}
	if cs := res.Conflicts(); len(cs) > 0 {
		fmt.Fprintf(out, "\n%d file(s) have conflicts: both your lines and the generator's are kept, between markers\n", len(cs))
		fmt.Fprintf(out, "<<<<<<< %s ... ||||||| base ... ======= ... >>>>>>> generator %s\n", upgrade.ConflictLabel, res.To)
		for _, c := range cs {
			fmt.Fprintf(out, "  %s\n", filepath.Join(dir, filepath.FromSlash(c.Path)))
		}
		fmt.Fprintln(out, "Edit each block to what you want, delete the marker lines, then run go build ./... && go test ./...")
		return &conflictsError{files: len(cs)}
	}
	name := dir
	if abs, err := filepath.Abs(dir); err == nil {
		name = filepath.Base(abs)
	}
	switch counts := countChanges(res); {
	case counts == "" && stateChanged:
		// Say what changed without a file of the project changing: the
		// manifest records the module path of go.mod, the new version.
		var what []string
		if rename != nil {
			what = append(what, "the module path "+rename.To)
		}
		if res.From != res.To {
			what = append(what, "create-mcp-server "+res.To)
		}
		if len(what) == 0 {
			what = append(what, "this generation")
		}
		fmt.Fprintf(out, "\n%s is up to date with create-mcp-server %s; only %s/ changed: it now records %s\n",
			name, res.To, gen.StateDir, strings.Join(what, " and "))
	case counts == "":
		fmt.Fprintf(out, "\n%s is up to date with create-mcp-server %s; nothing changed\n", name, res.To)
	default:
		fmt.Fprintf(out, "\n%s is up to date with create-mcp-server %s (%s); check it with: go build ./... && go test ./...\n", name, res.To, counts)
	}
	return nil
}

// changesState reports whether applying res to the project in dir rewrites
// its manifest or merge base.
func changesState(dir string, res *upgrade.Result) bool {
	for p, data := range map[string][]byte{gen.ManifestPath: res.Manifest, gen.BasePath: res.Base} {
		if old, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p))); err != nil || !bytes.Equal(old, data) {
			return true
		}
	}
	return false
}

// toolsMerge returns the merge of an edited main.go for an upgrade that
// adds tools. A line merge of the main.go rendered with the new tools would
// put each new call where the user may have listed tools by hand, and
// conflict. Instead, the user's main.go is merged with what this generator
// renders for the tools the project had, and the new calls are then added
// to the end of the list tools() returns by a syntax-aware edit
// (upgrade.AddToolCalls). If tools() is no longer a list it can edit, or
// the merge conflicts, the report says which lines to add by hand.
//
// inner, if not nil, replaces the line merge (the move of main.go to its
// short form).
func toolsMerge(opts *UpgradeOptions, a gen.Answers, added []string, inner upgrade.MergeFunc) (upgrade.MergeFunc, error) {
	before := a
	before.Tools = a.Tools[:len(a.Tools)-len(added)]
	files, err := gen.Render(opts.Templates, opts.Runtime, before, opts.Version)
	if err != nil {
		return nil, fmt.Errorf("render main.go: %w", err)
	}
	target := fileData(files, "main.go")
	tools, err := gen.ToolList(added)
	if err != nil {
		return nil, err
	}
	var funcs, lines []string
	for _, t := range tools {
		funcs = append(funcs, t.Constructor())
		lines = append(lines, t.Constructor()+"(),")
	}
	return func(base, yours, _ []byte, l upgrade.Labels) (upgrade.MergeResult, error) {
		r := upgrade.MergeResult{}
		if inner != nil {
			var err error
			if r, err = inner(base, yours, target, l); err != nil {
				return r, err
			}
		} else {
			r.Data, r.Conflicts = upgrade.Merge3(base, yours, target, l)
		}
		warn := func(w string) {
			if r.Warning != "" {
				w = r.Warning + "; " + w
			}
			r.Warning = w
		}
		if r.Conflicts > 0 {
			warn("once its conflicts are resolved, add to the list tools() returns:\n\t" + strings.Join(lines, "\n\t"))
			return r, nil
		}
		out, err := upgrade.AddToolCalls(r.Data, funcs)
		var listErr *upgrade.ToolListError
		switch {
		case errors.As(err, &listErr):
			warn(err.Error())
		case err != nil:
			return r, err
		default:
			r.Data = out
		}
		return r, nil
	}, nil
}

// warnMainGone adds to the plan res, which adds the tools added, the
// lines to add by hand to tools() if the user deleted or renamed main.go:
// the plan keeps it deleted, so toolsMerge never ran to add them or say so.
func warnMainGone(res *upgrade.Result, added []string) error {
	i := slices.IndexFunc(res.Changes, func(c upgrade.Change) bool { return c.Path == "main.go" })
	if i < 0 || res.Changes[i].Action != upgrade.DeletedByUser {
		return nil
	}
	tools, err := gen.ToolList(added)
	if err != nil {
		return err
	}
	var lines []string
	for _, t := range tools {
		lines = append(lines, t.Constructor()+"(),")
	}
	w := &upgrade.ToolListError{Reason: "tools() is not in main.go, which you deleted or renamed", Lines: lines}
	res.Changes[i].Warnings = append(res.Changes[i].Warnings, w.Error())
	return nil
}

// replaceKeepingEdits returns a merge that takes the generator's version of
// a file; a copy the user edited is kept beside it, and the warning says
// why.
func replaceKeepingEdits(why string) upgrade.MergeFunc {
	return func(base, yours, theirs []byte, _ upgrade.Labels) (upgrade.MergeResult, error) {
		if base != nil && bytes.Equal(base, yours) {
			return upgrade.MergeResult{Data: theirs}, nil
		}
		return upgrade.MergeResult{Data: theirs, KeepOld: true, Warning: "replaced, not merged: " + why}, nil
	}
}

// fileData returns the content of the file at p in files, or nil.
func fileData(files []gen.File, p string) []byte {
	for _, f := range files {
		if f.Path == p {
			return f.Data
		}
	}
	return nil
}

// packageIdents returns whether any Go file at the root of the project in
// dir, other than main.go and auth_test.go (which the upgrade rewrites),
// refers to a top-level name it does not declare itself: the move of
// main.go to its short form keeps what they call.
func packageIdents(dir string) (func(string) bool, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	idents := map[string]bool{}
	fset := token.NewFileSet()
	for _, name := range names {
		if b := filepath.Base(name); b == "main.go" || b == "auth_test.go" {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			continue // the build will say what is wrong with it
		}
		// The names the file does not declare itself: other files'
		// top-level declarations (and predeclared ones), never a local
		// variable or a field.
		for _, id := range f.Unresolved {
			idents[id.Name] = true
		}
	}
	return func(id string) bool { return idents[id] }, nil
}

// packageDecls returns the names declared at the top level of the Go files
// at the root of the project in dir, each with the file that declares it.
func packageDecls(dir string) (map[string]string, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	decls := map[string]string{}
	fset := token.NewFileSet()
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("read project: %w", err)
		}
		for _, id := range topLevelNames(fset, name, data) {
			if _, dup := decls[id]; !dup {
				decls[id] = filepath.Base(name)
			}
		}
	}
	return decls, nil
}

// topLevelNames returns the names a Go file declares at the top level, or
// none if it does not parse (the build will say what is wrong with it).
func topLevelNames(fset *token.FileSet, name string, src []byte) []string {
	f, err := parser.ParseFile(fset, name, src, parser.SkipObjectResolution)
	if err != nil {
		return nil
	}
	var ids []string
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Recv == nil {
				ids = append(ids, d.Name.Name)
			}
		case *ast.GenDecl:
			for _, spec := range d.Specs {
				switch spec := spec.(type) {
				case *ast.TypeSpec:
					ids = append(ids, spec.Name.Name)
				case *ast.ValueSpec:
					for _, n := range spec.Names {
						if n.Name != "_" {
							ids = append(ids, n.Name)
						}
					}
				}
			}
		}
	}
	return ids
}

// checkToolFree refuses to add tool, whose files are files, to the project
// in dir if one of the files is there already, or if decls (the project's
// top-level names, see packageDecls) has a name the files declare.
func checkToolFree(dir, tool string, files []gen.File, decls map[string]string) error {
	t, err := gen.ToolList([]string{tool})
	if err != nil {
		return err
	}
	ids := t[0].Identifiers()
	fset := token.NewFileSet()
	for _, f := range files {
		_, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(f.Path)))
		if err == nil {
			return flagErrorf("--tools: cannot add the tool %q: %s is there already; "+
				"rename or remove your file, or add the tool by hand; nothing changed", tool, f.Path)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("read project: %w", err)
		}
		ids = append(ids, topLevelNames(fset, f.Path, f.Data)...)
	}
	for _, id := range ids {
		if file, ok := decls[id]; ok {
			return flagErrorf("--tools: cannot add the tool %q: %s declares %s already, "+
				"which the tool's new files would declare again (did you add the tool by hand?); rename yours or pick another name; nothing changed", tool, file, id)
		}
	}
	return nil
}

// report prints one line per file, and warnings.
func report(w io.Writer, res *upgrade.Result) {
	for _, c := range res.Changes {
		for _, l := range c.Lines() {
			fmt.Fprintln(w, l)
		}
	}
}

// countChanges summarizes the files an upgrade changes, e.g. "1 added,
// 3 updated, 1 merged", or returns "" if it changes none.
func countChanges(res *upgrade.Result) string {
	order := []upgrade.Action{upgrade.Added, upgrade.Updated, upgrade.Merged, upgrade.Conflict, upgrade.Replaced, upgrade.Removed}
	n := map[upgrade.Action]int{}
	for _, c := range res.Changes {
		if c.Writes() || c.Backup != "" {
			n[c.Action]++
		}
	}
	var parts []string
	for _, a := range order {
		if n[a] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n[a], a))
		}
	}
	return strings.Join(parts, ", ")
}

// moduleRename reads the module path of the project in dir from its go.mod
// and returns its change from recorded, the path the manifest records, or
// nil if it is the same. version is the generator's, for messages.
func moduleRename(dir, recorded, version string) (*upgrade.ModuleRename, error) {
	name := filepath.Join(dir, "go.mod")
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, &ExitError{Code: exitUsage, Err: fmt.Errorf("read the module path: %w; "+
			"upgrade renders the project with the module path of its go.mod; nothing changed", err)}
	}
	mod := modfile.ModulePath(data)
	if mod == "" {
		return nil, &ExitError{Code: exitUsage, Err: fmt.Errorf("%s has no module line (module PATH) that upgrade can read; "+
			"fix it so that go build works, then run upgrade again; nothing changed", name)}
	}
	var binErr *gen.BinaryDirError
	if err := gen.ValidateModule(mod); errors.As(err, &binErr) {
		return nil, &ExitError{Code: exitUsage, Err: binaryDirAdvice(name, data, binErr, version)}
	} else if err != nil {
		return nil, &ExitError{Code: exitUsage, Err: fmt.Errorf("%s: module path: %w; nothing changed", name, err)}
	}
	if mod == recorded {
		return nil, nil
	}
	return &upgrade.ModuleRename{From: recorded, To: mod}, nil
}

// binaryDirAdvice returns the error for the go.mod named name, whose
// content is data, when its module path names the binary like a directory
// of the project (err). Older generators allowed such paths, so a project
// can have one: the error says which line of go.mod to change, and to
// what, for upgrade to go through.
func binaryDirAdvice(name string, data []byte, err *gen.BinaryDirError, version string) error {
	line, text := 0, "module "+err.Module
	for i, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == "module" {
			line, text = i+1, strings.TrimSpace(l)
			break
		}
	}
	to := err.Suggest()
	return fmt.Errorf("%s: the module path %s names the binary %q (go build names the binary after the module path), "+
		"but create-mcp-server %s makes a directory %s/ in the project, so go build would stop (build output %q already exists and is a directory). "+
		"Rename the module, then run upgrade again; nothing changed:\n"+
		"  1. in %s, change line %d from \"%s\" to \"module %s\"\n"+
		"  2. in your .go files, change the imports that start with \"%s/\" to start with \"%s/\"\n"+
		"upgrade reads the module path from go.mod and renders the project with it",
		name, err.Module, err.Binary, version, err.Binary, err.Binary,
		name, line, text, to, err.Module, to)
}

// readManifest reads the manifest of dir, refusing a directory that was not
// made by create-mcp-server.
func readManifest(dir string) (*gen.Manifest, error) {
	_, err := os.Stat(filepath.Join(dir, filepath.FromSlash(gen.ManifestPath)))
	if errors.Is(err, fs.ErrNotExist) {
		if _, derr := os.Stat(dir); derr != nil {
			return nil, &ExitError{Code: exitUsage, Err: fmt.Errorf("%s: no such directory; nothing changed", dir)}
		}
		return nil, &ExitError{Code: exitUsage, Err: fmt.Errorf("%s was not made by create-mcp-server (no %s); nothing changed. "+
			"Run upgrade in the project's root directory, or create a new project with: create-mcp-server DIR",
			dir, gen.ManifestPath)}
	}
	return gen.ReadManifest(dir)
}

// checkVersion refuses to downgrade a project.
func checkVersion(dir, project, this string) error {
	pv, tv := "v"+project, "v"+this
	if !semver.IsValid(pv) {
		return fmt.Errorf("%s: generator_version %q is not a version; nothing changed", gen.ManifestPath, project)
	}
	if semver.Compare(pv, tv) > 0 {
		return &ExitError{Code: exitUsage, Err: fmt.Errorf("%s was made by create-mcp-server %s; this is %s; nothing changed. "+
			"Upgrade the generator: go run github.com/mcpgen/create-mcp-server/cmd/create-mcp-server@latest upgrade %s",
			dir, project, this, dir)}
	}
	return nil
}

// upgradeAnswers returns the recorded answers with the flags' changes, and
// the names of the tools to add.
func upgradeAnswers(a gen.Answers, opts *UpgradeOptions) (gen.Answers, []string, error) {
	a.Tools = slices.Clone(a.Tools)
	if opts.NameSet {
		if err := gen.ValidateName(opts.Name); err != nil {
			return a, nil, &FlagError{Err: fmt.Errorf("--name: %w", err)}
		}
		a.Name = opts.Name
	}
	if opts.DescriptionSet {
		if err := gen.ValidateDescription(opts.Description); err != nil {
			return a, nil, &FlagError{Err: fmt.Errorf("--description: %w", err)}
		}
		a.Description = opts.Description
	}
	var added []string
	for _, name := range opts.Tools {
		name = strings.TrimSpace(name)
		if slices.Contains(a.Tools, name) {
			return a, nil, flagErrorf("--tools: the project already has a tool %q", name)
		}
		a.Tools = append(a.Tools, name)
		added = append(added, name)
	}
	if _, err := gen.ToolList(a.Tools); err != nil {
		return a, nil, &FlagError{Err: fmt.Errorf("--tools: %w", err)}
	}
	if err := a.Validate(); err != nil {
		return a, nil, fmt.Errorf("%s: recorded answers: %w", gen.ManifestPath, err)
	}
	return a, added, nil
}
