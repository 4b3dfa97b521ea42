package mcpauth

// Checks of the guides a generated project gets (templates/docs in this
// repository) against this package's constants. The file name ends in
// _repo_test.go: it stays in the generator's repository, since a generated
// project has no templates/.

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/mcpgen/create-mcp-server/runtime/authstore"
	"github.com/mcpgen/create-mcp-server/runtime/userfile"
)

const templatesDir = "../../templates/"

func readTemplate(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(templatesDir + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The forms numbers take in the docs: "15 min", "64 KiB", "100,000".
func docDur(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%d h", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%d min", d/time.Minute)
	}
	return fmt.Sprintf("%d s", d/time.Second)
}

func docSize(n int) string {
	switch {
	case n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

func docInt(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func docRate(l authstore.Limit) string { return docInt(l.Max) + " per " + docDur(l.Window) }

// docAllowed are numbers that are not settings: names of standards,
// protocol revisions, status codes, the IPv6 prefix every per-address
// limit uses, and the https port.
var docAllowed = regexp.MustCompile("RFC \\d+|OAuth 2\\.1|SHA-256|S256|IPv[46]|/64\\b|\\d{4}-\\d\\d-\\d\\d|`[1-5]\\d\\d`|port 443")

// TestSecurityDoc checks every number of a generated project's
// docs/security.md against the code: each row of its tables must say what
// the constants say, the rows are the ones listed here, and no other digit
// appears in the document (prose included) unless docAllowed explains it.
func TestSecurityDoc(t *testing.T) {
	doc := readTemplate(t, "docs/security.md.tmpl")
	s, err := newServer(Config{Addr: "127.0.0.1:8080"})
	if err != nil {
		t.Fatal(err)
	}
	small, err := newServer(Config{Addr: "127.0.0.1:8080", MaxConnections: 1})
	if err != nil {
		t.Fatal(err)
	}
	cfg, lim := s.cfg, authstore.DefaultLimits

	// Each row by its first cell; the other cells must contain every
	// fragment.
	rows := map[string][]string{
		"request headers": {"read within " + docDur(s.timeouts.header), "at most " + docSize(maxHeaderBytes)},
		"OAuth request bodies": {"read within " + docDur(s.timeouts.body), docSize(maxLoginBody) + " (sign-in form)",
			docSize(maxTokenBody) + " (`/token`, `/revoke`, `/register`)"},
		"`/mcp` request body":                                 {"read within " + docDur(s.timeouts.mcpBody), "at most " + docSize(maxMCPBody)},
		"open connections":                                    {docInt(cfg.MaxConnections) + " (`--max-connections`)"},
		"open connections per address":                        {"at least " + docInt(small.cfg.MaxConnectionsPerAddr), ": " + docInt(cfg.MaxConnectionsPerAddr)},
		"sign-ins started per address":                        {docRate(signInAddrLimit)},
		"pending sign-ins":                                    {docInt(lim.SignInsPerAddr) + " per address", docInt(lim.SignInsPerBrowser) + " per browser", docInt(lim.SignIns) + " in all", docDur(txTTL) + " each", "at most " + docSize(maxStateLen)},
		"failed sign-ins per (user, address)":                 {docRate(loginUserAddrLimit)},
		"failed sign-ins per address, all users":              {docRate(loginAddrLimit)},
		"failed sign-ins per user, all addresses":             {docRate(loginUserLimit)},
		"concurrent bcrypt comparisons":                       {"one per CPU"},
		"failed `/token` and `/revoke` requests per address":  {docRate(guessAddrLimit)},
		"failed client authentications per (client, address)": {docRate(guessClientAddrLimit)},
		"registrations per address":                           {docRate(registerAddrLimit)},
		"one app's registration":                              {"at most " + docSize(maxRedirectURILen), "at most " + docInt(maxRedirectURIs) + " of them", "at most " + docInt(maxClientNameLen) + " bytes", "at most " + docSize(maxClientMetadata) + " in all"},
		"registered apps":                                     {docInt(lim.Clients)},
		"throttle counters":                                   {docInt(lim.ThrottleKeys) + " keys per rule"},
		"MCP sessions (protocol revisions before 2026-07-28)": {docInt(lim.SessionsPerUser) + " per user", "after " + docDur(sessionIdleTTL) + " idle"},
		"client ID metadata documents": {"at most " + docSize(maxMetadataDoc), "within " + docDur(metadataTimeout), docInt(maxFetchingPerHost) + " fetches per host", docInt(maxFetchingPerAddr) + " per client address",
			docInt(maxMetadataFetching) + " in all", "kept " + docDur(metadataDefaultTTL), "(" + docDur(metadataMaxTTL) + " at most", docInt(maxMetadataCache) + " kept",
			docInt(maxMetadataCache) + " failed fetches remembered " + docDur(metadataFailureTTL)},

		"access tokens":                       {docDur(cfg.AccessTTL) + " (`--access-ttl`)"},
		"refresh tokens":                      {docDur(cfg.RefreshTTL) + ", " + fmt.Sprint(int64(cfg.RefreshTTL/(24*time.Hour))) + " days (`--refresh-ttl`)"},
		"refresh retry grace":                 {docDur(cfg.RefreshGrace) + ":"},
		"authorization codes":                 {docDur(cfg.CodeTTL) + ", single use"},
		"account page sessions (`/account`)":  {docDur(accountSessionTTL)},
		"MCP sessions":                        {docDur(sessionIdleTTL) + " idle"},
		"apps that never completed a sign-in": {docDur(cfg.UnusedClientTTL) + " (`--unused-client-ttl`)"},
		"a revoked token on another replica":  {"at most " + docDur(authstore.DefaultLease)},
		"validated tokens cached per replica": {docInt(maxCachedTokens)},
		"a known browser (device cookie)":     {fmt.Sprint(int64(deviceTTL/(24*time.Hour))) + " days"},
	}
	if maxRegisterBody != maxTokenBody {
		t.Errorf("/register takes %s, /token %s: the doc says one size for both", docSize(maxRegisterBody), docSize(maxTokenBody))
	}
	if sessionIdleTTL != authstore.SessionIdle {
		t.Errorf("sessionIdleTTL %v and authstore.SessionIdle %v differ; which one does the doc mean?", sessionIdleTTL, authstore.SessionIdle)
	}
	// Rows named twice (once in each table): the second one.
	lifetimes := map[string]string{"pending sign-ins": docDur(txTTL)}

	seen := map[string]bool{}
	var prose strings.Builder
	for n, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(line, "| ") || strings.HasPrefix(line, "| what ") {
			prose.WriteString(line + "\n")
			continue
		}
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		what, rest := cells[0], strings.Join(cells[1:], " | ")
		want, ok := rows[what]
		if seen[what] && lifetimes[what] != "" {
			want, ok = []string{lifetimes[what]}, true
		}
		seen[what] = true
		if !ok {
			t.Errorf("docs/security.md:%d: row %q is not one TestSecurityDoc checks; add it there with the constants it states", n+1, what)
			continue
		}
		for _, frag := range want {
			if !strings.Contains(rest, frag) {
				t.Errorf("docs/security.md:%d: row %q should say %q (from the code); it says %q", n+1, what, frag, rest)
			}
			rest = strings.ReplaceAll(rest, frag, "")
		}
		rest = docAllowed.ReplaceAllString(rest, "")
		if strings.ContainsAny(rest, "0123456789") {
			t.Errorf("docs/security.md:%d: row %q has a number TestSecurityDoc does not check: %q", n+1, what, rest)
		}
	}
	for what := range rows {
		if !seen[what] {
			t.Errorf("docs/security.md has no row %q", what)
		}
	}

	// Prose: the bcrypt limit is the one number it may state.
	text := strings.ReplaceAll(prose.String(), fmt.Sprintf("at most %d bytes of a password", userfile.MaxPasswordLen), "")
	text = docAllowed.ReplaceAllString(text, "")
	for n, line := range strings.Split(text, "\n") {
		if strings.ContainsAny(line, "0123456789") {
			t.Errorf("docs/security.md, line %d outside the tables has a number TestSecurityDoc does not check: %q", n+1, line)
		}
	}
}

// tableColumn returns the first cells, without backticks, of the table
// rows of text that follow the line containing after, up to the first line
// that is not a table row.
func tableColumn(text, after string) []string {
	_, rest, ok := strings.Cut(text, after)
	if !ok {
		return nil
	}
	var col []string
	inTable := false
	for _, line := range strings.Split(rest, "\n") {
		if !strings.HasPrefix(line, "|") {
			if inTable {
				break
			}
			continue
		}
		inTable = true
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		if c := strings.Trim(cells[0], "`"); c != "msg" && c != "metric" && !strings.HasPrefix(c, "---") {
			col = append(col, c)
		}
	}
	return col
}

// userfileEvents are the events the users file logs (runtime/userfile),
// listed with the server's in the docs.
var userfileEvents = []string{"users file reloaded", "users file rejected"}

// TestOperationsDocs checks the audit events named by a generated
// project's docs/operations.md (its table) and README.md ("Operating it")
// against the events the server logs, and the metrics the README names
// against the ones it registers. (The root package's
// TestOperationsDocListsMetrics checks the guide's metrics table.)
func TestOperationsDocs(t *testing.T) {
	var events []string
	for ev := range auditEvents {
		events = append(events, ev)
	}
	events = append(events, userfileEvents...)
	slices.Sort(events)

	userfileSrc, err := os.ReadFile("../userfile/api.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range userfileEvents {
		if !strings.Contains(string(userfileSrc), `"`+ev+`"`) {
			t.Errorf("runtime/userfile no longer logs %q; update userfileEvents and the docs", ev)
		}
	}

	guide := tableColumn(readTemplate(t, "docs/operations.md.tmpl"), "| `msg` |")
	slices.Sort(guide)
	if !slices.Equal(guide, events) {
		t.Errorf("docs/operations.md's table of audit events lists\n%q\nthe server logs\n%q", guide, events)
	}

	readme := readTemplate(t, "README.md.tmpl")
	_, section, ok := strings.Cut(readme, "## Operating it\n")
	if !ok {
		t.Fatal(`README.md.tmpl has no "## Operating it" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	logs, _, _ := strings.Cut(section, "**Metrics.**")
	named := func(text, pattern string) []string {
		var out []string
		for _, m := range regexp.MustCompile(pattern).FindAllStringSubmatch(strings.ReplaceAll(text, "\n", " "), -1) {
			if !slices.Contains(out, m[1]) {
				out = append(out, m[1])
			}
		}
		slices.Sort(out)
		return out
	}
	if got := named(logs, "`([a-z][a-z -]+[a-z])`"); !slices.Equal(got, events) {
		t.Errorf("README.md's Operating it names the audit events\n%q\nthe server logs\n%q", got, events)
	}

	metrics := metricNames(NewMetrics()) // metrics_test.go
	if got := named(section, "`(mcp_[a-z_]+)`"); !slices.Equal(got, metrics) {
		t.Errorf("README.md's Operating it names the metrics\n%q\nthe server registers\n%q", got, metrics)
	}
}

// TestOperationsDocsUsersFileLevels changes a users file the way operators
// do and checks that docs/operations.md's table gives the level each
// resulting event is logged at: people alert on WARN and ERROR.
func TestOperationsDocsUsersFileLevels(t *testing.T) {
	levels := map[string]string{} // msg -> the table's level cell
	_, table, _ := strings.Cut(readTemplate(t, "docs/operations.md.tmpl"), "| `msg` |")
	for _, line := range strings.Split(table, "\n") {
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		if len(cells) >= 2 {
			levels[strings.Trim(cells[0], "`")] = cells[1]
		}
	}

	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	path := t.TempDir() + "/users.txt"
	version := 0
	write := func(content string) {
		version++
		next := time.Now().Add(time.Duration(version) * time.Hour) // a new mtime each time
		if err := os.WriteFile(path+".tmp", []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path+".tmp", next, next); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Fatal(err)
		}
	}
	write("bob:" + string(hash) + "\n")
	f, err := userfile.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	records := make(chan slog.Record, 16)
	f.SetLogger(slog.New(recordHandler(records)))

	for _, tt := range []struct {
		change, content, msg string
	}{
		{"a user added", "bob:" + string(hash) + "\nalice:" + string(hash) + "\n", "users file reloaded"},
		{"every user removed", "# nobody yet\n", "users file reloaded"},
		{"a malformed line", "alice\n", "users file rejected"},
	} {
		write(tt.content)
		var r slog.Record
		select {
		case r = <-records:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: nothing logged within 10 s", tt.change)
		}
		if r.Message != tt.msg {
			t.Errorf("%s: logged %q, want %q", tt.change, r.Message, tt.msg)
		}
		if cell, ok := levels[r.Message]; !ok || !strings.Contains(cell, r.Level.String()) {
			t.Errorf("%s: %q is logged at %s; docs/operations.md says %q", tt.change, r.Message, r.Level, cell)
		}
	}
}

// recordHandler is a slog.Handler that sends every record to ch.
type recordHandler chan<- slog.Record

func (h recordHandler) Enabled(context.Context, slog.Level) bool      { return true }
func (h recordHandler) Handle(_ context.Context, r slog.Record) error { h <- r.Clone(); return nil }
func (h recordHandler) WithAttrs([]slog.Attr) slog.Handler            { return h }
func (h recordHandler) WithGroup(string) slog.Handler                 { return h }
