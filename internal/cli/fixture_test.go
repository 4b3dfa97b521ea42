package cli

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"

	createmcpserver "github.com/mcpgen/create-mcp-server"
	"github.com/mcpgen/create-mcp-server/internal/gen"
	"github.com/mcpgen/create-mcp-server/internal/upgrade"
)

// v010Project is a complete project written by create-mcp-server v0.1.0,
// the first release (see the comment at the top of the file).
const v010Project = "../../testdata/upgrade/v0.1.0/weather.txtar"

// writeFixture writes the project archived in the txtar file into a new
// directory and returns the directory. The merge base, itself a txtar, is
// stored quoted in the archive and unquoted here.
func writeFixture(t *testing.T, file string) string {
	t.Helper()
	ar, err := txtar.ParseFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "weather")
	for _, f := range ar.Files {
		data := f.Data
		if f.Name == gen.BasePath {
			if data, err = txtar.Unquote(data); err != nil {
				t.Fatalf("%s: %s: %v", file, f.Name, err)
			}
		}
		p := filepath.Join(dir, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestV010Fixture checks that the v0.1.0 project is intact: every file its
// manifest lists is there with the hash it was generated with, and the
// merge base holds what the manifest says. An upgrade test on a damaged
// fixture would test nothing.
func TestV010Fixture(t *testing.T) {
	dir := writeFixture(t, v010Project)
	m, err := gen.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.GeneratorVersion != "0.1.0" {
		t.Errorf("generator_version = %q, want 0.1.0", m.GeneratorVersion)
	}
	base, err := gen.ReadBase(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range m.Files {
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f.Path)))
		if err != nil {
			t.Errorf("%s: %v", f.Path, err)
			continue
		}
		if gen.Hash(data) != f.SHA256 {
			t.Errorf("%s differs from what v0.1.0 generated", f.Path)
		}
		if f.Policy == gen.PolicyMerge || f.Policy == gen.PolicyUser {
			if b, ok := base[f.Path]; !ok || gen.Hash(b) != f.SHA256 {
				t.Errorf("merge base lacks %s as generated", f.Path)
			}
		}
	}
	if len(m.Files) != 48 {
		t.Errorf("manifest lists %d files, want the 48 of v0.1.0", len(m.Files))
	}
}

// TestUpgradeFromV010 upgrades the v0.1.0 project after the edits a user
// makes: a new version number, a tool added by hand the documented way
// (a file of its own, a line in tools(), a case in TestTools), a helper
// function in main.go the tool calls, and an edit of a plumbing function.
// The tools and edits are kept, the plumbing is replaced, the edited
// plumbing is reported with the old main.go kept beside the new one, and
// the project builds and passes its tests.
func TestUpgradeFromV010(t *testing.T) {
	templates, rt := createmcpserver.Templates(), createmcpserver.Runtime()
	files, err := gen.Render(templates, rt, gen.Defaults("weather"), gen.Version)
	if err != nil {
		t.Fatal(err)
	}
	if upgrade.IsPlumbingMain(fileData(files, "main.go")) {
		t.Skip("this generator's main.go still holds the command line: nothing to migrate")
	}
	dir := writeFixture(t, v010Project)
	editFile(t, dir, "main.go", `serverVersion     = "0.1.0"`, `serverVersion     = "1.4.0"`)
	addToolByHand(t, dir, "mine")
	editFile(t, dir, "tools_mine.go", "mcp.NewToolResultText(args.Text + \"!\")", "mcp.NewToolResultText(shout(args.Text))")
	f, err := os.OpenFile(filepath.Join(dir, "main.go"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("\n// shout makes text loud.\nfunc shout(s string) string { return strings.ToUpper(s) + \"!\" }\n")
	f.Close()
	editFile(t, dir, "tools_test.go", "\t\t{name: \"forecast echoes\"", "\t\t{name: \"mine shouts\", tool: \"mine\", args: map[string]any{\"text\": \"hi\"}, want: \"HI!\"},\n\t\t{name: \"forecast echoes\"")
	editFile(t, dir, "main.go", `env("MCP_ADDR", "127.0.0.1:8080")`, `env("MCP_ADDR", "127.0.0.1:9090")`)
	// Code of the user's that calls a function of the old main.go's plumbing.
	key := "package main\n\n// region is where the weather comes from.\nfunc region() string { return envOr(\"WEATHER_REGION\", \"eu\") }\n"
	if err := os.WriteFile(filepath.Join(dir, "tools_key.go"), []byte(key), 0o644); err != nil {
		t.Fatal(err)
	}
	oldMain := readFile(t, dir, "main.go")

	r := runUpgrade(t, dir, templates, rt, gen.Version)
	if r.exit != 0 {
		t.Fatalf("upgrade: exit %d\n%s%s", r.exit, r.stdout, r.stderr)
	}
	for _, l := range []string{"merged main.go", "WARNING: main.go as it was is kept at main.go.user-edit (not compiled)",
		"kept tools.go (yours)", "kept tools_test.go (yours)", "updated auth_test.go",
		// The deployment files: the untouched Dockerfile is replaced, the
		// files 0.1.0 did not have are added.
		"updated Dockerfile", "added .dockerignore", "added compose.yaml", "added deploy/Caddyfile", "added deploy/nginx.conf"} {
		if !slices.Contains(r.lines(), l) {
			t.Errorf("output lacks the line %q:\n%s", l, r.stdout)
		}
	}
	if !strings.Contains(r.stdout, "WARNING: main.go: you changed serveConfig, which main.go no longer has") ||
		!strings.Contains(r.stdout, "mcpserver.Options.Flags") {
		t.Errorf("no warning naming serveConfig and the extension point:\n%s", r.stdout)
	}
	for _, name := range []string{"Dockerfile", ".dockerignore", "compose.yaml", "deploy/Caddyfile", "deploy/nginx.conf"} {
		if got := readFile(t, dir, name); got != string(fileData(files, name)) {
			t.Errorf("%s is not this version's:\n%s", name, got)
		}
	}
	mustContain(t, dir, "main.go", `"1.4.0"`, "\t\tforecastTool(),\n\t\tmineTool(),\n\t\tfetchPageTool(),\n", "func shout(s string) string",
		"mcpserver.Main(", "func newMCPServer()", "func envOr(key, def string) string {")
	if got := readFile(t, dir, "main.go.user-edit"); got != oldMain {
		t.Error("main.go.user-edit is not the old main.go")
	}
	if n := strings.Count(readFile(t, dir, "main.go"), "\n"); n > 80 {
		t.Errorf("main.go has %d lines", n)
	}
	buildAndTest(t, dir)

	again := runUpgrade(t, dir, templates, rt, gen.Version)
	if again.exit != 0 || strings.Contains(again.stdout, "WARNING") {
		t.Errorf("second upgrade: exit %d\n%s%s", again.exit, again.stdout, again.stderr)
	}
}
