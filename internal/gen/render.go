package gen

import (
	"bytes"
	"fmt"
	"go/build"
	"go/format"
	"io"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"
)

// A File is one file of a generated project.
type File struct {
	Path   string      // slash-separated, relative to the project root
	Data   []byte      // content
	Mode   fs.FileMode // permission bits
	Policy string      // PolicyRuntime, PolicyGenerated, PolicyMerge, PolicyUser or PolicyState
}

// userFiles are written once and then belong to the user.
var userFiles = map[string]bool{"tools.go": true, "tools_test.go": true, "LICENSE": true}

// generatedDir holds the guides that describe the vendored runtime: owned
// by the generator (PolicyGenerated), replaced by every upgrade.
const generatedDir = "docs"

// templateSuffix marks files that are text/template sources. Other files
// under templates/ are copied verbatim (go.sum is one).
const templateSuffix = ".tmpl"

// Template directories that produce no file of their own in Render.
const (
	// partsDir holds {{define}} blocks shared by all templates.
	partsDir = "parts"
	// addedToolDir holds the files of a tool added to an existing project,
	// rendered by RenderTool; "TOOL" in their names is the tool's Go name.
	addedToolDir = "added-tool"
)

// TemplateData is what templates see as ".".
type TemplateData struct {
	Module           string // Go module path
	Name             string // server name shown to clients
	Description      string // one-line description
	Tools            []Tool // the tools, in the order given
	Binary           string // name of the binary `go build` writes
	Image            string // Binary reduced to a valid container image and volume name
	Slug             string // Name reduced to a-z 0-9 "-", for config keys
	GeneratorVersion string // version of the generator rendering the project
	Tool             Tool   // the tool being added (RenderTool only)
}

// Render returns every file of the project described by a, sorted by path:
//
//   - each file of templates (an FS rooted at the templates directory):
//     "*.tmpl" files are executed with TemplateData and lose the suffix,
//     others are copied verbatim; Go files are gofmt'd;
//   - each file of runtime (an FS whose top-level directories are the
//     runtime packages) under internal/, Go files rewritten by VendorGo;
//     "*_heavy_test.go" files (crash, fuzz, benchmarks) and
//     "*_repo_test.go" files (checks of this repository's docs) stay behind;
//   - the manifest and the merge base (PolicyState).
//
// Render is pure: the same arguments always give the same bytes.
func Render(templates, runtime fs.FS, a Answers, version string) ([]File, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	data := newTemplateData(a, version)
	a.Tools = slices.Clone(a.Tools) // the manifest must not alias the caller's slice

	files, err := renderTemplates(templates, ".", data, func(p string) (string, bool) {
		if strings.HasPrefix(p, partsDir+"/") || strings.HasPrefix(p, addedToolDir+"/") {
			return "", false
		}
		return p, true
	})
	if err != nil {
		return nil, err
	}
	rt, err := renderRuntime(runtime, a.Module)
	if err != nil {
		return nil, err
	}
	files = append(files, rt...)
	slices.SortFunc(files, func(x, y File) int { return strings.Compare(x.Path, y.Path) })
	for i := 1; i < len(files); i++ {
		if files[i].Path == files[i-1].Path {
			return nil, fmt.Errorf("render: two sources for %s", files[i].Path)
		}
	}

	manifest, err := newManifest(a, version, files)
	if err != nil {
		return nil, err
	}
	files = append(files,
		File{Path: BasePath, Data: newBase(a, version, files), Mode: 0o644, Policy: PolicyState},
		File{Path: ManifestPath, Data: manifest, Mode: 0o644, Policy: PolicyState},
	)
	return files, nil
}

func newTemplateData(a Answers, version string) TemplateData {
	tools, _ := ToolList(a.Tools) // validated by the caller
	return TemplateData{
		Module:           a.Module,
		Name:             a.Name,
		Description:      a.Description,
		Tools:            tools,
		Binary:           binaryName(a.Module),
		Image:            slug(binaryName(a.Module)),
		Slug:             slug(a.Name),
		GeneratorVersion: version,
	}
}

// RenderTool returns the files of a tool added to the existing project
// described by a (whose Tools need not list it yet): tools_<stem>.go and
// tools_<stem>_test.go (see ToolFileStem), with PolicyUser, rendered from templates'
// added-tool directory. The caller also re-renders main.go with the tool
// in a.Tools, so that tools() lists it.
func RenderTool(templates fs.FS, a Answers, tool string, version string) ([]File, error) {
	if len(a.Tools) == 0 {
		a.Tools = []string{tool} // Validate wants at least one
	}
	if err := a.Validate(); err != nil {
		return nil, err
	}
	t, err := toolFor(tool)
	if err != nil {
		return nil, err
	}
	data := newTemplateData(a, version)
	data.Tool = t
	files, err := renderTemplates(templates, addedToolDir, data, func(p string) (string, bool) {
		return strings.ReplaceAll(path.Base(p), "TOOL", ToolFileStem(t)), true
	})
	if err != nil {
		return nil, err
	}
	for i := range files {
		files[i].Policy = PolicyUser
	}
	return files, nil
}

// ToolFileStem returns what RenderTool puts for TOOL in the names
// tools_TOOL.go and tools_TOOL_test.go: the tool's Go name, followed by
// "_tool" where the go command would read the name into the file name
// (tools_test.go would be a test file, tools_linux.go built on Linux only),
// as it would for a tool named "test", "Test", "linux" or "arm64".
func ToolFileStem(t Tool) string {
	name := "tools_" + t.Go + ".go"
	if strings.HasSuffix(name, "_test.go") || osArchFile(name) {
		return t.Go + "_tool"
	}
	return t.Go
}

// osArchFile reports whether the go command builds the Go file name only
// for some GOOS or GOARCH, by its name (name_GOOS.go, name_GOARCH.go).
func osArchFile(name string) bool {
	// No GOOS or GOARCH is "none", so a file constrained by its name
	// never matches; OpenFile supplies a file without build constraints.
	ctx := build.Context{GOOS: "none", GOARCH: "none", Compiler: "gc",
		OpenFile: func(string) (io.ReadCloser, error) {
			return io.NopCloser(strings.NewReader("package main\n")), nil
		},
	}
	match, err := ctx.MatchFile(".", name)
	return err == nil && !match
}

// renderTemplates renders the files under dir of fsys, each to the path
// out(p) returns (p without templateSuffix), or to nothing when out says
// false. Every template can use the {{define}} blocks of partsDir.
func renderTemplates(fsys fs.FS, dir string, data TemplateData, out func(string) (string, bool)) ([]File, error) {
	parts := template.New("").Option("missingkey=error").Funcs(funcs)
	if matches, err := fs.Glob(fsys, partsDir+"/*"+templateSuffix); err != nil {
		return nil, err
	} else {
		for _, m := range matches {
			src, err := fs.ReadFile(fsys, m)
			if err != nil {
				return nil, err
			}
			if _, err := parts.New(m).Parse(string(src)); err != nil {
				return nil, fmt.Errorf("template %s: %w", m, err)
			}
		}
	}

	var files []File
	err := fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		name, ok := out(strings.TrimSuffix(p, templateSuffix))
		if !ok {
			return nil
		}
		src, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		if strings.HasSuffix(p, templateSuffix) {
			t, err := parts.Clone()
			if err == nil {
				_, err = t.New(p).Parse(string(src))
			}
			if err != nil {
				return fmt.Errorf("template %s: %w", p, err)
			}
			var buf bytes.Buffer
			if err := t.ExecuteTemplate(&buf, p, data); err != nil {
				return fmt.Errorf("template %s: %w", p, err)
			}
			src = buf.Bytes()
		}
		if path.Ext(name) == ".go" {
			formatted, err := format.Source(src)
			if err != nil {
				return fmt.Errorf("template %s renders invalid Go: %w\n%s", p, err, numbered(src))
			}
			src = formatted
		}
		if err := checkBaseSafe(name, src); err != nil {
			return err
		}
		policy := PolicyMerge
		switch {
		case userFiles[name]:
			policy = PolicyUser
		case strings.HasPrefix(name, generatedDir+"/"):
			policy = PolicyGenerated
		}
		files = append(files, File{Path: name, Data: src, Mode: 0o644, Policy: policy})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("render templates: %w", err)
	}
	return files, nil
}

// staysBehind reports whether the runtime file p is not vendored: heavy
// tests (crash, fuzz, benchmarks: "*_heavy_test.go") and tests of this
// repository's own files, such as the generated docs checked against the
// runtime's constants ("*_repo_test.go").
func staysBehind(p string) bool {
	return strings.HasSuffix(p, "_heavy_test.go") || strings.HasSuffix(p, "_repo_test.go")
}

func renderRuntime(fsys fs.FS, mod string) ([]File, error) {
	var files []File
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if staysBehind(p) {
			return nil
		}
		if !strings.Contains(p, "/") {
			return fmt.Errorf("%s: runtime files must be inside a package directory", p)
		}
		src, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		if path.Ext(p) == ".go" {
			if src, err = VendorGo(p, src, mod); err != nil {
				return err
			}
		}
		files = append(files, File{Path: "internal/" + p, Data: src, Mode: 0o644, Policy: PolicyRuntime})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("vendor runtime: %w", err)
	}
	return files, nil
}

var txtarMarker = regexp.MustCompile(`(?m)^-- .* --$`)

// checkBaseSafe makes sure a merge or user file survives a round trip
// through the txtar merge base unchanged.
func checkBaseSafe(name string, data []byte) error {
	if len(data) > 0 && data[len(data)-1] != '\n' {
		return fmt.Errorf("template for %s: output must end with a newline", name)
	}
	if txtarMarker.Match(data) {
		return fmt.Errorf("template for %s: output contains a line that looks like a txtar file marker", name)
	}
	return nil
}

// binaryName is the file name `go build` gives the main package at the root
// of module mod: the last path element, or the one before it when the last
// is a major version suffix such as v2 (cmd/go's DefaultExecName).
func binaryName(mod string) string {
	dir, last := path.Split(mod)
	if dir != "" && isVersionElement(last) {
		_, last = path.Split(path.Dir(mod))
	}
	return last
}

func isVersionElement(s string) bool {
	if len(s) < 2 || s[0] != 'v' || s[1] == '0' || s[1] == '1' && len(s) == 2 {
		return false
	}
	_, err := strconv.Atoi(s[1:])
	return err == nil
}

// slug reduces s to lower-case letters, digits and single dashes.
func slug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if 'a' <= r && r <= 'z' || '0' <= r && r <= '9' {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
		} else {
			dash = true
		}
	}
	if b.Len() == 0 {
		return "mcp-server"
	}
	return b.String()
}

func numbered(src []byte) string {
	var b strings.Builder
	for i, line := range strings.Split(string(src), "\n") {
		fmt.Fprintf(&b, "%4d  %s\n", i+1, line)
	}
	return b.String()
}
