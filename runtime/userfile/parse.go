package userfile

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"golang.org/x/crypto/bcrypt"
)

// MaxUsernameLen is the longest username, in bytes.
const MaxUsernameLen = 64

// MaxPasswordLen is the longest password bcrypt can use, in bytes. Longer
// passwords are rejected, never truncated.
const MaxPasswordLen = 72

// ParseError reports a malformed line of a users file. Its message names the
// file and the 1-based line number; it never contains a hash or a password.
type ParseError struct {
	File string // the path as given to Open, Add, Remove or List
	Line int    // 1-based line number
	Msg  string // what is wrong, without the line's content
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// ValidateUsername reports whether name is a valid username: 1 to 64 bytes,
// each an ASCII letter, digit, '.', '_', '-' or '@'. Usernames are case
// sensitive.
func ValidateUsername(name string) error {
	if name == "" {
		return fmt.Errorf("empty username")
	}
	if len(name) > MaxUsernameLen {
		return fmt.Errorf("username is %d bytes long; the limit is %d", len(name), MaxUsernameLen)
	}
	for i := 0; i < len(name); i++ {
		if !usernameByte(name[i]) {
			return fmt.Errorf("invalid username %q: use only letters, digits, '.', '_', '-' and '@'", name)
		}
	}
	return nil
}

func usernameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '_' || c == '-' || c == '@'
}

// validHash reports whether h looks like a bcrypt hash: "$2a$", "$2b$" or
// "$2y$", a two-digit cost that bcrypt accepts, "$", then 53 characters of
// bcrypt's base64 alphabet (22 of salt, 31 of hash).
func validHash(h []byte) bool {
	if len(h) != 60 || h[0] != '$' || h[1] != '2' || h[3] != '$' || h[6] != '$' {
		return false
	}
	switch h[2] {
	case 'a', 'b', 'y':
	default:
		return false
	}
	for _, c := range h[7:] {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '/') {
			return false
		}
	}
	_, err := bcrypt.Cost(h)
	return err == nil
}

// line is one line of a users file as read, kept so that rewrites preserve
// comments, blank lines, order and line endings.
type line struct {
	raw  []byte // the line including its line ending, if any
	user string // "" for comments and blank lines
}

// user is a parsed entry of the users file.
type user struct {
	hash  []byte
	stamp string
	cost  int
}

// parsed is the content of a users file.
type parsed struct {
	lines []line
	users map[string]user
	crlf  bool // the first line ends in "\r\n"
}

// parse parses the content of the users file file. It reports the first
// malformed line as a *ParseError.
func parse(file string, data []byte) (*parsed, error) {
	p, errs := parseAll(file, data)
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return p, nil
}

// parseAll parses the content of the users file file, line by line: the
// users whose lines parse are in p.users, and every malformed line is a
// *ParseError in errs, in file order. A user that appears more than once
// is left out entirely: which of the lines was meant is anybody's guess.
func parseAll(file string, data []byte) (p *parsed, errs []*ParseError) {
	p = &parsed{users: make(map[string]user)}
	firstLine := make(map[string]int)
	dup := make(map[string]bool)
	rest := data
	for n := 1; len(rest) > 0; n++ {
		raw := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			raw, rest = rest[:i+1], rest[i+1:]
		} else {
			rest = nil
		}
		if n == 1 && bytes.HasSuffix(raw, []byte("\r\n")) {
			p.crlf = true
		}
		text := raw
		if n == 1 {
			text = bytes.TrimPrefix(text, []byte("\uFEFF")) // byte order mark left by some Windows editors
		}
		text = bytes.TrimSpace(text)
		l := line{raw: raw}
		if len(text) == 0 || text[0] == '#' {
			p.lines = append(p.lines, l)
			continue
		}
		perr := func(format string, args ...any) {
			errs = append(errs, &ParseError{File: file, Line: n, Msg: fmt.Sprintf(format, args...)})
			p.lines = append(p.lines, l)
		}
		i := bytes.IndexByte(text, ':')
		if i < 0 {
			perr(`missing ":" between username and bcrypt hash`)
			continue
		}
		name, hash := string(text[:i]), text[i+1:]
		if name == "" {
			perr(`missing username before ":"`)
			continue
		}
		if err := ValidateUsername(name); err != nil {
			perr("%v", err)
			continue
		}
		if !validHash(hash) {
			perr(`user %q: the value after ":" is not a bcrypt hash (set the password with the "user add" command)`, name)
			continue
		}
		if first, seen := firstLine[name]; seen {
			dup[name] = true
			perr("duplicate user %q (first on line %d)", name, first)
			continue
		}
		firstLine[name] = n
		cost, _ := bcrypt.Cost(hash) // validHash checked it
		l.user = name
		p.lines = append(p.lines, l)
		p.users[name] = user{
			hash:  bytes.Clone(hash),
			stamp: stampOf(name, hash),
			cost:  cost,
		}
	}
	for name := range dup {
		delete(p.users, name)
	}
	return p, errs
}

// stampOf returns the stamp of the entry name:hash: the hex of the first 16
// bytes of its SHA-256. It changes whenever the hash changes (a new salt on
// every password reset) and reveals nothing usable about the hash.
func stampOf(name string, hash []byte) string {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{':'})
	h.Write(hash)
	sum := h.Sum(nil)
	return hex.EncodeToString(sum[:16])
}
