package userfile

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/crypto/bcrypt"
)

// ValidatePassword reports whether password can be stored: 1 to 72 bytes.
func ValidatePassword(password string) error {
	if password == "" {
		return errors.New("empty password")
	}
	if len(password) > MaxPasswordLen {
		return fmt.Errorf("password is %d bytes long; bcrypt uses at most %d bytes and longer passwords are rejected, not truncated",
			len(password), MaxPasswordLen)
	}
	return nil
}

// add is Add with the bcrypt cost as a parameter, so tests can use
// bcrypt.MinCost.
func add(path, username, password string, cost int) error {
	if err := ValidateUsername(username); err != nil {
		return err
	}
	if err := ValidatePassword(password); err != nil {
		return err
	}
	target, p, data, err := load(path)
	if err != nil {
		return err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	eol := "\n"
	if p.crlf {
		eol = "\r\n"
	}
	entry := []byte(username + ":" + string(hash))

	var out bytes.Buffer
	found := false
	for _, l := range p.lines {
		if l.user != username {
			out.Write(l.raw)
			continue
		}
		found = true
		out.Write(entry)
		out.Write(lineEnding(l.raw))
	}
	if !found {
		if len(data) > 0 && data[len(data)-1] != '\n' {
			out.WriteString(eol)
		}
		out.Write(entry)
		out.WriteString(eol)
	}
	return writeAtomic(target, out.Bytes())
}

func remove(path, username string) error {
	target, p, _, err := load(path)
	if err != nil {
		return err
	}
	if _, ok := p.users[username]; !ok {
		return fmt.Errorf("user %q not found in %s", username, path)
	}
	var out bytes.Buffer
	for _, l := range p.lines {
		if l.user != username {
			out.Write(l.raw)
		}
	}
	return writeAtomic(target, out.Bytes())
}

func list(path string) ([]string, error) {
	_, p, _, err := load(path)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, l := range p.lines {
		if l.user != "" {
			names = append(names, l.user)
		}
	}
	return names, nil
}

// load reads and parses the users file at path for a rewrite. target is the
// file to replace: path with symbolic links resolved, so that a rewrite
// replaces the file a link points to rather than the link.
func load(path string) (target string, p *parsed, data []byte, err error) {
	target = path
	if t, err := filepath.EvalSymlinks(path); err == nil {
		target = t
	}
	_, data, err = readFile(target)
	if err != nil {
		return "", nil, nil, err
	}
	p, err = parse(path, data)
	if err != nil {
		return "", nil, nil, fmt.Errorf("%w (fix this line first; the file was not changed)", err)
	}
	return target, p, data, nil
}

// lineEnding returns the line ending at the end of raw: "\r\n", "\n" or none.
func lineEnding(raw []byte) []byte {
	switch {
	case bytes.HasSuffix(raw, []byte("\r\n")):
		return []byte("\r\n")
	case bytes.HasSuffix(raw, []byte("\n")):
		return []byte("\n")
	}
	return nil
}

// writeAtomic replaces the file at path with data: it writes a temporary file
// with mode 0600 in the same directory, syncs it, renames it over path and
// syncs the directory, so that after a crash the file is either the old or the
// new version, never a mix.
func writeAtomic(path string, data []byte) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return fmt.Errorf("write users file: %w", err)
	}
	renamed := false
	defer func() {
		if err != nil && !renamed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("write users file: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write users file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write users file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write users file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write users file: %w", err)
	}
	renamed = true
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("write users file: %s was replaced but may not survive a crash: %w", path, err)
	}
	return nil
}

// syncDir flushes the directory entry of a rename to disk. Windows cannot
// sync a directory (and does not need to).
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, fs.ErrInvalid) {
		return err
	}
	return nil
}
