package mcpauthtest

import (
	"net/url"
	"strings"
	"testing"
)

func TestParseForm(t *testing.T) {
	page, _ := url.Parse("http://127.0.0.1:8080/authorize?client_id=x")
	tests := []struct {
		name    string
		html    string
		action  string
		fields  url.Values
		submits int
		wantErr string
	}{
		{
			name: "typical login page",
			html: `<!doctype html><html><head><style>form>p{x:1}</style>
<script>var s = "<form><input name=password>";</script></head><body>
<!-- <form action="/evil"><input name="password"></form> -->
<form method="post" action="/authorize/login">
  <input type="hidden" name="csrf" value="a&amp;b&quot;c">
  <input type=hidden name=tx value=T1>
  <label>User <input type="text" name="username" autocomplete=username></label>
  <label>Password <input type='password' name='password'></label>
  <input type="checkbox" name="remember"><input type="checkbox" name="consent" checked>
  <button type="submit" name="action" value="approve">Allow &amp; sign in</button>
  <button name="action" value="deny">Refuse</button>
</form></body></html>`,
			action:  "http://127.0.0.1:8080/authorize/login",
			fields:  url.Values{"csrf": {`a&b"c`}, "tx": {"T1"}, "username": {""}, "password": {""}, "consent": {"on"}},
			submits: 2,
		},
		{
			name:    "empty action posts to the page itself",
			html:    `<form method=POST><input name=username><input name=password type=password><input type=submit value=Go></form>`,
			action:  "http://127.0.0.1:8080/authorize?client_id=x",
			fields:  url.Values{"username": {""}, "password": {""}},
			submits: 0, // unnamed submit buttons send nothing
		},
		{
			name:   "second form is the login form",
			html:   `<form action="/search"><input name=q></form><form method=post action="login"><input name=username><input name=password></form>`,
			action: "http://127.0.0.1:8080/login",
			fields: url.Values{"username": {""}, "password": {""}},
		},
		{name: "no form", html: `<p>error: unknown client</p>`, wantErr: "login form: no form in page"},
		{name: "no password", html: `<form><input name=username></form>`, wantErr: "login form: no input named password"},
		{name: "no username", html: `<form><input name=password></form>`, wantErr: "login form: no input named username"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ParseForm(page, []byte(tt.html))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("ParseForm error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.Action.String() != tt.action {
				t.Errorf("Action = %s, want %s", f.Action, tt.action)
			}
			if f.Method != "POST" {
				t.Errorf("Method = %s, want POST", f.Method)
			}
			if f.Fields.Encode() != tt.fields.Encode() {
				t.Errorf("Fields = %v, want %v", f.Fields, tt.fields)
			}
			if len(f.Submits) != tt.submits {
				t.Errorf("Submits = %v, want %d", f.Submits, tt.submits)
			}
		})
	}
}

func TestFormValues(t *testing.T) {
	page, _ := url.Parse("http://127.0.0.1/authorize")
	f, err := ParseForm(page, []byte(`<form method=post>
<input type=hidden name=csrf value=C><input name=username><input name=password type=password>
<button name=decision value=yes>Sign in</button><button name=decision value=no>Cancel</button></form>`))
	if err != nil {
		t.Fatal(err)
	}
	ok, err := f.Values("alice", "pw", false)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ok.Encode(), "csrf=C&decision=yes&password=pw&username=alice"; got != want {
		t.Errorf("approve values = %s, want %s", got, want)
	}
	no, err := f.Values("alice", "pw", true)
	if err != nil {
		t.Fatal(err)
	}
	if got := no.Get("decision"); got != "no" {
		t.Errorf("deny decision = %q, want no", got)
	}
	if f.Fields.Get("username") != "" {
		t.Error("Values modified the form's fields")
	}

	single, _ := ParseForm(page, []byte(`<form method=post><input name=username><input name=password></form>`))
	if _, err := single.Values("a", "b", true); err == nil || !strings.Contains(err.Error(), "no refuse button") {
		t.Errorf("deny without refuse button: err = %v", err)
	}
}

func TestPKCE(t *testing.T) {
	v1, c1 := PKCE()
	v2, _ := PKCE()
	if len(v1) != 43 || len(c1) != 43 || v1 == v2 {
		t.Fatalf("PKCE() = %q, %q (second verifier %q)", v1, c1, v2)
	}
	// RFC 7636 appendix B.
	if got := Challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"); got != "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" {
		t.Errorf("Challenge = %s", got)
	}
}
