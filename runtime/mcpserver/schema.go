package mcpserver

// Tools' input schemas, compiled once, and the check of a call's arguments
// against them.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// toolSchema is a tool's compiled input schema; nil schema means none to
// check (or one that does not compile, which is the tool author's bug and
// should not stop every call). flat, if set, is the same schema in the
// simple form most tools have (see flatSchema), checked much faster.
type toolSchema struct {
	schema *jsonschema.Schema
	flat   *flatSchema
}

func compileToolSchema(tool mcp.Tool) *toolSchema {
	raw := tool.RawInputSchema
	if len(raw) == 0 {
		var err error
		if raw, err = json.Marshal(tool.InputSchema); err != nil {
			return &toolSchema{}
		}
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return &toolSchema{}
	}
	c := jsonschema.NewCompiler()
	const loc = "mem:///input-schema.json"
	if err := c.AddResource(loc, doc); err != nil {
		return &toolSchema{}
	}
	sch, err := c.Compile(loc)
	if err != nil {
		return &toolSchema{}
	}
	return &toolSchema{schema: sch, flat: compileFlat(doc)}
}

// check returns the problems of args, none if they match.
//
// Arguments that a tool's flat schema accepts need nothing more; the full
// validator checks the others and words their problems.
//
// Arguments decoded from JSON-RPC (maps, slices, strings, float64 …) are
// checked as they are: the validator tells 2.0 (an integer) from 2.5 by
// value, so nothing is decoded twice. Values that are not JSON-shaped, such
// as a struct an in-process caller passed, are checked as the JSON they
// encode to.
func (ts *toolSchema) check(args any) []string {
	if ts.schema == nil {
		return nil
	}
	if args == nil {
		args = map[string]any{} // no arguments is an empty object
	}
	if ts.flat != nil && ts.flat.accepts(args) {
		return nil
	}
	err := ts.schema.Validate(args)
	if err != nil && notJSON(err) {
		value, derr := encodeJSON(args)
		if derr != nil {
			return []string{"arguments are not JSON"}
		}
		err = ts.schema.Validate(value)
	}
	if err == nil {
		return nil
	}
	verr, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return []string{err.Error()}
	}
	var problems []string
	leaves(verr, func(e *jsonschema.ValidationError) {
		problems = append(problems, describe(e))
	})
	return problems
}

// notJSON reports whether the validator met a Go value that JSON has no
// type for.
func notJSON(err error) bool {
	verr, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return false
	}
	found := false
	leaves(verr, func(e *jsonschema.ValidationError) {
		if _, ok := e.ErrorKind.(*kind.InvalidJsonValue); ok {
			found = true
		}
	})
	return found
}

// encodeJSON turns v into the JSON values the validator wants, numbers as
// json.Number.
func encodeJSON(v any) (any, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return jsonschema.UnmarshalJSON(bytes.NewReader(raw))
}

// flatSchema is an input schema of the form most tools have, and that
// mcp.WithInputSchema makes of a struct of plain fields: an object whose
// properties each have a primitive type (string, integer, number, boolean,
// or a list of them, with null for a pointer), some of them required, and
// no others if additionalProperties is false. Checking arguments against it
// is a few map lookups, against the general validator's microseconds on
// every tool call. It only ever answers "certainly valid": arguments it
// does not accept go to the general validator, which finds and words the
// problems, so the two can never disagree on what is valid.
type flatSchema struct {
	props    map[string][]string // property → the JSON types it may have
	required []string
	closed   bool // additionalProperties: false
}

// Keywords a flat schema may use besides its own: annotations, which do
// not change what is valid.
var annotations = []string{"title", "description", "default", "examples", "deprecated", "readOnly", "writeOnly", "$comment"}

// compileFlat returns the flat form of a decoded schema, nil if it uses
// anything more.
func compileFlat(doc any) *flatSchema {
	obj, ok := doc.(map[string]any)
	if !ok || obj["type"] != "object" {
		return nil
	}
	f := &flatSchema{props: map[string][]string{}}
	for k, v := range obj {
		switch k {
		case "type":
		case "$schema":
			// Drafts 6 and later agree on all of this (draft 4 does not
			// count 1.0 as an integer).
			if uri, _ := v.(string); !strings.Contains(uri, "draft-06") && !strings.Contains(uri, "draft-07") &&
				!strings.Contains(uri, "2019-09") && !strings.Contains(uri, "2020-12") {
				return nil
			}
		case "properties":
			props, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			for name, p := range props {
				types := flatTypes(p)
				if types == nil {
					return nil
				}
				f.props[name] = types
			}
		case "required":
			names, ok := v.([]any)
			if !ok {
				return nil
			}
			for _, n := range names {
				name, ok := n.(string)
				if !ok {
					return nil
				}
				f.required = append(f.required, name)
			}
		case "additionalProperties":
			open, ok := v.(bool)
			if !ok {
				return nil
			}
			f.closed = !open
		default:
			if !slices.Contains(annotations, k) {
				return nil
			}
		}
	}
	return f
}

// flatTypes returns the types a property schema allows, nil if it says
// anything more than its type and annotations.
func flatTypes(p any) []string {
	obj, ok := p.(map[string]any)
	if !ok {
		return nil
	}
	var types []string
	for k, v := range obj {
		switch {
		case k == "type":
			switch t := v.(type) {
			case string:
				types = []string{t}
			case []any:
				for _, e := range t {
					s, _ := e.(string)
					types = append(types, s)
				}
			}
		case !slices.Contains(annotations, k):
			return nil
		}
	}
	if len(types) == 0 {
		return nil // no type: anything goes, left to the validator
	}
	for _, t := range types {
		switch t {
		case "string", "integer", "number", "boolean", "null":
		default:
			return nil
		}
	}
	return types
}

// accepts reports whether args certainly match f. It sees only what
// encoding/json decodes into (a map, strings, float64, bool, nil); for
// other Go values it answers false.
func (f *flatSchema) accepts(args any) bool {
	m, ok := args.(map[string]any)
	if !ok {
		return false
	}
	for _, name := range f.required {
		if _, ok := m[name]; !ok {
			return false
		}
	}
	for name, v := range m {
		types, ok := f.props[name]
		if !ok {
			if f.closed {
				return false
			}
			continue
		}
		if !hasAnyType(v, types) {
			return false
		}
	}
	return true
}

// hasAnyType reports whether a decoded JSON value has one of the JSON
// Schema types.
func hasAnyType(v any, types []string) bool {
	for _, t := range types {
		switch v := v.(type) {
		case string:
			if t == "string" {
				return true
			}
		case bool:
			if t == "boolean" {
				return true
			}
		case nil:
			if t == "null" {
				return true
			}
		case float64:
			if t == "number" || t == "integer" && v == math.Trunc(v) && !math.IsInf(v, 0) {
				return true
			}
		}
	}
	return false
}

// leaves calls f for each most specific error of a validation error tree.
func leaves(e *jsonschema.ValidationError, f func(*jsonschema.ValidationError)) {
	if len(e.Causes) == 0 {
		f(e)
		return
	}
	for _, c := range e.Causes {
		leaves(c, f)
	}
}

var english = message.NewPrinter(language.English)

// describe says what is wrong in words a model (and a person) understands,
// naming the argument.
func describe(e *jsonschema.ValidationError) string {
	at := ""
	if len(e.InstanceLocation) > 0 {
		at = strings.Join(e.InstanceLocation, ".")
	}
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		return fmt.Sprintf("missing required %s %s", plural("argument", k.Missing), quoteList(prefixed(at, k.Missing)))
	case *kind.AdditionalProperties:
		return fmt.Sprintf("unknown %s %s", plural("argument", k.Properties), quoteList(prefixed(at, k.Properties)))
	case *kind.Type:
		return fmt.Sprintf("argument %q must be %s, not %s", at, strings.Join(k.Want, " or "), k.Got)
	}
	msg := e.ErrorKind.LocalizedString(english)
	if at == "" {
		return msg
	}
	return fmt.Sprintf("argument %q: %s", at, msg)
}

func prefixed(at string, names []string) []string {
	if at == "" {
		return names
	}
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = at + "." + n
	}
	return out
}

func plural(word string, items []string) string {
	if len(items) == 1 {
		return word
	}
	return word + "s"
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}
