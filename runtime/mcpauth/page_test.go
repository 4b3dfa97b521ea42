package mcpauth

import (
	"strings"
	"testing"
	"time"
)

// TestPagesEscapeValues fills every value a page shows with markup and
// checks that each comes out escaped, in text and in attributes alike.
func TestPagesEscapeValues(t *testing.T) {
	const hostile = `<b>x</b>"' onfocus=alert(1) &amp;+`
	const escaped = `&lt;b&gt;x&lt;/b&gt;&#34;&#39; onfocus=alert(1) &amp;amp;&#43;`
	now := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	app := accountApp{ClientID: hostile, Name: hostile, Hosts: []string{hostile, hostile}, FirstUsed: now, LastUsed: now, MetadataURL: true}
	tests := []struct {
		name   string
		page   *page
		values int // how many times the value is shown
	}{
		{"consent", loginPage(loginData{Server: hostile, ClientName: hostile, ClientURL: hostile, Scope: hostile,
			RedirectHost: hostile, Error: hostile, Tx: hostile, Username: hostile}), 9},
		{"account sign-in", loginPage(loginData{Server: hostile, Account: true, Error: hostile, Tx: hostile, Username: hostile}), 5},
		{"error", errorPage(&pageError{Title: hostile, Message: hostile}), 3},
		{"home", homePage(hostile, hostile), 3},
		{"account", accountPage(accountData{Server: hostile, User: hostile, CSRF: hostile, Done: hostile, Apps: []accountApp{app}}), 11},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := tt.page.String()
			if strings.Contains(body, "<b>") || strings.Contains(body, `"'`) {
				t.Errorf("a value is not escaped:\n%s", body)
			}
			if n := strings.Count(body, escaped); n != tt.values {
				t.Errorf("the escaped value appears %d times, want %d:\n%s", n, tt.values, body)
			}
		})
	}
}
