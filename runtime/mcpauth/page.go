package mcpauth

// The sign-in and consent page, and the error page. Plain HTML forms
// (html/template escapes everything reflected), no JavaScript, readable on
// a phone and a desktop.

import (
	"bytes"
	"html/template"
	"net/http"
	"net/url"
)

const pageStyle = `
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f4f5f7;color:#1d2330}
main{max-width:26rem;margin:3rem auto;padding:2rem;background:#fff;border-radius:12px;box-shadow:0 1px 4px rgba(0,0,0,.12)}
@media (max-width:30rem){main{margin:0;min-height:100vh;border-radius:0;box-shadow:none;padding:1.25rem}}
h1{font-size:1.35rem;margin:0 0 1rem}
p{margin:.5rem 0}
.app{padding:.75rem 1rem;background:#f4f5f7;border-radius:8px;margin:1rem 0;overflow-wrap:anywhere}
.note{color:#5a6270;font-size:.875rem}
.error{color:#a30d1b;background:#fdecee;padding:.5rem .75rem;border-radius:6px}
label{display:block;margin:1rem 0 .25rem;font-weight:600}
input[type=text],input[type=password]{width:100%;padding:.65rem .75rem;font-size:1rem;border:1px solid #b8bfca;border-radius:6px}
input:focus{outline:2px solid #2457d6;outline-offset:1px}
.buttons{display:flex;flex-direction:row-reverse;gap:.75rem;margin-top:1.5rem}
button{flex:1;padding:.7rem;font-size:1rem;border-radius:6px;border:1px solid #2457d6;cursor:pointer}
button.primary{background:#2457d6;color:#fff}
button.secondary{background:#fff;color:#2457d6}
`

// loginPage is the sign-in and consent form, and the sign-in form of the
// account page (when Account is set: no application, one button). The
// approve button comes first in the markup (CSS shows it on the right):
// pressing Enter in a field submits with the form's first button.
var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>Sign in to {{.Server}}</title>
<style>` + pageStyle + `</style>
</head>
<body>
<main>
<h1>Sign in to {{.Server}}</h1>
{{if .Account}}<p>Sign in to see the applications connected to your account, and disconnect them.</p>
{{else}}<div class="app">
<p><strong>{{.ClientName}}</strong> <span class="note">(name given by the application, not verified)</span></p>
{{if .ClientURL}}<p class="note">Application ID: {{.ClientURL}}</p>{{end}}
<p>wants to use this server on your behalf{{if .Scope}} with access <strong>{{.Scope}}</strong>{{end}}.</p>
<p class="note">You will be sent back to <strong>{{.RedirectHost}}</strong>{{if .Local}} (an application on this computer){{end}}.</p>
</div>{{end}}
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}
<form method="post" action="{{if .Account}}/account{{else}}/authorize{{end}}">
<input type="hidden" name="{{if .Account}}csrf{{else}}tx{{end}}" value="{{.Tx}}">
<label for="username">Username</label>
<input type="text" id="username" name="username" value="{{.Username}}" autocomplete="username" autocapitalize="none" spellcheck="false" required{{if not .Username}} autofocus{{end}}>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required{{if .Username}} autofocus{{end}}>
<div class="buttons">
{{if .Account}}<button type="submit" class="primary">Sign in</button>
{{else}}<button type="submit" name="action" value="approve" class="primary">Sign in and allow</button>
<button type="submit" name="action" value="deny" class="secondary">Deny</button>
{{end}}</div>
</form>
{{if not .Account}}<p class="note">Only allow applications you trust. Deny also needs your password.</p>{{end}}
</main>
</body>
</html>
`))

var errorPage = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{{.Title}}</title>
<style>` + pageStyle + `</style>
</head>
<body>
<main>
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
</main>
</body>
</html>
`))

// renderLogin writes the sign-in page for transaction tx, with an error
// message and the username typed before, if any.
func (s *Server) renderLogin(w http.ResponseWriter, status int, tx string, req *authRequest, msg, username string) {
	name := req.Client.Name
	if name == "" {
		name = req.Client.ID
	}
	host := req.RedirectURI
	if u, err := url.Parse(req.RedirectURI); err == nil {
		host = u.Host
		if host == "" {
			host = u.Scheme + ":"
		}
	}
	clientURL := ""
	if req.Client.Metadata {
		clientURL = req.Client.ID
	}
	local := false
	if u, err := url.Parse(req.RedirectURI); err == nil && u.Scheme == "http" {
		local = isLoopbackHost(u.Hostname())
	}
	s.renderPage(w, status, loginPage, loginData{
		Server: s.serverName, ClientName: name, ClientURL: clientURL, Scope: req.Scope,
		RedirectHost: host, Error: msg, Tx: tx, Username: username, Local: local,
	})
}

// loginData is what loginPage shows. Tx is the hidden field's value: the
// sign-in transaction, or on the account page the sign-in CSRF token.
type loginData struct {
	Server, ClientName, ClientURL, Scope, RedirectHost, Error, Tx, Username string
	Local, Account                                                          bool
}

// renderError writes an error page.
func (s *Server) renderError(w http.ResponseWriter, pe *pageError) {
	s.renderPage(w, pe.Status, errorPage, pe)
}

func (s *Server) renderPage(w http.ResponseWriter, status int, t *template.Template, data any) {
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		s.log.Error("render page", "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	setPageHeaders(w.Header())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}
