package mcpauth

// Redirect URI rules (RFC 6749 §3.1.2, RFC 8252 §7, RFC 9700 §2.1 and §4.1).
//
// At registration a redirect URI must be absolute, printable ASCII without
// spaces, backslashes, userinfo, fragment or dot segments, and be one of:
//   - https with a host;
//   - http on a loopback host: localhost, 127.0.0.1 or [::1] (native apps);
//   - a private-use scheme such as cursor://… or com.example.app:/cb
//     (native apps, RFC 8252 §7.1), but never one that browsers execute or
//     that reads local data: javascript, data, vbscript, file, blob, about,
//     mailto, ftp, ws, wss. The scheme is compared case-insensitively after
//     rejecting any control character or space, so "JaVaScRiPt:" and
//     " javascript:" and "java\tscript:" are all refused.
//
// At the authorization endpoint the requested URI must equal a registered
// one byte for byte, except that for http on a loopback host the port is
// ignored (RFC 8252 §7.3): native clients pick a free port at run time.
// localhost and 127.0.0.1 are different hosts and never match each other.

import (
	"errors"
	"net/url"
	"strings"
)

// maxRedirectURILen caps one redirect URI.
const maxRedirectURILen = 1 << 10

// forbiddenSchemes are schemes a browser executes, that read local data, or
// that hand the URL to an operating-system protocol handler known to run
// code or open files (ms-msdt: was "Follina", search-ms: opens a remote
// folder in Explorer). Every scheme starting with a forbiddenPrefixes entry
// is refused too. Schemes of applications (cursor:, vscode:, claude:) are
// private-use schemes in the sense of RFC 8252 and stay allowed.
var forbiddenSchemes = map[string]bool{
	"javascript": true, "data": true, "vbscript": true, "file": true, "blob": true,
	"about": true, "mailto": true, "ftp": true, "ws": true, "wss": true, "view-source": true,
	"jar": true, "filesystem": true, "intent": true, "chrome": true,
	"search": true, "shell": true, "res": true, "mk": true, "its": true, "mhtml": true,
	"hcp": true, "help": true, "ghelp": true, "smb": true, "nfs": true, "ldap": true, "ldaps": true,
	"telnet": true, "tel": true, "sms": true, "callto": true, "resource": true, "jnlp": true,
}

// forbiddenPrefixes are scheme prefixes of operating-system handler
// families: "ms-" (Windows: ms-msdt, ms-settings, ms-officecmd, ms-word …,
// also search-ms), "microsoft-" and "vnd.ms-".
var forbiddenPrefixes = []string{"ms-", "microsoft-", "vnd.ms-"}

// forbiddenScheme reports whether a lowercase scheme is refused.
func forbiddenScheme(scheme string) bool {
	if forbiddenSchemes[scheme] || strings.HasSuffix(scheme, "-ms") {
		return true
	}
	for _, p := range forbiddenPrefixes {
		if strings.HasPrefix(scheme, p) {
			return true
		}
	}
	return false
}

// loopbackHosts are the hosts whose http redirect URIs get port relaxation.
var loopbackHosts = map[string]bool{"localhost": true, "127.0.0.1": true, "[::1]": true}

// validRedirectURI checks a redirect URI at registration.
func validRedirectURI(raw string) error {
	if raw == "" || len(raw) > maxRedirectURILen {
		return errors.New("redirect URI is empty or too long")
	}
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return errors.New("redirect URI contains spaces, control, backslash or non-ASCII characters")
		}
	}
	if strings.Contains(raw, "#") {
		return errors.New("redirect URI must not have a fragment")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("redirect URI is not a valid URI")
	}
	if u.Scheme == "" {
		return errors.New("redirect URI must be absolute")
	}
	scheme := strings.ToLower(u.Scheme)
	if forbiddenScheme(scheme) {
		return errors.New("redirect URI scheme " + scheme + " is not allowed")
	}
	if u.Opaque != "" {
		return errors.New("redirect URI must be hierarchical (scheme://… or scheme:/…)")
	}
	if u.User != nil || strings.Contains(authority(raw), "@") {
		return errors.New("redirect URI must not contain userinfo")
	}
	for _, seg := range strings.Split(u.EscapedPath(), "/") {
		if seg == "." || seg == ".." || strings.EqualFold(seg, "%2e") || strings.EqualFold(seg, "%2e%2e") {
			return errors.New("redirect URI must not contain dot segments")
		}
	}
	switch scheme {
	case "https":
		if u.Host == "" {
			return errors.New("https redirect URI needs a host")
		}
	case "http":
		if !loopbackHosts[hostWithBrackets(u)] {
			return errors.New("http redirect URIs are allowed only on localhost, 127.0.0.1 or [::1]; use https")
		}
		if p := u.Port(); p != "" && !validPort(p) {
			return errors.New("redirect URI has an invalid port")
		}
	}
	return nil
}

// hostWithBrackets is u's host without port, IPv6 literals in brackets.
func hostWithBrackets(u *url.URL) string {
	h := u.Hostname()
	if strings.Contains(h, ":") {
		return "[" + h + "]"
	}
	return h
}

// authority returns the authority part of a raw URI ("" if none).
func authority(raw string) string {
	_, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return ""
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

func validPort(p string) bool {
	if len(p) == 0 || len(p) > 5 {
		return false
	}
	n := 0
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
		n = n*10 + int(p[i]-'0')
	}
	return n >= 1 && n <= 65535
}

// redirectMatches reports whether requested may be used for registered.
func redirectMatches(registered, requested string) bool {
	if registered == requested {
		return true
	}
	r, ok := stripLoopbackPort(registered)
	if !ok {
		return false
	}
	q, ok := stripLoopbackPort(requested)
	return ok && r == q
}

// stripLoopbackPort returns raw without its port if raw is an http URI on a
// loopback host with a valid (or no) port.
func stripLoopbackPort(raw string) (string, bool) {
	const prefix = "http://"
	if !strings.HasPrefix(raw, prefix) || validRedirectURI(raw) != nil {
		return "", false
	}
	auth := authority(raw)
	rest := raw[len(prefix)+len(auth):]
	host := auth
	if i := strings.LastIndexByte(auth, ':'); i >= 0 && !strings.HasSuffix(auth, "]") {
		host = auth[:i]
		if !validPort(auth[i+1:]) {
			return "", false
		}
	}
	if !loopbackHosts[host] {
		return "", false
	}
	return prefix + host + rest, true
}

// anyRedirectMatches reports whether requested matches one of registered.
func anyRedirectMatches(registered []string, requested string) bool {
	for _, r := range registered {
		if redirectMatches(r, requested) {
			return true
		}
	}
	return false
}
