package cli

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/mcpgen/create-mcp-server/internal/gen"
)

// v010Project is a complete project written by create-mcp-server v0.1.0,
// the first release (see the comment at the top of the file).
const v010Project = "../../testdata/upgrade/v0.1.0/weather.txtar"

// writeFixture writes the project archived in the txtar file into a new
// directory and returns the directory. The merge base, itself a txtar, is
// stored quoted in the archive and unquoted here.
func writeFixture(t *testing.T, file string) string {
	t.Helper()
	ar, err := txtar.ParseFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "weather")
	for _, f := range ar.Files {
		data := f.Data
		if f.Name == gen.BasePath {
			if data, err = txtar.Unquote(data); err != nil {
				t.Fatalf("%s: %s: %v", file, f.Name, err)
			}
		}
		p := filepath.Join(dir, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestV010Fixture checks that the v0.1.0 project is intact: every file its
// manifest lists is there with the hash it was generated with, and the
// merge base holds what the manifest says. An upgrade test on a damaged
// fixture would test nothing.
func TestV010Fixture(t *testing.T) {
	dir := writeFixture(t, v010Project)
	m, err := gen.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.GeneratorVersion != "0.1.0" {
		t.Errorf("generator_version = %q, want 0.1.0", m.GeneratorVersion)
	}
	base, err := gen.ReadBase(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range m.Files {
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f.Path)))
		if err != nil {
			t.Errorf("%s: %v", f.Path, err)
			continue
		}
		if gen.Hash(data) != f.SHA256 {
			t.Errorf("%s differs from what v0.1.0 generated", f.Path)
		}
		if f.Policy == gen.PolicyMerge || f.Policy == gen.PolicyUser {
			if b, ok := base[f.Path]; !ok || gen.Hash(b) != f.SHA256 {
				t.Errorf("merge base lacks %s as generated", f.Path)
			}
		}
	}
	if len(m.Files) != 48 {
		t.Errorf("manifest lists %d files, want the 48 of v0.1.0", len(m.Files))
	}
}
