package upgrade

import (
	"fmt"
	"io/fs"
	"testing/fstest"

	"github.com/mcpgen/create-mcp-server/internal/gen"
)

// toolsTemplate is the template of tools.go, the file of a project's first
// tools.
const toolsTemplate = "tools.go.tmpl"

// ToolFiles returns, for each tool name in added, a file of its own,
// tools_<goname>.go, holding that tool's arguments, constructor and handler
// as the generator writes them into tools.go. It is how upgrade adds tools
// to a project without touching tools.go, which belongs to the user. a are
// the project's answers, added tools included; the files have
// gen.PolicyUser.
func ToolFiles(templates fs.FS, a gen.Answers, version string, added []string) ([]gen.File, error) {
	if len(added) == 0 {
		return nil, nil
	}
	tools, err := gen.ToolList(added)
	if err != nil {
		return nil, err
	}
	src, err := fs.ReadFile(templates, toolsTemplate)
	if err != nil {
		return nil, fmt.Errorf("render added tools: %w", err)
	}
	only := fstest.MapFS{toolsTemplate: {Data: src, Mode: 0o644}}
	var files []gen.File
	for _, t := range tools {
		one := a
		one.Tools = []string{t.Name}
		out, err := gen.Render(only, fstest.MapFS{}, one, version)
		if err != nil {
			return nil, fmt.Errorf("render tool %s: %w", t.Name, err)
		}
		for _, f := range out {
			if f.Path == "tools.go" {
				f.Path = "tools_" + t.Go + ".go"
				f.Policy = gen.PolicyUser
				files = append(files, f)
			}
		}
	}
	return files, nil
}
