package upgrade

import (
	"go/parser"
	"go/token"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"
)

// v010Main returns main.go as create-mcp-server v0.1.0 generated it for
// the project of testdata/upgrade/v0.1.0/weather.txtar.
func v010Main(t *testing.T) string {
	t.Helper()
	ar, err := txtar.ParseFile("../../testdata/upgrade/v0.1.0/weather.txtar")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range ar.Files {
		if f.Name == "main.go" {
			return string(f.Data)
		}
	}
	t.Fatal("no main.go in the v0.1.0 project")
	return ""
}

// newMain is main.go in its short form, for the same answers.
const newMain = `// Command weather is the "weather" MCP server.
package main

import (
	"github.com/mark3labs/mcp-go/server"

	"example.com/weather/internal/mcpserver"
)

func main() {
	mcpserver.Main(options())
}

// options describes this server.
func options() mcpserver.Options {
	return mcpserver.Options{
		Name:        "weather",
		Version:     "0.1.0",
		Description: "Weather forecasts for the model",
		Tools:       tools(),
	}
}

// tools lists every tool this server offers.
func tools() []server.ServerTool {
	return []server.ServerTool{
		forecastTool(),
		fetchPageTool(),
	}
}
`

func TestMigrateMain(t *testing.T) {
	base := v010Main(t)
	if !IsPlumbingMain([]byte(base)) || IsPlumbingMain([]byte(newMain)) {
		t.Fatal("IsPlumbingMain does not tell the shapes apart")
	}
	edit := func(src string, pairs ...string) string {
		t.Helper()
		for i := 0; i < len(pairs); i += 2 {
			if !strings.Contains(src, pairs[i]) {
				t.Fatalf("main.go lacks %q", pairs[i])
			}
			src = strings.Replace(src, pairs[i], pairs[i+1], 1)
		}
		return src
	}
	const helper = "\n// shout makes text loud.\nfunc shout(s string) string { return strings.ToUpper(s) + \"!\" }\n"
	tests := []struct {
		name     string
		yours    string
		uses     []string // identifiers other files use
		want     []string // in the result
		notWant  []string
		keepOld  bool
		warning  string
		warnings []string
	}{
		{
			name:  "untouched: the new file, and newMCPServer for the old tests",
			yours: base,
			uses:  []string{"newMCPServer"},
			want: []string{`Version:     "0.1.0",`, "\t\tforecastTool(),\n\t\tfetchPageTool(),\n\t}",
				"func newMCPServer() *server.MCPServer { return options().NewMCPServer() }"},
			notWant: []string{"func serve(", "serverName"},
		},
		{
			name: "identity, a tool and a helper added by hand",
			yours: edit(base,
				`serverVersion     = "0.1.0"`, `serverVersion     = "1.4.0"`,
				"\t\tfetchPageTool(),\n", "\t\tfetchPageTool(),\n\t\tmineTool(), // by hand\n") + helper,
			want: []string{`Version:     "1.4.0",`, "\t\tfetchPageTool(),\n\t\tmineTool(), // by hand\n\t}",
				"// shout makes text loud.\nfunc shout(s string) string", "\t\"strings\"\n"},
			notWant: []string{"func newMCPServer", "func run("},
		},
		{
			name:  "identity constants other code uses are kept",
			yours: edit(base, `serverName        = "weather"`, `serverName        = "Weather"`) + "\nfunc banner() string { return serverName + \" \" + serverVersion }\n",
			want: []string{"Name:        serverName,", "Version:     serverVersion,", `serverName        = "Weather"`,
				`serverVersion     = "0.1.0"`, "func banner() string"},
		},
		{
			name: "edited plumbing: the old file is kept and the warning says what to use",
			yours: edit(base,
				`flags.StringVar(&cfg.Addr, "addr", env("MCP_ADDR", "127.0.0.1:8080")`, `flags.StringVar(&cfg.Addr, "addr", env("MCP_ADDR", "127.0.0.1:9090")`,
				"\t\tfmt.Println(serverName, serverVersion)\n", "\t\tfmt.Println(serverName, serverVersion, \"(mine)\")\n"),
			keepOld: true,
			warning: "you changed run and serveConfig, which main.go no longer has: the command line moved into internal/mcpserver, which upgrades replace. " +
				"Instead, set mcpserver.Options.Commands or mcpserver.Options.Flags in options() (README.md shows how); your main.go as it was is kept beside it (not compiled)",
			notWant: []string{"9090"},
		},
		{
			name:  "plumbing the user's code still calls is carried over",
			yours: base + "\nfunc apiKey() string { return envOr(\"WEATHER_API_KEY\", \"demo\") }\n",
			uses:  []string{"splitList"}, // from tools_key.go, say
			want: []string{"func apiKey() string", "func envOr(key, def string) string {", "func splitList(s string) []string {",
				"\t\"os\"\n", "\t\"strings\"\n"},
			notWant: []string{"func progName(", "func run(", "func envDuration("},
		},
		{
			name:    "and what that plumbing calls in turn",
			yours:   base + "\nfunc timeout() time.Duration {\n\td, _ := envDuration(os.Getenv, \"WEATHER_TIMEOUT\", time.Second)\n\treturn d\n}\n",
			want:    []string{"func timeout() time.Duration", "func envDuration(getenv", "type usageError struct", "\t\"time\"\n", "\t\"fmt\"\n"},
			notWant: []string{"func envOr(", "func run("},
		},
		{
			name:    "a local variable or field named like plumbing brings nothing along",
			yours:   base + "\ntype account struct{ serve bool }\n\nfunc greet(a account) string {\n\tuser := \"x\"\n\tif a.serve {\n\t\treturn user\n\t}\n\treturn \"\"\n}\n",
			want:    []string{"func greet(a account) string"},
			notWant: []string{"func user(", "func serve(", "func readPassword("},
		},
		{
			name:    "a declaration that clashes with the new file",
			yours:   base + "\nfunc options() int { return 1 }\n",
			keepOld: true,
			warning: "your options clashed with the new main.go's and was not carried over; your main.go as it was is kept beside it (not compiled)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := MigrateMain([]byte(base), []byte(tt.yours), []byte(newMain), func(id string) bool {
				for _, u := range tt.uses {
					if u == id {
						return true
					}
				}
				return false
			})
			if err != nil {
				t.Fatal(err)
			}
			got := string(r.Data)
			if _, err := parser.ParseFile(token.NewFileSet(), "main.go", got, 0); err != nil {
				t.Fatalf("result does not parse: %v\n%s", err, got)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("result lacks %q:\n%s", w, got)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(got, w) {
					t.Errorf("result has %q:\n%s", w, got)
				}
			}
			if r.KeepOld != tt.keepOld || r.Warning != tt.warning {
				t.Errorf("KeepOld %v, warning %q\nwant %v, %q", r.KeepOld, r.Warning, tt.keepOld, tt.warning)
			}
			if n := strings.Count(got, "\n"); n > 80 {
				t.Errorf("result has %d lines:\n%s", n, got)
			}
		})
	}
}
