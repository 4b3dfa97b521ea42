package upgrade

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/mcpgen/create-mcp-server/internal/gen"
)

// ReadProject reads the files of the project in dir that Plan looks at:
// every file m lists or next would write, and existing backups of runtime
// files (so that new backups get free names). Absent files are left out.
func ReadProject(dir string, m *gen.Manifest, next []gen.File) (map[string][]byte, error) {
	paths := map[string]bool{}
	dirs := map[string]bool{}
	for _, f := range m.Files {
		paths[f.Path] = true
		if gen.Replaced(f.Policy) {
			dirs[path.Dir(f.Path)] = true
		}
	}
	for _, f := range next {
		if f.Policy == gen.PolicyState {
			continue
		}
		paths[f.Path] = true
		if gen.Replaced(f.Policy) {
			dirs[path.Dir(f.Path)] = true
		}
	}
	for d := range dirs {
		if !fs.ValidPath(d) {
			continue // reported below, with the file
		}
		entries, err := os.ReadDir(filepath.Join(dir, filepath.FromSlash(d)))
		if err != nil && !errors.Is(err, fs.ErrNotExist) && !isBlocked(dir, d+"/x") {
			return nil, fmt.Errorf("read project: %w", err)
		}
		for _, e := range entries {
			if strings.Contains(e.Name(), BackupSuffix) {
				paths[path.Join(d, e.Name())] = true
			}
		}
	}
	current := make(map[string][]byte, len(paths))
	for p := range paths {
		if !fs.ValidPath(p) || p == "." {
			return nil, fmt.Errorf("read project: manifest lists %q, which is not a path inside the project", p)
		}
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
		if errors.Is(err, fs.ErrNotExist) || err != nil && isBlocked(dir, p) {
			// Absent; if the upgrade would write it, CheckPaths says
			// what is in the way.
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read project: %w", err)
		}
		current[p] = data
	}
	return current, nil
}

// Apply carries out r in the project in dir. It first writes every new
// content (and every backup) to a temporary file beside its target, then
// renames them all into place and removes files that go away, and writes
// the new merge base and manifest last. If anything fails before the
// renames, the project is untouched; if Apply is interrupted after them, the
// old manifest and base are still in place and running the upgrade again
// finishes the job (files already upgraded then merge as unchanged).
func Apply(dir string, r *Result) error {
	if err := CheckPaths(dir, r); err != nil {
		return err
	}
	type write struct {
		path string
		data []byte
		mode fs.FileMode
		tmp  string
	}
	var writes []*write
	var removes []string
	for _, c := range r.Changes {
		if !fs.ValidPath(c.Path) {
			return fmt.Errorf("apply upgrade: %q is not a path inside the project", c.Path)
		}
		mode := existingMode(dir, c.Path, c.Mode)
		if c.Backup != "" {
			writes = append(writes, &write{path: c.Backup, data: c.Old, mode: mode})
		}
		switch {
		case !c.Writes():
		case c.New != nil:
			writes = append(writes, &write{path: c.Path, data: c.New, mode: mode})
		default:
			removes = append(removes, c.Path)
		}
	}

	cleanup := func() {
		for _, w := range writes {
			if w.tmp != "" {
				os.Remove(w.tmp)
			}
		}
	}
	for _, w := range writes {
		tmp, err := writeTemp(filepath.Join(dir, filepath.FromSlash(w.path)), w.data, w.mode)
		if err != nil {
			cleanup()
			return fmt.Errorf("apply upgrade (nothing changed): %w", err)
		}
		w.tmp = tmp
	}
	for i, w := range writes {
		if err := os.Rename(w.tmp, filepath.Join(dir, filepath.FromSlash(w.path))); err != nil {
			for _, w := range writes[i:] {
				os.Remove(w.tmp)
			}
			return fmt.Errorf("apply upgrade (interrupted; run it again): %w", err)
		}
	}
	for _, p := range removes {
		if err := os.Remove(filepath.Join(dir, filepath.FromSlash(p))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("apply upgrade (interrupted; run it again): %w", err)
		}
	}
	for _, s := range []struct {
		path string
		data []byte
	}{{gen.BasePath, r.Base}, {gen.ManifestPath, r.Manifest}} {
		if old, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(s.path))); err == nil && bytes.Equal(old, s.data) {
			continue // an upgrade that changes nothing touches nothing
		}
		if err := writeFile(filepath.Join(dir, filepath.FromSlash(s.path)), s.data, 0o644); err != nil {
			return fmt.Errorf("apply upgrade (files written, state not recorded; run it again): %w", err)
		}
	}
	return nil
}

// CheckPaths returns an error naming the first thing in the project in dir
// that keeps applying r from writing, backing up or removing a file there
// safely:
//
//   - The file is a symbolic link. Upgrade neither replaces a link by a
//     regular file (the link would be lost) nor writes through it (its
//     target may be outside the project, or shared with other projects
//     that did not ask for the upgrade).
//   - One of its parent directories is a symbolic link: upgrade would write
//     through it, for the same reasons.
//   - One of its parent directories is a file (the user's deploy or docs
//     where a newer generator puts a directory): upgrade cannot write there
//     without losing the file.
//
// Nothing is written before CheckPaths passes.
func CheckPaths(dir string, r *Result) error {
	for _, c := range r.Changes {
		if !c.Writes() && c.Backup == "" {
			continue
		}
		if !fs.ValidPath(c.Path) {
			return fmt.Errorf("apply upgrade: %q is not a path inside the project", c.Path)
		}
		if p, fi := blocker(dir, c.Path); fi != nil {
			name := filepath.Join(dir, filepath.FromSlash(p))
			if fi.Mode()&fs.ModeSymlink != 0 {
				to, _ := os.Readlink(name)
				target, err := filepath.EvalSymlinks(name)
				if err != nil {
					target = "$(readlink -f " + name + ")"
				}
				return fmt.Errorf("%s is a symbolic link (to %s), and upgrade would write %s through it (%s); "+
					"upgrade writes nothing through a link to a directory. Replace the link by a copy of its directory "+
					"(rm %s && cp -R %s %s), run upgrade again, then bring the changes to the linked directory yourself; nothing changed",
					name, to, c.Path, c.Action, name, target, name)
			}
			return fmt.Errorf("%s is a file, but create-mcp-server %s puts a directory there, with %s; "+
				"rename your file or move it away, then run upgrade again; nothing changed",
				name, r.To, filesUnder(r, p))
		}
		name := filepath.Join(dir, filepath.FromSlash(c.Path))
		fi, err := os.Lstat(name)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			continue
		}
		to, _ := os.Readlink(name)
		return fmt.Errorf("%s is a symbolic link (to %s), and upgrade would change it (%s); "+
			"upgrade neither replaces a link nor writes through it. Replace the link by a copy of its file "+
			"(cp --remove-destination \"$(readlink -f %s)\" %s), run upgrade again, then bring the changes "+
			"to the linked file yourself; nothing changed", name, to, c.Action, name, name)
	}
	return nil
}

// blocker returns the first parent directory of the slash path p, inside
// the project in dir, that exists and is not a directory (a symbolic link
// or a file), with what Lstat says of it; or "", nil.
func blocker(dir, p string) (string, fs.FileInfo) {
	for i := range len(p) {
		if p[i] != '/' {
			continue
		}
		fi, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(p[:i])))
		if err != nil {
			return "", nil // absent: so is everything below it
		}
		if !fi.IsDir() {
			return p[:i], fi
		}
	}
	return "", nil
}

// isBlocked reports whether a parent directory of the slash path p, in the
// project in dir, is a file or a symbolic link to one, so that p cannot
// exist.
func isBlocked(dir, p string) bool {
	q, fi := blocker(dir, p)
	if fi == nil {
		return false
	}
	fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(q)))
	return err != nil || !fi.IsDir()
}

// filesUnder lists the files r writes under the directory p: "p/a and
// p/b", "p/a, p/b and 3 more".
func filesUnder(r *Result, p string) string {
	var names []string
	for _, c := range r.Changes {
		if strings.HasPrefix(c.Path, p+"/") && c.Writes() {
			names = append(names, c.Path)
		}
	}
	switch {
	case len(names) > 2:
		return fmt.Sprintf("%s, %s and %d more", names[0], names[1], len(names)-2)
	case len(names) == 2:
		return names[0] + " and " + names[1]
	}
	return strings.Join(names, "")
}

// existingMode returns the permission bits of the file at p in dir, or def
// (0o644 if zero) if there is none.
func existingMode(dir, p string, def fs.FileMode) fs.FileMode {
	if fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(p))); err == nil {
		return fi.Mode().Perm()
	}
	if def == 0 {
		return 0o644
	}
	return def.Perm()
}

// writeTemp writes data to a new temporary file in target's directory,
// creating the directory if needed, and returns the temporary file's name.
func writeTemp(target string, data []byte, mode fs.FileMode) (string, error) {
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return "", err
	}
	f, err := os.CreateTemp(filepath.Dir(target), "."+filepath.Base(target)+".upgrade-*")
	if err != nil {
		return "", err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), mode)
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("write %s: %w", target, err)
	}
	return f.Name(), nil
}

// writeFile replaces target with data through a temporary file and a rename.
func writeFile(target string, data []byte, mode fs.FileMode) error {
	tmp, err := writeTemp(target, data, mode)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, target); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
