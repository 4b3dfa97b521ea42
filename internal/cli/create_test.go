package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"

	createmcpserver "github.com/mcpgen/create-mcp-server"
	"github.com/mcpgen/create-mcp-server/internal/gen"
	"github.com/mcpgen/create-mcp-server/internal/prompt"
)

// fakePrompter answers questions from a script. An answer that fails the
// question's validator is recorded as rejected and the next one is used,
// the way survey asks again.
type fakePrompter struct {
	answers  []any // string (Input), []string (MultiInput), bool (Confirm) or error
	asked    []string
	rejected []string
}

func (p *fakePrompter) next(message string) (any, error) {
	p.asked = append(p.asked, message)
	if len(p.answers) == 0 {
		return nil, fmt.Errorf("unexpected question %q", message)
	}
	a := p.answers[0]
	p.answers = p.answers[1:]
	if err, ok := a.(error); ok {
		return nil, err
	}
	return a, nil
}

func (p *fakePrompter) Input(message, help, def string, validate func(string) error) (string, error) {
	for {
		a, err := p.next(message)
		if err != nil {
			return "", err
		}
		s := a.(string)
		if s == "" {
			s = def
		}
		if err := validate(s); err != nil {
			p.rejected = append(p.rejected, err.Error())
			continue
		}
		return s, nil
	}
}

func (p *fakePrompter) MultiInput(message, help string, def []string, validate func([]string) error) ([]string, error) {
	for {
		a, err := p.next(message)
		if err != nil {
			return nil, err
		}
		list := a.([]string)
		if err := validate(list); err != nil {
			p.rejected = append(p.rejected, err.Error())
			continue
		}
		if len(list) == 0 {
			list = def
		}
		return list, nil
	}
}

func (p *fakePrompter) Confirm(message string, def bool) (bool, error) {
	a, err := p.next(message)
	if err != nil {
		return false, err
	}
	return a.(bool), nil
}

var _ prompt.Prompter = (*fakePrompter)(nil)

// runCreate runs the real command with args on terminal (tty) or piped
// streams, answering prompts from p, in a fresh directory.
func runCreate(t *testing.T, tty bool, p *fakePrompter, args ...string) (dir, stdout, stderr string, status int) {
	t.Helper()
	io, _, out, errOut := Test()
	io.SetStdinTTY(tty)
	io.SetStdoutTTY(tty)
	f := &Factory{
		IO:        io,
		Prompter:  func() prompt.Prompter { return p },
		Templates: createmcpserver.Templates(),
		Runtime:   createmcpserver.Runtime(),
	}
	dir = filepath.Join(t.TempDir(), "weather")
	cmd := NewCmdRoot(f)
	cmd.SetArgs(append(args, dir))
	status = exitStatus(f, cmd.ExecuteContext(context.Background()))
	return dir, out.String(), errOut.String(), status
}

func manifestOf(t *testing.T, dir string) *gen.Manifest {
	t.Helper()
	m, err := gen.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestCreateInteractive(t *testing.T) {
	p := &fakePrompter{answers: []any{
		"my module", "example.com/weather", // the first is rejected
		"",           // name: the default
		"Forecasts.", // description
		[]string{"fetch-page", "fetch_page"}, []string{"forecast", "fetch-page"},
		true, // confirm
	}}
	dir, stdout, stderr, status := runCreate(t, true, p)
	if status != 0 {
		t.Fatalf("status %d, stderr:\n%s", status, stderr)
	}
	wantAsked := []string{
		"Go module path:", "Go module path:", "Server name:", "Description:",
		"Tool names (comma-separated):", "Tool names (comma-separated):", "Create these 46 files?",
	}
	if !slices.Equal(p.asked[:6], wantAsked[:6]) || !strings.HasPrefix(p.asked[6], "Create these ") {
		t.Errorf("asked %q, want %q", p.asked, wantAsked)
	}
	if len(p.rejected) != 2 || !strings.Contains(p.rejected[0], `module path "my module" is not valid`) ||
		!strings.Contains(p.rejected[1], `both become the Go name "fetchPage"`) {
		t.Errorf("rejected %q", p.rejected)
	}
	m := manifestOf(t, dir)
	want := gen.Answers{Module: "example.com/weather", Name: "weather", Description: "Forecasts.", Tools: []string{"forecast", "fetch-page"}}
	if m.Answers.Module != want.Module || m.Answers.Name != want.Name || m.Answers.Description != want.Description || !slices.Equal(m.Answers.Tools, want.Tools) {
		t.Errorf("answers = %+v, want %+v", m.Answers, want)
	}
	// The summary before the confirmation says what will be written.
	for _, s := range []string{"Module:       example.com/weather", "forecast (forecastTool in tools.go)", "fetch-page (fetchPageTool in tools.go)",
		"tools.go                      yours: never touched by upgrades", "internal/mcpauth/", "Created weather in"} {
		if !strings.Contains(stdout, s) {
			t.Errorf("stdout lacks %q:\n%s", s, stdout)
		}
	}
}

func TestCreateInteractiveAsksOnlyWhatIsMissing(t *testing.T) {
	p := &fakePrompter{answers: []any{"", true}}
	dir, _, stderr, status := runCreate(t, true, p, "--module", "example.com/w", "--name", "W", "--tool", "search")
	if status != 0 {
		t.Fatalf("status %d: %s", status, stderr)
	}
	if p.asked[0] != "Description:" || len(p.asked) != 2 {
		t.Errorf("asked %q, want only the description and the confirmation", p.asked)
	}
	if d := manifestOf(t, dir).Answers.Description; d != gen.DefaultDescription {
		t.Errorf("description = %q, want the default", d)
	}
}

// TestCreateCancel checks that refusing or interrupting leaves nothing.
func TestCreateCancel(t *testing.T) {
	tests := []struct {
		name       string
		answers    []any
		wantStatus int
		wantStderr string
	}{
		{"refused", []any{"", "", "", []string{}, false}, exitError, "create-mcp-server: cancelled; nothing was written\n"},
		{"interrupted at a question", []any{"", "", prompt.ErrInterrupted}, exitInterrupt, "create-mcp-server: interrupted; nothing was written\n"},
		{"interrupted at the confirmation", []any{"", "", "", []string{}, prompt.ErrInterrupted}, exitInterrupt, "interrupted; nothing was written"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, _, stderr, status := runCreate(t, true, &fakePrompter{answers: tt.answers})
			if status != tt.wantStatus || !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("status %d, stderr %q; want %d, %q", status, stderr, tt.wantStatus, tt.wantStderr)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s exists after cancelling", dir)
			}
			if entries, _ := os.ReadDir(filepath.Dir(dir)); len(entries) != 0 {
				t.Errorf("left behind: %v", entries)
			}
		})
	}
}

func TestCreateYesOnTerminalNeverPrompts(t *testing.T) {
	p := &fakePrompter{}
	dir, _, stderr, status := runCreate(t, true, p, "--yes")
	if status != 0 || len(p.asked) != 0 {
		t.Fatalf("status %d, asked %q, stderr %s", status, p.asked, stderr)
	}
	if tools := manifestOf(t, dir).Answers.Tools; !slices.Equal(tools, []string{gen.DefaultTool}) {
		t.Errorf("tools = %q, want the default", tools)
	}
}

// TestExitStatus checks the exit status of each kind of failure.
func TestExitStatus(t *testing.T) {
	tests := []struct {
		name   string
		tty    bool
		args   []string
		status int
	}{
		{"ok", false, []string{"--yes"}, exitOK},
		{"missing answers without a terminal", false, nil, exitUsage},
		{"invalid flag value", false, []string{"--yes", "--tools", "a b"}, exitUsage},
		{"unknown flag", false, []string{"--bogus"}, exitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, stderr, status := runCreate(t, tt.tty, &fakePrompter{}, tt.args...); status != tt.status {
				t.Errorf("status %d, want %d; stderr:\n%s", status, tt.status, stderr)
			}
		})
	}
	io, _, _, _ := Test()
	f := &Factory{IO: io}
	if got := exitStatus(f, errors.New("disk full")); got != exitError {
		t.Errorf("runtime failure: status %d, want %d", got, exitError)
	}
	io, _, _, errOut := Test()
	f = &Factory{IO: io}
	err := fmt.Errorf("upgrade: %w", &ExitError{Code: 2, Err: errors.New("no manifest")})
	if got := exitStatus(f, err); got != 2 || errOut.String() != "create-mcp-server: upgrade: no manifest\n" {
		t.Errorf("ExitError: status %d, stderr %q", got, errOut.String())
	}
}

// TestNewCmdCreateFlags checks how flags fill CreateOptions, without running
// createRun.
func TestNewCmdCreateFlags(t *testing.T) {
	tests := []struct {
		args []string
		want CreateOptions
	}{
		{[]string{"dir"}, CreateOptions{Dir: "dir"}},
		{[]string{"--tools", "a,b", "--tool", "c", "--tool", "d", "-y"}, CreateOptions{Tools: []string{"a", "b", "c", "d"}, ToolsSet: true, Yes: true}},
		{[]string{"--module", "m", "--name", "n", "--description", "", "--force"}, CreateOptions{Module: "m", ModuleSet: true, Name: "n", NameSet: true, DescriptionSet: true, Force: true}},
	}
	for _, tt := range tests {
		io, _, _, _ := Test()
		var got *CreateOptions
		cmd := NewCmdCreate(&Factory{IO: io}, func(_ context.Context, o *CreateOptions) error { got = o; return nil })
		cmd.SetArgs(tt.args)
		if err := cmd.Execute(); err != nil {
			t.Fatalf("%q: %v", tt.args, err)
		}
		w := tt.want
		if got.Dir != w.Dir || got.Module != w.Module || got.Name != w.Name || got.Description != w.Description ||
			!slices.Equal(got.Tools, w.Tools) || got.Yes != w.Yes || got.Force != w.Force ||
			got.ModuleSet != w.ModuleSet || got.NameSet != w.NameSet || got.DescriptionSet != w.DescriptionSet || got.ToolsSet != w.ToolsSet {
			t.Errorf("%q: options %+v, want %+v", tt.args, got, w)
		}
		if got.Prompter != nil {
			t.Errorf("%q: a prompter without a terminal", tt.args)
		}
	}
}

// TestCreateYesMatchesGolden checks that `create-mcp-server --yes weather`
// writes exactly the project pinned by testdata/golden/default.txtar.
func TestCreateYesMatchesGolden(t *testing.T) {
	ar, err := txtar.ParseFile("../../testdata/golden/default.txtar")
	if err != nil {
		t.Fatal(err)
	}
	dir, _, stderr, status := runCreate(t, false, &fakePrompter{}, "--yes")
	if status != 0 {
		t.Fatalf("status %d: %s", status, stderr)
	}
	for _, f := range ar.Files {
		if f.Name == gen.ManifestPath {
			continue // the golden copy leaves out the runtime entries
		}
		got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f.Name)))
		if err != nil {
			t.Error(err)
			continue
		}
		if string(got) != string(f.Data) {
			t.Errorf("%s differs from the golden copy", f.Name)
		}
	}
}

// TestCreateAsksForDir checks that on a terminal a missing DIR is asked for,
// defaulting to a new directory when the current one is not empty.
func TestCreateAsksForDir(t *testing.T) {
	cwd := t.TempDir()
	t.Chdir(cwd)
	if err := os.WriteFile("notes.txt", []byte("mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	io, _, out, errOut := Test()
	io.SetStdinTTY(true)
	io.SetStdoutTTY(true)
	p := &fakePrompter{answers: []any{".", "", "", "", "", []string{}, true}} // "." is refused: not empty
	f := &Factory{IO: io, Prompter: func() prompt.Prompter { return p },
		Templates: createmcpserver.Templates(), Runtime: createmcpserver.Runtime()}
	cmd := NewCmdRoot(f)
	cmd.SetArgs(nil)
	if status := exitStatus(f, cmd.ExecuteContext(context.Background())); status != 0 {
		t.Fatalf("status %d: %s", status, errOut)
	}
	if p.asked[0] != "Project directory:" || len(p.rejected) != 1 || !strings.Contains(p.rejected[0], "is not empty") {
		t.Errorf("asked %q, rejected %q", p.asked, p.rejected)
	}
	if m := manifestOf(t, filepath.Join(cwd, "mcp-server")); m.Answers.Module != "mcp-server" {
		t.Errorf("module = %q, want the directory's name", m.Answers.Module)
	}
	if !strings.Contains(out.String(), "  cd mcp-server\n") {
		t.Errorf("next steps do not say cd mcp-server:\n%s", out)
	}
}
