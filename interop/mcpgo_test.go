package interop

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgen/create-mcp-server/runtime/mcpauthtest"
)

// loopbackRedirect is the redirect URI the headless clients register.
// Nothing listens there: the headless login catches the redirect to it.
const loopbackRedirect = "http://127.0.0.1:53682/callback"

// testMCPGo drives the server with mcp-go's OAuth client on the protocol
// revision mcp-go prefers (2026-07-28, stateless, server/discover) and on
// the 2025-11-25 initialize handshake.
func testMCPGo(t *testing.T, srv *server) {
	cases := []struct {
		name, pin, want string
	}{
		{name: "2026-07-28", pin: "", want: "2026-07-28"},
		{name: "2025-11-25", pin: "2025-11-25", want: "2025-11-25"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()

			store := &tokenStore{}
			tr, err := transport.NewStreamableHTTP(srv.MCPURL, transport.WithHTTPOAuth(transport.OAuthConfig{
				RedirectURI: loopbackRedirect,
				TokenStore:  store,
				PKCEEnabled: true,
			}))
			if err != nil {
				t.Fatalf("new transport: %v", err)
			}
			var opts []client.ClientOption
			if tc.pin != "" {
				opts = append(opts, client.WithProtocolVersion(tc.pin))
			}
			c := client.NewClient(tr, opts...)
			if err := c.Start(ctx); err != nil {
				t.Fatalf("start: %v", err)
			}
			t.Cleanup(func() { c.Close() })

			init := mcp.InitializeRequest{}
			init.Params.ProtocolVersion = tc.pin
			init.Params.ClientInfo = mcp.Implementation{Name: "interop-mcp-go", Version: "0.1.0"}

			// 1. Without a token the server answers 401 with a challenge.
			_, err = c.Initialize(ctx, init)
			if !client.IsOAuthAuthorizationRequiredError(err) {
				t.Fatalf("connect without a token: want an OAuth authorization-required error (401 challenge), got %v", err)
			}
			h := client.GetOAuthHandler(err)

			// 2. Discovery (RFC 9728 then RFC 8414) and dynamic registration.
			if err := h.RegisterClient(ctx, "interop mcp-go "+tc.name); err != nil {
				t.Fatalf("discovery and dynamic registration: %v", err)
			}
			if h.GetClientID() == "" {
				t.Fatalf("dynamic registration: no client_id")
			}

			// 3. PKCE, login through the HTML form, code for token.
			verifier, err := client.GenerateCodeVerifier()
			if err != nil {
				t.Fatalf("pkce: %v", err)
			}
			state, err := client.GenerateState()
			if err != nil {
				t.Fatalf("state: %v", err)
			}
			authURL, err := h.GetAuthorizationURL(ctx, state, client.GenerateCodeChallenge(verifier))
			if err != nil {
				t.Fatalf("authorization URL: %v", err)
			}
			res, err := headlessLogin(ctx, authURL, testUser, testPassword)
			if err != nil {
				t.Fatalf("login: %v", err)
			}
			checkAuthorizationResponse(t, srv, res, state)
			if err := h.ProcessAuthorizationResponse(ctx, res.Code, res.State, verifier); err != nil {
				t.Fatalf("token (authorization_code): %v", err)
			}
			first := store.token(t)
			if first.RefreshToken == "" || first.ExpiresIn <= 0 {
				t.Fatalf("token (authorization_code): want a refresh_token and expires_in, got refresh_token=%t expires_in=%d",
					first.RefreshToken != "", first.ExpiresIn)
			}

			// 4. Connect with the token on the protocol under test.
			if _, err := c.Initialize(ctx, init); err != nil {
				t.Fatalf("initialize with a token: %v", err)
			}
			if got := c.ProtocolVersion(); got != tc.want {
				t.Fatalf("initialize: negotiated protocol %q, want %q", got, tc.want)
			}

			// 5. tools/list and tools/call of every generated tool.
			callEveryTool(ctx, t, c, "mcp-go "+tc.name)

			// 6. Refresh: mcp-go refreshes when its token has expired locally.
			store.expire()
			if _, err := c.ListTools(ctx, mcp.ListToolsRequest{}); err != nil {
				t.Fatalf("refresh (expired access token) then tools/list: %v", err)
			}
			second := store.token(t)
			if second.AccessToken == first.AccessToken || second.RefreshToken == first.RefreshToken {
				t.Fatalf("refresh: the client kept its old tokens (access changed: %t, refresh rotated: %t)",
					second.AccessToken != first.AccessToken, second.RefreshToken != first.RefreshToken)
			}
			if code := bearerStatus(ctx, t, srv, second.AccessToken); code == http.StatusUnauthorized {
				t.Fatalf("refresh: the new access token is refused (HTTP %d)", code)
			}
		})
	}
}

// callEveryTool lists the tools, checks that every generated tool is there
// and calls each with arguments built from its input schema; string
// arguments carry a marker that the placeholder tools echo back.
func callEveryTool(ctx context.Context, t *testing.T, c *client.Client, who string) {
	t.Helper()
	list, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	var names []string
	for _, tool := range list.Tools {
		names = append(names, tool.Name)
	}
	for _, want := range tools {
		if !slices.Contains(names, want) {
			t.Fatalf("tools/list: no tool %q in %v", want, names)
		}
	}
	for _, tool := range list.Tools {
		marker := fmt.Sprintf("hello from %s to %s", who, tool.Name)
		args, hasString := argsFor(tool.InputSchema, marker)
		var req mcp.CallToolRequest
		req.Params.Name = tool.Name
		req.Params.Arguments = args
		res, err := c.CallTool(ctx, req)
		if err != nil {
			t.Fatalf("tools/call %s: %v", tool.Name, err)
		}
		text := mcpauthtest.ResultText(res)
		if res.IsError {
			t.Fatalf("tools/call %s %v: tool error: %s", tool.Name, args, text)
		}
		if hasString && !strings.Contains(text, marker) {
			t.Fatalf("tools/call %s %v: result %q does not contain %q", tool.Name, args, text, marker)
		}
	}
}

// argsFor builds arguments for a tool from its input schema: marker for
// strings, 2 for numbers, true for booleans. It reports whether a string
// argument was set.
func argsFor(schema mcp.ToolInputSchema, marker string) (map[string]any, bool) {
	args := map[string]any{}
	hasString := false
	for name, raw := range schema.Properties {
		prop, _ := raw.(map[string]any)
		switch prop["type"] {
		case "string":
			args[name] = marker
			hasString = true
		case "number", "integer":
			args[name] = 2
		case "boolean":
			args[name] = true
		}
	}
	return args, hasString
}

// headlessLogin does in Go what a person does in a browser: it opens the
// authorization URL with a fresh cookie jar, fills in the login form
// (keeping its hidden inputs), submits it with the headers a browser sends
// and returns the parameters of the redirect to the client.
func headlessLogin(ctx context.Context, authURL, username, password string) (*mcpauthtest.AuthorizeResult, error) {
	u, err := url.Parse(authURL)
	if err != nil {
		return nil, fmt.Errorf("authorization URL: %w", err)
	}
	browser := mcpauthtest.NewBrowser()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/html")
	resp, err := browser.Do(req)
	if err != nil {
		return nil, fmt.Errorf("open login page: %w", err)
	}
	body, err := readAll(resp)
	if err != nil {
		return nil, fmt.Errorf("open login page: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("open login page: HTTP %d: %.300s", resp.StatusCode, body)
	}
	form, err := mcpauthtest.ParseForm(u, body)
	if err != nil {
		return nil, fmt.Errorf("open login page: %w", err)
	}
	page := &mcpauthtest.LoginPage{URL: u, Header: resp.Header, Body: body, Form: form, Browser: browser}
	res, err := page.Submit(ctx, username, password, false)
	if err != nil {
		return nil, fmt.Errorf("submit login form: %w", err)
	}
	return res, nil
}

// checkAuthorizationResponse checks what no SDK checks for us: the redirect
// goes to the registered URI and carries a code, our state and the issuer
// (RFC 9207).
func checkAuthorizationResponse(t *testing.T, srv *server, res *mcpauthtest.AuthorizeResult, state string) {
	t.Helper()
	switch {
	case res.Error != "":
		t.Fatalf("authorization response: error %s: %s", res.Error, res.ErrorDescription)
	case res.Location == nil || !strings.HasPrefix(res.Location.String(), loopbackRedirect+"?"):
		t.Fatalf("authorization response: redirected to %v, want %s", res.Location, loopbackRedirect)
	case res.Code == "":
		t.Fatalf("authorization response: no code in %v", res.Location)
	case res.State != state:
		t.Fatalf("authorization response: state %q, want %q", res.State, state)
	case res.Iss != srv.BaseURL:
		t.Fatalf("authorization response: iss %q, want the issuer %q", res.Iss, srv.BaseURL)
	}
}

// bearerStatus returns the HTTP status of a ping to the MCP endpoint with
// token.
func bearerStatus(ctx context.Context, t *testing.T, srv *server, token string) int {
	t.Helper()
	code, _, err := mcpauthtest.BearerStatus(ctx, nil, srv.MCPURL, token)
	if err != nil {
		t.Fatalf("bearer check: %v", err)
	}
	return code
}

// tokenStore is mcp-go's token store whose token the test can expire.
type tokenStore struct {
	mu  sync.Mutex
	tok *transport.Token
}

func (s *tokenStore) GetToken(ctx context.Context) (*transport.Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok == nil {
		return nil, transport.ErrNoToken
	}
	cp := *s.tok
	return &cp, nil
}

func (s *tokenStore) SaveToken(ctx context.Context, tok *transport.Token) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cp := *tok
	s.tok = &cp
	return nil
}

// expire makes the stored access token look expired to the client.
func (s *tokenStore) expire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok != nil {
		s.tok.ExpiresAt = time.Now().Add(-time.Minute)
	}
}

// token returns a copy of the stored token, failing if there is none.
func (s *tokenStore) token(t *testing.T) transport.Token {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok == nil {
		t.Fatalf("token store: no token saved")
	}
	return *s.tok
}
