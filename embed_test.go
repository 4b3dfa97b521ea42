package createmcpserver

import (
	"io/fs"
	"testing"
)

// TestEmbedded checks that the embedded trees hold what generation needs,
// including the dot-files that //go:embed skips without "all:".
func TestEmbedded(t *testing.T) {
	for _, name := range []string{".gitignore.tmpl", "go.mod.tmpl", "go.sum", "main.go.tmpl", "tools.go.tmpl", "added-tool/tools_TOOL.go.tmpl", "parts/tool.tmpl"} {
		if _, err := fs.Stat(Templates(), name); err != nil {
			t.Errorf("templates: %v", err)
		}
	}
	for _, name := range []string{"mcpauth/api.go", "userfile/api.go", "mcpauthtest"} {
		if _, err := fs.Stat(Runtime(), name); err != nil {
			t.Errorf("runtime: %v", err)
		}
	}
}
