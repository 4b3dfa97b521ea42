package upgrade

import (
	"errors"
	"strings"
	"testing"
)

func TestAddToolCalls(t *testing.T) {
	const head = "package main\n\nimport \"github.com/mark3labs/mcp-go/server\"\n\n"
	tests := []struct {
		name      string
		src, want string // after head
		add       []string
	}{
		{
			name: "as generated",
			src:  "// tools lists the tools.\nfunc tools() []server.ServerTool {\n\treturn []server.ServerTool{\n\t\techoTool(),\n\t\tforecastTool(),\n\t}\n}\n",
			add:  []string{"alertsTool"},
			want: "// tools lists the tools.\nfunc tools() []server.ServerTool {\n\treturn []server.ServerTool{\n\t\techoTool(),\n\t\tforecastTool(),\n\t\talertsTool(),\n\t}\n}\n",
		},
		{
			name: "after tools added by hand, with comments",
			src:  "func tools() []server.ServerTool {\n\treturn []server.ServerTool{\n\t\techoTool(),\n\t\tmineTool(), // by hand\n\t\t// more to come\n\t}\n}\n",
			add:  []string{"alertsTool", "fetchPageTool"},
			want: "func tools() []server.ServerTool {\n\treturn []server.ServerTool{\n\t\techoTool(),\n\t\tmineTool(), // by hand\n\t\t// more to come\n\t\talertsTool(),\n\t\tfetchPageTool(),\n\t}\n}\n",
		},
		{
			name: "an empty list",
			src:  "func tools() []server.ServerTool {\n\treturn []server.ServerTool{\n\t}\n}\n",
			add:  []string{"alertsTool"},
			want: "func tools() []server.ServerTool {\n\treturn []server.ServerTool{\n\t\talertsTool(),\n\t}\n}\n",
		},
		{
			name: "a list on one line",
			src:  "func tools() []server.ServerTool { return []server.ServerTool{echoTool(), mineTool()} }\n",
			add:  []string{"alertsTool"},
			want: "func tools() []server.ServerTool { return []server.ServerTool{echoTool(), mineTool(), alertsTool()} }\n",
		},
		{
			name: "an empty list on one line",
			src:  "func tools() []server.ServerTool { return []server.ServerTool{} }\n",
			add:  []string{"alertsTool"},
			want: "func tools() []server.ServerTool { return []server.ServerTool{alertsTool()} }\n",
		},
		{
			name: "already listed",
			src:  "func tools() []server.ServerTool {\n\treturn []server.ServerTool{\n\t\talertsTool(),\n\t\techoTool(),\n\t}\n}\n",
			add:  []string{"alertsTool"},
			want: "func tools() []server.ServerTool {\n\treturn []server.ServerTool{\n\t\talertsTool(),\n\t\techoTool(),\n\t}\n}\n",
		},
		{
			name: "a file that was not gofmt-clean is not reformatted",
			src:  "func tools() []server.ServerTool {\n  return []server.ServerTool{\n    echoTool(),\n  }\n}\nvar   x = 1\n",
			add:  []string{"alertsTool"},
			want: "func tools() []server.ServerTool {\n  return []server.ServerTool{\n    echoTool(),\n    alertsTool(),\n  }\n}\nvar   x = 1\n",
		},
		{
			name: "returns inside closures do not count",
			src:  "func tools() []server.ServerTool {\n\tf := func() int { return 1 }\n\t_ = f\n\treturn []server.ServerTool{\n\t\techoTool(),\n\t}\n}\n",
			add:  []string{"alertsTool"},
			want: "func tools() []server.ServerTool {\n\tf := func() int { return 1 }\n\t_ = f\n\treturn []server.ServerTool{\n\t\techoTool(),\n\t\talertsTool(),\n\t}\n}\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AddToolCalls([]byte(head+tt.src), tt.add)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != head+tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, head+tt.want)
			}
		})
	}
}

func TestAddToolCallsRestructured(t *testing.T) {
	for name, src := range map[string]string{
		"built with append": "func tools() []server.ServerTool {\n\tts := []server.ServerTool{echoTool()}\n\tif debug {\n\t\tts = append(ts, debugTool())\n\t}\n\treturn ts\n}\n",
		"no tools()":        "func main() {}\n",
		"two returns":       "func tools() []server.ServerTool {\n\tif x {\n\t\treturn nil\n\t}\n\treturn []server.ServerTool{echoTool()}\n}\n",
		"does not parse":    "func tools() []server.ServerTool {\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := AddToolCalls([]byte("package main\n\n"+src), []string{"alertsTool", "fetchPageTool"})
			var te *ToolListError
			if !errors.As(err, &te) {
				t.Fatalf("err = %v, want a *ToolListError", err)
			}
			if msg := err.Error(); !strings.HasSuffix(msg, "so upgrade cannot add to it; add these lines to the list of tools it returns:\n\talertsTool(),\n\tfetchPageTool(),") {
				t.Errorf("message does not say which lines to add:\n%s", msg)
			}
		})
	}
}
