package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// sdkAuthMethods are the client authentication methods the TypeScript SDK
// implements; the test runs the SDK once per method the server advertises.
var sdkAuthMethods = []string{"none", "client_secret_post", "client_secret_basic"}

// tsResult is the JSON that node/ts-sdk-client.mjs prints.
type tsResult struct {
	OK              bool     `json:"ok"`
	Step            string   `json:"step"`
	Error           string   `json:"error"`
	SDKVersion      string   `json:"sdkVersion"`
	Node            string   `json:"node"`
	Method          string   `json:"method"`
	Steps           []string `json:"steps"`
	ProtocolVersion string   `json:"protocolVersion"`
	Registered      struct {
		TokenEndpointAuthMethod string `json:"token_endpoint_auth_method"`
		ClientSecret            bool   `json:"client_secret"`
	} `json:"registered"`
	Tools         []string       `json:"tools"`
	TokenRequests []tokenRequest `json:"tokenRequests"`
	RefreshOn401  *struct {
		TokenRequests []tokenRequest `json:"tokenRequests"`
	} `json:"refreshOn401"`
	RefreshViaAuth *struct {
		Result        string         `json:"result"`
		TokenRequests []tokenRequest `json:"tokenRequests"`
	} `json:"refreshViaAuth"`
}

// tokenRequest is one request to /token as the script saw it on the wire.
type tokenRequest struct {
	GrantType string `json:"grant_type"`
	Auth      string `json:"auth"`
	Status    int    `json:"status"`
}

// testTSSDK runs the official TypeScript SDK client (node/ts-sdk-client.mjs)
// once per client authentication method the server advertises.
func testTSSDK(t *testing.T, srv *server) {
	nodeDir := nodeProject(t)
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("ts-sdk: node not found on PATH: %v", err)
	}
	advertised := stringList(srv.Metadata, "token_endpoint_auth_methods_supported")
	var methods []string
	for _, m := range advertised {
		if slices.Contains(sdkAuthMethods, m) {
			methods = append(methods, m)
		} else {
			t.Logf("ts-sdk: the server advertises %q, which the SDK does not implement", m)
		}
	}
	if len(methods) == 0 {
		t.Fatalf("ts-sdk: the server advertises no client authentication method the SDK implements (token_endpoint_auth_methods_supported=%v)", advertised)
	}
	for _, method := range methods {
		t.Run(method, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, node, filepath.Join(nodeDir, "ts-sdk-client.mjs"), method)
			cmd.Dir = nodeDir
			cmd.Env = append(os.Environ(),
				"MCP_URL="+srv.MCPURL,
				"MCP_ISSUER="+srv.BaseURL,
				"MCP_USERNAME="+testUser,
				"MCP_PASSWORD="+testPassword,
			)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			inGroup(cmd)
			runErr := cmd.Run()
			killGroup(cmd)

			var res tsResult
			if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &res); err != nil {
				t.Fatalf("ts-sdk %s: no JSON result (%v, exit: %v)\nstdout:\n%s\nstderr:\n%s", method, err, runErr, stdout.String(), stderr.String())
			}
			if !res.OK || runErr != nil {
				t.Fatalf("ts-sdk %s: step %q failed: %s\n(exit: %v; steps done: %v)\nstderr:\n%s\nresult:\n%s",
					method, res.Step, res.Error, runErr, res.Steps, stderr.String(), stdout.String())
			}
			t.Logf("ts-sdk: @modelcontextprotocol/sdk %s on node %s, %s, protocol %s, tools %v",
				res.SDKVersion, res.Node, method, res.ProtocolVersion, res.Tools)

			// The script checks each step as it goes; check the essentials
			// again from what it reports, so that a script that stops
			// checking cannot pass.
			if res.Registered.TokenEndpointAuthMethod != method {
				t.Errorf("registration: token_endpoint_auth_method %q, want %q", res.Registered.TokenEndpointAuthMethod, method)
			}
			if res.Registered.ClientSecret != (method != "none") {
				t.Errorf("registration with %s: client_secret returned = %t", method, res.Registered.ClientSecret)
			}
			if res.ProtocolVersion != "2025-11-25" {
				t.Errorf("initialize: protocol %q, want 2025-11-25 (the SDK's newest)", res.ProtocolVersion)
			}
			for _, want := range tools {
				if !slices.Contains(res.Tools, want) {
					t.Errorf("tools/list: no tool %q in %v", want, res.Tools)
				}
			}
			grants := map[string]int{}
			for _, r := range res.TokenRequests {
				if r.Auth != method {
					t.Errorf("token request (%s) authenticated with %s, want %s", r.GrantType, r.Auth, method)
				}
				if r.Status == 200 {
					grants[r.GrantType]++
				}
			}
			if grants["authorization_code"] != 1 || grants["refresh_token"] != 2 {
				t.Errorf("token requests: %d authorization_code and %d refresh_token grants succeeded, want 1 and 2 (one per refresh path)",
					grants["authorization_code"], grants["refresh_token"])
			}
			if res.RefreshOn401 == nil || res.RefreshViaAuth == nil || res.RefreshViaAuth.Result != "AUTHORIZED" {
				t.Errorf("refresh: on 401 = %v, via auth() = %v", res.RefreshOn401 != nil, res.RefreshViaAuth)
			}
		})
	}
}

// nodeProject returns interop/node, failing if its npm packages are not
// installed.
func nodeProject(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("node")
	if err != nil {
		t.Fatalf("node project: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@modelcontextprotocol", "sdk", "package.json")); err != nil {
		t.Fatalf("node project: npm packages missing (%v); run `npm ci` in %s (scripts/test does)", err, dir)
	}
	return dir
}
