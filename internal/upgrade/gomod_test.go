package upgrade

import (
	"strings"
	"testing"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/semver"
)

const baseGoMod = `module example.com/weather

go 1.26.8

require (
	github.com/mark3labs/mcp-go v1.2.1
	golang.org/x/crypto v0.59.0
)

require (
	github.com/google/uuid v1.6.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
)
`

func TestMergeGoMod(t *testing.T) {
	nextGoMod := strings.NewReplacer(
		"mcp-go v1.2.1", "mcp-go v1.3.0",
		"golang.org/x/sys v0.50.0", "golang.org/x/sys v0.51.0",
		"go 1.26.8", "go 1.26.9",
	).Replace(baseGoMod)
	tests := []struct {
		name          string
		base, current string
		next          string
		want          string
	}{
		{
			name: "untouched project takes the new pins", base: baseGoMod, current: baseGoMod, next: nextGoMod,
			want: nextGoMod,
		},
		{
			name: "a user's requirement and comment are kept while pins move",
			base: baseGoMod,
			current: strings.Replace(baseGoMod, "\tgolang.org/x/crypto v0.59.0\n",
				"\tgolang.org/x/crypto v0.59.0\n\t// for the weather API\n\tgithub.com/example/weatherapi v0.4.0\n", 1),
			next: nextGoMod,
			// The block is sorted, as go mod tidy would; the comment moves
			// with its line.
			want: strings.Replace(nextGoMod, "require (\n\tgithub.com/mark3labs",
				"require (\n\t// for the weather API\n\tgithub.com/example/weatherapi v0.4.0\n\tgithub.com/mark3labs", 1),
		},
		{
			name:    "a version the user raised above the new pin stays",
			base:    baseGoMod,
			current: strings.Replace(baseGoMod, "mcp-go v1.2.1", "mcp-go v1.4.0", 1),
			next:    nextGoMod,
			want:    strings.Replace(nextGoMod, "mcp-go v1.3.0", "mcp-go v1.4.0", 1),
		},
		{
			name:    "a version the user raised below the new pin moves up",
			base:    baseGoMod,
			current: strings.Replace(baseGoMod, "mcp-go v1.2.1", "mcp-go v1.2.2", 1),
			next:    nextGoMod,
			want:    nextGoMod,
		},
		{
			name:    "the user's newer go version stays",
			base:    baseGoMod,
			current: strings.Replace(baseGoMod, "go 1.26.8", "go 1.27.0", 1),
			next:    nextGoMod,
			want:    strings.Replace(nextGoMod, "go 1.26.9", "go 1.27.0", 1),
		},
		{
			name:    "a renamed module keeps its name",
			base:    baseGoMod,
			current: strings.Replace(baseGoMod, "example.com/weather", "github.com/me/weather", 1),
			next:    nextGoMod,
			want:    strings.Replace(nextGoMod, "example.com/weather", "github.com/me/weather", 1),
		},
		{
			name:    "a module renamed by new answers is renamed",
			base:    baseGoMod,
			current: baseGoMod + "\nrequire github.com/example/weatherapi v0.4.0\n",
			next:    strings.Replace(nextGoMod, "example.com/weather", "example.com/forecast", 1),
			want:    strings.Replace(nextGoMod, "example.com/weather", "example.com/forecast", 1) + "\nrequire github.com/example/weatherapi v0.4.0\n",
		},
		{
			name:    "a new generator dependency is added to the right block",
			base:    baseGoMod,
			current: baseGoMod + "\nreplace github.com/example/weatherapi => ../weatherapi\n",
			next: strings.Replace(nextGoMod, "\tgolang.org/x/crypto v0.59.0\n",
				"\tgolang.org/x/crypto v0.59.0\n\tmodernc.org/sqlite v1.62.0\n", 1),
			want: strings.Replace(nextGoMod, "\tgolang.org/x/crypto v0.59.0\n",
				"\tgolang.org/x/crypto v0.59.0\n\tmodernc.org/sqlite v1.62.0\n", 1) +
				"\nreplace github.com/example/weatherapi => ../weatherapi\n",
		},
		{
			name: "a generator dependency the user removed comes back",
			base: baseGoMod,
			current: strings.Replace(baseGoMod, "\tgolang.org/x/crypto v0.59.0\n", "", 1) +
				"\nrequire github.com/example/weatherapi v0.4.0\n",
			next: nextGoMod,
			want: strings.Replace(nextGoMod, "require (\n\tgithub.com/mark3labs/mcp-go v1.3.0\n\tgolang.org/x/crypto v0.59.0\n)",
				"require github.com/mark3labs/mcp-go v1.3.0", 1) +
				"\nrequire (\n\tgithub.com/example/weatherapi v0.4.0\n\tgolang.org/x/crypto v0.59.0\n)\n",
		},
		{
			name:    "without a base, versions only move up",
			base:    "",
			current: strings.Replace(baseGoMod, "mcp-go v1.2.1", "mcp-go v1.9.0", 1),
			next:    nextGoMod,
			want:    strings.Replace(nextGoMod, "mcp-go v1.3.0", "mcp-go v1.9.0", 1),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var base []byte
			if tt.base != "" {
				base = []byte(tt.base)
			}
			got, err := MergeGoMod(base, []byte(tt.current), []byte(tt.next))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("MergeGoMod =\n%s\nwant\n%s\ndiff:\n%s", got, tt.want, UnifiedDiff("want", "got", []byte(tt.want), got))
			}
		})
	}
}

func TestMergeGoModReplace(t *testing.T) {
	base := "module m\n\ngo 1.26\n\nreplace a.example/x => a.example/x v1.0.0\n"
	next := "module m\n\ngo 1.26\n\nreplace b.example/y => b.example/y v2.0.0\n"
	current := base + "\nreplace c.example/z => ../z\n"
	got, err := MergeGoMod([]byte(base), []byte(current), []byte(next))
	if err != nil {
		t.Fatal(err)
	}
	want := "module m\n\ngo 1.26\n\nreplace c.example/z => ../z\n\nreplace b.example/y => b.example/y v2.0.0\n"
	if string(got) != want {
		t.Errorf("MergeGoMod =\n%s\nwant\n%s", got, want)
	}
}

func TestMergeGoModBadInput(t *testing.T) {
	if _, err := MergeGoMod([]byte(baseGoMod), []byte("module m\nrequire (\n"), []byte(baseGoMod)); err == nil {
		t.Error("MergeGoMod accepted a broken go.mod")
	}
}

func TestMergeGoSum(t *testing.T) {
	current := "golang.org/x/sys v0.50.0 h1:a=\ngolang.org/x/sys v0.50.0/go.mod h1:b=\n" +
		"github.com/example/weatherapi v0.4.0 h1:w=\ngithub.com/example/weatherapi v0.4.0/go.mod h1:x=\n"
	next := "golang.org/x/sys v0.9.0/go.mod h1:o=\ngolang.org/x/sys v0.51.0 h1:c=\ngolang.org/x/sys v0.51.0/go.mod h1:d=\n" +
		"golang.org/x/sys v0.50.0/go.mod h1:b=\n"
	want := "github.com/example/weatherapi v0.4.0 h1:w=\ngithub.com/example/weatherapi v0.4.0/go.mod h1:x=\n" +
		"golang.org/x/sys v0.9.0/go.mod h1:o=\n" +
		"golang.org/x/sys v0.50.0 h1:a=\ngolang.org/x/sys v0.50.0/go.mod h1:b=\n" +
		"golang.org/x/sys v0.51.0 h1:c=\ngolang.org/x/sys v0.51.0/go.mod h1:d=\n"
	if got := string(MergeGoSum([]byte(current), []byte(next))); got != want {
		t.Errorf("MergeGoSum =\n%s\nwant\n%s", got, want)
	}
}

// FuzzMergeGoMod checks, for any three go.mod files that parse, that the
// merge parses too and requires every module that the user's or the new
// go.mod requires, at a version no lower than either asks for.
func FuzzMergeGoMod(f *testing.F) {
	f.Add(baseGoMod, baseGoMod+"\nrequire example.com/a v1.0.0\n", strings.Replace(baseGoMod, "v1.2.1", "v1.3.0", 1))
	f.Add("module m\n", "module m\nrequire a.example/x v0.1.0 // indirect\n", "module m\n\ngo 1.26\nrequire a.example/x v0.2.0\n")
	f.Add("module m\nreplace a.example/x => ../x\n", "module m\n", "module m\nexclude a.example/x v1.0.0\n")
	f.Fuzz(func(t *testing.T, base, current, next string) {
		cf, err1 := modfile.Parse("cur", []byte(current), nil)
		nf, err2 := modfile.Parse("next", []byte(next), nil)
		if err1 != nil || err2 != nil {
			return
		}
		out, err := MergeGoMod([]byte(base), []byte(current), []byte(next))
		if err != nil {
			if strings.Contains(err.Error(), "does not parse") {
				t.Fatalf("MergeGoMod: %v", err)
			}
			return // e.g. a module path AddModuleStmt rejects
		}
		mf, err := modfile.Parse("merged", out, nil)
		if err != nil {
			t.Fatalf("merged go.mod does not parse: %v\n%s", err, out)
		}
		got := map[string]string{}
		for _, r := range mf.Require {
			got[r.Mod.Path] = r.Mod.Version
		}
		for _, f := range []*modfile.File{cf, nf} {
			for _, r := range f.Require {
				v, ok := got[r.Mod.Path]
				if !ok {
					t.Fatalf("merged go.mod lost %s:\n%s", r.Mod.Path, out)
				}
				if f == nf && semver.Compare(v, r.Mod.Version) < 0 {
					t.Fatalf("merged go.mod has %s %s, below the new %s:\n%s", r.Mod.Path, v, r.Mod.Version, out)
				}
			}
		}
	})
}
