package gen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"math/rand/v2"
	"os"
	"os/exec"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/tools/go/analysis"
	"golang.org/x/tools/go/analysis/passes/buildtag"
)

// FuzzRenderAnswers checks the promise behind the answers: whatever
// Validate accepts renders (no answer makes a template fail), every Go file
// is gofmt-clean and passes go vet's syntax checks, Go string literals hold
// the name and description exactly, and the README shows them as they are.
// TestRandomProjectsBuild builds a few such projects for real.
func FuzzRenderAnswers(f *testing.F) {
	for i, s := range trickyText {
		f.Add("example.com/weather", s, trickyText[(i+1)%len(trickyText)])
	}
	f.Add("weather", "Weather", "")
	f.Add("github.com/you/web-tools/v2", "-- x --", "-- x --")
	f.Add("example.com/a~b+c_d", "a", "b")
	f.Fuzz(func(t *testing.T, module, name, description string) {
		a := Answers{Module: module, Name: name, Description: description, Tools: []string{"echo", "fetch-page"}}
		if a.Validate() != nil {
			return
		}
		checkRendered(t, a, render(t, a))
	})
}

// checkRendered checks the files rendered for a, as FuzzRenderAnswers says.
func checkRendered(t testing.TB, a Answers, files []File) {
	t.Helper()
	byPath := map[string][]byte{}
	for _, f := range files {
		byPath[f.Path] = f.Data
		if f.Policy != PolicyRuntime && path.Ext(f.Path) == ".go" {
			checkGoFile(t, f.Path, f.Data)
		}
	}

	// Go string literals: the name and description as they are.
	literals := stringLiterals(t, "main.go", byPath["main.go"])
	for _, want := range []string{a.Name, a.Description} {
		if want != "" && !slices.Contains(literals, want) {
			t.Errorf("main.go has no string literal %q; it has %q", want, literals)
		}
	}

	// The README shows both as text, and its JSON examples parse.
	readme := renderMarkdown(t, string(byPath["README.md"]))
	if want := "<h1>" + htmlText(a.Name) + "</h1>"; !strings.Contains(readme, want) {
		t.Errorf("README.md does not show the name as its title %q:\n%.300s", want, readme)
	}
	if a.Description != "" {
		if want := "<p>" + htmlText(a.Description) + "</p>"; !strings.Contains(readme, want) {
			t.Errorf("README.md does not show the description as a paragraph %q:\n%.500s", want, readme)
		}
	}
	for _, block := range jsonBlock.FindAllSubmatch(byPath["README.md"], -1) {
		if !json.Valid(block[1]) {
			t.Errorf("README.md: invalid JSON example:\n%s", block[1])
		}
	}

	// Container image and volume names follow Docker's rules.
	for _, m := range dockerTag.FindAllSubmatch(byPath["Dockerfile"], -1) {
		if !dockerName.Match(m[1]) {
			t.Errorf("Dockerfile: %q is not a valid image or volume name", m[1])
		}
	}

	// The manifest records the answers exactly; the merge base keeps every
	// file it holds byte for byte.
	m, err := ParseManifest(byPath[ManifestPath])
	if err != nil {
		t.Fatal(err)
	}
	if m.Answers.Module != a.Module || m.Answers.Name != a.Name || m.Answers.Description != a.Description {
		t.Errorf("manifest answers = %+v, want %+v", m.Answers, a)
	}
	for p, data := range ParseBase(byPath[BasePath]) {
		if !bytes.Equal(data, byPath[p]) {
			t.Errorf("merge base changes %s", p)
		}
	}
}

var (
	jsonBlock  = regexp.MustCompile("(?s)```json\n(.*?)```")
	dockerTag  = regexp.MustCompile(`(?:-t|-v) ([^ :\n]+)`)
	dockerName = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:-data)?$`)
)

// htmlText is s as goldmark writes text: &, <, > and " escaped.
func htmlText(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}

// checkGoFile checks a generated Go file: gofmt leaves it as it is, and go
// vet's build-tag check (the vet check that reads comments, where answers
// land unquoted) reports nothing.
func checkGoFile(t testing.TB, name string, src []byte) {
	t.Helper()
	formatted, err := format.Source(src)
	if err != nil {
		t.Fatalf("%s does not parse: %v", name, err)
	}
	if !bytes.Equal(formatted, src) {
		t.Errorf("%s is not gofmt-clean", name)
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	pass := &analysis.Pass{
		Analyzer: buildtag.Analyzer,
		Fset:     fset,
		Files:    []*ast.File{f},
		Report: func(d analysis.Diagnostic) {
			t.Errorf("%s: go vet: %s", fset.Position(d.Pos), d.Message)
		},
	}
	if _, err := buildtag.Analyzer.Run(pass); err != nil {
		t.Fatal(err)
	}
}

// stringLiterals returns the values of the string literals of a Go file.
func stringLiterals(t testing.TB, name string, src []byte) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), name, src, 0)
	if err != nil {
		t.Fatal(err)
	}
	var values []string
	ast.Inspect(f, func(n ast.Node) bool {
		if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
			if v, err := strconv.Unquote(lit.Value); err == nil {
				values = append(values, v)
			}
		}
		return true
	})
	return values
}

// TestRandomProjectsBuild writes a few projects with random tricky answers
// and checks them as their user would: gofmt, go vet, a build and the tool
// tests. (FuzzRenderAnswers checks many more without building them.)
func TestRandomProjectsBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds generated projects; skipped with -short")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	r := rand.New(rand.NewPCG(1, 2))
	pick := func() string {
		var parts []string
		for range 1 + r.IntN(3) {
			parts = append(parts, trickyText[r.IntN(len(trickyText))])
		}
		return strings.Join(parts, " ")
	}
	for i, module := range []string{"example.com/a~b+c_d/v3", "timer"} {
		a := Answers{Module: module, Name: `My "best" \b {{.Name}} %s`, Description: pick(), Tools: []string{"echo", "x.y-z"}}
		if i > 0 {
			for a.Name = pick(); len([]rune(a.Name)) > 100; a.Name = pick() {
			}
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			if err := a.Validate(); err != nil {
				t.Fatal(err)
			}
			t.Logf("answers: %+q", a)
			checkRendered(t, a, render(t, a))
			dir := writeProject(t, a)
			if out := goCmd(t, dir, "gofmt", "-l", "."); out != "" {
				t.Errorf("gofmt -l lists files:\n%s", out)
			}
			goCmd(t, dir, "go", "vet", "./...")
			goCmd(t, dir, "go", "build", "-o", os.DevNull, ".")
			goCmd(t, dir, "go", "test", "-count=1", "-run", "TestTools", ".")
		})
	}
}
