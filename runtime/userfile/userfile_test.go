package userfile

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// hash returns a bcrypt hash of password at bcrypt.MinCost (fast).
func hash(t testing.TB, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// usersPath returns the path of a users file in a fresh directory.
func usersPath(t testing.TB) string {
	return filepath.Join(t.TempDir(), "users.txt")
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// edit rewrites path in place (same inode) and moves its modification time
// forward explicitly, so the change is visible even on file systems with
// coarse timestamps.
func edit(t testing.TB, path, content string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, content)
	mtime := fi.ModTime().Add(time.Second)
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func contents(t testing.TB, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// mustOpen opens the users file at path without its watcher: the test
// calls reload where the watcher would have run (TestWatch tests the
// watcher itself).
func mustOpen(t testing.TB, path string) *File {
	t.Helper()
	f, err := open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.SetLogger(slog.New(slog.DiscardHandler))
	t.Cleanup(func() { f.Close() })
	return f
}

// reload makes f look at its file now, as its watcher does every
// PollInterval.
func reload(f *File) {
	f.check()
}

func authenticate(t testing.TB, f *File, username, password string) bool {
	t.Helper()
	ok, err := f.Authenticate(context.Background(), username, password)
	if err != nil {
		t.Fatalf("Authenticate(%q): %v", username, err)
	}
	return ok
}

func TestOpenParses(t *testing.T) {
	h := hash(t, "pw")
	hy := "$2y$" + strings.TrimPrefix(h, "$2a$") // as written by htpasswd -B
	tests := []struct {
		name    string
		content string
		want    []string
	}{
		{"empty", "", nil},
		{"comments and blank lines", "# users\n\n   # indented comment\n\t\nalice:" + h + "\n\n# end\n", []string{"alice"}},
		{"CRLF", "# c\r\nalice:" + h + "\r\nbob:" + h + "\r\n", []string{"alice", "bob"}},
		{"no final newline", "alice:" + h + "\nbob:" + h, []string{"alice", "bob"}},
		{"byte order mark", "\uFEFFalice:" + h + "\n", []string{"alice"}},
		{"whitespace around line", "  alice:" + h + " \t\n", []string{"alice"}},
		{"2y hash", "alice:" + hy + "\n", []string{"alice"}},
		{"username characters", "a.b_c-d@example.com:" + h + "\nZ9:" + h + "\n", []string{"a.b_c-d@example.com", "Z9"}},
		{"64-byte username", strings.Repeat("u", 64) + ":" + h + "\n", []string{strings.Repeat("u", 64)}},
		{"case sensitive", "alice:" + h + "\nAlice:" + h + "\n", []string{"alice", "Alice"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := usersPath(t)
			writeFile(t, path, tt.content)
			f := mustOpen(t, path)
			if got := f.Len(); got != len(tt.want) {
				t.Errorf("Len() = %d, want %d", got, len(tt.want))
			}
			for _, u := range tt.want {
				if _, ok, _ := f.Stamp(u); !ok {
					t.Errorf("user %q missing", u)
				}
			}
			names, err := List(path)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(names, ",") != strings.Join(tt.want, ",") {
				t.Errorf("List() = %q, want %q", names, tt.want)
			}
		})
	}
}

func TestOpenMissingFileHasNoUsers(t *testing.T) {
	path := usersPath(t)
	f := mustOpen(t, path)
	if f.Len() != 0 {
		t.Errorf("Len() = %d, want 0", f.Len())
	}
	if authenticate(t, f, "alice", "pw") {
		t.Error("authenticated against a missing file")
	}
	names, err := List(path)
	if err != nil || len(names) != 0 {
		t.Errorf("List() = %q, %v; want nothing, nil", names, err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open or List created the file: %v", err)
	}
}

func TestOpenMalformed(t *testing.T) {
	h := hash(t, "secret-password")
	tests := []struct {
		name    string
		content string
		want    string // message after "<path>:"
	}{
		{"no colon", "# c\n\nalice " + h + "\n", `3: missing ":" between username and bcrypt hash`},
		{"empty username", ":" + h + "\n", `1: missing username before ":"`},
		{"space in username", "al ice:" + h + "\n", `1: invalid username "al ice": use only letters, digits, '.', '_', '-' and '@'`},
		{"colon only", "alice:\n", `1: user "alice": the value after ":" is not a bcrypt hash (set the password with the "user add" command)`},
		{"plain password", "alice:secret-password\n", `1: user "alice": the value after ":" is not a bcrypt hash (set the password with the "user add" command)`},
		{"truncated hash", "alice:" + h[:59] + "\n", `1: user "alice": the value after ":" is not a bcrypt hash (set the password with the "user add" command)`},
		{"hash with extra byte", "alice:" + h + "x\n", `1: user "alice": the value after ":" is not a bcrypt hash (set the password with the "user add" command)`},
		{"md5 crypt", "alice:$1$" + h[3:] + "\n", `1: user "alice": the value after ":" is not a bcrypt hash (set the password with the "user add" command)`},
		{"cost out of range", "alice:$2a$32$" + h[7:] + "\n", `1: user "alice": the value after ":" is not a bcrypt hash (set the password with the "user add" command)`},
		{"65-byte username", strings.Repeat("u", 65) + ":" + h + "\n", `1: username is 65 bytes long; the limit is 64`},
		{"non-ASCII username", "zoë:" + h + "\n", `1: invalid username "zoë": use only letters, digits, '.', '_', '-' and '@'`},
		{"duplicate", "alice:" + h + "\r\nbob:" + h + "\r\n\r\nalice:" + h + "\r\n", `4: duplicate user "alice" (first on line 1)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := usersPath(t)
			writeFile(t, path, tt.content)
			want := path + ":" + tt.want

			f, err := Open(path)
			if err == nil {
				t.Fatalf("Open succeeded (Len %d), want error %q", f.Len(), want)
			}
			if err.Error() != want {
				t.Errorf("Open error:\n got %s\nwant %s", err, want)
			}
			var perr *ParseError
			if !errors.As(err, &perr) {
				t.Errorf("Open error is %T, want *ParseError", err)
			}
			if strings.Contains(err.Error(), h[7:]) || strings.Contains(err.Error(), "secret-password") {
				t.Errorf("error reveals the hash or password: %s", err)
			}

			if _, err := List(path); err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Errorf("List error = %v, want prefix %q", err, want)
			}
		})
	}
}

func TestAuthenticate(t *testing.T) {
	long72 := strings.Repeat("p", 72)
	path := usersPath(t)
	writeFile(t, path, "alice:"+hash(t, "correct horse")+"\nlong:"+hash(t, long72)+"\n")
	f := mustOpen(t, path)

	tests := []struct {
		name, user, password string
		want                 bool
	}{
		{"right password", "alice", "correct horse", true},
		{"wrong password", "alice", "battery staple", false},
		{"empty password", "alice", "", false},
		{"password prefix", "alice", "correct", false},
		{"unknown user", "mallory", "correct horse", false},
		{"username is case sensitive", "Alice", "correct horse", false},
		{"empty username", "", "correct horse", false},
		{"72-byte password", "long", long72, true},
		{"73 bytes whose first 72 match", "long", long72 + "x", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := authenticate(t, f, tt.user, tt.password); got != tt.want {
				t.Errorf("Authenticate(%q, %q) = %v, want %v", tt.user, tt.password, got, tt.want)
			}
		})
	}
}

func TestAuthenticateCancelled(t *testing.T) {
	path := usersPath(t)
	writeFile(t, path, "alice:"+hash(t, "pw")+"\n")
	f := mustOpen(t, path)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ok, err := f.Authenticate(ctx, "alice", "pw")
	if ok || !errors.Is(err, context.Canceled) {
		t.Errorf("Authenticate with a cancelled context = %v, %v; want false, context.Canceled", ok, err)
	}
}

// An unknown user must cost one bcrypt comparison at the cost the file's
// hashes use, or response times reveal which users exist.
func TestAuthenticateUnknownUserSpendsBcrypt(t *testing.T) {
	path := usersPath(t)
	writeFile(t, path, "alice:"+hash(t, "pw")+"\nbob:"+hash(t, "pw")+"\n")
	f := mustOpen(t, path)
	if authenticate(t, f, "mallory", "pw") {
		t.Fatal("unknown user authenticated")
	}
	f.dummyMu.Lock()
	defer f.dummyMu.Unlock()
	if len(f.dummies) != 1 || f.dummies[bcrypt.MinCost] == nil {
		var costs []int
		for c := range f.dummies {
			costs = append(costs, c)
		}
		t.Errorf("dummy hashes made for costs %v, want [%d] (the file's cost)", costs, bcrypt.MinCost)
	}
}

// TestWatch: edits reach a File on their own, through its watcher, with
// what each kind of edit logs. Each case waits (up to a deadline) for the
// change to be served; nothing asserts how soon.
func TestWatch(t *testing.T) {
	alice, bob := hash(t, "alice's"), hash(t, "bob's")
	tests := []struct {
		name     string
		change   func(t *testing.T, path string)
		served   func(f *File) bool // the change is served
		users    []string           // then served: exactly these users
		logLevel string             // and logged at this level
	}{
		{"password changed by hand",
			func(t *testing.T, path string) { edit(t, path, "alice:"+hash(t, "new")+"\nbob:"+bob+"\n") },
			func(f *File) bool { ok, _ := f.Authenticate(context.Background(), "alice", "new"); return ok },
			[]string{"alice", "bob"}, "INFO"},
		{"user removed by Remove",
			func(t *testing.T, path string) {
				if err := Remove(path, "bob"); err != nil {
					t.Fatal(err)
				}
			},
			func(f *File) bool { return f.Len() == 1 },
			[]string{"alice"}, "INFO"},
		{"malformed edit keeps the lines that parse",
			func(t *testing.T, path string) { edit(t, path, "alice:"+alice+"\nbob;"+bob+"\n") },
			func(f *File) bool { return f.Err() != nil },
			[]string{"alice"}, "ERROR"},
		{"emptied",
			func(t *testing.T, path string) { edit(t, path, "# nobody\n") },
			func(f *File) bool { return f.Len() == 0 },
			nil, "WARN"},
		{"deleted",
			func(t *testing.T, path string) {
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
			},
			func(f *File) bool { return f.Len() == 0 },
			nil, "WARN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := usersPath(t)
			writeFile(t, path, "alice:"+alice+"\nbob:"+bob+"\n")
			f, err := open(path, 5*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var logs bytes.Buffer
			var logMu sync.Mutex
			f.SetLogger(slog.New(slog.NewTextHandler(lockedWriter{&logs, &logMu}, nil)))

			tt.change(t, path)
			for deadline := time.Now().Add(10 * time.Second); !tt.served(f); time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("the change was not served within 10 s (Len %d, Err %v)", f.Len(), f.Err())
				}
			}
			users, _ := f.Stamps()
			var names []string
			for u := range users {
				names = append(names, u)
			}
			slices.Sort(names)
			if !slices.Equal(names, tt.users) {
				t.Errorf("serving %q, want %q", names, tt.users)
			}
			logMu.Lock()
			logged := logs.String()
			logMu.Unlock()
			if !strings.Contains(logged, "level="+tt.logLevel+" msg=\"users file re") {
				t.Errorf("log does not report the reload at level %s:\n%s", tt.logLevel, logged)
			}
		})
	}
}

// TestWatchStartsAndCloses: Open watches the file at PollInterval until
// Close, which may be called again.
func TestWatchStartsAndCloses(t *testing.T) {
	path := usersPath(t)
	writeFile(t, path, "alice:"+hash(t, "pw")+"\n")
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	f.SetLogger(slog.New(slog.DiscardHandler))
	if err := Remove(path, "alice"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); f.Len() != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("Open's watcher did not pick up a removal within 10 s")
		}
	}
	f.Close()
	select {
	case <-f.done:
	default:
		t.Error("the watcher still runs after Close")
	}
	f.Close()
}

// The bearer check asks for a stamp on every request: it must cost no
// system call and no allocation.
func TestStampDoesNotAllocate(t *testing.T) {
	path := usersPath(t)
	writeFile(t, path, "alice:"+hash(t, "pw")+"\n")
	f := mustOpen(t, path)
	if n := testing.AllocsPerRun(100, func() { f.Stamp("alice") }); n != 0 {
		t.Errorf("Stamp allocates %v times per call, want 0", n)
	}
}

func TestReloadAfterEdit(t *testing.T) {
	path := usersPath(t)
	writeFile(t, path, "# team\nalice:"+hash(t, "old")+"\n")
	f := mustOpen(t, path)
	stamp1, _, _ := f.Stamp("alice")
	if !authenticate(t, f, "alice", "old") {
		t.Fatal("alice cannot sign in before the edit")
	}

	edit(t, path, "# team\nalice:"+hash(t, "new")+"\nbob:"+hash(t, "bob's")+"\n")
	reload(f)

	if authenticate(t, f, "alice", "old") {
		t.Error("old password still works after the edit")
	}
	if !authenticate(t, f, "alice", "new") {
		t.Error("new password does not work after the edit")
	}
	if !authenticate(t, f, "bob", "bob's") {
		t.Error("added user cannot sign in after the edit")
	}
	if stamp2, _, _ := f.Stamp("alice"); stamp2 == stamp1 {
		t.Error("alice's stamp did not change with her password")
	}
	if f.Len() != 2 {
		t.Errorf("Len() = %d, want 2", f.Len())
	}

	// Removing the file removes everybody; recreating it brings them back.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	reload(f)
	if _, ok, _ := f.Stamp("alice"); ok || f.Len() != 0 {
		t.Errorf("after deleting the file: Stamp ok=%v Len=%d, want false, 0", ok, f.Len())
	}
	writeFile(t, path, "bob:"+hash(t, "bob's")+"\n")
	reload(f)
	if !authenticate(t, f, "bob", "bob's") || f.Len() != 1 {
		t.Errorf("recreated file not loaded (Len %d)", f.Len())
	}
}

func TestReloadAfterAddAndRemove(t *testing.T) {
	path := usersPath(t)
	if err := add(path, "alice", "pw1", bcrypt.MinCost); err != nil {
		t.Fatal(err)
	}
	f := mustOpen(t, path)
	// No sleeps or Chtimes: Add replaces the file, which changes its identity.
	if err := add(path, "alice", "pw2", bcrypt.MinCost); err != nil {
		t.Fatal(err)
	}
	reload(f)
	if authenticate(t, f, "alice", "pw1") || !authenticate(t, f, "alice", "pw2") {
		t.Error("password reset by Add not picked up")
	}
	if err := Remove(path, "alice"); err != nil {
		t.Fatal(err)
	}
	reload(f)
	if _, ok, _ := f.Stamp("alice"); ok || f.Len() != 0 {
		t.Error("removal by Remove not picked up")
	}
}

// A file replaced by another of the same size and modification time (as
// rsync or a config-management tool may do) is still noticed: its identity
// changed.
func TestReloadAfterReplaceWithSameSizeAndTime(t *testing.T) {
	path := usersPath(t)
	writeFile(t, path, "alice:"+hash(t, "old")+"\n")
	f := mustOpen(t, path)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	next := path + ".new"
	writeFile(t, next, "alice:"+hash(t, "new")+"\n")
	if err := os.Chtimes(next, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(next, path); err != nil {
		t.Fatal(err)
	}
	reload(f)
	if !authenticate(t, f, "alice", "new") {
		t.Error("replaced file not reloaded")
	}
}

// A malformed edit serves only the users whose lines still parse: the
// edit's removals take effect, the broken lines' users are locked out (a
// typo never revives or keeps a removed user), and every reload of a
// malformed version is logged.
func TestMalformedEditServesLinesThatParse(t *testing.T) {
	path := usersPath(t)
	aliceHash, bobHash, carolHash := hash(t, "pw"), hash(t, "bob's"), hash(t, "carol's")
	writeFile(t, path, "alice:"+aliceHash+"\nbob:"+bobHash+"\ncarol:"+carolHash+"\n")
	f := mustOpen(t, path)
	var logs bytes.Buffer
	var logMu sync.Mutex
	f.SetLogger(slog.New(slog.NewTextHandler(lockedWriter{&logs, &logMu}, nil)))
	_, v1 := f.Stamps()

	// The admin removes bob but mistypes alice's line; carol is untouched.
	edit(t, path, "# bob left\nalice;"+aliceHash+"\ncarol:"+carolHash+"\n")
	reload(f)
	for range 3 {
		if authenticate(t, f, "alice", "pw") {
			t.Error("alice signed in although her line is malformed")
		}
		if authenticate(t, f, "bob", "bob's") {
			t.Error("bob signed in although the edit removed him")
		}
		if !authenticate(t, f, "carol", "carol's") {
			t.Error("carol locked out by a typo on another line")
		}
	}
	users, v2 := f.Stamps()
	if len(users) != 1 || users["carol"] == "" || v2 == v1 {
		t.Errorf("Stamps() = %v (version %d, was %d), want only carol and a new version", users, v2, v1)
	}
	want := path + `:2: missing ":" between username and bcrypt hash`
	var perr *ParseError
	if err := f.Err(); err == nil || err.Error() != want || !errors.As(err, &perr) {
		t.Errorf("Err() = %v, want %s", err, want)
	}

	// A second malformed version, with a duplicate: logged again, and the
	// duplicated user is left out.
	edit(t, path, "alice;"+aliceHash+"\ncarol:"+carolHash+"\ncarol:"+bobHash+"\n# x\n")
	reload(f)
	if authenticate(t, f, "carol", "carol's") || authenticate(t, f, "carol", "bob's") {
		t.Error("a user listed twice signed in")
	}
	logMu.Lock()
	logged := logs.String()
	logMu.Unlock()
	if n := strings.Count(logged, "level=ERROR"); n != 2 {
		t.Errorf("logged %d errors, want 2 for two malformed versions:\n%s", n, logged)
	}
	if !strings.Contains(logged, `:2: missing`) || !strings.Contains(logged, `:3: duplicate user \"carol\"`) {
		t.Errorf("log does not name the lines:\n%s", logged)
	}
	if strings.Contains(logged, aliceHash[7:]) {
		t.Errorf("log reveals a hash:\n%s", logged)
	}

	// Fixing the file serves everyone in it again.
	edit(t, path, "# bob left\nalice:"+aliceHash+"\ncarol:"+carolHash+"\n")
	reload(f)
	if err := f.Err(); err != nil {
		t.Errorf("Err() after the fix = %v", err)
	}
	if !authenticate(t, f, "alice", "pw") || !authenticate(t, f, "carol", "carol's") {
		t.Error("a user listed in the fixed file cannot sign in")
	}
	if authenticate(t, f, "bob", "bob's") {
		t.Error("bob can sign in after the fixed edit removed him")
	}
}

// A users file that exists but cannot be read serves nobody (a removed user
// must not stay in because the server cannot read the file that removed
// him), until it can be read again.
func TestUnreadableFileHasNoUsers(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads files whatever their mode")
	}
	path := usersPath(t)
	writeFile(t, path, "alice:"+hash(t, "pw")+"\n")
	f := mustOpen(t, path)
	if err := os.Chmod(path, 0); err != nil {
		t.Fatal(err)
	}
	reload(f)
	if authenticate(t, f, "alice", "pw") || f.Len() != 0 || f.Err() == nil {
		t.Errorf("unreadable file: alice signs in or Len %d, Err %v; want nobody and an error", f.Len(), f.Err())
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	reload(f)
	if !authenticate(t, f, "alice", "pw") || f.Err() != nil {
		t.Errorf("readable again: Err %v, alice cannot sign in", f.Err())
	}
}

type lockedWriter struct {
	b  *bytes.Buffer
	mu *sync.Mutex
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func TestStamp(t *testing.T) {
	path := usersPath(t)
	for _, u := range []string{"alice", "bob"} {
		if err := add(path, u, "pw", bcrypt.MinCost); err != nil {
			t.Fatal(err)
		}
	}
	f := mustOpen(t, path)
	stamp := func(u string) string {
		t.Helper()
		s, ok, err := f.Stamp(u)
		if err != nil || !ok || s == "" {
			t.Fatalf("Stamp(%q) = %q, %v, %v; want a stamp", u, s, ok, err)
		}
		return s
	}
	alice1, bob1 := stamp("alice"), stamp("bob")
	if alice1 == bob1 {
		t.Error("alice and bob have the same stamp")
	}
	if again := stamp("alice"); again != alice1 {
		t.Error("stamp changed without a password change")
	}
	if strings.Contains(contents(t, path), alice1) {
		t.Error("the stamp appears in the users file")
	}

	// Resetting the password, even to the same one, changes only alice's stamp.
	if err := add(path, "alice", "pw", bcrypt.MinCost); err != nil {
		t.Fatal(err)
	}
	reload(f)
	if stamp("alice") == alice1 {
		t.Error("alice's stamp did not change on password reset")
	}
	if stamp("bob") != bob1 {
		t.Error("bob's stamp changed when alice's password was reset")
	}

	if err := Remove(path, "alice"); err != nil {
		t.Fatal(err)
	}
	reload(f)
	if s, ok, err := f.Stamp("alice"); ok || s != "" || err != nil {
		t.Errorf("Stamp after removal = %q, %v, %v; want \"\", false, nil", s, ok, err)
	}
	if s, ok, _ := f.Stamp("nobody"); ok || s != "" {
		t.Errorf("Stamp(unknown) = %q, %v", s, ok)
	}
}

// hashRE matches a bcrypt hash, to compare rewritten files structurally.
var hashRE = regexp.MustCompile(`\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}`)

func TestAddRemoveListPreservesFile(t *testing.T) {
	tests := []struct {
		name    string
		initial string // "" with absent = true: no file
		absent  bool
		ops     func(path string) error
		want    string // with every hash replaced by HASH
		users   []string
	}{
		{
			name:   "create",
			absent: true,
			ops:    func(p string) error { return add(p, "alice", "pw", bcrypt.MinCost) },
			want:   "alice:HASH\n",
			users:  []string{"alice"},
		},
		{
			name:    "append keeps comments and order",
			initial: "# Users of the weather server\n\n# admins\nbob:HASH\n  # indented\ncarol:HASH\n",
			ops:     func(p string) error { return add(p, "dave", "pw", bcrypt.MinCost) },
			want:    "# Users of the weather server\n\n# admins\nbob:HASH\n  # indented\ncarol:HASH\ndave:HASH\n",
			users:   []string{"bob", "carol", "dave"},
		},
		{
			name:    "reset in place",
			initial: "bob:HASH\n# carol's\ncarol:HASH\ndave:HASH\n",
			ops:     func(p string) error { return add(p, "carol", "new", bcrypt.MinCost) },
			want:    "bob:HASH\n# carol's\ncarol:HASH\ndave:HASH\n",
			users:   []string{"bob", "carol", "dave"},
		},
		{
			name:    "remove keeps the rest",
			initial: "# top\nbob:HASH\n\ncarol:HASH\n# bottom\n",
			ops:     func(p string) error { return Remove(p, "bob") },
			want:    "# top\n\ncarol:HASH\n# bottom\n",
			users:   []string{"carol"},
		},
		{
			name:    "no final newline",
			initial: "# top\nbob:HASH",
			ops:     func(p string) error { return add(p, "carol", "pw", bcrypt.MinCost) },
			want:    "# top\nbob:HASH\ncarol:HASH\n",
			users:   []string{"bob", "carol"},
		},
		{
			name:    "CRLF file stays CRLF",
			initial: "# top\r\nbob:HASH\r\n",
			ops: func(p string) error {
				if err := add(p, "carol", "pw", bcrypt.MinCost); err != nil {
					return err
				}
				return add(p, "bob", "new", bcrypt.MinCost)
			},
			want:  "# top\r\nbob:HASH\r\ncarol:HASH\r\n",
			users: []string{"bob", "carol"},
		},
		{
			name:    "remove the last user",
			initial: "# nobody left\nbob:HASH\n",
			ops:     func(p string) error { return Remove(p, "bob") },
			want:    "# nobody left\n",
			users:   nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := usersPath(t)
			if !tt.absent {
				writeFile(t, path, strings.ReplaceAll(tt.initial, "HASH", hash(t, "old")))
				if err := os.Chmod(path, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := tt.ops(path); err != nil {
				t.Fatal(err)
			}
			got := hashRE.ReplaceAllString(contents(t, path), "HASH")
			if got != tt.want {
				t.Errorf("file after rewrite:\n%q\nwant\n%q", got, tt.want)
			}
			names, err := List(path)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(names, ",") != strings.Join(tt.users, ",") {
				t.Errorf("List() = %q, want %q", names, tt.users)
			}
			checkMode0600(t, path)
			checkNoTempFiles(t, path)
			if f, err := Open(path); err != nil {
				t.Errorf("rewritten file does not open: %v", err)
			} else {
				f.Close()
			}
		})
	}
}

func checkMode0600(t *testing.T, path string) {
	t.Helper()
	if runtime.GOOS == "windows" {
		return
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("mode after rewrite = %v, want 0600", perm)
	}
}

func checkNoTempFiles(t *testing.T, path string) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != filepath.Base(path) {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

func TestAddSetsPassword(t *testing.T) {
	path := usersPath(t)
	long72 := strings.Repeat("é", 36) // 72 bytes
	if err := add(path, "alice", long72, bcrypt.MinCost); err != nil {
		t.Fatal(err)
	}
	f := mustOpen(t, path)
	if !authenticate(t, f, "alice", long72) {
		t.Error("password set by Add does not work")
	}
	// Add hashes with DefaultCost.
	if err := Add(path, "bob", "pw"); err != nil {
		t.Fatal(err)
	}
	h := hashRE.FindAllString(contents(t, path), -1)
	if len(h) != 2 {
		t.Fatalf("found %d hashes, want 2", len(h))
	}
	if cost, _ := bcrypt.Cost([]byte(h[1])); cost != bcrypt.DefaultCost {
		t.Errorf("Add used cost %d, want bcrypt.DefaultCost (%d)", cost, bcrypt.DefaultCost)
	}
}

func TestAddRemoveErrors(t *testing.T) {
	good := "# keep me\nalice:" + hash(t, "pw") + "\n"
	malformed := "# keep me\nalice:" + hash(t, "pw") + "\nbob\n"
	tests := []struct {
		name    string
		content string
		op      func(path string) error
		want    string // "PATH" stands for the file's path
	}{
		{"empty password", good, func(p string) error { return Add(p, "bob", "") }, "empty password"},
		{"73-byte password", good, func(p string) error { return Add(p, "bob", strings.Repeat("p", 73)) },
			"password is 73 bytes long; bcrypt uses at most 72 bytes and longer passwords are rejected, not truncated"},
		{"invalid username", good, func(p string) error { return Add(p, "bob:x", "pw") },
			`invalid username "bob:x": use only letters, digits, '.', '_', '-' and '@'`},
		{"empty username", good, func(p string) error { return Add(p, "", "pw") }, "empty username"},
		{"add to malformed file", malformed, func(p string) error { return Add(p, "carol", "pw") },
			`PATH:3: missing ":" between username and bcrypt hash (fix this line first; the file was not changed)`},
		{"remove from malformed file", malformed, func(p string) error { return Remove(p, "alice") },
			`PATH:3: missing ":" between username and bcrypt hash (fix this line first; the file was not changed)`},
		{"remove unknown user", good, func(p string) error { return Remove(p, "bob") }, `user "bob" not found in PATH`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := usersPath(t)
			writeFile(t, path, tt.content)
			err := tt.op(path)
			want := strings.ReplaceAll(tt.want, "PATH", path)
			if err == nil || err.Error() != want {
				t.Errorf("error = %v\nwant    %s", err, want)
			}
			if got := contents(t, path); got != tt.content {
				t.Errorf("file changed by a failed operation:\n%q", got)
			}
			checkNoTempFiles(t, path)
		})
	}

	t.Run("remove from missing file", func(t *testing.T) {
		path := usersPath(t)
		if err := Remove(path, "bob"); err == nil || err.Error() != `user "bob" not found in `+path {
			t.Errorf("error = %v", err)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Error("Remove created the file")
		}
	})
}

func TestAddThroughSymlink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real-users.txt")
	link := filepath.Join(dir, "users.txt")
	writeFile(t, real, "# real\n")
	if err := os.Symlink(real, link); err != nil {
		t.Skipf("cannot make symlinks: %v", err)
	}
	if err := add(link, "alice", "pw", bcrypt.MinCost); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("users.txt is no longer a symlink (%v)", err)
	}
	if names, _ := List(real); len(names) != 1 || names[0] != "alice" {
		t.Errorf("target file holds %q, want [alice]", names)
	}
}

// Readers never see a half-written file, and a user nobody touches can sign
// in throughout.
func TestConcurrentAuthenticateDuringRewrites(t *testing.T) {
	path := usersPath(t)
	for _, u := range []string{"alice", "bob"} {
		if err := add(path, u, "pw", bcrypt.MinCost); err != nil {
			t.Fatal(err)
		}
	}
	f := mustOpen(t, path)
	stamp, _, _ := f.Stamp("alice")

	done := make(chan struct{})
	var writerErr error
	go func() {
		defer close(done)
		for i := range 20 {
			if err := add(path, "bob", "pw", bcrypt.MinCost); err != nil {
				writerErr = err
				return
			}
			if err := add(path, "carol", "pw", bcrypt.MinCost); err != nil {
				writerErr = err
				return
			}
			if i%2 == 0 {
				if err := Remove(path, "carol"); err != nil {
					writerErr = err
					return
				}
			}
		}
	}()

	var wg sync.WaitGroup
	wg.Go(func() { // reloads far more often than the watcher
		for {
			select {
			case <-done:
				return
			default:
				reload(f)
			}
		}
	})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if ok, err := f.Authenticate(context.Background(), "alice", "pw"); !ok || err != nil {
					t.Errorf("alice could not sign in during a rewrite: %v, %v", ok, err)
					return
				}
				if s, ok, _ := f.Stamp("alice"); !ok || s != stamp {
					t.Errorf("alice's stamp changed during rewrites of other users: %q, %v", s, ok)
					return
				}
				if err := f.Err(); err != nil {
					t.Errorf("Err() during rewrites: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	<-done
	if writerErr != nil {
		t.Fatal(writerErr)
	}
	if names, _ := List(path); strings.Join(names, ",") != "alice,bob,carol" {
		t.Errorf("final users = %q", names)
	}
	reload(f)
	if f.Len() != 3 {
		t.Errorf("Len() = %d after rewrites, want 3", f.Len())
	}
}

func TestValidateUsername(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"alice", true},
		{"a", true},
		{"bob.smith_2-x@example.org", true},
		{strings.Repeat("x", 64), true},
		{"", false},
		{strings.Repeat("x", 65), false},
		{"bob:x", false},
		{"bob smith", false},
		{"bob\t", false},
		{"#bob", false},
		{"bob/../x", false},
		{"zoë", false},
	}
	for _, tt := range tests {
		if err := ValidateUsername(tt.name); (err == nil) != tt.ok {
			t.Errorf("ValidateUsername(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}
