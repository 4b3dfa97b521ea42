package createmcpserver_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	createmcpserver "github.com/mcpgen/create-mcp-server"
	"github.com/mcpgen/create-mcp-server/internal/gen"
	"github.com/mcpgen/create-mcp-server/runtime/mcpserver"
)

// renderedFile returns one file of the project the generator makes for
// gen.Defaults("weather").
func renderedFile(t *testing.T, name string) string {
	t.Helper()
	files, err := gen.Render(createmcpserver.Templates(), createmcpserver.Runtime(), gen.Defaults("weather"), gen.Version)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f.Path == name {
			return string(f.Data)
		}
	}
	t.Fatalf("the generator writes no %s", name)
	return ""
}

// runHelp runs a generated server's command line in-process and returns
// what it printed.
func runHelp(t *testing.T, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	env := mcpserver.Env{Stdout: &out, Stderr: &out, Getenv: func(string) string { return "" }}
	_ = mcpserver.Run(context.Background(), mcpserver.Options{Name: "weather"}, args, env) // --help: flag.ErrHelp
	return out.String()
}

// A flag in a command's usage: "  --addr ADDRESS    (env MCP_ADDR, default 127.0.0.1:8080)".
var usageFlag = regexp.MustCompile(`(?m)^  --([a-z0-9-]+)(?: \S+)?(?:    \((.*)\))?$`)

// docSections splits a Markdown document at its "## " headings.
func docSections(doc string) map[string]string {
	sections := map[string]string{}
	var heading string
	for _, line := range strings.SplitAfter(doc, "\n") {
		if h, ok := strings.CutPrefix(line, "## "); ok {
			heading = strings.TrimSpace(h)
			continue
		}
		sections[heading] += line
	}
	return sections
}

// tableRows returns the cells of the Markdown table rows of text, keyed by
// their first cell.
func tableRows(text string) map[string][]string {
	rows := map[string][]string{}
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, "| ") {
			continue
		}
		cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows[cells[0]] = cells
	}
	return rows
}

// TestConfigurationDoc checks a generated project's docs/configuration.md
// against the real command line of internal/mcpserver: every command that
// has flags has a section, every flag of it a row with its environment
// variable and its default, and no row names a flag that does not exist.
// Adding a flag without documenting it fails here.
func TestConfigurationDoc(t *testing.T) {
	doc := renderedFile(t, "docs/configuration.md")
	sections := docSections(doc)

	// The commands, from the usage: "  PROG grants revoke ID|--user U ...".
	var commands []string
	prog := filepath.Base(os.Args[0])
	for _, line := range strings.Split(runHelp(t, "help"), "\n") {
		words, ok := strings.CutPrefix(line, "  "+prog+" ")
		if !ok {
			continue
		}
		var cmd []string
		words, _, _ = strings.Cut(words, "  ") // then the summary
		for _, w := range strings.Fields(words) {
			if !regexp.MustCompile(`^[a-z]+$`).MatchString(w) {
				break
			}
			cmd = append(cmd, w)
		}
		commands = append(commands, strings.Join(cmd, " "))
	}
	if !slices.Contains(commands, "serve") || !slices.Contains(commands, "grants revoke") {
		t.Fatalf("could not read the commands from the usage; got %q", commands)
	}

	documented := map[string]map[string]bool{} // section → flags checked
	for _, cmd := range commands {
		usage := runHelp(t, append(strings.Fields(cmd), "--help")...)
		flags := usageFlag.FindAllStringSubmatch(usage, -1)
		if len(flags) == 0 {
			continue // version
		}
		var heading string
		for h := range sections {
			if strings.Contains(h, "`"+cmd+"`") {
				heading = h
			}
		}
		if heading == "" {
			t.Errorf("docs/configuration.md has no section for %q (a heading with `%s`); its flags:\n%s", cmd, cmd, usage)
			continue
		}
		if documented[heading] == nil {
			documented[heading] = map[string]bool{}
		}
		rows := tableRows(sections[heading])
		for _, f := range flags {
			name, notes := f[1], f[2]
			documented[heading][name] = true
			row, ok := rows["`--"+name+"`"]
			if !ok || len(row) != 4 {
				t.Errorf("docs/configuration.md, section %q: no row | `--%s` | environment | default | meaning |", heading, name)
				continue
			}
			var env, def string
			for _, n := range strings.Split(notes, ", ") {
				if v, ok := strings.CutPrefix(n, "env "); ok {
					env = "`" + v + "`"
				}
				if v, ok := strings.CutPrefix(n, "default "); ok {
					def = "`" + v + "`"
				}
			}
			if row[1] != env {
				t.Errorf("docs/configuration.md, %s --%s: environment %q, want %q", cmd, name, row[1], env)
			}
			if def != "" && !strings.Contains(row[2], def) {
				t.Errorf("docs/configuration.md, %s --%s: default %q, want %s", cmd, name, row[2], def)
			}
		}
	}
	for heading, flags := range documented {
		for first := range tableRows(sections[heading]) {
			name, ok := strings.CutPrefix(strings.Trim(first, "`"), "--")
			if ok && !flags[name] {
				t.Errorf("docs/configuration.md, section %q, lists --%s, which no command of that section has", heading, name)
			}
		}
	}

	// The example error is the one serve gives.
	var out bytes.Buffer
	env := mcpserver.Env{Stdout: &out, Stderr: &out, Getenv: func(k string) string {
		return map[string]string{"MCP_ACCESS_TTL": "-5m"}[k]
	}}
	err := mcpserver.Run(context.Background(), mcpserver.Options{Name: "weather"}, []string{"serve"}, env)
	if err == nil || !strings.Contains(doc, "weather: "+err.Error()+"\n") {
		t.Errorf("docs/configuration.md's example error is not what serve says: %v", err)
	}

	// Every environment variable the runtime reads by name.
	envVar := regexp.MustCompile(`"(MCP_[A-Z0-9_]+)"`)
	err = fs.WalkDir(createmcpserver.Runtime(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(p) != ".go" || strings.HasSuffix(p, "_test.go") {
			return err
		}
		src, err := fs.ReadFile(createmcpserver.Runtime(), p)
		if err != nil {
			return err
		}
		for _, m := range envVar.FindAllStringSubmatch(string(src), -1) {
			if !strings.Contains(doc, "`"+m[1]+"`") {
				t.Errorf("runtime/%s reads %s, which docs/configuration.md does not name", p, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
