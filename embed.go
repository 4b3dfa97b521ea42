// Package createmcpserver holds the files that create-mcp-server copies into
// every project it generates: the templates and the runtime packages. They
// are embedded in the binary, so the generator works offline and a given
// generator version always produces the same project.
package createmcpserver

import (
	"embed"
	"io/fs"
)

// The "all:" prefix keeps files whose names start with "." (.gitignore.tmpl).
//
//go:embed all:templates
var templates embed.FS

//go:embed runtime
var runtime embed.FS

// Templates returns the project templates, rooted at the templates directory.
func Templates() fs.FS { return sub(templates, "templates") }

// Runtime returns the runtime sources, rooted at the runtime directory: its
// top-level directories are the packages vendored into internal/.
func Runtime() fs.FS { return sub(runtime, "runtime") }

func sub(fsys fs.FS, dir string) fs.FS {
	s, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(err) // impossible: dir is a valid, embedded path
	}
	return s
}
