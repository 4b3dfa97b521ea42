package upgrade

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Identity constants of a main.go made before the command line moved into
// internal/mcpserver (create-mcp-server 0.1.0), and the fields of
// mcpserver.Options that took their place.
var identityFields = []struct{ Const, Field string }{
	{"serverName", "Name"},
	{"serverVersion", "Version"},
	{"serverDescription", "Description"},
}

// extensionPoints says, for each function of the old main.go's plumbing,
// which field of mcpserver.Options does its job now.
var extensionPoints = map[string]string{
	"newMCPServer": "ServerOptions or Setup", "stdio": "ServerOptions or Setup", "localUser": "ServerOptions or Setup",
	"serve": "Routes, Middleware or Flags", "serveConfig": "Flags", "requireUsers": "Flags",
	"envOr": "Flags", "envDuration": "Flags", "splitList": "Flags", "parseFlags": "Flags or Commands",
	"main": "Commands", "run": "Commands", "usage": "Commands", "progName": "Commands", "usageError": "Commands",
	"user": "Commands", "readPassword": "Commands", "promptPassword": "Commands", "minPasswordLen": "Commands",
}

// IsPlumbingMain reports whether src is a main.go of the old shape, which
// holds the command line itself (func run) instead of calling
// mcpserver.Main.
func IsPlumbingMain(src []byte) bool {
	f, err := parser.ParseFile(token.NewFileSet(), "main.go", src, parser.SkipObjectResolution)
	if err != nil {
		return false
	}
	_, ok := topDecls(f, src)["run"]
	return ok
}

// MigrateMain moves a main.go of the old shape, where the user's tools and
// identity sat among 400 lines of plumbing, to the new one (theirs, a short
// file calling mcpserver.Main(options())). A line merge of the two cannot
// work, so MigrateMain works on declarations (go/parser):
//
//   - the user's server name, version and description (the serverName,
//     serverVersion and serverDescription constants) go into the fields of
//     options(); if other code uses the constants, they are kept and
//     options() refers to them;
//   - the user's tools() replaces the new one, as it is;
//   - every top-level declaration the user added, with its doc comment,
//     follows, and so do the imports it needs;
//   - newMCPServer, which the old tests call, is kept as a one-line
//     function over options() when uses says another file of the package
//     refers to it;
//   - a plumbing declaration the user edited (or deleted) has no place in
//     the new file: the result keeps the user's file as it was beside it
//     (KeepOld) and its warning names the declarations and the field of
//     mcpserver.Options to use instead.
//
// base is the old main.go as generated (nil when unknown: then every
// plumbing declaration counts as edited). uses reports whether a file of
// the package other than main.go refers to an identifier.
func MigrateMain(base, yours, theirs []byte, uses func(ident string) bool) (MergeResult, error) {
	fset := token.NewFileSet()
	// With object resolution, to tell a use of a top-level name from a
	// local variable of the same name (see carryPlumbing).
	yf, err := parser.ParseFile(fset, "main.go", yours, parser.ParseComments)
	if err != nil {
		return MergeResult{Data: theirs, KeepOld: true,
			Warning: fmt.Sprintf("main.go did not parse (%v), so nothing of it could be carried into the new main.go", err)}, nil
	}
	tf, err := parser.ParseFile(fset, "main.go", theirs, parser.ParseComments|parser.SkipObjectResolution)
	if err != nil {
		return MergeResult{}, fmt.Errorf("new main.go: %w", err)
	}
	var baseDecls map[string]string
	baseIdentity := map[string]string{}
	if base != nil {
		if bf, err := parser.ParseFile(fset, "base.go", base, parser.ParseComments|parser.SkipObjectResolution); err == nil {
			baseDecls = topDecls(bf, base)
			bm := &migration{fset: fset, yours: base}
			for _, d := range bf.Decls {
				if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.CONST {
					for _, s := range g.Specs {
						for _, name := range specNames(s) {
							baseIdentity[name] = bm.identityValue(s, name)
						}
					}
				}
			}
		}
	}
	yourDecls := topDecls(yf, yours)
	theirDecls := topDecls(tf, theirs)
	m := &migration{fset: fset, yours: yours, theirs: theirs, yf: yf, tf: tf}

	// Sort the user's declarations: identity, tools(), added, or plumbing.
	var edited, clashing []string
	var added []ast.Decl // whole declarations, or GenDecls of added specs only
	identity := map[string]string{}
	for _, d := range yf.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			name := funcKey(d)
			switch {
			case name == ToolListFunc:
			case baseDecls == nil && extensionPoints[name] == "" && theirDecls[name] == "",
				baseDecls != nil && baseDecls[name] == "" && theirDecls[name] == "":
				added = append(added, d)
			case baseDecls != nil && baseDecls[name] == "":
				clashing = append(clashing, name)
			case baseDecls == nil || yourDecls[name] != baseDecls[name]:
				edited = append(edited, name)
			}
		case *ast.GenDecl:
			if d.Tok == token.IMPORT {
				continue
			}
			var specs []ast.Spec
			for _, s := range d.Specs {
				for _, name := range specNames(s) {
					switch {
					case slices.ContainsFunc(identityFields, func(f struct{ Const, Field string }) bool { return f.Const == name }):
						// Only what the user changed: the new file
						// already has the answers (perhaps changed by
						// this upgrade's --name or --description).
						if v := m.identityValue(s, name); v != baseIdentity[name] {
							identity[name] = v
						}
					case theirDecls[name] != "":
						if baseDecls == nil || baseDecls[name] == "" {
							clashing = append(clashing, name)
						}
					case baseDecls == nil && extensionPoints[name] == "", baseDecls != nil && baseDecls[name] == "":
						if !slices.Contains(specs, s) {
							specs = append(specs, s)
						}
					case baseDecls == nil || yourDecls[name] != baseDecls[name]:
						edited = append(edited, name)
					}
				}
			}
			if len(specs) == len(d.Specs) {
				added = append(added, d)
			} else if len(specs) > 0 {
				added = append(added, &ast.GenDecl{Tok: d.Tok, Specs: specs})
			}
		}
	}
	for name := range baseDecls {
		if yourDecls[name] == "" && theirDecls[name] == "" && name != ToolListFunc &&
			!slices.ContainsFunc(identityFields, func(f struct{ Const, Field string }) bool { return f.Const == name }) {
			edited = append(edited, name) // deleted counts as edited
		}
	}
	var carriedPlumbing []string
	added, carriedPlumbing = carryPlumbing(yf, theirDecls, added, uses)
	edited = slices.DeleteFunc(edited, func(name string) bool { return slices.Contains(carriedPlumbing, name) })
	slices.Sort(edited)
	edited = slices.Compact(edited)

	out, err := m.build(added, identity, uses)
	if err != nil {
		return MergeResult{Data: theirs, KeepOld: true,
			Warning: fmt.Sprintf("main.go could not be carried into the new shape (%v); the new main.go replaces it", err)}, nil
	}

	r := MergeResult{Data: out}
	var warnings []string
	if len(edited) > 0 {
		r.KeepOld = true
		var points []string
		for _, name := range edited {
			p := extensionPoints[name]
			if p == "" {
				p = "Options"
			}
			for _, f := range strings.Split(strings.ReplaceAll(p, " or ", ", "), ", ") {
				if !slices.Contains(points, f) {
					points = append(points, f)
				}
			}
		}
		slices.Sort(points)
		warnings = append(warnings, fmt.Sprintf("you changed %s, which main.go no longer has: the command line moved into internal/mcpserver, "+
			"which upgrades replace. Instead, set %s in options() (README.md shows how)",
			joinNames(edited), joinFields(points)))
	}
	if len(clashing) > 0 {
		r.KeepOld = true
		warnings = append(warnings, fmt.Sprintf("your %s clashed with the new main.go's and was not carried over", joinNames(clashing)))
	}
	if r.KeepOld {
		warnings = append(warnings, "your main.go as it was is kept beside it (not compiled)")
	}
	r.Warning = strings.Join(warnings, "; ")
	return r, nil
}

// carryPlumbing returns added with the plumbing declarations of yf (those
// neither added by the user nor in the new main.go) that are still needed:
// used by another file of the package (uses), by added or tools(), or by a
// declaration carried for that reason. A type comes with its methods. It
// also returns the names of the carried declarations.
func carryPlumbing(yf *ast.File, theirDecls map[string]string, added []ast.Decl, uses func(string) bool) ([]ast.Decl, []string) {
	type candidate struct {
		triggers []string // the names whose use brings the declaration along
		names    []string // the names it declares (funcKey for functions)
		decl     ast.Decl
	}
	have := map[ast.Node]bool{}
	var nodes []ast.Node // the carried code
	for _, d := range added {
		have[d] = true
		nodes = append(nodes, d)
		if g, ok := d.(*ast.GenDecl); ok {
			for _, s := range g.Specs {
				have[s] = true
			}
		}
	}
	if t := findFunc(yf, ToolListFunc); t != nil {
		nodes = append(nodes, t)
	}
	isIdentity := func(name string) bool {
		return slices.ContainsFunc(identityFields, func(f struct{ Const, Field string }) bool { return f.Const == name })
	}
	var cands []candidate
	for _, d := range yf.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			name := funcKey(d)
			if have[d] || name == ToolListFunc || name == "newMCPServer" || theirDecls[name] != "" {
				continue
			}
			trigger, _, _ := strings.Cut(name, ".") // a method comes with its type
			cands = append(cands, candidate{[]string{trigger}, []string{name}, d})
		case *ast.GenDecl:
			if d.Tok == token.IMPORT {
				continue
			}
			for _, s := range d.Specs {
				names := specNames(s)
				if have[s] || len(names) == 0 || slices.ContainsFunc(names, func(n string) bool { return isIdentity(n) || theirDecls[n] != "" }) {
					continue
				}
				cands = append(cands, candidate{names, names, &ast.GenDecl{Tok: d.Tok, Specs: []ast.Spec{s}}})
			}
		}
	}
	var carried []string
	needed := func(name string) bool {
		return uses(name) || refersTo(yf, nodes, name) || slices.Contains(carried, name)
	}
	done := make([]bool, len(cands))
	for more := true; more; {
		more = false
		for i, c := range cands {
			if done[i] || !slices.ContainsFunc(c.triggers, needed) {
				continue
			}
			done[i], more = true, true
			added = append(added, c.decl)
			nodes = append(nodes, c.decl)
			carried = append(carried, c.names...)
		}
	}
	return added, carried
}

// refersTo reports whether any of nodes, parts of f (parsed with object
// resolution), refers to a top-level declaration called name: an
// identifier that is neither a field selected (x.name) nor a local
// variable, parameter or field of that name.
func refersTo(f *ast.File, nodes []ast.Node, name string) bool {
	top := map[any]bool{}
	for _, d := range f.Decls {
		top[d] = true
		if g, ok := d.(*ast.GenDecl); ok {
			for _, s := range g.Specs {
				top[s] = true
			}
		}
	}
	found := false
	for _, n := range nodes {
		selected := map[*ast.Ident]bool{}
		ast.Inspect(n, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.SelectorExpr:
				selected[n.Sel] = true
			case *ast.Ident:
				if n.Name == name && !selected[n] && (n.Obj == nil || top[n.Obj.Decl]) {
					found = true
				}
			}
			return !found
		})
	}
	return found
}

// A MergeResult is what a MergeFunc makes of a file.
type MergeResult struct {
	Data      []byte // the new content
	Conflicts int    // conflict blocks in Data
	Warning   string // what the user has to do by hand, if anything
	// KeepOld asks for the user's file, as it was, to be kept beside the
	// new one (FILE.user-edit), because some of it could not be carried.
	KeepOld bool
}

type migration struct {
	fset          *token.FileSet
	yours, theirs []byte
	yf, tf        *ast.File
}

// text returns the source of n in the user's file, with its doc comment.
func (m *migration) text(n ast.Node, doc *ast.CommentGroup) string {
	start := n.Pos()
	if doc != nil {
		start = doc.Pos()
	}
	return string(m.yours[m.fset.Position(start).Offset:m.fset.Position(n.End()).Offset])
}

// identityValue returns the source of the value of the constant name in
// spec s.
func (m *migration) identityValue(s ast.Spec, name string) string {
	vs, ok := s.(*ast.ValueSpec)
	if !ok {
		return ""
	}
	for i, id := range vs.Names {
		if id.Name == name && i < len(vs.Values) {
			return m.text(vs.Values[i], nil)
		}
	}
	return ""
}

// build assembles the new main.go: theirs with the user's identity in
// options(), the user's tools(), the added declarations and the imports
// they need.
func (m *migration) build(added []ast.Decl, identity map[string]string, uses func(string) bool) ([]byte, error) {
	src := m.theirs
	type edit struct {
		start, end int
		text       string
	}
	var edits []edit
	off := func(p token.Pos) int { return m.fset.Position(p).Offset }

	// Carried code: the user's tools() and added declarations.
	var carried strings.Builder
	var carriedNodes []ast.Node
	for _, d := range added {
		switch d := d.(type) {
		case *ast.FuncDecl:
			carried.WriteString("\n" + m.text(d, d.Doc) + "\n")
		case *ast.GenDecl:
			if d.Lparen.IsValid() || d.TokPos.IsValid() {
				carried.WriteString("\n" + m.text(d, d.Doc) + "\n")
			} else { // only some specs of a declaration
				for _, s := range d.Specs {
					carried.WriteString("\n" + d.Tok.String() + " " + m.text(s, specDoc(s)) + "\n")
				}
			}
		}
		carriedNodes = append(carriedNodes, d)
	}
	yourTools := findFunc(m.yf, ToolListFunc)
	if theirTools := findFunc(m.tf, ToolListFunc); yourTools != nil && theirTools != nil {
		edits = append(edits, edit{off(theirTools.Pos()), off(theirTools.End()), m.text(yourTools, nil)})
		carriedNodes = append(carriedNodes, yourTools)
	}

	// Identity: into options(), or kept as constants when code uses them.
	keepConsts := false
	for _, f := range identityFields {
		if uses(f.Const) || usesIdent(carriedNodes, f.Const) {
			keepConsts = true
		}
	}
	lit := optionsLiteral(m.tf)
	if lit == nil {
		return nil, fmt.Errorf("the new main.go has no mcpserver.Options literal")
	}
	var consts []string
	for _, f := range identityFields {
		for _, e := range lit.Elts {
			kv, ok := e.(*ast.KeyValueExpr)
			if !ok {
				continue
			}
			if k, ok := kv.Key.(*ast.Ident); !ok || k.Name != f.Field {
				continue
			}
			value, changed := identity[f.Const]
			if !changed {
				value = string(m.theirs[off(kv.Value.Pos()):off(kv.Value.End())])
			}
			if keepConsts {
				consts = append(consts, "\t"+f.Const+" = "+value)
				value = f.Const
			}
			if value != string(m.theirs[off(kv.Value.Pos()):off(kv.Value.End())]) {
				edits = append(edits, edit{off(kv.Value.Pos()), off(kv.Value.End()), value})
			}
		}
	}
	if len(consts) > 0 {
		carried.WriteString("\n// The server's identity, shown to MCP clients.\nconst (\n" + strings.Join(consts, "\n") + "\n)\n")
	}
	if uses("newMCPServer") && findFunc(m.yf, "newMCPServer") != nil && !strings.Contains(carried.String(), "func newMCPServer(") {
		carried.WriteString("\n// newMCPServer returns the MCP server as serve runs it. create-mcp-server\n" +
			"// upgrade kept it when main.go moved to its short form, because other\n" +
			"// files of this package call it; options().NewMCPServer() is the same.\n" +
			"func newMCPServer() *server.MCPServer { return options().NewMCPServer() }\n")
	}

	// Imports the carried code needs that the new file lacks.
	inserted := carried.String()
	for _, e := range edits {
		inserted += "\n" + e.text
	}
	have := map[string]bool{}
	for _, is := range m.tf.Imports {
		have[is.Path.Value] = true
	}
	var imports, stdImports []string
	for _, is := range m.yf.Imports {
		if have[is.Path.Value] {
			continue
		}
		p, _ := strconv.Unquote(is.Path.Value)
		name := importName(p)
		if is.Name != nil {
			name = is.Name.Name
		}
		if name == "_" || name == "." || usesIdent(carriedNodes, name) || strings.Contains(inserted, name+".") {
			if first, _, _ := strings.Cut(p, "/"); !strings.Contains(first, ".") {
				stdImports = append(stdImports, "\t"+m.text(is, nil))
			} else {
				imports = append(imports, "\t"+m.text(is, nil))
			}
		}
	}
	if len(imports)+len(stdImports) > 0 {
		var last *ast.GenDecl
		for _, d := range m.tf.Decls {
			if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.IMPORT {
				last = g
			}
		}
		if last == nil || !last.Rparen.IsValid() {
			return nil, fmt.Errorf("the new main.go has no import block")
		}
		if len(stdImports) > 0 { // the standard library first, in a group of its own
			edits = append(edits, edit{off(last.Lparen) + 1, off(last.Lparen) + 1, "\n" + strings.Join(stdImports, "\n") + "\n"})
		}
		if len(imports) > 0 {
			edits = append(edits, edit{off(last.Rparen), off(last.Rparen), "\n" + strings.Join(imports, "\n") + "\n"})
		}
	}

	slices.SortFunc(edits, func(a, b edit) int { return b.start - a.start })
	out := slices.Clone(src)
	for _, e := range edits { // back to front keeps offsets valid
		out = slices.Concat(out[:e.start], []byte(e.text), out[e.end:])
	}
	out = append(bytes.TrimRight(out, "\n"), '\n')
	out = append(out, carried.String()...)
	formatted, err := format.Source(out)
	if err != nil {
		return nil, err
	}
	return formatted, nil
}

// topDecls returns the top-level declarations of f by name (methods as
// Type.Method), each with its source text without comments, normalized by
// gofmt, to tell whether the user changed it.
func topDecls(f *ast.File, src []byte) map[string]string {
	decls := map[string]string{}
	fset := token.NewFileSet()
	text := func(n ast.Node) string {
		var buf bytes.Buffer
		if err := format.Node(&buf, fset, n); err != nil {
			return fmt.Sprint(n)
		}
		return buf.String()
	}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			c := *d
			c.Doc = nil
			decls[funcKey(d)] = text(&c)
		case *ast.GenDecl:
			if d.Tok == token.IMPORT {
				continue
			}
			for _, s := range d.Specs {
				for _, name := range specNames(s) {
					decls[name] = d.Tok.String() + " " + text(stripSpecDoc(s))
				}
			}
		}
	}
	return decls
}

func funcKey(d *ast.FuncDecl) string {
	if d.Recv == nil || len(d.Recv.List) == 0 {
		return d.Name.Name
	}
	t := d.Recv.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	if ix, ok := t.(*ast.IndexExpr); ok {
		t = ix.X
	}
	if ix, ok := t.(*ast.IndexListExpr); ok {
		t = ix.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return id.Name + "." + d.Name.Name
	}
	return d.Name.Name
}

func specNames(s ast.Spec) []string {
	switch s := s.(type) {
	case *ast.ValueSpec:
		var names []string
		for _, n := range s.Names {
			names = append(names, n.Name)
		}
		return names
	case *ast.TypeSpec:
		return []string{s.Name.Name}
	}
	return nil
}

func specDoc(s ast.Spec) *ast.CommentGroup {
	switch s := s.(type) {
	case *ast.ValueSpec:
		return s.Doc
	case *ast.TypeSpec:
		return s.Doc
	}
	return nil
}

func stripSpecDoc(s ast.Spec) ast.Spec {
	switch s := s.(type) {
	case *ast.ValueSpec:
		c := *s
		c.Doc, c.Comment = nil, nil
		return &c
	case *ast.TypeSpec:
		c := *s
		c.Doc, c.Comment = nil, nil
		return &c
	}
	return s
}

func findFunc(f *ast.File, name string) *ast.FuncDecl {
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv == nil && fd.Name.Name == name {
			return fd
		}
	}
	return nil
}

// optionsLiteral finds the mcpserver.Options{...} literal of a new main.go.
func optionsLiteral(f *ast.File) *ast.CompositeLit {
	var lit *ast.CompositeLit
	ast.Inspect(f, func(n ast.Node) bool {
		if c, ok := n.(*ast.CompositeLit); ok && lit == nil {
			if sel, ok := c.Type.(*ast.SelectorExpr); ok && sel.Sel.Name == "Options" {
				lit = c
				return false
			}
		}
		return true
	})
	return lit
}

// usesIdent reports whether any of nodes refers to the identifier name.
func usesIdent(nodes []ast.Node, name string) bool {
	found := false
	for _, n := range nodes {
		ast.Inspect(n, func(n ast.Node) bool {
			if id, ok := n.(*ast.Ident); ok && id.Name == name {
				found = true
			}
			return !found
		})
	}
	return found
}

// importName is the package name an import path most likely declares:
// its last element without a major version suffix, a "go-" prefix or a
// "-go" suffix, cut at the first character an identifier cannot hold (as
// goimports assumes).
func importName(p string) string {
	elem := path.Base(p)
	if len(elem) >= 2 && elem[0] == 'v' && strings.Trim(elem[1:], "0123456789") == "" && path.Dir(p) != "." {
		elem = path.Base(path.Dir(p))
	}
	elem = strings.TrimPrefix(elem, "go-")
	elem = strings.TrimSuffix(strings.TrimSuffix(elem, "-go"), ".go")
	if i := strings.IndexFunc(elem, func(r rune) bool {
		return !(r == '_' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9')
	}); i >= 0 {
		elem = elem[:i]
	}
	return elem
}

func joinNames(names []string) string {
	q := make([]string, len(names))
	copy(q, names)
	switch len(q) {
	case 1:
		return q[0]
	default:
		return strings.Join(q[:len(q)-1], ", ") + " and " + q[len(q)-1]
	}
}

func joinFields(fields []string) string {
	q := make([]string, len(fields))
	for i, f := range fields {
		q[i] = "mcpserver.Options." + f
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}
