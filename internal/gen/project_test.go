package gen

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	createmcpserver "github.com/mcpgen/create-mcp-server"
)

var updateGoSum = flag.Bool("update-gosum", false, "refresh templates/go.sum and templates/go.mod.tmpl with `go mod tidy` in a generated project")

// goEnv is the environment of the go commands run in generated projects:
// the caller's (sharing its module and build caches), outside any workspace.
func goEnv() []string {
	return append(os.Environ(), "GOWORK=off", "GOFLAGS=-buildvcs=false")
}

func goCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	return goCmdEnv(t, dir, nil, args...)
}

// goCmdEnv is goCmd with extra environment variables.
func goCmdEnv(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	cmd.Env = append(goEnv(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s in %s: %v\n%s%s", strings.Join(args, " "), dir, err, out, failedTests(string(out)))
	}
	return string(out)
}

// failedTests repeats, after the whole output of a failed go test, each
// "--- FAIL" line with the lines indented under it, so that a log cut in
// the middle (as CI's summaries are) still shows which test failed and why.
func failedTests(out string) string {
	var b strings.Builder
	lines := strings.Split(out, "\n")
	for i, line := range lines {
		if !strings.Contains(line, "--- FAIL") && !strings.HasPrefix(line, "panic:") {
			continue
		}
		b.WriteString(line + "\n")
		for j := i + 1; j < len(lines) && j <= i+20 && strings.HasPrefix(lines[j], "    ") && !strings.Contains(lines[j], "--- "); j++ {
			b.WriteString(lines[j] + "\n")
		}
	}
	if b.Len() == 0 {
		return ""
	}
	return "\nfailed tests, repeated from the output above:\n" + b.String()
}

func writeProject(t *testing.T, a Answers) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "project")
	if err := Write(t.Context(), dir, render(t, a), false); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestGeneratedProjects generates each golden answer set and checks, in the
// project, what a user would run first: gofmt, vet, a read-only build, the
// project's tests (the OAuth flow, and in the first project the vendored
// runtime's tests), and that go mod tidy has nothing to change.
func TestGeneratedProjects(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and tests generated projects (about a minute); skipped with -short")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	for i, set := range goldenSets {
		t.Run(set.name, func(t *testing.T) {
			dir := writeProject(t, set.answers)
			if out := goCmd(t, dir, "gofmt", "-l", "."); out != "" {
				t.Errorf("gofmt -l lists files:\n%s", out)
			}
			goCmd(t, dir, "go", "vet", "./...")
			goCmd(t, dir, "go", "build", "-mod=readonly", "./...")
			if i == 0 {
				// The Dockerfile's static build: modernc.org/sqlite needs
				// no cgo. (Once is enough: it does not depend on the answers.)
				goCmdEnv(t, dir, []string{"CGO_ENABLED=0"}, "go", "build", "-mod=readonly", "-o", os.DevNull, ".")
			}
			// The packages under internal/ are the runtime, vendored the
			// same way whatever the answers (only their import paths
			// differ): their tests run in the first project. Every
			// project runs its own root package's tests, which depend on
			// the answers (the tools, the OAuth flow against main.go).
			pkgs := "."
			if i == 0 {
				pkgs = "./..."
			}
			goCmd(t, dir, "go", "test", "-count=1", pkgs)

			mod, _ := os.ReadFile(filepath.Join(dir, "go.mod"))
			sum, _ := os.ReadFile(filepath.Join(dir, "go.sum"))
			goCmd(t, dir, "go", "mod", "tidy")
			mod2, _ := os.ReadFile(filepath.Join(dir, "go.mod"))
			sum2, _ := os.ReadFile(filepath.Join(dir, "go.sum"))
			if !bytes.Equal(mod, mod2) || !bytes.Equal(sum, sum2) {
				t.Errorf("go mod tidy changed go.mod or go.sum; run go test ./internal/gen -run TestUpdateGoSum -update-gosum\ngo.mod after tidy:\n%s", mod2)
			}

			// A tool added later (RenderTool, plus main.go listing it)
			// builds and passes its test beside the initial ones.
			addTool(t, dir, set.answers, "added.tool")
			goCmd(t, dir, "go", "vet", ".")
			goCmd(t, dir, "go", "test", "-count=1", "-run", "TestTools|TestAddedToolTool", ".")
		})
	}
}

// addTool writes the files RenderTool returns for tool into the project in
// dir and replaces main.go with one whose tools() lists it, as upgrade does.
func addTool(t *testing.T, dir string, a Answers, tool string) {
	t.Helper()
	files, err := RenderTool(createmcpserver.Templates(), a, tool, Version)
	if err != nil {
		t.Fatal(err)
	}
	a.Tools = append(slices.Clone(a.Tools), tool)
	for _, f := range render(t, a) {
		if f.Path == "main.go" {
			files = append(files, f)
		}
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.Path), f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

//go:generate go test -run TestUpdateGoSum -update-gosum .

// TestUpdateGoSum, with -update-gosum, refreshes templates/go.sum and the
// requirements of templates/go.mod.tmpl from `go mod tidy` in a generated
// project. Run it after changing the runtime's or the templates' imports
// or this repository's pinned versions, then run -update for the goldens.
func TestUpdateGoSum(t *testing.T) {
	if !*updateGoSum {
		t.Skip("run with -update-gosum")
	}
	a := goldenSets[0].answers
	dir := writeProject(t, a)
	goCmd(t, dir, "go", "mod", "tidy")
	mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	sum, err := os.ReadFile(filepath.Join(dir, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	modLine := regexp.MustCompile(`(?m)^module .*$`)
	tmpl := modLine.ReplaceAll(mod, []byte("module {{.Module}}"))
	if err := os.WriteFile("../../templates/go.mod.tmpl", tmpl, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("../../templates/go.sum", sum, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("updated templates/go.mod.tmpl and templates/go.sum; now run go test ./internal/gen -update")
}

func TestFailedTests(t *testing.T) {
	out := "ok  \tm/a\t1s\n--- FAIL: TestX (1.00s)\n    x_test.go:12: got 1, want 2\n    --- FAIL: TestX/sub (0.00s)\n        x_test.go:20: boom\n2026/12/02 INFO noise\nFAIL\n"
	got := failedTests(out)
	for _, want := range []string{"--- FAIL: TestX (1.00s)\n    x_test.go:12: got 1, want 2\n", "--- FAIL: TestX/sub (0.00s)\n        x_test.go:20: boom\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("failedTests lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "noise") {
		t.Errorf("failedTests repeats unrelated lines:\n%s", got)
	}
	if failedTests("ok  \tm/a\t1s\n") != "" {
		t.Error("failedTests of a passing run is not empty")
	}
}
