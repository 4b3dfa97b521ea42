package gen

import (
	"go/token"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestGoName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"echo", "echo"},
		{"fetch-page", "fetchPage"},
		{"search.v2", "searchV2"},
		{"add_numbers", "addNumbers"},
		{"Echo", "echo"},
		{"get__user--by.id", "getUserById"},
		{"-leading", "leading"},
		{"v2.search", "v2Search"},
		{"type", "type"},
		{"2fa", "2fa"},
		{"---", ""},
	}
	for _, tt := range tests {
		if got := GoName(tt.in); got != tt.want {
			t.Errorf("GoName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestToolList(t *testing.T) {
	tests := []struct {
		names   []string
		want    []Tool
		wantErr string
	}{
		{names: []string{"fetch-page", "search.v2", "add_numbers"}, want: []Tool{
			{"fetch-page", "fetchPage", "FetchPage"},
			{"search.v2", "searchV2", "SearchV2"},
			{"add_numbers", "addNumbers", "AddNumbers"},
		}},
		// Keywords and predeclared names are fine: Go names are only ever
		// used inside longer identifiers (typeTool, handleLen).
		{names: []string{"type", "len", "func", "nil"}, want: []Tool{
			{"type", "type", "Type"}, {"len", "len", "Len"}, {"func", "func", "Func"}, {"nil", "nil", "Nil"},
		}},
		{names: []string{strings.Repeat("a", 64)}, want: []Tool{{strings.Repeat("a", 64), strings.Repeat("a", 64), "A" + strings.Repeat("a", 63)}}},
		{names: nil, wantErr: "at least one tool name"},
		{names: []string{"a b"}, wantErr: `tool name "a b": only letters, digits, "_", "-" and "." are allowed`},
		{names: []string{"été"}, wantErr: `tool name "été": only letters, digits`},
		{names: []string{"a/b"}, wantErr: `tool name "a/b": only letters`},
		{names: []string{""}, wantErr: `tool name "": must be 1 to 64 characters long`},
		{names: []string{strings.Repeat("a", 65)}, wantErr: "must be 1 to 64 characters long"},
		{names: []string{"2fa"}, wantErr: `tool name "2fa": must start with a letter`},
		{names: []string{"_9"}, wantErr: `tool name "_9": must start with a letter (its Go name would be "9")`},
		{names: []string{"-._"}, wantErr: `tool name "-._": must contain a letter`},
		{names: []string{"echo", "echo"}, wantErr: `tool name "echo": given twice`},
		{names: []string{"fetch-page", "fetch_page"}, wantErr: `tool names "fetch-page" and "fetch_page": both become the Go name "fetchPage"`},
		{names: []string{"Echo", "echo"}, wantErr: `both become the Go name "echo"`},
		{names: []string{"handle", "args"}, wantErr: `tool names "handle" and "args": both need the Go identifier handleArgs; rename one`},
	}
	for _, tt := range tests {
		got, err := ToolList(tt.names)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ToolList(%q) error = %v, want it to contain %q", tt.names, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("ToolList(%q) = %v, %v; want %v", tt.names, got, err, tt.want)
		}
	}
}

func TestValidate(t *testing.T) {
	good := Answers{Module: "example.com/weather", Name: "Weather", Description: "Forecasts.", Tools: []string{"forecast"}}
	tests := []struct {
		name    string
		edit    func(*Answers)
		wantErr string
	}{
		{"good", func(*Answers) {}, ""},
		{"plain module name", func(a *Answers) { a.Module = "weather" }, ""},
		{"major version", func(a *Answers) { a.Module = "github.com/you/weather/v2" }, ""},
		{"empty description", func(a *Answers) { a.Description = "" }, ""},
		{"empty module", func(a *Answers) { a.Module = "" }, "module path: must not be empty"},
		{"module with space", func(a *Answers) { a.Module = "my server" }, `module path "my server" is not valid`},
		{"module with trailing slash", func(a *Answers) { a.Module = "example.com/x/" }, `module path "example.com/x/" is not valid`},
		{"module std", func(a *Answers) { a.Module = "std/x" }, "reserved"},
		{"empty name", func(a *Answers) { a.Name = " " }, "server name: must not be empty"},
		{"two-line name", func(a *Answers) { a.Name = "a\nb" }, `server name "a\nb": contains a line break (U+000A); it must be a single line of printable text`},
		{"long description", func(a *Answers) { a.Description = strings.Repeat("x", 301) }, "at most 300"},
		{"bad tool", func(a *Answers) { a.Tools = []string{"a b"} }, `tool name "a b"`},

		// Any printable text is a name; each file shows it as it is.
		{"name with quotes and backslashes", func(a *Answers) { a.Name = `My "best" \b server` }, ""},
		{"name with backticks and braces", func(a *Answers) { a.Name = "`x` {{.Name}} ``y``" }, ""},
		{"name with HTML", func(a *Answers) { a.Name = "<script>alert('x')</script> &amp;" }, ""},
		{"name in another script", func(a *Answers) { a.Name = "天気 — Wetter ☀" }, ""},
		{"name of 100 characters", func(a *Answers) { a.Name = strings.Repeat("é", 100) }, ""},
		{"name of 101 characters", func(a *Answers) { a.Name = strings.Repeat("é", 101) }, "at most 100 characters, not 101"},
		{"name with a tab", func(a *Answers) { a.Name = "a\tb" }, `contains a control character (U+0009)`},
		{"name with an escape", func(a *Answers) { a.Name = "a\x1b[31mb" }, `contains a control character (U+001B)`},
		{"name with a line separator", func(a *Answers) { a.Name = "a\u2028b" }, `contains a line break (U+2028)`},
		{"name with a right-to-left override", func(a *Answers) { a.Name = "a\u202eb" }, `contains a non-printing character (U+202E)`},
		{"name with a zero-width space", func(a *Answers) { a.Name = "a\u200bb" }, `(U+200B)`},
		{"name with invalid UTF-8", func(a *Answers) { a.Name = "a\xffb" }, `not valid UTF-8`},
		{"name with a space in front", func(a *Answers) { a.Name = " a" }, `must not start or end with a space`},
		{"description with a newline", func(a *Answers) { a.Description = "a\r\nb" }, `description "a\r\nb": contains a line break (U+000D)`},
		{"description with a trailing space", func(a *Answers) { a.Description = "a " }, `must not start or end with a space`},

		// Module paths the go command cannot build, refused before anything is written.
		{"module time", func(a *Answers) { a.Module = "time" }, `"time" is a package of the Go standard library, so its imports would be ambiguous; use a path such as example.com/time`},
		{"module log", func(a *Answers) { a.Module = "log" }, "standard library"},
		{"module html", func(a *Answers) { a.Module = "html" }, "standard library"},
		{"module sort", func(a *Answers) { a.Module = "sort" }, "standard library"},
		{"module context", func(a *Answers) { a.Module = "context" }, "standard library"},
		{"module errors", func(a *Answers) { a.Module = "errors" }, "standard library"},
		{"module net/http", func(a *Answers) { a.Module = "net/http" }, "standard library"},
		{"module under a std directory", func(a *Answers) { a.Module = "encoding/weather" }, "standard library"},
		{"module named like std, with a domain", func(a *Answers) { a.Module = "example.com/time" }, ""},
		{"module that only starts like std", func(a *Answers) { a.Module = "timer" }, ""},
		{"module go", func(a *Answers) { a.Module = "go" }, "standard library"},
		{"module toolchain", func(a *Answers) { a.Module = "toolchain" }, "reserves it"},
		{"module all", func(a *Answers) { a.Module = "all" }, "reserves it"},
		{"module with vendor", func(a *Answers) { a.Module = "example.com/vendor/x" }, `"vendor" element`},
		{"binary named like a directory", func(a *Answers) { a.Module = "example.com/deploy" }, `go build would write the binary "deploy", but the project has a directory of that name; use a path such as example.com/deploy-server`},
		{"binary named like a directory, major version", func(a *Answers) { a.Module = "example.com/internal/v2" }, `the binary "internal", but the project has a directory of that name; use a path such as example.com/internal-server/v2`},
		{"directory name inside the path", func(a *Answers) { a.Module = "example.com/deploy/weather" }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := good
			tt.edit(&a)
			err := a.Validate()
			if tt.wantErr == "" && err != nil {
				t.Fatalf("Validate() = %v, want nil", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Validate() = %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestProjectDirs checks projectDirs against the top-level directories of
// a rendered project (the generator's state directory aside: a module path
// element cannot start with a dot).
func TestProjectDirs(t *testing.T) {
	var dirs []string
	for _, f := range render(t, goldenSets[0].answers) {
		if dir, _, ok := strings.Cut(f.Path, "/"); ok && dir != StateDir && !slices.Contains(dirs, dir) {
			dirs = append(dirs, dir)
		}
	}
	slices.Sort(dirs)
	if !slices.Equal(dirs, projectDirs) {
		t.Errorf("a project's directories are %q; projectDirs lists %q", dirs, projectDirs)
	}
}

func TestDefaults(t *testing.T) {
	a := Defaults("/home/me/weather")
	if a.Module != "weather" || a.Name != "weather" || !slices.Equal(a.Tools, []string{DefaultTool}) {
		t.Fatalf("Defaults = %+v", a)
	}
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestBinaryName(t *testing.T) {
	for mod, want := range map[string]string{
		"weather":                   "weather",
		"example.com/weather":       "weather",
		"github.com/you/weather/v2": "weather",
		"example.com/v2":            "example.com",
		"example.com/x/v1":          "v1",
		"example.com/vx":            "vx",
	} {
		if got := binaryName(mod); got != want {
			t.Errorf("binaryName(%q) = %q, want %q", mod, got, want)
		}
	}
}

func TestSlug(t *testing.T) {
	for in, want := range map[string]string{"My Weather!": "my-weather", "weather": "weather", "  ": "mcp-server", "a--b": "a-b"} {
		if got := slug(in); got != want {
			t.Errorf("slug(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzToolList checks the promise behind tool names: whatever ToolList
// accepts becomes distinct identifiers that compile in every place the
// templates use them, and the MCP names follow the MCP rule.
func FuzzToolList(f *testing.F) {
	for _, s := range []string{"echo", "fetch-page,search.v2,add_numbers", "type,len", "a,A", "x-y,x_y", "2fa", "-._"} {
		f.Add(s)
	}
	mcpName := regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
	f.Fuzz(func(t *testing.T, list string) {
		tools, err := ToolList(strings.Split(list, ","))
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, tool := range tools {
			if !mcpName.MatchString(tool.Name) {
				t.Errorf("accepted MCP name %q", tool.Name)
			}
			for _, id := range tool.Identifiers() {
				if !token.IsIdentifier(id) {
					t.Errorf("tool %q: %q is not an identifier", tool.Name, id)
				}
				if seen[id] {
					t.Errorf("two tools need %s", id)
				}
				seen[id] = true
			}
		}
	})
}

// TestStdTopLevel checks stdTopLevel against the standard library of the
// go command running the test: a new top-level package in a later Go
// release must be added, or a module path named after it would be accepted
// and then fail to build.
func TestStdTopLevel(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	out, err := exec.Command("go", "list", "std").Output()
	if err != nil {
		t.Fatalf("go list std: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		first, _, _ := strings.Cut(pkg, "/")
		if !slices.Contains(stdTopLevel, first) {
			t.Errorf("standard library package %s: %q is missing from stdTopLevel", pkg, first)
		}
	}
}
