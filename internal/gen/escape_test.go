package gen

import (
	"bytes"
	"html"
	"regexp"
	"strings"
	"testing"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
)

// markdown renders Markdown the way GitHub does (CommonMark plus tables,
// strikethrough and task lists), to check what a reader of a generated
// README sees.
var markdown = goldmark.New(goldmark.WithExtensions(extension.Table, extension.Strikethrough, extension.TaskList))

func renderMarkdown(t testing.TB, src string) string {
	t.Helper()
	var out bytes.Buffer
	if err := markdown.Convert([]byte(src), &out); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// trickyText are answers that once broke, or could break, some file of a
// generated project.
var trickyText = []string{
	`My "best" \b server`, `C:\new\table`, "`code` and ``more``", "``", "` x `",
	"{{.Name}} {{", "<script>alert('x')</script>", "a &amp; b & c", "天気 — Wetter ☀ 🌦",
	"# not a heading", "- not a list", "+ no", "= no", "1. not a list", "2) nor this", "3.14",
	"> not a quote", "--- not a rule", "-- x --", "*not* _emphasis_ **x**", "[not](a link)",
	"![no](image.png)", "|a|b|", "~~not struck~~", "C#", "trailing #", "x */ y /* z",
	"+build ignore", "go:generate rm -rf /", "//go:build linux", "%s %d %v", "$HOME `id`", "\\",
}

func TestMarkdownText(t *testing.T) {
	for _, s := range trickyText {
		checkMarkdownText(t, s)
	}
	if got, want := markdownText("Fetch pages, search \"the web\"."), "Fetch pages, search \"the web\"."; got != want {
		t.Errorf("markdownText escapes plain text: %q, want %q", got, want)
	}
}

func TestMarkdownCode(t *testing.T) {
	for in, want := range map[string]string{"a": "`a`", "a`b": "``a`b``", "`a": "`` `a ``", "a``": "``` a`` ```"} {
		if got := markdownCode(in); got != want {
			t.Errorf("markdownCode(%q) = %q, want %q", in, got, want)
		}
	}
	for _, s := range trickyText {
		checkMarkdownCode(t, s)
	}
}

func TestGoComment(t *testing.T) {
	for in, want := range map[string]string{
		"Forecasts.":           "Forecasts.",
		"+build ignore":        `"+build ignore"`,
		"go:generate rm -rf /": `"go:generate rm -rf /"`,
		"use go:embed":         "use go:embed",
	} {
		if got := goComment(in); got != want {
			t.Errorf("goComment(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzMarkdown checks that any valid name or description shows as exactly
// itself in a README, as a heading, a paragraph and a code span.
func FuzzMarkdown(f *testing.F) {
	for _, s := range trickyText {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidateName(s) != nil {
			return
		}
		checkMarkdownText(t, s)
		checkMarkdownCode(t, s)
	})
}

var htmlTag = regexp.MustCompile(`<[^>]*>`)

func checkMarkdownText(t testing.TB, s string) {
	t.Helper()
	md := markdownText(s)
	for _, form := range []struct{ src, open, close string }{
		{"# " + md + "\n", "<h1>", "</h1>\n"},
		{"para\n\n" + md + "\n\nafter\n", "<p>para</p>\n<p>", "</p>\n<p>after</p>\n"},
	} {
		out := renderMarkdown(t, form.src)
		inner, ok := strings.CutPrefix(out, form.open)
		if ok {
			inner, ok = strings.CutSuffix(inner, form.close)
		}
		if !ok || htmlTag.MatchString(inner) || html.UnescapeString(inner) != s {
			t.Errorf("Markdown %q (for %q) renders as %q, want the text in %s…%s", form.src, s, out, form.open, form.close)
		}
	}
}

func checkMarkdownCode(t testing.TB, s string) {
	t.Helper()
	src := "name " + markdownCode(s) + ".\n"
	out := renderMarkdown(t, src)
	if want := "<p>name <code>" + html.EscapeString(s) + "</code>.</p>\n"; html.UnescapeString(out) != html.UnescapeString(want) {
		t.Errorf("Markdown %q renders as %q, want %q", src, out, want)
	}
}
