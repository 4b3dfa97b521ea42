package createmcpserver_test

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"
)

// TestGeneratedReadmeInspector checks the MCP Inspector steps of a
// generated README against what interop/inspector_test.go does: the
// version it installs (interop/node/package.json), every flag of the
// commands, and the labels of the UI the test clicks.
func TestGeneratedReadmeInspector(t *testing.T) {
	readme := renderedFile(t, "README.md")
	_, section, ok := strings.Cut(readme, "**MCP Inspector**")
	if !ok {
		t.Fatal("the generated README has no MCP Inspector steps")
	}
	section, _, _ = strings.Cut(section, "**stdio**")

	var pkg struct{ Dependencies map[string]string }
	data, err := os.ReadFile("interop/node/package.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &pkg); err != nil {
		t.Fatal(err)
	}
	version := pkg.Dependencies["@modelcontextprotocol/inspector"]
	if version == "" {
		t.Fatal("interop/node/package.json does not pin @modelcontextprotocol/inspector")
	}
	commands := regexp.MustCompile(`npx (@modelcontextprotocol/inspector@\S+)`).FindAllStringSubmatch(section, -1)
	if len(commands) != 2 {
		t.Fatalf("want two npx commands (web UI and --cli) in the Inspector steps, got %d", len(commands))
	}
	for _, c := range commands {
		if c[1] != "@modelcontextprotocol/inspector@"+version {
			t.Errorf("the README runs %s; interop/node/package.json pins %s", c[1], version)
		}
	}
	if !strings.Contains(readme, "MCP Inspector "+version) {
		t.Errorf("the README's verified clients do not name MCP Inspector %s", version)
	}

	test, err := os.ReadFile("interop/inspector_test.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range regexp.MustCompile(`(?m)\s(--[a-z-]+)`).FindAllStringSubmatch(section, -1) {
		if f[1] == "--allowed-origins" {
			continue // named as not needed
		}
		if !strings.Contains(string(test), `"`+f[1]+`"`) {
			t.Errorf("the README passes %s to the Inspector; interop/inspector_test.go does not", f[1])
		}
	}
	for _, label := range []string{"Connect or disconnect", "Connected", "Tools", "Execute Tool", "MCP_INSPECTOR_API_TOKEN"} {
		if !strings.Contains(section, label) {
			t.Errorf("the README's Inspector steps do not name %q", label)
		}
		if !strings.Contains(string(test), label) {
			t.Errorf("the README's Inspector steps name %q, which interop/inspector_test.go never sees", label)
		}
	}
}

// TestGeneratedReadmeDependencies checks the generated README's table of
// dependencies against the direct requirements of templates/go.mod.tmpl.
func TestGeneratedReadmeDependencies(t *testing.T) {
	readme := renderedFile(t, "README.md")
	mod, err := modfile.Parse("go.mod", []byte(renderedFile(t, "go.mod")), nil)
	if err != nil {
		t.Fatal(err)
	}
	var direct []string
	for _, r := range mod.Require {
		if !r.Indirect {
			direct = append(direct, r.Mod.Path)
		}
	}
	_, table, ok := strings.Cut(readme, "| module | why |")
	if !ok {
		t.Fatal("the generated README has no | module | why | table")
	}
	var listed []string
	for _, line := range strings.Split(table, "\n")[2:] {
		m := regexp.MustCompile("^\\| `([^`]+)` \\| (.*) \\|$").FindStringSubmatch(line)
		if m == nil {
			break
		}
		listed = append(listed, m[1])
		if len(strings.TrimSpace(m[2])) < 10 {
			t.Errorf("the README gives no reason for %s", m[1])
		}
	}
	slices.Sort(direct)
	slices.Sort(listed)
	if !slices.Equal(direct, listed) {
		t.Errorf("the generated README's dependencies\n%q\ndiffer from go.mod's direct requirements\n%q", listed, direct)
	}
}

// TestLicenses: the repository and every generated project carry an MIT
// LICENSE; the project's names its authors after the server and is the
// user's (never replaced by an upgrade).
func TestLicenses(t *testing.T) {
	repo, err := os.ReadFile("LICENSE")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(repo), "MIT License\n\nCopyright (c) 2026 The create-mcp-server authors\n") {
		t.Errorf("LICENSE does not start with the MIT title and the authors' copyright:\n%.200s", repo)
	}
	project := renderedFile(t, "LICENSE")
	if !strings.HasPrefix(project, "MIT License\n\nCopyright (c) The weather authors\n") {
		t.Errorf("a generated LICENSE starts\n%.200s", project)
	}
	_, mit, _ := strings.Cut(string(repo), "Permission is hereby granted")
	if !strings.Contains(project, mit) {
		t.Error("a generated LICENSE does not carry the MIT text of the repository's")
	}
}
