package mcpserver

import (
	"encoding/json"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
)

// flatTestSchemas are input schemas, flat or not, keyed by what they are.
var flatTestSchemas = map[string]struct {
	schema string
	flat   bool // whether compileFlat takes it
}{
	"struct":            {`{"type":"object","properties":{"text":{"type":"string","description":"d"},"n":{"type":"integer"},"f":{"type":"number"},"b":{"type":["null","boolean"]}},"required":["text"],"additionalProperties":false}`, true},
	"open":              {`{"type":"object","properties":{"q":{"type":"string"}},"required":["q"]}`, true},
	"draft":             {`{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","properties":{"n":{"type":"integer","default":1,"title":"N"}},"additionalProperties":false}`, true},
	"empty":             {`{"type":"object","additionalProperties":false}`, true},
	"draft4":            {`{"$schema":"http://json-schema.org/draft-04/schema#","type":"object","properties":{"n":{"type":"integer"}}}`, false},
	"enum":              {`{"type":"object","properties":{"unit":{"type":"string","enum":["C","F"]}}}`, false},
	"min":               {`{"type":"object","properties":{"n":{"type":"integer","minimum":1}}}`, false},
	"array":             {`{"type":"object","properties":{"l":{"type":["null","array"],"items":{"type":"string"}}}}`, false},
	"nested":            {`{"type":"object","properties":{"p":{"type":"object","properties":{"x":{"type":"number"}}}}}`, false},
	"untyped":           {`{"type":"object","properties":{"x":{"description":"anything"}}}`, false},
	"pattern":           {`{"type":"object","patternProperties":{"^x":{"type":"string"}}}`, false},
	"schema additional": {`{"type":"object","additionalProperties":{"type":"string"}}`, false},
	"not object":        {`{"type":"string"}`, false},
}

// compileTestSchema compiles one of flatTestSchemas.
func compileTestSchema(t testing.TB, name string) *toolSchema {
	t.Helper()
	ts := compileToolSchema(mcp.Tool{Name: name, RawInputSchema: json.RawMessage(flatTestSchemas[name].schema)})
	if ts.schema == nil {
		t.Fatalf("schema %q does not compile", name)
	}
	return ts
}

// TestFlatSchema checks which schemas get the fast check, and that it
// never accepts arguments the full validator refuses.
func TestFlatSchema(t *testing.T) {
	for name, tt := range flatTestSchemas {
		if got := compileTestSchema(t, name).flat != nil; got != tt.flat {
			t.Errorf("schema %q: flat = %v, want %v", name, got, tt.flat)
		}
	}
	tests := []struct {
		schema, args string
		accepted     bool // by the fast check
	}{
		{"struct", `{"text":"x"}`, true},
		{"struct", `{"text":"x","n":3,"f":2.5,"b":null}`, true},
		{"struct", `{"text":"x","n":3.0,"b":true}`, true},
		{"struct", `{"text":"x","n":1e300}`, true},
		{"struct", `{"text":"x","n":2.5}`, false},
		{"struct", `{"text":"x","f":"2"}`, false},
		{"struct", `{"text":"x","b":0}`, false},
		{"struct", `{"text":null}`, false},
		{"struct", `{}`, false},
		{"struct", `{"text":"x","extra":1}`, false},
		{"struct", `{"text":"x","n":{"a":1}}`, false},
		{"struct", `{"text":["x"]}`, false},
		{"struct", `[]`, false},
		{"open", `{"q":"x","extra":[1,2]}`, true},
		{"open", `{"extra":1}`, false},
		{"draft", `{}`, true},
		{"draft", `{"n":-7}`, true},
		{"draft", `{"n":true}`, false},
		{"empty", `{}`, true},
		{"empty", `{"a":1}`, false},
	}
	for _, tt := range tests {
		ts := compileTestSchema(t, tt.schema)
		var args any
		if err := json.Unmarshal([]byte(tt.args), &args); err != nil {
			t.Fatal(err)
		}
		if got := ts.flat.accepts(args); got != tt.accepted {
			t.Errorf("%s: fast check of %s = %v, want %v", tt.schema, tt.args, got, tt.accepted)
		}
		if problems := ts.check(args); (len(problems) == 0) != validFull(ts, args) {
			t.Errorf("%s: check(%s) = %q, but the full validator says valid = %v", tt.schema, tt.args, problems, validFull(ts, args))
		}
	}
}

// validFull reports whether the general validator accepts args.
func validFull(ts *toolSchema, args any) bool {
	return ts.schema.Validate(args) == nil
}

// FuzzFlatSchema checks that the fast check accepts nothing the full
// validator refuses, for any JSON arguments.
func FuzzFlatSchema(f *testing.F) {
	for _, seed := range []string{`{"text":"x","n":3}`, `{"text":"x","n":2.5}`, `{"q":null,"b":false}`, `{}`, `{"text":"x","f":-0,"b":null,"extra":"y"}`} {
		f.Add(seed)
	}
	var flat []*toolSchema
	for name, tt := range flatTestSchemas {
		if tt.flat {
			flat = append(flat, compileTestSchema(f, name))
		}
	}
	f.Fuzz(func(t *testing.T, args string) {
		var v any
		if json.Unmarshal([]byte(args), &v) != nil {
			return
		}
		for _, ts := range flat {
			if ts.flat.accepts(v) && !validFull(ts, v) {
				t.Errorf("the fast check accepts %s, the validator does not: %v", args, ts.schema.Validate(v))
			}
		}
	})
}
