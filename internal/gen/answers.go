// Package gen turns a set of answers into the files of a new MCP server
// project, and writes them to disk.
//
// The work is split in three steps so that each can be tested alone:
//
//   - Answers holds what the user chose (from flags, prompts or defaults) and
//     Validate checks it before anything else happens.
//   - Render is a pure function: templates + runtime sources + answers +
//     generator version in, a sorted list of files out. It never touches disk.
//   - Write puts rendered files into a directory, refusing to overwrite
//     anything and leaving nothing behind when it fails.
//
// Every project also records how it was made (manifest.go), so that a later
// generator version can upgrade it.
package gen

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/module"
)

// Version is the version of this generator. It is recorded in every
// generated project's manifest.
const Version = "0.1.0"

// DefaultTool is the tool generated when no tool names are given, so that a
// new project always has one working tool to call and copy from.
const DefaultTool = "echo"

// Answers are the choices that shape a generated project. Flags, prompts,
// templates and the manifest all share this one struct.
type Answers struct {
	// Module is the Go module path of the new project, e.g. "example.com/weather".
	Module string `json:"module"`
	// Name is the server name shown to MCP clients.
	Name string `json:"name"`
	// Description is a one-line description shown in the README and to clients.
	Description string `json:"description"`
	// Tools are the MCP tool names, in the order they were given.
	Tools []string `json:"tools"`
}

// Defaults returns the answers used for questions nobody answered, for a
// project created in dir: module path and server name are dir's base name,
// and the single tool is DefaultTool.
func Defaults(dir string) Answers {
	base := path.Base(strings.ReplaceAll(dir, "\\", "/"))
	return Answers{
		Module:      base,
		Name:        base,
		Description: DefaultDescription,
		Tools:       []string{DefaultTool},
	}
}

// DefaultDescription is the description used when none is given.
const DefaultDescription = "An MCP server with built-in OAuth 2.1 sign-in."

// Validate reports the first problem with a, in the order the questions are
// asked. Its messages name the offending value and say what is allowed.
func (a Answers) Validate() error {
	if err := ValidateModule(a.Module); err != nil {
		return err
	}
	if err := ValidateName(a.Name); err != nil {
		return err
	}
	if err := ValidateDescription(a.Description); err != nil {
		return err
	}
	if _, err := ToolList(a.Tools); err != nil {
		return err
	}
	return nil
}

// ValidateModule checks a Go module path. It accepts what `go mod init`
// accepts (module.CheckImportPath), so that a dot-less local path such as
// "weather" works; module.CheckPath would demand a domain name in the first
// element, which only matters once the module is published.
func ValidateModule(mod string) error {
	if mod == "" {
		return errors.New("module path: must not be empty")
	}
	if err := module.CheckImportPath(mod); err != nil {
		return fmt.Errorf("module path %q is not valid: %w", mod, errors.Unwrap(err))
	}
	first, _, _ := strings.Cut(mod, "/")
	switch {
	case first == "std" || first == "cmd":
		return fmt.Errorf("module path %q is not valid: %q is reserved for the Go standard library", mod, first)
	case slices.Contains(stdTopLevel, first):
		// The project's own packages and the standard library's would
		// share import paths: "go build" stops at an ambiguous import.
		return fmt.Errorf("module path %q is not valid: %q is a package of the Go standard library, "+
			"so its imports would be ambiguous; use a path such as example.com/%s", mod, first, mod)
	case mod == "go" || mod == "toolchain" || mod == "all" || mod == "tool":
		return fmt.Errorf("module path %q is not valid: the go command reserves it; use a path such as example.com/%s", mod, mod)
	case slices.Contains(strings.Split(mod, "/"), "vendor"):
		return fmt.Errorf("module path %q is not valid: the go command treats packages under a \"vendor\" element as vendored copies", mod)
	case slices.Contains(projectDirs, binaryName(mod)):
		// go build names the binary after the module's last element and
		// stops when a directory already has that name.
		return &BinaryDirError{Module: mod, Binary: binaryName(mod)}
	}
	return nil
}

// A BinaryDirError is the error of ValidateModule for a module path whose
// binary, which go build names after the path's last element (a major
// version suffix aside), would have the name of one of the project's
// directories: go build would stop with 'build output "deploy" already
// exists and is a directory'.
type BinaryDirError struct {
	Module string // the module path, e.g. "example.com/deploy"
	Binary string // the binary's and the directory's name, e.g. "deploy"
}

func (e *BinaryDirError) Error() string {
	return fmt.Sprintf("module path %q is not valid: go build would write the binary %q, but the project has a directory of that name; use a path such as %s",
		e.Module, e.Binary, e.Suggest())
}

// Suggest returns a module path like Module whose binary is named
// Binary-server: "example.com/deploy-server", "example.com/docs-server/v2".
func (e *BinaryDirError) Suggest() string {
	dir, last := path.Split(e.Module)
	if dir != "" && isVersionElement(last) {
		return path.Join(path.Dir(e.Module)+"-server", last)
	}
	return e.Module + "-server"
}

// projectDirs are the top-level directories of a generated project, which
// no binary may be named after. TestProjectDirs checks the list against a
// rendered project.
var projectDirs = []string{"deploy", "docs", "examples", "internal"}

// stdTopLevel lists the first elements of the standard library's import
// paths (the directories of $GOROOT/src, "cmd" aside). A module path that
// starts with one of them would make imports ambiguous, so ValidateModule
// refuses it: "time", "log/x" and "net" are refused, "example.com/time" and
// "timer" are fine. TestStdTopLevel checks the list against "go list std".
var stdTopLevel = []string{
	"archive", "arena", "bufio", "builtin", "bytes", "cmp", "compress", "container",
	"context", "crypto", "database", "debug", "embed", "encoding", "errors", "expvar",
	"flag", "fmt", "go", "hash", "html", "image", "index", "internal", "io", "iter",
	"log", "maps", "math", "mime", "net", "os", "path", "plugin", "reflect", "regexp",
	"runtime", "simd", "slices", "sort", "strconv", "strings", "structs", "sync",
	"syscall", "testing", "text", "time", "unicode", "unique", "unsafe", "vendor", "weak",
}

// ValidateName checks the server name shown to clients: a single line of
// printable text in any script, at most 100 characters, without spaces
// around it. Quotes, backslashes, backticks, "{{" and HTML are fine: every
// file shows them as they are (see escape.go).
func ValidateName(name string) error {
	if strings.TrimSpace(name) == "" {
		return errors.New("server name: must not be empty")
	}
	return checkLine("server name", name, 100)
}

// ValidateDescription checks the description: like a name (see
// ValidateName), but it may be empty and have up to 300 characters.
func ValidateDescription(desc string) error {
	if desc == "" {
		return nil
	}
	return checkLine("description", desc, 300)
}

// checkLine checks that s is one line of printable text of at most max
// characters with no space at either end. Control characters (a newline, a
// tab, an escape), invisible format characters (a zero-width space, a
// right-to-left override), invalid UTF-8 and line or paragraph separators
// are refused: no file format carries them faithfully, and they can make
// text read differently from what it is.
func checkLine(what, s string, max int) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s %q: is not valid UTF-8", what, s)
	}
	if n := utf8.RuneCountInString(s); n > max {
		return fmt.Errorf("%s %q: must be at most %d characters, not %d", what, s, max, n)
	}
	for _, r := range s {
		if unicode.IsPrint(r) {
			continue
		}
		kind := "a non-printing character"
		if r == '\n' || r == '\r' || r == '\u2028' || r == '\u2029' {
			kind = "a line break"
		} else if unicode.IsControl(r) {
			kind = "a control character"
		}
		return fmt.Errorf("%s %q: contains %s (%U); it must be a single line of printable text", what, s, kind, r)
	}
	if strings.TrimSpace(s) != s {
		return fmt.Errorf("%s %q: must not start or end with a space", what, s)
	}
	return nil
}

// A Tool is one MCP tool of a generated project: the name clients see and
// the Go name derived from it.
type Tool struct {
	// Name is the MCP tool name, e.g. "fetch-page".
	Name string
	// Go is the lower camel case Go name, e.g. "fetchPage". Templates only
	// use it inside longer identifiers (fetchPageTool, fetchPageArgs), so a
	// tool named "type" or "len" cannot clash with a keyword or a builtin.
	Go string
	// Exported is Go with its first letter upper-cased, e.g. "FetchPage".
	Exported string
}

// ValidateToolName checks one MCP tool name: 1 to 64 characters of
// A-Z a-z 0-9 _ - . (the MCP rule), which must also convert to a Go
// identifier (see GoName).
func ValidateToolName(name string) error {
	_, err := toolFor(name)
	return err
}

func toolFor(name string) (Tool, error) {
	if name == "" || len(name) > 64 {
		return Tool{}, fmt.Errorf("tool name %q: must be 1 to 64 characters long", name)
	}
	for _, r := range name {
		if !isToolRune(r) {
			return Tool{}, fmt.Errorf(`tool name %q: only letters, digits, "_", "-" and "." are allowed`, name)
		}
	}
	g := GoName(name)
	if g == "" {
		return Tool{}, fmt.Errorf("tool name %q: must contain a letter", name)
	}
	if !unicode.IsLetter(rune(g[0])) {
		return Tool{}, fmt.Errorf("tool name %q: must start with a letter (its Go name would be %q)", name, g)
	}
	return Tool{Name: name, Go: g, Exported: strings.ToUpper(g[:1]) + g[1:]}, nil
}

func isToolRune(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' ||
		r == '_' || r == '-' || r == '.'
}

// GoName converts an MCP tool name to lower camel case: the name is split at
// "_", "-" and ".", the first part keeps its case except for a lower-cased
// first letter, and each later part gets an upper-cased first letter:
// fetch-page → fetchPage, search.v2 → searchV2, add_numbers → addNumbers.
// The result may be empty or start with a digit; ValidateToolName rejects
// such names.
func GoName(name string) string {
	parts := strings.FieldsFunc(name, func(r rune) bool { return r == '_' || r == '-' || r == '.' })
	var b strings.Builder
	for i, p := range parts {
		if i == 0 {
			b.WriteString(strings.ToLower(p[:1]) + p[1:])
		} else {
			b.WriteString(strings.ToUpper(p[:1]) + p[1:])
		}
	}
	return b.String()
}

// ToolList validates names and returns their Tools in the given order. It
// is an error if two names are equal or convert to the same Go name.
func ToolList(names []string) ([]Tool, error) {
	if len(names) == 0 {
		return nil, errors.New("tools: at least one tool name is needed")
	}
	tools := make([]Tool, 0, len(names))
	idents := map[string]string{} // Go identifier -> tool name
	for _, n := range names {
		t, err := toolFor(n)
		if err != nil {
			return nil, err
		}
		if i := slices.IndexFunc(tools, func(u Tool) bool { return u.Name == n }); i >= 0 {
			return nil, fmt.Errorf("tool name %q: given twice", n)
		}
		if i := slices.IndexFunc(tools, func(u Tool) bool { return u.Go == t.Go }); i >= 0 {
			return nil, fmt.Errorf("tool names %q and %q: both become the Go name %q; rename one", tools[i].Name, n, t.Go)
		}
		for _, id := range t.Identifiers() {
			if other, ok := idents[id]; ok {
				return nil, fmt.Errorf("tool names %q and %q: both need the Go identifier %s; rename one", other, n, id)
			}
		}
		for _, id := range t.Identifiers() {
			idents[id] = n
		}
		tools = append(tools, t)
	}
	return tools, nil
}

// Identifiers returns the Go identifiers the templates declare for t: its
// constructor, arguments type, handler and test. Other generated code
// avoids these shapes, so only two tools can clash ("handle" and "args"
// both need handleArgs).
func (t Tool) Identifiers() []string {
	return []string{t.Constructor(), t.Go + "Args", "handle" + t.Exported, "Test" + t.Exported + "Tool"}
}

// Constructor returns the name of the function returning t's
// server.ServerTool, which main.go's tools() calls: fetchPageTool.
func (t Tool) Constructor() string { return t.Go + "Tool" }
