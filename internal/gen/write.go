package gen

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ErrNotEmpty matches (with errors.Is) the error of CheckDir and Write when
// the directory has entries and force is false.
var ErrNotEmpty = errors.New("directory is not empty")

type notEmptyError struct{ dir string }

func (e *notEmptyError) Error() string {
	return e.dir + " is not empty; choose another directory or pass --force (nothing existing is overwritten)"
}

func (e *notEmptyError) Is(target error) bool { return target == ErrNotEmpty }

// CheckDir reports whether files could be written to dir: dir must not exist,
// be empty, or (with force) contain none of the files' paths. It writes
// nothing. Call it before asking questions, and Write calls it again.
func CheckDir(dir string, files []File, force bool) error {
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return fmt.Errorf("%s exists and is not a directory; choose another directory", dir)
	}
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("read %s: %w", dir, err)
	case len(entries) == 0:
		return nil
	case !force:
		return &notEmptyError{dir}
	}
	var clashes []string
	for _, f := range files {
		if _, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(f.Path))); err == nil {
			clashes = append(clashes, f.Path)
		} else if !errors.Is(err, fs.ErrNotExist) {
			// Also catches a path whose parent is a file.
			clashes = append(clashes, f.Path)
		}
	}
	if len(clashes) > 0 {
		return fmt.Errorf("%s already has files the project needs; move them away or choose another directory (nothing was written):\n\t%s",
			dir, strings.Join(clashes, "\n\t"))
	}
	return nil
}

// Write writes files into dir, creating it if needed. It never overwrites
// or deletes anything that existed before it was called, and on any failure
// (including ctx being cancelled) removes what it created, so that an error
// leaves dir as it was.
//
// A new dir is assembled in a temporary directory beside it and renamed into
// place, so it appears complete or not at all. Into an existing directory
// (empty, or non-empty with force) files are created one by one with
// O_EXCL and removed again if a later one fails.
func Write(ctx context.Context, dir string, files []File, force bool) error {
	if err := CheckDir(dir, files, force); err != nil {
		return err
	}
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return writeNew(ctx, dir, files)
	}
	return writeInto(ctx, dir, files)
}

func writeNew(ctx context.Context, dir string, files []File) (err error) {
	parent := filepath.Dir(dir)
	existing := parent
	for {
		if _, err := os.Stat(existing); err == nil || filepath.Dir(existing) == existing {
			break
		}
		existing = filepath.Dir(existing)
	}
	parents, err := mkdirs(existing, parent)
	defer func() {
		if err != nil {
			for _, p := range slices.Backward(parents) {
				os.Remove(p)
			}
		}
	}()
	if err != nil {
		return fmt.Errorf("create %s: %w", parent, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return fmt.Errorf("create temporary directory: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil { // MkdirTemp uses 0700
		return err
	}
	if err := writeInto(ctx, tmp, files); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("move project into place: %w", err)
	}
	return nil
}

func writeInto(ctx context.Context, dir string, files []File) (err error) {
	var created []string // files and directories, in creation order
	defer func() {
		if err == nil {
			return
		}
		for _, p := range slices.Backward(created) {
			os.Remove(p)
		}
	}()
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("write %s: %w", dir, err)
		}
		name := filepath.Join(dir, filepath.FromSlash(f.Path))
		dirs, err := mkdirs(dir, filepath.Dir(name))
		created = append(created, dirs...)
		if err != nil {
			return err
		}
		if err := writeExcl(name, f.Data, f.Mode); err != nil {
			return err
		}
		created = append(created, name)
	}
	return nil
}

// mkdirs creates d and its missing parents below root, and returns the
// directories it created, outermost first.
func mkdirs(root, d string) ([]string, error) {
	var missing []string
	for p := d; p != root && len(p) > len(root); p = filepath.Dir(p) {
		if _, err := os.Lstat(p); err == nil {
			break
		}
		missing = append(missing, p)
	}
	var created []string
	for _, p := range slices.Backward(missing) {
		if err := os.Mkdir(p, 0o755); err != nil {
			return created, fmt.Errorf("create directory: %w", err)
		}
		created = append(created, p)
	}
	return created, nil
}

func writeExcl(name string, data []byte, mode fs.FileMode) error {
	if mode == 0 {
		mode = 0o644
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("create file: %w", err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name) // ours: O_EXCL created it
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}
