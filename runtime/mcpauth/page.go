package mcpauth

// The sign-in and consent page, and the error page. Plain HTML forms
// (every value shown is escaped, see page.text), no JavaScript, readable on
// a phone and a desktop.

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"
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

// The pages are written by the functions below, not by html/template:
// executing a template looks fields and methods up by name at run time
// (reflect's MethodByName), and a program that can do that keeps every
// exported method of every type it links. Without it the server's binary is
// about 4 MB smaller and its idle RSS about 1.8 MiB (nearly all of a
// binary's code becomes resident, run or not). The pages stay as safe as
// the template made them: every value goes through page.text, which
// escapes exactly as html/template does, and page.raw takes only this
// package's constant markup.

// page is an HTML page being written.
type page struct{ bytes.Buffer }

// raw writes markup. Only constants: never a value from a request, the
// database or the configuration.
func (p *page) raw(markup string) { p.WriteString(markup) }

// text writes s escaped for element content and quoted attribute values.
func (p *page) text(s string) { htmlEscaper.WriteString(&p.Buffer, s) }

// htmlEscaper escapes as html/template does in text and quoted attributes.
var htmlEscaper = strings.NewReplacer(
	"\x00", "\uFFFD", `"`, "&#34;", "&", "&amp;", "'", "&#39;", "+", "&#43;", "<", "&lt;", ">", "&gt;",
)

// start writes the head of a page titled title (written as text) with the
// shared style plus extraStyle (markup), and opens its main element.
func (p *page) start(title, extraStyle string) {
	p.raw(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>`)
	p.text(title)
	p.raw("</title>\n<style>" + pageStyle + extraStyle + "</style>\n</head>\n<body>\n<main>\n")
}

// end closes what start opened.
func (p *page) end() { p.raw("</main>\n</body>\n</html>\n") }

// loginPage is the sign-in and consent form, and the sign-in form of the
// account page (when Account is set: no application, one button). The
// approve button comes first in the markup (CSS shows it on the right):
// pressing Enter in a field submits with the form's first button.
func loginPage(d loginData) *page {
	p := new(page)
	p.start("Sign in to "+d.Server, "")
	p.raw("<h1>Sign in to ")
	p.text(d.Server)
	p.raw("</h1>\n")
	if d.Account {
		p.raw("<p>Sign in to see the applications connected to your account, and disconnect them.</p>\n")
	} else {
		p.raw(`<div class="app">
<p><strong>`)
		p.text(d.ClientName)
		p.raw(`</strong> <span class="note">(name given by the application, not verified)</span></p>
`)
		if d.ClientURL != "" {
			p.raw(`<p class="note">Application ID: `)
			p.text(d.ClientURL)
			p.raw("</p>")
		}
		p.raw("\n<p>wants to use this server on your behalf")
		if d.Scope != "" {
			p.raw(" with access <strong>")
			p.text(d.Scope)
			p.raw("</strong>")
		}
		p.raw(`.</p>
<p class="note">You will be sent back to <strong>`)
		p.text(d.RedirectHost)
		p.raw("</strong>")
		if d.Local {
			p.raw(" (an application on this computer)")
		}
		p.raw(".</p>\n</div>")
	}
	p.raw("\n")
	if d.Error != "" {
		p.raw(`<p class="error" role="alert">`)
		p.text(d.Error)
		p.raw("</p>")
	}
	action, field := "/authorize", "tx"
	if d.Account {
		action, field = "/account", "csrf"
	}
	p.raw("\n<form method=\"post\" action=\"" + action + "\">\n<input type=\"hidden\" name=\"" + field + "\" value=\"")
	p.text(d.Tx)
	p.raw(`">
<label for="username">Username</label>
<input type="text" id="username" name="username" value="`)
	p.text(d.Username)
	p.raw(`" autocomplete="username" autocapitalize="none" spellcheck="false" required`)
	if d.Username == "" {
		p.raw(" autofocus")
	}
	p.raw(`>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required`)
	if d.Username != "" {
		p.raw(" autofocus")
	}
	p.raw(">\n<div class=\"buttons\">\n")
	if d.Account {
		p.raw(`<button type="submit" class="primary">Sign in</button>
`)
	} else {
		p.raw(`<button type="submit" name="action" value="approve" class="primary">Sign in and allow</button>
<button type="submit" name="action" value="deny" class="secondary">Deny</button>
`)
	}
	p.raw("</div>\n</form>\n")
	if !d.Account {
		p.raw(`<p class="note">Only allow applications you trust. Deny also needs your password.</p>`)
	}
	p.raw("\n")
	p.end()
	return p
}

// errorPage is the page of a request that cannot go on.
func errorPage(e *pageError) *page {
	p := new(page)
	p.start(e.Title, "")
	p.raw("<h1>")
	p.text(e.Title)
	p.raw("</h1>\n<p>")
	p.text(e.Message)
	p.raw("</p>\n")
	p.end()
	return p
}

// renderLogin writes the sign-in page for transaction tx, with an error
// message and the username typed before, if any.
func (s *Server) renderLogin(w http.ResponseWriter, status int, tx string, req *authRequest, msg, username string) {
	name := req.Client.Name
	if name == "" {
		name = req.Client.ID
	}
	host := redirectTarget(req.RedirectURI)
	clientURL := ""
	if req.Client.Metadata {
		clientURL = req.Client.ID
	}
	local := false
	if u, err := url.Parse(req.RedirectURI); err == nil && u.Scheme == "http" {
		local = isLoopbackHost(u.Hostname())
	}
	s.renderPage(w, status, loginPage(loginData{
		Server: s.serverName, ClientName: name, ClientURL: clientURL, Scope: req.Scope,
		RedirectHost: host, Error: msg, Tx: tx, Username: username, Local: local,
	}))
}

// loginData is what loginPage shows. Tx is the hidden field's value: the
// sign-in transaction, or on the account page the sign-in CSRF token.
type loginData struct {
	Server, ClientName, ClientURL, Scope, RedirectHost, Error, Tx, Username string
	Local, Account                                                          bool
}

// renderError writes an error page.
func (s *Server) renderError(w http.ResponseWriter, pe *pageError) {
	s.renderPage(w, pe.Status, errorPage(pe))
}

// renderPage writes p with the pages' headers.
func (s *Server) renderPage(w http.ResponseWriter, status int, p *page) {
	setPageHeaders(w.Header())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(p.Bytes())
}
