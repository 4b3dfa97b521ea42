package createmcpserver_test

import (
	"bytes"
	"flag"
	"fmt"
	"go/scanner"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	createmcpserver "github.com/mcpgen/create-mcp-server"
	"github.com/mcpgen/create-mcp-server/internal/gen"
)

// Documents are found by name: anything that looks like the name or path
// of a Markdown file, and the targets of relative Markdown links. URLs are
// left alone.
var (
	mdName   = regexp.MustCompile(`[\w.-]*[\w-]\.md\b(?:#[\w-]*)?|[\w.-]+(?:/[\w.-]+)+\.md\b`)
	mdLink   = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	url      = regexp.MustCompile(`[a-z][a-z0-9+.-]*://\S+`)
	goEscape = regexp.MustCompile(`\\[abfnrtv]`)
)

// docRefs returns the documents data, the content of the file name,
// refers to, as written, with the line of each. Links count in Markdown
// files only, and in test scripts (txtar) only the comments count: their
// commands name the files of the projects they create.
func docRefs(name string, data []byte) map[string]int {
	refs := map[string]int{}
	if path.Ext(name) == ".go" {
		data = goProse(name, data)
	}
	for n, line := range strings.Split(string(data), "\n") {
		if path.Ext(name) == ".txtar" && !strings.HasPrefix(line, "#") {
			continue
		}
		line = url.ReplaceAllString(line, "")
		line = goEscape.ReplaceAllString(line, " ") // "\nREADME.md" names README.md
		if path.Ext(name) == ".md" {
			for _, m := range mdLink.FindAllStringSubmatch(line, -1) {
				if !strings.HasPrefix(m[1], "#") && !strings.HasPrefix(m[1], "mailto:") {
					refs[m[1]] = n + 1
				}
			}
		}
		for _, m := range mdName.FindAllString(line, -1) {
			refs[m] = n + 1
		}
	}
	return refs
}

// goProse returns the comments of a Go file, and its string literals unless
// it is a test (whose strings are test data), at their places: every other
// byte but newlines becomes a space.
func goProse(name string, src []byte) []byte {
	out := bytes.Map(func(r rune) rune {
		if r == '\n' {
			return r
		}
		return ' '
	}, src)
	if len(out) != len(src) {
		return src // not UTF-8: keep it all
	}
	fset := token.NewFileSet()
	file := fset.AddFile(name, -1, len(src))
	var sc scanner.Scanner
	sc.Init(file, src, nil, scanner.ScanComments)
	for {
		pos, tok, lit := sc.Scan()
		if tok == token.EOF {
			break
		}
		if tok == token.COMMENT || tok == token.STRING && !strings.HasSuffix(name, "_test.go") {
			off := file.Offset(pos)
			copy(out[off:], lit)
		}
	}
	return out
}

// missingDocs reports the references of the file at name (slash path) to
// documents that exist neither beside it nor at the root of the tree
// exists looks into.
func missingDocs(name string, data []byte, exists func(string) bool) []string {
	var missing []string
	for ref, line := range docRefs(name, data) {
		target, _, _ := strings.Cut(ref, "#")
		target = strings.TrimPrefix(target, "./")
		if target == "" {
			continue
		}
		if !exists(path.Join(path.Dir(name), target)) && !exists(path.Clean(target)) {
			missing = append(missing, fmt.Sprintf("%s:%d refers to %s, which is not there", name, line, ref))
		}
	}
	return missing
}

// TestNoMissingDocs checks that neither this repository nor a generated
// project refers to a document it does not contain: every Markdown file
// name mentioned in any file (comments included) and every relative link
// of a Markdown file must exist.
func TestNoMissingDocs(t *testing.T) {
	repo := map[string][]byte{}
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		p = filepath.ToSlash(p)
		switch {
		case d.IsDir() && (p == ".git" || d.Name() == "node_modules" || p == "tmp"):
			return fs.SkipDir
		case d.IsDir() && p == "testdata/upgrade":
			return fs.SkipDir // projects as old versions made them, frozen
		case d.IsDir() && p == "templates":
			return fs.SkipDir // checked as a generated project below
		case d.IsDir(), path.Base(p) == "go.sum", strings.HasSuffix(p, "package-lock.json"):
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if !bytes.ContainsRune(data, 0) {
			repo[p] = data
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	exists := func(p string) bool {
		// A generated project's document counts by its template:
		// docs/security.md is templates/docs/security.md.tmpl.
		for _, name := range []string{p, p + ".tmpl", "templates/" + p + ".tmpl"} {
			if _, err := os.Stat(filepath.FromSlash(name)); err == nil {
				return true
			}
		}
		return false
	}
	for name, data := range repo {
		for _, m := range missingDocs(name, data, exists) {
			t.Error(m)
		}
	}

	for _, a := range []gen.Answers{gen.Defaults("weather")} {
		files, err := gen.Render(createmcpserver.Templates(), createmcpserver.Runtime(), a, gen.Version)
		if err != nil {
			t.Fatal(err)
		}
		project := map[string]bool{}
		for _, f := range files {
			project[f.Path] = true
			for d := path.Dir(f.Path); d != "."; d = path.Dir(d) {
				project[d] = true
			}
		}
		for _, f := range files {
			for _, m := range missingDocs(f.Path, f.Data, func(p string) bool { return project[p] }) {
				t.Error("generated project: " + m)
			}
		}
	}
}

// TestDocRefs pins what counts as a reference to a document.
func TestDocRefs(t *testing.T) {
	for in, want := range map[string][]string{
		"see GUIDE.md and NOTES.md.":               {"GUIDE.md", "NOTES.md"},
		"section 1 of notes/threats.md (A1)":       {"notes/threats.md"},
		"[Adding a tool](#adding-a-tool)":          nil,
		"[upgrading](docs/upgrade.md#from-0.1)":    {"docs/upgrade.md#from-0.1", "docs/upgrade.md"},
		"https://example.com/README.md and go.mod": nil,
		"`README.md`, `*.md`":                      {"README.md"},
		`fmt.Print("done\nREADME.md has more")`:    {"README.md"},
	} {
		var got []string
		for ref := range docRefs("x.md", []byte(in)) {
			got = append(got, ref)
		}
		if len(got) != len(want) {
			t.Errorf("docRefs(%q) = %q, want %q", in, got, want)
			continue
		}
		for _, w := range want {
			if _, ok := docRefs("x.md", []byte(in))[w]; !ok {
				t.Errorf("docRefs(%q) = %q, want %q", in, got, want)
			}
		}
	}
}

// TestReadmeMatchesGenerator checks the numbers and lists of README.md
// that describe a generated project against what the generator renders
// for the README's example: every "N files", and the tree of a project.
func TestReadmeMatchesGenerator(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	a := gen.Answers{Module: "example.com/weather", Name: "weather", Description: "Weather forecasts for my assistant", Tools: []string{"forecast", "alerts"}}
	files, err := gen.Render(createmcpserver.Templates(), createmcpserver.Runtime(), a, gen.Version)
	if err != nil {
		t.Fatal(err)
	}
	if *updateReadme {
		readme = fileCount.ReplaceAll(readme, []byte(strconv.Itoa(len(files))+" files"))
		if err := os.WriteFile("README.md", readme, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	counts := fileCount.FindAllSubmatch(readme, -1)
	if len(counts) == 0 {
		t.Error(`README.md has no "N files"; update this test`)
	}
	for _, m := range counts {
		if n, _ := strconv.Atoi(string(m[1])); n != len(files) {
			t.Errorf("README.md says %q; the generator writes %d files (go test . -run TestReadme -update-readme fixes the counts)", m[0], len(files))
		}
	}

	// The tree: one entry per file at the top, per directory below it.
	tree := projectTree.FindSubmatch(readme)
	if tree == nil {
		t.Fatal("README.md has no tree of a project (a code block starting with weather/)")
	}
	listed := map[string]bool{}
	for _, line := range strings.Split(string(tree[1]), "\n") {
		if !strings.HasPrefix(line, "  ") || strings.HasPrefix(line, "   ") {
			continue // a continued description
		}
		names, _, _ := strings.Cut(strings.TrimSpace(line), "  ")
		for _, n := range strings.Split(names, ", ") {
			listed[strings.TrimSpace(n)] = true
		}
	}
	rendered := map[string]bool{}
	for _, f := range files {
		entry := f.Path
		if d := path.Dir(f.Path); d != "." {
			entry = d + "/"
		}
		if !rendered[entry] && !listed[entry] {
			t.Errorf("README.md's project tree lacks %s", entry)
		}
		rendered[entry] = true
	}
	for entry := range listed {
		if !rendered[entry] {
			t.Errorf("README.md's project tree lists %s, which the generator does not write", entry)
		}
	}
}

var updateReadme = flag.Bool("update-readme", false, "rewrite the file counts of README.md from the generator")

var (
	fileCount   = regexp.MustCompile(`\b(\d+) files\b`)
	projectTree = regexp.MustCompile("(?s)```\nweather/\n(.*?)```")
)

// TestGeneratedReadmeListsPackages checks that a generated README's
// project layout names every vendored package the project has.
func TestGeneratedReadmeListsPackages(t *testing.T) {
	files, err := gen.Render(createmcpserver.Templates(), createmcpserver.Runtime(), gen.Defaults("weather"), gen.Version)
	if err != nil {
		t.Fatal(err)
	}
	var readme []byte
	pkgs := map[string]bool{}
	for _, f := range files {
		if f.Path == "README.md" {
			readme = f.Data
		}
		if f.Policy == gen.PolicyRuntime {
			pkgs[path.Dir(f.Path)+"/"] = true
		}
	}
	for p := range pkgs {
		if !bytes.Contains(readme, []byte("`"+p+"`")) {
			t.Errorf("the generated README.md does not name %s (as `%s`) in its project layout", p, p)
		}
	}
}
