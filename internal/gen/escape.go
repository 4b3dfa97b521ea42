package gen

import (
	"strconv"
	"strings"
	"text/template"
)

// Answers are free text (a server name may hold quotes, backslashes,
// backticks, "{{", HTML or any script), so templates never print one
// raw: each place an answer lands has its function, named after the
// syntax around it. Validate has already refused what no syntax can hold:
// control characters and line breaks (see ValidateName).
var funcs = template.FuncMap{
	// quote returns s as a Go string literal ("a \"b\" \\c"). The same
	// text is a valid JSON string when s is ASCII.
	"quote": strconv.Quote,
	// comment returns s for the text of a // comment.
	"comment": goComment,
	// md returns s escaped for Markdown running text or a heading.
	"md": markdownText,
	// code returns s as a Markdown code span (`s`).
	"code": markdownCode,
}

// goComment returns s, a single line of text, for use in a // comment. A
// line of a Go comment that starts with "+build" or "go:" would read as a
// build constraint or a malformed directive (go vet reports both), so such
// an s is put in quotes.
func goComment(s string) string {
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "+build") || strings.HasPrefix(t, "go:") {
		return strconv.Quote(s)
	}
	return s
}

// markdownText escapes s so that Markdown (CommonMark with GitHub's
// extensions) shows it as the plain text it is: every character that can
// start emphasis, a link, code, raw HTML, an entity, a table cell or
// strikethrough gets a backslash, as do the characters that make a line a
// heading, list item, quote or rule when they come first.
func markdownText(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch r {
		case '\\', '`', '*', '_', '[', ']', '<', '>', '&', '|', '~', '#':
			b.WriteByte('\\')
		case '-', '+', '=':
			if i == 0 {
				b.WriteByte('\\')
			}
		case '.', ')':
			// "1. " and "1) " start an ordered list.
			if i > 0 && strings.Trim(s[:i], "0123456789") == "" {
				b.WriteByte('\\')
			}
		}
		b.WriteRune(r)
	}
	return b.String()
}

// markdownCode returns s as a Markdown code span: fenced by one backtick
// more than the longest run of backticks in s, with a space inside each
// fence when s starts or ends with a backtick (CommonMark strips one space
// from each end of a code span that has both).
func markdownCode(s string) string {
	longest, run := 0, 0
	for _, r := range s {
		if r == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	fence := strings.Repeat("`", longest+1)
	pad := ""
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") ||
		strings.HasPrefix(s, " ") && strings.HasSuffix(s, " ") {
		pad = " "
	}
	return fence + pad + s + pad + fence
}
