package upgrade

import (
	"bytes"
	"path"
	"strconv"
)

// A ModuleRename is a change of the project's module path since the last
// generation: the user changed the module line of go.mod (and, to keep the
// build working, the imports of the project's own packages).
type ModuleRename struct {
	From, To string // module paths: as recorded, as in go.mod now
}

// Apply returns data, the content of the file at slash path p, with the
// module path From changed to To where a module rename changes it: the
// module line of go.mod, and in Go files every quoted path that is From or
// starts with From + "/" (the imports of the project's own packages). Other
// files are returned as they are. Apply on a nil or zero r returns data.
func (r *ModuleRename) Apply(p string, data []byte) []byte {
	if r == nil || r.From == r.To || data == nil {
		return data
	}
	switch {
	case p == "go.mod":
		lines := bytes.SplitAfter(data, []byte("\n"))
		for i, l := range lines {
			body := bytes.TrimRight(l, "\r\n")
			f := bytes.Fields(body)
			if len(f) == 2 && string(f[0]) == "module" &&
				(string(f[1]) == r.From || string(f[1]) == strconv.Quote(r.From)) {
				lines[i] = append([]byte("module "+r.To), l[len(body):]...)
				break
			}
		}
		return bytes.Join(lines, nil)
	case path.Ext(p) == ".go":
		q := func(s string) []byte { return []byte(`"` + s) }
		data = bytes.ReplaceAll(data, append(q(r.From), '"'), append(q(r.To), '"'))
		return bytes.ReplaceAll(data, append(q(r.From), '/'), append(q(r.To), '/'))
	}
	return data
}

// reverse returns the rename back from To to From.
func (r *ModuleRename) reverse() *ModuleRename {
	if r == nil {
		return nil
	}
	return &ModuleRename{From: r.To, To: r.From}
}
