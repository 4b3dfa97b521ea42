package upgrade

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"slices"
	"strings"
)

// ToolListFunc is the function of a project's main.go that lists its
// tools: `func tools() []server.ServerTool { return []server.ServerTool{...} }`.
const ToolListFunc = "tools"

// ToolListError reports that AddToolCalls could not find the list to add
// to: the user restructured tools() (or removed it). Lines are what to add
// by hand.
type ToolListError struct {
	Reason string   // why the list was not found
	Lines  []string // the lines to add, e.g. "alertsTool(),"
}

func (e *ToolListError) Error() string {
	return fmt.Sprintf("%s, so upgrade cannot add to it; add %s to the list of tools it returns:\n\t%s",
		e.Reason, plural(len(e.Lines), "this line", "these lines"), strings.Join(e.Lines, "\n\t"))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// AddToolCalls returns src, the source of a main.go, with a call of each
// of funcs (constructor names such as "alertsTool") added to the end of the
// composite literal that tools() returns. Calls the list already has are
// not added twice. Everything else keeps its bytes: the calls are inserted
// at positions found with go/parser, each on a line of its own indented like
// the list's last element, and the file is gofmt'd afterwards only if it
// was gofmt-clean before. Whatever the user added to the list by hand,
// before or after the generated calls, stays where it is, so adding a tool
// never conflicts with tools added by hand.
//
// When tools() is not `return <literal>` (the user builds the list in
// another way), AddToolCalls returns a *ToolListError naming the lines to
// add by hand.
func AddToolCalls(src []byte, funcs []string) ([]byte, error) {
	lines := make([]string, len(funcs))
	for i, f := range funcs {
		lines[i] = f + "(),"
	}
	fail := func(format string, args ...any) error {
		return &ToolListError{Reason: fmt.Sprintf(format, args...), Lines: lines}
	}
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, "main.go", src, parser.ParseComments|parser.SkipObjectResolution)
	if err != nil {
		return nil, fail("main.go does not parse (%v)", err)
	}
	lit, err := toolListLiteral(file)
	if err != nil {
		return nil, fail("%v", err)
	}

	var missing []string
	for _, f := range funcs {
		if !slices.ContainsFunc(lit.Elts, func(e ast.Expr) bool { return isCallOf(e, f) }) {
			missing = append(missing, f)
		}
	}
	if len(missing) == 0 {
		return src, nil
	}
	gofmtClean := false
	if formatted, err := format.Source(src); err == nil && bytes.Equal(formatted, src) {
		gofmtClean = true
	}

	offset := func(p token.Pos) int { return fset.Position(p).Offset }
	lbrace, rbrace := offset(lit.Lbrace), offset(lit.Rbrace)
	var at int
	var text strings.Builder
	if lineStart := bytes.LastIndexByte(src[:rbrace], '\n') + 1; lineStart > lbrace &&
		len(bytes.TrimSpace(src[lineStart:rbrace])) == 0 {
		// A list of one element per line: new lines go just above the
		// closing brace, indented like the last element (or one tab
		// deeper than the brace when the list is empty).
		indent := string(src[lineStart:rbrace]) + "\t"
		if n := len(lit.Elts); n > 0 {
			last := offset(lit.Elts[n-1].Pos())
			ls := bytes.LastIndexByte(src[:last], '\n') + 1
			if w := src[ls:last]; len(bytes.TrimSpace(w)) == 0 {
				indent = string(w)
			}
		}
		at = lineStart
		for _, f := range missing {
			fmt.Fprintf(&text, "%s%s(),\n", indent, f)
		}
	} else {
		// A list on one line: {a(), b()} becomes {a(), b(), c()}.
		at = rbrace
		if n := len(lit.Elts); n > 0 {
			at = offset(lit.Elts[n-1].End())
			text.WriteString(", ")
		}
		for i, f := range missing {
			if i > 0 {
				text.WriteString(", ")
			}
			text.WriteString(f + "()")
		}
	}
	out := slices.Concat(src[:at], []byte(text.String()), src[at:])
	if gofmtClean {
		if out, err = format.Source(out); err != nil {
			return nil, fmt.Errorf("add tools to main.go: %w", err) // cannot happen: calls in a list
		}
	}
	return out, nil
}

// toolListLiteral finds the composite literal tools() returns: tools must
// be a function (no receiver) whose only return statement returns one
// composite literal.
func toolListLiteral(file *ast.File) (*ast.CompositeLit, error) {
	var fn *ast.FuncDecl
	for _, d := range file.Decls {
		if f, ok := d.(*ast.FuncDecl); ok && f.Recv == nil && f.Name.Name == ToolListFunc && f.Body != nil {
			fn = f
		}
	}
	if fn == nil {
		return nil, fmt.Errorf("main.go has no function %s()", ToolListFunc)
	}
	var returns []*ast.ReturnStmt
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		if _, ok := n.(*ast.FuncLit); ok {
			return false // a return inside a closure is not tools()'s
		}
		if r, ok := n.(*ast.ReturnStmt); ok {
			returns = append(returns, r)
		}
		return true
	})
	if len(returns) != 1 || len(returns[0].Results) != 1 {
		return nil, fmt.Errorf("%s() in main.go does not end in one return of its list", ToolListFunc)
	}
	lit, ok := returns[0].Results[0].(*ast.CompositeLit)
	if !ok {
		return nil, fmt.Errorf("%s() in main.go does not return a list literal ([]server.ServerTool{...})", ToolListFunc)
	}
	return lit, nil
}

// isCallOf reports whether e is a call of the function named name.
func isCallOf(e ast.Expr, name string) bool {
	call, ok := e.(*ast.CallExpr)
	if !ok {
		return false
	}
	id, ok := call.Fun.(*ast.Ident)
	return ok && id.Name == name
}
