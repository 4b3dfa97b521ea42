package gen

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var testFiles = []File{
	{Path: "a.txt", Data: []byte("a\n"), Mode: 0o644, Policy: PolicyMerge},
	{Path: "sub/b.txt", Data: []byte("b\n"), Mode: 0o644, Policy: PolicyMerge},
	{Path: "sub/deep/c.txt", Data: []byte("c\n"), Mode: 0o644, Policy: PolicyUser},
}

// tree returns every path under dir with its content ("/" for directories).
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			out[filepath.ToSlash(rel)] = "/"
			return nil
		}
		data, err := os.ReadFile(p)
		out[filepath.ToSlash(rel)] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWrite(t *testing.T) {
	tests := []struct {
		name    string
		setup   map[string]string // existing files in dir; nil means dir does not exist
		force   bool
		wantErr string
		want    map[string]string // the tree afterwards
	}{
		{
			name: "new directory",
			want: map[string]string{"a.txt": "a\n", "sub": "/", "sub/b.txt": "b\n", "sub/deep": "/", "sub/deep/c.txt": "c\n"},
		},
		{
			name:  "empty directory",
			setup: map[string]string{},
			want:  map[string]string{"a.txt": "a\n", "sub": "/", "sub/b.txt": "b\n", "sub/deep": "/", "sub/deep/c.txt": "c\n"},
		},
		{
			name:    "non-empty without force",
			setup:   map[string]string{"notes.md": "mine\n"},
			wantErr: "is not empty; choose another directory or pass --force (nothing existing is overwritten)",
			want:    map[string]string{"notes.md": "mine\n"},
		},
		{
			name:  "non-empty with force",
			setup: map[string]string{"notes.md": "mine\n", "sub/x.txt": "mine\n"},
			force: true,
			want: map[string]string{"notes.md": "mine\n", "sub": "/", "sub/x.txt": "mine\n", "a.txt": "a\n",
				"sub/b.txt": "b\n", "sub/deep": "/", "sub/deep/c.txt": "c\n"},
		},
		{
			name:    "force never overwrites",
			setup:   map[string]string{"notes.md": "mine\n", "a.txt": "mine\n", "sub/b.txt": "mine\n"},
			force:   true,
			wantErr: "already has files the project needs; move them away or choose another directory (nothing was written):\n\ta.txt\n\tsub/b.txt",
			want:    map[string]string{"notes.md": "mine\n", "a.txt": "mine\n", "sub": "/", "sub/b.txt": "mine\n"},
		},
		{
			name:    "file where a directory is needed",
			setup:   map[string]string{"sub": "a file\n"},
			force:   true,
			wantErr: "sub/b.txt",
			want:    map[string]string{"sub": "a file\n"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "proj")
			if tt.setup != nil {
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				for p, data := range tt.setup {
					name := filepath.Join(dir, p)
					os.MkdirAll(filepath.Dir(name), 0o755)
					if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			err := Write(context.Background(), dir, testFiles, tt.force)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("Write: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Write error = %v, want it to contain %q", err, tt.wantErr)
			}
			if got := tree(t, dir); !equalMaps(got, tt.want) {
				t.Errorf("tree after Write = %v, want %v", got, tt.want)
			}
			// Nothing may be left beside dir (the temporary directory).
			if entries, _ := os.ReadDir(filepath.Dir(dir)); len(entries) > 1 || len(entries) == 1 && entries[0].Name() != "proj" {
				t.Errorf("left beside the project: %v", entries)
			}
		})
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestWriteRollback checks that a failure half-way removes what was written
// (and only that), both into an existing directory and into a new one.
func TestWriteRollback(t *testing.T) {
	// A path that cannot be created fails the write after a.txt and sub/.
	files := slices.Concat(testFiles, []File{{Path: "sub/deep/c.txt/d.txt", Data: []byte("d\n")}})

	t.Run("existing directory", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "mine.txt"), []byte("mine\n"), 0o644)
		err := Write(context.Background(), dir, files, true)
		if err == nil {
			t.Fatal("Write succeeded")
		}
		if got := tree(t, dir); !equalMaps(got, map[string]string{"mine.txt": "mine\n"}) {
			t.Errorf("after a failed Write: %v", got)
		}
	})
	t.Run("new directory", func(t *testing.T) {
		parent := t.TempDir()
		err := Write(context.Background(), filepath.Join(parent, "proj"), files, false)
		if err == nil {
			t.Fatal("Write succeeded")
		}
		if got := tree(t, parent); len(got) != 0 {
			t.Errorf("after a failed Write: %v", got)
		}
	})
	t.Run("new directory with new parents", func(t *testing.T) {
		root := t.TempDir()
		err := Write(context.Background(), filepath.Join(root, "a", "b", "proj"), files, false)
		if err == nil {
			t.Fatal("Write succeeded")
		}
		if got := tree(t, root); len(got) != 0 {
			t.Errorf("after a failed Write: %v", got)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		dir := t.TempDir()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := Write(ctx, dir, testFiles, false); !errors.Is(err, context.Canceled) {
			t.Fatalf("Write with a cancelled context = %v", err)
		}
		if got := tree(t, dir); len(got) != 0 {
			t.Errorf("after a cancelled Write: %v", got)
		}
	})
}

func TestCheckDirNotEmpty(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "x"), nil, 0o644)
	if err := CheckDir(dir, nil, false); !errors.Is(err, ErrNotEmpty) {
		t.Errorf("CheckDir of a non-empty dir = %v, want ErrNotEmpty", err)
	}
	if err := CheckDir(dir, testFiles, true); err != nil {
		t.Errorf("CheckDir with force and no clash = %v", err)
	}
	file := filepath.Join(dir, "x")
	if err := CheckDir(file, nil, true); err == nil || !strings.Contains(err.Error(), "is not a directory") {
		t.Errorf("CheckDir of a file = %v", err)
	}
}
