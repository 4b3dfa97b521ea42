package mcpserver

// The healthcheck command, for container images without curl or a shell
// (a Dockerfile's HEALTHCHECK, a Kubernetes exec probe).

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// healthcheckTimeout bounds the whole check.
const healthcheckTimeout = 5 * time.Second

// healthcheck asks the server's /readyz and succeeds on 200.
func healthcheck(ctx context.Context, args []string, env Env) error {
	flags := newFlagSet("healthcheck")
	target := flags.String("url", "", "`URL` of the server, or of its /readyz\n"+
		"(default http://<addr>/readyz, with <addr> from MCP_ADDR or 127.0.0.1:8080)")
	if err := flags.parse(args, 0, env.Getenv); err != nil {
		return helpOr(err, flags, env, "healthcheck [--url URL]")
	}
	u, err := readyzURL(*target, env.Getenv("MCP_ADDR"))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, healthcheckTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("not ready: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("not ready: %s answered %s", u, resp.Status)
	}
	fmt.Fprintf(env.Stdout, "ready: %s answered %s\n", u, resp.Status)
	return nil
}

// readyzURL is the URL to check: --url (with /readyz added when it has no
// path), or the server's listen address, where a host that listens on every
// interface is reached on loopback.
func readyzURL(flagURL, addr string) (string, error) {
	if flagURL != "" {
		u, err := url.Parse(flagURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return "", usageErrorf("invalid value %q for --url: want an http(s) URL such as http://127.0.0.1:8080", flagURL)
		}
		if u.Path == "" || u.Path == "/" {
			u.Path = "/readyz"
		}
		return u.String(), nil
	}
	if addr == "" {
		addr = "127.0.0.1:8080"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", usageErrorf("invalid value %q in MCP_ADDR (flag --url overrides it): want host:port", addr)
	}
	if host == "" || host == "0.0.0.0" || host == "::" || strings.EqualFold(host, "[::]") {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/readyz", nil
}
