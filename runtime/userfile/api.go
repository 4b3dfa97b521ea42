// Package userfile reads and writes the users file: one "username:bcrypt-hash"
// line per user; blank lines and lines starting with '#' are ignored.
//
// STUB: this file fixes the exported API; the implementation replaces it.
package userfile

import "context"

// File is a users file on disk. It rereads the file when it changes, so edits
// take effect without a restart. It is safe for concurrent use.
type File struct{}

// Open returns the users file at path. It is an error if the file is
// malformed (the error names the file and line); a missing file is empty.
func Open(path string) (*File, error) { panic("unimplemented") }

// Authenticate reports whether password is username's password. For unknown
// users it still spends one bcrypt comparison. Passwords over 72 bytes fail.
func (f *File) Authenticate(ctx context.Context, username, password string) (bool, error) {
	panic("unimplemented")
}

// Stamp returns an opaque value that changes when username's password changes
// and ok=false when the user no longer exists. Tokens record it at issuance.
func (f *File) Stamp(username string) (stamp string, ok bool, err error) { panic("unimplemented") }

// Add adds username with password, or resets the password of an existing user,
// rewriting the file atomically with mode 0600.
func Add(path, username, password string) error { panic("unimplemented") }

// Remove removes username, rewriting the file atomically. It is an error if
// the user does not exist.
func Remove(path, username string) error { panic("unimplemented") }

// List returns the usernames in file order.
func List(path string) ([]string, error) { panic("unimplemented") }
