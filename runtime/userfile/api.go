// Package userfile reads and writes the users file, the list of people who may
// sign in to the server.
//
// # Format
//
// The file is plain text, one user per line:
//
//	# comments start with '#', after optional leading whitespace
//	alice:$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy
//
//	bob@example.com:$2y$05$...
//
// Each user line is a username, a colon and a bcrypt hash ("$2a$", "$2b$" or
// "$2y$", as written by the generated "user add" command or by htpasswd -nB).
// Blank lines and comments are ignored; whitespace around a line is ignored;
// lines may end in "\n" or "\r\n".
//
// A username is 1 to 64 bytes of ASCII letters, digits, '.', '_', '-' and
// '@' (so an e-mail address works); it is case sensitive, and can contain
// neither ':' nor whitespace. Each user appears once.
//
// Any other line is an error that names the file and the 1-based line, for
// example "users.txt:3: missing ":" between username and bcrypt hash". Errors
// never quote a hash or a password.
//
// # Passwords
//
// bcrypt uses at most 72 bytes of a password. Longer passwords are rejected,
// never truncated: Add refuses them and Authenticate never accepts them, so a
// password cannot be guessed from its first 72 bytes. Add also refuses empty
// passwords and hashes with bcrypt.DefaultCost.
//
// # Reloading
//
// A File watches the file on disk without a restart: a goroutine started
// by Open stats the file every PollInterval (250 ms) and rereads it if its
// modification time, size or identity (inode) changed; Close stops it.
// The methods that serve requests (Authenticate, Stamp, Len, Err, Stamps)
// read the last version loaded from memory and make no system call, so an
// edit by hand takes effect within PollInterval. Add and Remove replace the
// file by renaming a new one over it, which always changes its identity.
//
//   - A missing file has no users. Open accepts it (the server starts with
//     nobody able to sign in; callers can check Len), and deleting the file
//     later removes every user (logged at level WARN, as is a reload that
//     leaves no users).
//   - Open refuses a malformed file. If a later edit leaves the file
//     malformed, the File serves only the users whose lines still parse
//     (a user whose line appears twice is left out), logs the malformed
//     lines at level ERROR at every reload (message "users file rejected"
//     with path, users served and error; a clean reload logs "users file
//     reloaded" with path and users) and reports them from Err until the
//     file is fixed. A typo therefore never revives a removed user nor
//     keeps a removed one; it locks out only the users on the lines it
//     broke.
//   - A file that exists but cannot be read (permissions, I/O) has no
//     users until it can be read again: it is retried at every check, and
//     the error is logged ("users file rejected", once per distinct error)
//     and reported from Err.
//     Running "user add" as another user, leaving the file unreadable to
//     the server, therefore locks everybody out, visibly, rather than
//     leaving a removed user in.
//
// Stamps returns the users being served and a version that changes at
// every reload, so that a server can delete, for good, what it issued to
// users who are gone (see package mcpauth).
//
// Removing a user or changing their password changes their Stamp, which the
// authorization server records in every token it issues and compares on every
// request, so the user's tokens stop working as soon as the File has
// reloaded.
//
// # Rewriting
//
// Add, Remove and List are for command-line use. Add and Remove rewrite the
// file atomically: they write a temporary file with mode 0600 in the same
// directory, flush it to disk, rename it over the file and flush the
// directory, keeping comments, blank lines and the order of the other lines.
// They refuse to rewrite a malformed file, so nothing is lost. Two commands
// rewriting the same file at the same moment may lose one of the changes. The
// new file belongs to whoever ran the command: run it as the user the server
// runs as, or the server will log that it cannot read the file.
package userfile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// PollInterval is how often a File checks its file for a new version. It is
// the longest an edit of the file by hand takes to reach the server.
const PollInterval = 250 * time.Millisecond

// File is a users file on disk. It rereads the file when it changes, so edits
// take effect without a restart. It is safe for concurrent use. Close it
// when done.
type File struct {
	path   string
	state  atomic.Pointer[state]
	logger atomic.Pointer[slog.Logger]

	mu      sync.Mutex // serializes checks
	version uint64     // reloads so far, guarded by mu; copied into each state

	stop      chan struct{} // closed by Close
	done      chan struct{} // closed when watch returns
	closeOnce sync.Once

	dummyMu sync.Mutex
	dummies map[int][]byte // cost -> hash compared against for unknown users
}

// state is what a File serves.
type state struct {
	// fi identifies the version of the file that was last read (nil: the file
	// did not exist).
	fi os.FileInfo
	// good is the version being served: the one from fi, or, if err is set,
	// the last one that loaded.
	good *snapshot
	// err says why the version fi is not being served.
	err error
	// retry is set when err is an I/O error rather than a parse error: the
	// file is read again at the next check even if it looks unchanged.
	retry bool
	// version counts the states a File has served.
	version uint64
}

// noUsers is the snapshot of a file that cannot be read.
var noUsers = &snapshot{users: map[string]user{}, cost: bcrypt.DefaultCost}

// snapshot is one loaded version of the users file.
type snapshot struct {
	users map[string]user
	cost  int // the most common cost in the file, for dummy comparisons
}

// Open returns the users file at path and starts watching it (every
// PollInterval, until Close). It is an error if the file is malformed (the
// error, a *ParseError, names the file and line) or cannot be read. A
// missing file has no users.
func Open(path string) (*File, error) {
	return open(path, PollInterval)
}

// open is Open with the interval of the checks; with interval 0 nothing
// checks the file (tests call check themselves).
func open(path string, interval time.Duration) (*File, error) {
	fi, snap, err := read(path)
	if err != nil {
		return nil, err
	}
	f := &File{path: path, dummies: make(map[int][]byte), version: 1,
		stop: make(chan struct{}), done: make(chan struct{})}
	f.state.Store(&state{fi: fi, good: snap, version: 1})
	if interval > 0 {
		go f.watch(interval)
	} else {
		close(f.done)
	}
	return f, nil
}

// Close stops watching the file; the File keeps serving the version it
// last loaded. It always returns nil.
func (f *File) Close() error {
	f.closeOnce.Do(func() {
		close(f.stop)
		<-f.done
	})
	return nil
}

// SetLogger sets where the File logs reloads and reload errors (default
// slog.Default()). It never logs a hash or a password.
func (f *File) SetLogger(l *slog.Logger) {
	f.logger.Store(l)
}

// Authenticate reports whether password is username's password. A wrong
// password and an unknown user give the same result (false, nil) and take
// about the same time: for unknown users it still spends one bcrypt comparison
// against a dummy hash of the file's usual cost. Passwords over 72 bytes
// always fail. The error is non-nil only if ctx is done or the stored hash
// cannot be used; ctx is for cancellation only.
func (f *File) Authenticate(ctx context.Context, username, password string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if len(password) > MaxPasswordLen {
		return false, nil
	}
	snap := f.current().good
	u, ok := snap.users[username]
	if !ok {
		_ = bcrypt.CompareHashAndPassword(f.dummy(snap.cost), []byte(password))
		return false, nil
	}
	err := bcrypt.CompareHashAndPassword(u.hash, []byte(password))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
		return false, nil
	default:
		return false, fmt.Errorf("check password of user %q: %w", username, err)
	}
}

// Stamp returns an opaque value that changes when username's password changes
// and ok=false when the user no longer exists. Tokens record it at issuance;
// callers compare it on every request. It reads the version in memory: no
// bcrypt work, no system call, no allocation. The error is always nil
// today; a malformed edit is reported by Err, not here.
func (f *File) Stamp(username string) (stamp string, ok bool, err error) {
	u, ok := f.current().good.users[username]
	if !ok {
		return "", false, nil
	}
	return u.stamp, true, nil
}

// Len returns the number of users in the version of the file being served.
// A server should refuse to start when it is zero: nobody could sign in.
func (f *File) Len() int {
	return len(f.current().good.users)
}

// Err reports what is wrong with the file on disk: the malformed lines
// (errors.Join of *ParseError, one per line), whose users are not served,
// or the I/O error that keeps it from being read (then nobody is served).
// It is nil when the whole file is in use.
func (f *File) Err() error {
	return f.current().err
}

// Stamps returns the users being served, username → Stamp, and the
// version of that set: it changes whenever the file is reloaded. A server
// compares the version with the last one it acted on.
func (f *File) Stamps() (users map[string]string, version uint64) {
	st := f.current()
	users = make(map[string]string, len(st.good.users))
	for name, u := range st.good.users {
		users[name] = u.stamp
	}
	return users, st.version
}

// Add adds username with password, or resets the password of an existing user,
// rewriting the file atomically with mode 0600. It creates the file if it
// does not exist. The password must be 1 to 72 bytes long.
func Add(path, username, password string) error {
	return add(path, username, password, bcrypt.DefaultCost)
}

// Remove removes username, rewriting the file atomically. It is an error if
// the user does not exist.
func Remove(path, username string) error {
	return remove(path, username)
}

// List returns the usernames in file order. A missing file has no users.
func List(path string) ([]string, error) {
	return list(path)
}

// current returns the state to serve: the version last loaded.
func (f *File) current() *state {
	return f.state.Load()
}

// watch checks the file every interval until Close.
func (f *File) watch(interval time.Duration) {
	defer close(f.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
			f.check()
		}
	}
}

// unchanged reports whether the file on disk is still the version st.fi.
func (f *File) unchanged(st *state) bool {
	fi, err := os.Stat(f.path)
	if err != nil {
		return st.fi == nil && errors.Is(err, fs.ErrNotExist)
	}
	return sameVersion(st.fi, fi)
}

// check rereads the file if it changed since the version being served, or
// if that version could not be read.
func (f *File) check() {
	f.mu.Lock()
	defer f.mu.Unlock()
	old := f.state.Load()
	if !old.retry && f.unchanged(old) {
		return
	}
	fi, data, err := readFile(f.path)
	if err != nil {
		// Unreadable: nobody is served until it reads again. Logged once per
		// distinct error, since every check retries.
		st := &state{fi: old.fi, good: noUsers, err: err, retry: true, version: old.version}
		if old.good != noUsers {
			f.version++
			st.version = f.version
		}
		if old.err == nil || old.err.Error() != err.Error() {
			// Stable message and attributes: operators alert on them.
			f.log().Error("users file rejected",
				"path", f.path, "users", 0, "error", err)
		}
		f.state.Store(st)
		return
	}
	p, perrs := parseAll(f.path, data)
	f.version++
	st := &state{fi: fi, good: newSnapshot(p), version: f.version}
	if len(perrs) == 0 {
		level := slog.LevelInfo
		if len(p.users) == 0 { // emptied or deleted: nobody can sign in any more
			level = slog.LevelWarn
		}
		f.log().Log(context.Background(), level, "users file reloaded", "path", f.path, "users", len(p.users))
	} else {
		errs := make([]error, len(perrs))
		for i, e := range perrs {
			errs[i] = e
		}
		st.err = errors.Join(errs...)
		// Stable message and attributes: operators alert on them. The
		// users on the malformed lines cannot sign in until they are fixed.
		f.log().Error("users file rejected",
			"path", f.path, "users", len(p.users), "error", st.err)
	}
	f.state.Store(st)
}

func (f *File) log() *slog.Logger {
	if l := f.logger.Load(); l != nil {
		return l
	}
	return slog.Default()
}

// dummy returns a hash of the given cost to compare against for unknown
// users, so that they take as long as known ones.
func (f *File) dummy(cost int) []byte {
	f.dummyMu.Lock()
	defer f.dummyMu.Unlock()
	h, ok := f.dummies[cost]
	if !ok {
		var err error
		h, err = bcrypt.GenerateFromPassword([]byte("not the password of anyone"), cost)
		if err != nil { // cannot happen: cost comes from a valid hash or is DefaultCost
			panic(fmt.Sprintf("userfile: dummy bcrypt hash: %v", err))
		}
		f.dummies[cost] = h
	}
	return h
}

// sameVersion reports whether a and b describe the same version of a file.
// nil means the file does not exist.
func sameVersion(a, b os.FileInfo) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// read loads the users file at path. fi is nil if it does not exist.
func read(path string) (fi os.FileInfo, snap *snapshot, err error) {
	fi, data, err := readFile(path)
	if err != nil {
		return nil, nil, err
	}
	p, err := parse(path, data)
	if err != nil {
		return nil, nil, err
	}
	return fi, newSnapshot(p), nil
}

// readFile reads the file at path and returns its content with the FileInfo
// of the version read. A missing file has no content and a nil FileInfo.
func readFile(path string) (os.FileInfo, []byte, error) {
	fh, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read users file: %w", err)
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("read users file: %w", err)
	}
	data, err := io.ReadAll(fh)
	if err != nil {
		return nil, nil, fmt.Errorf("read users file: %w", err)
	}
	return fi, data, nil
}

func newSnapshot(p *parsed) *snapshot {
	counts := make(map[int]int)
	cost, best := bcrypt.DefaultCost, 0
	for _, u := range p.users {
		counts[u.cost]++
	}
	for c, n := range counts {
		if n > best || n == best && c > cost {
			cost, best = c, n
		}
	}
	return &snapshot{users: p.users, cost: cost}
}
