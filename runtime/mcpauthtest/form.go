package mcpauthtest

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strings"
)

// Form is an HTML form as a browser would submit it.
type Form struct {
	// Action is the absolute URL the form posts to.
	Action *url.URL
	// Method is the upper-case HTTP method ("POST" unless the form says GET).
	Method string
	// Fields are the named controls other than submit buttons, with their
	// initial values (checkboxes and radios only when checked).
	Fields url.Values
	// Submits are the form's named submit buttons, in document order.
	Submits []Submit
}

// Submit is a named submit button of a form.
type Submit struct {
	Name, Value string
	// Label is the visible text of a <button> (or the value of an
	// <input type=submit>).
	Label string
}

// ParseForm returns the form of page (fetched from pageURL) that contains an
// input named "password". It understands the plain HTML of a login page:
// form, input, button, textarea and select elements with quoted or unquoted
// attributes and character references; comments, scripts and styles are
// skipped.
func ParseForm(pageURL *url.URL, page []byte) (*Form, error) {
	var (
		cur   *Form
		found *Form
		sel   string // name of the open <select>, if any
		btn   *Submit
		text  strings.Builder
	)
	toks := tokenize(string(page))
	for i, t := range toks {
		switch {
		case t.name == "form" && !t.end:
			if cur != nil && hasPassword(cur) {
				found = cur
			}
			cur = &Form{Method: http.MethodGet, Fields: url.Values{}}
			if m := strings.ToUpper(t.attrs["method"]); m != "" {
				cur.Method = m
			}
			action, err := pageURL.Parse(t.attrs["action"])
			if err != nil {
				return nil, fmt.Errorf("login form: bad action %q: %w", t.attrs["action"], err)
			}
			cur.Action = action
		case t.name == "form" && t.end:
			if cur != nil && hasPassword(cur) && found == nil {
				found = cur
			}
			cur = nil
		case cur == nil:
			// outside any form
		case t.name == "input" && !t.end:
			name, ok := t.attrs["name"]
			typ := strings.ToLower(t.attrs["type"])
			_, disabled := t.attrs["disabled"]
			if !ok || name == "" || disabled {
				continue
			}
			switch typ {
			case "submit", "image":
				cur.Submits = append(cur.Submits, Submit{Name: name, Value: t.attrs["value"], Label: t.attrs["value"]})
			case "checkbox", "radio":
				if _, checked := t.attrs["checked"]; checked {
					v, ok := t.attrs["value"]
					if !ok {
						v = "on"
					}
					cur.Fields.Add(name, v)
				}
			case "button", "reset", "file":
			default:
				cur.Fields.Add(name, t.attrs["value"])
			}
		case t.name == "textarea" && !t.end:
			if name := t.attrs["name"]; name != "" {
				cur.Fields.Add(name, strings.TrimPrefix(rawText(toks, i), "\n"))
			}
		case t.name == "select" && !t.end:
			sel = t.attrs["name"]
		case t.name == "select" && t.end:
			sel = ""
		case t.name == "option" && !t.end && sel != "":
			if _, ok := t.attrs["selected"]; ok {
				cur.Fields.Set(sel, t.attrs["value"])
			}
		case t.name == "button" && !t.end:
			typ := strings.ToLower(t.attrs["type"])
			if typ == "" || typ == "submit" {
				btn = &Submit{Name: t.attrs["name"], Value: t.attrs["value"]}
				text.Reset()
			}
		case t.name == "button" && t.end:
			if btn != nil {
				btn.Label = strings.Join(strings.Fields(text.String()), " ")
				cur.Submits = append(cur.Submits, *btn)
				btn = nil
			}
		case t.name == "" && btn != nil:
			text.WriteString(html.UnescapeString(t.text))
		}
	}
	if cur != nil && hasPassword(cur) && found == nil {
		found = cur // unclosed form
	}
	if found == nil {
		if strings.Contains(strings.ToLower(string(page)), "<form") {
			return nil, fmt.Errorf("login form: no input named password")
		}
		return nil, fmt.Errorf("login form: no form in page")
	}
	if _, ok := found.Fields["username"]; !ok {
		return nil, fmt.Errorf("login form: no input named username")
	}
	return found, nil
}

func hasPassword(f *Form) bool {
	_, ok := f.Fields["password"]
	return ok
}

// Values returns the fields to post: the form's fields with username and
// password filled in, plus the approve button, or the refuse button if deny.
// A refuse button is one whose name, value or label mentions deny, refuse,
// reject, decline or cancel.
func (f *Form) Values(username, password string, deny bool) (url.Values, error) {
	v := cloneValues(f.Fields)
	v.Set("username", username)
	v.Set("password", password)
	var approve, refuse *Submit
	for i := range f.Submits {
		s := &f.Submits[i]
		if isRefusal(s) {
			if refuse == nil {
				refuse = s
			}
		} else if approve == nil {
			approve = s
		}
	}
	pick := approve
	if deny {
		if refuse == nil {
			return nil, fmt.Errorf("login form: no refuse button")
		}
		pick = refuse
	}
	if pick != nil && pick.Name != "" {
		v.Set(pick.Name, pick.Value)
	}
	return v, nil
}

func isRefusal(s *Submit) bool {
	all := strings.ToLower(s.Name + " " + s.Value + " " + s.Label)
	for _, w := range []string{"deny", "refuse", "reject", "decline", "cancel"} {
		if strings.Contains(all, w) {
			return true
		}
	}
	return false
}

// token is one piece of an HTML document: a start or end tag (name set), or
// text (name empty).
type token struct {
	name  string // lower-case tag name; "" for text
	end   bool
	attrs map[string]string
	text  string
	// raw is the position after the token in the document.
	pos int
	doc string
}

// rawText returns the unescaped text between the start tag toks[i] and its
// end tag, as for <textarea>.
func rawText(toks []token, i int) string {
	t := toks[i]
	rest := t.doc[t.pos:]
	end := strings.Index(strings.ToLower(rest), "</"+t.name)
	if end < 0 {
		end = len(rest)
	}
	return html.UnescapeString(rest[:end])
}

// tokenize splits an HTML document into tags and text. It is deliberately
// small: it handles what login pages contain, not every quirk of HTML5.
func tokenize(doc string) []token {
	var toks []token
	i := 0
	for i < len(doc) {
		lt := strings.IndexByte(doc[i:], '<')
		if lt < 0 {
			toks = append(toks, token{text: doc[i:], pos: len(doc), doc: doc})
			break
		}
		if lt > 0 {
			toks = append(toks, token{text: doc[i : i+lt], pos: i + lt, doc: doc})
		}
		i += lt
		rest := doc[i:]
		switch {
		case strings.HasPrefix(rest, "<!--"):
			end := strings.Index(rest[4:], "-->")
			if end < 0 {
				return toks
			}
			i += 4 + end + 3
			continue
		case strings.HasPrefix(rest, "<!") || strings.HasPrefix(rest, "<?"):
			end := strings.IndexByte(rest, '>')
			if end < 0 {
				return toks
			}
			i += end + 1
			continue
		}
		t, n := parseTag(rest)
		if n == 0 { // a lone '<' is text
			toks = append(toks, token{text: "<", pos: i + 1, doc: doc})
			i++
			continue
		}
		i += n
		t.pos, t.doc = i, doc
		toks = append(toks, t)
		if !t.end && (t.name == "script" || t.name == "style") {
			end := strings.Index(strings.ToLower(doc[i:]), "</"+t.name)
			if end < 0 {
				return toks
			}
			i += end
		}
	}
	return toks
}

// parseTag parses the tag at the start of s ("<name attr=value ...>") and
// returns it with its length, or n == 0 if s does not start with a tag.
func parseTag(s string) (t token, n int) {
	i := 1
	if i < len(s) && s[i] == '/' {
		t.end = true
		i++
	}
	start := i
	for i < len(s) && isNameByte(s[i]) {
		i++
	}
	if i == start || !isLetter(s[start]) {
		return token{}, 0
	}
	t.name = strings.ToLower(s[start:i])
	t.attrs = map[string]string{}
	for {
		for i < len(s) && (isSpace(s[i]) || s[i] == '/') {
			i++
		}
		if i >= len(s) {
			return t, len(s)
		}
		if s[i] == '>' {
			return t, i + 1
		}
		// attribute name
		ns := i
		for i < len(s) && !isSpace(s[i]) && s[i] != '=' && s[i] != '>' && s[i] != '/' {
			i++
		}
		name := strings.ToLower(s[ns:i])
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		val := ""
		if i < len(s) && s[i] == '=' {
			i++
			for i < len(s) && isSpace(s[i]) {
				i++
			}
			if i < len(s) && (s[i] == '"' || s[i] == '\'') {
				q := s[i]
				i++
				vs := i
				for i < len(s) && s[i] != q {
					i++
				}
				val = s[vs:i]
				if i < len(s) {
					i++
				}
			} else {
				vs := i
				for i < len(s) && !isSpace(s[i]) && s[i] != '>' {
					i++
				}
				val = s[vs:i]
			}
		}
		if _, dup := t.attrs[name]; !dup && name != "" { // the first occurrence wins, as in HTML5
			t.attrs[name] = html.UnescapeString(val)
		}
	}
}

func isSpace(b byte) bool {
	return b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == '\f'
}

func isLetter(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z'
}

func isNameByte(b byte) bool {
	return isLetter(b) || '0' <= b && b <= '9' || b == '-' || b == ':'
}
