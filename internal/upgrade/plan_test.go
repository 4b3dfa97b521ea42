package upgrade

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"

	"github.com/mcpgen/create-mcp-server/internal/gen"
)

// rendered returns files as gen.Render would: with a manifest and a merge
// base appended.
func rendered(t *testing.T, version string, files ...gen.File) []gen.File {
	t.Helper()
	m := gen.Manifest{GeneratorVersion: version, Answers: gen.Answers{Module: "m", Name: "n", Tools: []string{"echo"}}}
	ar := &txtar.Archive{Comment: []byte("base\n")}
	for _, f := range files {
		m.Files = append(m.Files, gen.ManifestFile{Path: f.Path, Policy: f.Policy, SHA256: gen.Hash(f.Data)})
		if f.Policy != gen.PolicyRuntime {
			ar.Files = append(ar.Files, txtar.File{Name: f.Path, Data: f.Data})
		}
	}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return append(files,
		gen.File{Path: gen.BasePath, Data: txtar.Format(ar), Policy: gen.PolicyState},
		gen.File{Path: gen.ManifestPath, Data: data, Policy: gen.PolicyState})
}

// state returns the manifest and base that rendered files record.
func state(t *testing.T, files []gen.File) (*gen.Manifest, map[string][]byte) {
	t.Helper()
	var m *gen.Manifest
	var base map[string][]byte
	for _, f := range files {
		switch f.Path {
		case gen.ManifestPath:
			var err error
			if m, err = gen.ParseManifest(f.Data); err != nil {
				t.Fatal(err)
			}
		case gen.BasePath:
			base = gen.ParseBase(f.Data)
		}
	}
	return m, base
}

func file(path, policy, data string) gen.File {
	return gen.File{Path: path, Policy: policy, Data: []byte(data), Mode: 0o644}
}

func TestPlan(t *testing.T) {
	const (
		merge   = gen.PolicyMerge
		user    = gen.PolicyUser
		runtime = gen.PolicyRuntime
	)
	tests := []struct {
		name    string
		old     []gen.File        // generated last time
		current map[string]string // on disk now
		next    []gen.File        // generated now
		want    Change            // the plan for the one file that matters
		inState bool              // whether the new manifest still lists the file
	}{
		{
			name:    "user file no longer generated is kept and still recorded",
			old:     []gen.File{file("tools_x.go", user, "x\n")},
			current: map[string]string{"tools_x.go": "mine\n"},
			want:    Change{Path: "tools_x.go", Action: Kept, Policy: user, Old: []byte("mine\n"), New: []byte("mine\n"), Note: "yours"},
			inState: true,
		},
		{
			name:    "merge file no longer generated and not edited is removed",
			old:     []gen.File{file("Makefile", merge, "all:\n")},
			current: map[string]string{"Makefile": "all:\n"},
			want:    Change{Path: "Makefile", Action: Removed, Policy: merge, Old: []byte("all:\n")},
		},
		{
			name:    "merge file no longer generated but edited is kept",
			old:     []gen.File{file("Makefile", merge, "all:\n")},
			current: map[string]string{"Makefile": "all: build\n"},
			want: Change{Path: "Makefile", Action: Kept, Policy: merge, Old: []byte("all: build\n"), New: []byte("all: build\n"),
				Note: "yours; no longer generated"},
		},
		{
			name:    "edited runtime file no longer generated is moved aside",
			old:     []gen.File{file("internal/a/a.go", runtime, "package a\n")},
			current: map[string]string{"internal/a/a.go": "package a // mine\n"},
			want: Change{Path: "internal/a/a.go", Action: Removed, Policy: runtime, Old: []byte("package a // mine\n"),
				Backup: "internal/a/a.go.user-edit"},
		},
		{
			name: "backup names never collide",
			old:  []gen.File{file("internal/a/a.go", runtime, "package a\n")},
			current: map[string]string{"internal/a/a.go": "package a // mine\n",
				"internal/a/a.go.user-edit": "older\n", "internal/a/a.go.user-edit.2": "older still\n"},
			next: []gen.File{file("internal/a/a.go", runtime, "package a // v2\n")},
			want: Change{Path: "internal/a/a.go", Action: Replaced, Policy: runtime, Old: []byte("package a // mine\n"),
				New: []byte("package a // v2\n"), Mode: 0o644, Backup: "internal/a/a.go.user-edit.3"},
			inState: true,
		},
		{
			name:    "a runtime file with CRLF line endings only is updated, and keeps them",
			old:     []gen.File{file("internal/a/a.go", runtime, "package a\n")},
			current: map[string]string{"internal/a/a.go": "package a\r\n"},
			next:    []gen.File{file("internal/a/a.go", runtime, "package a // v2\n")},
			want: Change{Path: "internal/a/a.go", Action: Updated, Policy: runtime, Old: []byte("package a\r\n"),
				New: []byte("package a // v2\r\n"), Mode: 0o644},
			inState: true,
		},
		{
			name:    "a CRLF file the generator did not change is unchanged",
			old:     []gen.File{file("README.md", merge, "a\nb\n")},
			current: map[string]string{"README.md": "a\r\nb\r\n"},
			next:    []gen.File{file("README.md", merge, "a\nb\n")},
			want:    Change{Path: "README.md", Action: Unchanged, Policy: merge, Old: []byte("a\r\nb\r\n"), New: []byte("a\r\nb\r\n"), Mode: 0o644},
			inState: true,
		},
		{
			name:    "an edited CRLF file is merged as text and keeps CRLF",
			old:     []gen.File{file("README.md", merge, "a\nb\nc\nd\n")},
			current: map[string]string{"README.md": "a\r\nb\r\nc\r\nd\r\nmine\r\n"},
			next:    []gen.File{file("README.md", merge, "A\nb\nc\nd\n")},
			want: Change{Path: "README.md", Action: Merged, Policy: merge, Old: []byte("a\r\nb\r\nc\r\nd\r\nmine\r\n"),
				New: []byte("A\r\nb\r\nc\r\nd\r\nmine\r\n"), Mode: 0o644},
			inState: true,
		},
		{
			name:    "deleted runtime file stays deleted",
			old:     []gen.File{file("internal/a/a_test.go", runtime, "package a\n")},
			current: map[string]string{},
			next:    []gen.File{file("internal/a/a_test.go", runtime, "package a // v2\n")},
			want:    Change{Path: "internal/a/a_test.go", Action: DeletedByUser, Policy: runtime, Mode: 0o644},
			inState: true,
		},
		{
			name:    "only the user changed it",
			old:     []gen.File{file("README.md", merge, "a\nb\n")},
			current: map[string]string{"README.md": "a\nb\nmine\n"},
			next:    []gen.File{file("README.md", merge, "a\nb\n")},
			want:    Change{Path: "README.md", Action: Unchanged, Policy: merge, Old: []byte("a\nb\nmine\n"), New: []byte("a\nb\nmine\n"), Mode: 0o644},
			inState: true,
		},
		{
			name:    "a new generated file where the user has the same file",
			current: map[string]string{".dockerignore": "x\n"},
			next:    []gen.File{file(".dockerignore", merge, "x\n")},
			want:    Change{Path: ".dockerignore", Action: Unchanged, Policy: merge, Old: []byte("x\n"), New: []byte("x\n"), Mode: 0o644},
			inState: true,
		},
		{
			name:    "a new generated file where the user has another file",
			current: map[string]string{".dockerignore": "mine\n"},
			next:    []gen.File{file(".dockerignore", merge, "x\n")},
			want: Change{Path: ".dockerignore", Action: Conflict, Policy: merge, Old: []byte("mine\n"), Mode: 0o644, Conflicts: 1,
				New: []byte("<<<<<<< yours\nmine\n||||||| base\n=======\nx\n>>>>>>> generator 0.2.0\n")},
			inState: true,
		},
		{
			name:    "a new user file where the user has one",
			current: map[string]string{"tools_y.go": "mine\n"},
			next:    []gen.File{file("tools_y.go", user, "generated\n")},
			want:    Change{Path: "tools_y.go", Action: Kept, Policy: user, Old: []byte("mine\n"), New: []byte("mine\n"), Mode: 0o644, Note: "yours"},
			inState: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, base := state(t, rendered(t, "0.1.0", tt.old...))
			current := map[string][]byte{}
			for p, d := range tt.current {
				current[p] = []byte(d)
			}
			r, err := Plan(current, m, base, rendered(t, "0.2.0", tt.next...))
			if err != nil {
				t.Fatal(err)
			}
			var got *Change
			for i := range r.Changes {
				if r.Changes[i].Path == tt.want.Path {
					got = &r.Changes[i]
				}
			}
			if got == nil {
				t.Fatalf("no change for %s in %+v", tt.want.Path, r.Changes)
			}
			if got.String() != tt.want.String() || string(got.Old) != string(tt.want.Old) || string(got.New) != string(tt.want.New) ||
				(got.New == nil) != (tt.want.New == nil) || got.Mode != tt.want.Mode || got.Backup != tt.want.Backup || got.Policy != tt.want.Policy {
				t.Errorf("plan =\n%+v\nwant\n%+v", *got, tt.want)
			}
			newM, err := gen.ParseManifest(r.Manifest)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := newM.Lookup(tt.want.Path); ok != tt.inState {
				t.Errorf("new manifest lists %s: %v, want %v", tt.want.Path, ok, tt.inState)
			}
			if newM.GeneratorVersion != "0.2.0" {
				t.Errorf("new manifest version %q", newM.GeneratorVersion)
			}
		})
	}
}

func TestPlanModuleRename(t *testing.T) {
	const (
		mainOld = "package main\n\nimport \"m/internal/b\"\n\n// x\n\n// y\n"
		mainNew = "package main\n\nimport \"n/internal/b\"\n\n// x\n\n// y\n"
		aOld    = "package a\n\nimport \"m/internal/b\"\n"
		aNew    = "package a\n\nimport \"n/internal/b\"\n"
	)
	old := rendered(t, "0.1.0", file("main.go", gen.PolicyMerge, mainOld), file("go.mod", gen.PolicyMerge, "module m\n\ngo 1.26\n"),
		file("internal/a/a.go", gen.PolicyRuntime, aOld), file("tools.go", gen.PolicyUser, "package main\n"))
	m, base := state(t, old)
	// The user renamed the module, and added a line to main.go.
	current := map[string][]byte{
		"main.go":         []byte(mainNew + "// mine\n"),
		"go.mod":          []byte("module n\n\ngo 1.26\n"),
		"internal/a/a.go": []byte(aNew),
		"tools.go":        []byte("package main\n"),
	}
	next := rendered(t, "0.2.0", file("main.go", gen.PolicyMerge, strings.Replace(mainNew, "// x", "// x2", 1)),
		file("go.mod", gen.PolicyMerge, "module n\n\ngo 1.26\n"), file("internal/a/a.go", gen.PolicyRuntime, aNew+"// v2\n"))
	r, err := PlanWith(current, m, base, next, Options{Rename: &ModuleRename{From: "m", To: "n"}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"main.go":         "merged main.go\n" + strings.Replace(mainNew, "// x", "// x2", 1) + "// mine\n",
		"go.mod":          "unchanged go.mod\nmodule n\n\ngo 1.26\n",
		"internal/a/a.go": "updated internal/a/a.go\n" + aNew + "// v2\n",
	}
	for _, c := range r.Changes {
		if w, ok := want[c.Path]; ok && c.String()+"\n"+string(c.New) != w {
			t.Errorf("%s:\n%s\n%s\nwant\n%s", c.Path, c, c.New, w)
		}
	}
	// The user file's base is recorded with the new module path, and
	// trusted next time.
	newM, err := gen.ParseManifest(r.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	tf, _ := newM.Lookup("tools.go")
	if b := gen.ParseBase(r.Base)["tools.go"]; tf.SHA256 != gen.Hash(b) {
		t.Errorf("tools.go: base %q does not match the manifest", b)
	}
}

func TestPlanUntrustedBase(t *testing.T) {
	old := rendered(t, "0.1.0", file("main.go", gen.PolicyMerge, "a\nb\nc\n"))
	m, _ := state(t, old)
	// A base that does not match the manifest (edited by hand, say) is not
	// used: the user's edit and the generator's then conflict as wholes
	// instead of merging on a wrong base.
	base := map[string][]byte{"main.go": []byte("a\nB\nc\n")}
	current := map[string][]byte{"main.go": []byte("a\nb\nc\nmine\n")}
	r, err := Plan(current, m, base, rendered(t, "0.2.0", file("main.go", gen.PolicyMerge, "new\na\nb\nc\n")))
	if err != nil {
		t.Fatal(err)
	}
	c := r.Changes[0]
	if c.Action != Conflict || !strings.Contains(string(c.New), "mine\n") || !strings.Contains(string(c.New), "new\n") {
		t.Errorf("plan = %s\n%s", c, c.New)
	}
}

func TestPlanRefusesUnresolvedConflicts(t *testing.T) {
	old := rendered(t, "0.1.0", file("main.go", gen.PolicyMerge, "a\n"))
	m, base := state(t, old)
	current := map[string][]byte{"main.go": []byte("<<<<<<< yours\nb\n=======\nc\n>>>>>>> generator 0.1.0\n")}
	_, err := Plan(current, m, base, rendered(t, "0.2.0", file("main.go", gen.PolicyMerge, "a\n")))
	var ue *UnresolvedError
	if !errors.As(err, &ue) || ue.Path != "main.go" || ue.Line != 1 {
		t.Errorf("Plan error = %v, want an UnresolvedError for main.go:1", err)
	}
}

func TestApply(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("keep.txt", "same\n")
	write("edit.txt", "old\n")
	write("gone.txt", "bye\n")
	write("internal/a/a.go", "mine\n")
	r := &Result{
		Changes: []Change{
			{Path: "keep.txt", Action: Unchanged, Old: []byte("same\n"), New: []byte("same\n")},
			{Path: "edit.txt", Action: Merged, Old: []byte("old\n"), New: []byte("new\n")},
			{Path: "gone.txt", Action: Removed, Old: []byte("bye\n")},
			{Path: "sub/new.txt", Action: Added, New: []byte("hello\n"), Mode: 0o755},
			{Path: "internal/a/a.go", Action: Replaced, Old: []byte("mine\n"), New: []byte("theirs\n"), Backup: "internal/a/a.go.user-edit"},
		},
		Manifest: []byte("{}\n"),
		Base:     []byte("base\n"),
	}
	if err := Apply(dir, r); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"keep.txt": "same\n", "edit.txt": "new\n", "sub/new.txt": "hello\n",
		"internal/a/a.go": "theirs\n", "internal/a/a.go.user-edit": "mine\n",
		gen.ManifestPath: "{}\n", gen.BasePath: "base\n",
	}
	got := map[string]string{}
	modes := map[string]os.FileMode{}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, _ := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		info, _ := d.Info()
		got[filepath.ToSlash(rel)] = string(data)
		modes[filepath.ToSlash(rel)] = info.Mode().Perm()
		return nil
	})
	if len(got) != len(want) {
		t.Errorf("files after Apply = %q, want %q", got, want)
	}
	for p, w := range want {
		if got[p] != w {
			t.Errorf("%s = %q, want %q", p, got[p], w)
		}
	}
	if modes["edit.txt"] != 0o600 || modes["sub/new.txt"] != 0o755 {
		t.Errorf("modes: edit.txt %v (want the old -rw-------), sub/new.txt %v (want -rwxr-xr-x)", modes["edit.txt"], modes["sub/new.txt"])
	}
}

func TestApplyRejectsPathsOutsideTheProject(t *testing.T) {
	dir := t.TempDir()
	r := &Result{Changes: []Change{{Path: "../escape.txt", Action: Added, New: []byte("x\n")}}}
	if err := Apply(filepath.Join(dir, "p"), r); err == nil {
		t.Fatal("Apply wrote outside the project")
	}
	if _, err := os.Stat(filepath.Join(dir, "escape.txt")); !os.IsNotExist(err) {
		t.Errorf("escape.txt exists: %v", err)
	}
}

func TestReadProject(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{
		"main.go":                   "package main\n",
		"internal/a/a.go":           "package a\n",
		"internal/a/a.go.user-edit": "older\n",
		"notes.txt":                 "not generated\n",
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m := &gen.Manifest{Files: []gen.ManifestFile{
		{Path: "main.go", Policy: gen.PolicyMerge},
		{Path: "Dockerfile", Policy: gen.PolicyMerge}, // deleted by the user
		{Path: "internal/a/a.go", Policy: gen.PolicyRuntime},
	}}
	next := []gen.File{file("new.txt", gen.PolicyMerge, "x\n"), file(gen.ManifestPath, gen.PolicyState, "{}")}
	got, err := ReadProject(dir, m, next)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for p := range got {
		names = append(names, p)
	}
	slices.Sort(names)
	// Generated files that exist, and backups beside runtime files; not the
	// user's other files, not absent ones, not the state.
	want := []string{"internal/a/a.go", "internal/a/a.go.user-edit", "main.go"}
	if !slices.Equal(names, want) {
		t.Errorf("ReadProject read %q, want %q", names, want)
	}

	m.Files = append(m.Files, gen.ManifestFile{Path: "../outside", Policy: gen.PolicyMerge})
	if _, err := ReadProject(dir, m, nil); err == nil {
		t.Error("ReadProject accepted a manifest path outside the project")
	}
}

// TestPlanMergeFunc checks that Options.Merge replaces the line merge of
// the file it names, edited or not, and that its warning and backup are
// reported.
func TestPlanMergeFunc(t *testing.T) {
	old := rendered(t, "0.1.0", file("main.go", gen.PolicyMerge, "a\n"), file("README.md", gen.PolicyMerge, "r\n"))
	m, base := state(t, old)
	next := rendered(t, "0.2.0", file("main.go", gen.PolicyMerge, "b\n"), file("README.md", gen.PolicyMerge, "r2\n"))
	var calls []string
	opts := Options{Merge: map[string]MergeFunc{
		"main.go": func(b, yours, theirs []byte, l Labels) (MergeResult, error) {
			calls = append(calls, string(b)+"|"+string(yours)+"|"+string(theirs))
			return MergeResult{Data: []byte("custom\n"), Warning: "do this by hand", KeepOld: true}, nil
		},
		"README.md": func(b, yours, theirs []byte, l Labels) (MergeResult, error) {
			calls = append(calls, "README.md")
			return MergeResult{Data: theirs}, nil
		},
	}}
	r, err := PlanWith(map[string][]byte{"main.go": []byte("mine\n"), "README.md": []byte("r\n")}, m, base, next, opts)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(calls)
	if want := []string{"README.md", "a\n|mine\n|b\n"}; !slices.Equal(calls, want) {
		t.Errorf("merge called with %q, want %q", calls, want)
	}
	c := r.Changes[slices.IndexFunc(r.Changes, func(c Change) bool { return c.Path == "main.go" })]
	if string(c.New) != "custom\n" || c.Action != Merged {
		t.Errorf("main.go: %s %q, want merged custom", c.Action, c.New)
	}
	if want := []string{"merged main.go", "WARNING: main.go as it was is kept at main.go.user-edit (not compiled)", "WARNING: main.go: do this by hand"}; !slices.Equal(c.Lines(), want) {
		t.Errorf("report = %q, want %q", c.Lines(), want)
	}
}
