package mcpserver

// The serve command: MCP over Streamable HTTP behind the OAuth server.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mcpgen/create-mcp-server/runtime/mcpauth"
	"github.com/mcpgen/create-mcp-server/runtime/userfile"
)

// Limits of the duration flags: below or above them a value is a mistake
// (a typo, or a unit forgotten), not a choice.
const (
	minAccessTTL  = time.Minute
	maxAccessTTL  = 24 * time.Hour
	minRefreshTTL = time.Hour
	maxRefreshTTL = 366 * 24 * time.Hour
	// A registered client becomes used when a code is issued to it, which
	// may take a sign-in of several minutes: a shorter limit would delete
	// clients while their user signs in.
	minUnusedClientTTL = 10 * time.Minute
	maxUnusedClientTTL = 366 * 24 * time.Hour
)

// Limits of --max-connections.
const (
	minMaxConnections = 1
	maxMaxConnections = 1_000_000
)

// serveConfig holds the values of serve's flags.
type serveConfig struct {
	addr, baseURL, db, users string
	accessTTL, refreshTTL    time.Duration
	origins, proxies         []string
	logFormat                string
	metricsAddr              string
	maxConnections           int
	unusedClientTTL          time.Duration
}

// serveFlags defines serve's flags, each with its environment variable,
// plus the program's own (Options.Flags).
func serveFlags(opts Options, c *serveConfig) *flagSet {
	*c = serveConfig{
		addr:       "127.0.0.1:8080",
		db:         "auth.db",
		users:      "users.txt",
		accessTTL:  time.Hour,
		refreshTTL: 720 * time.Hour,
		logFormat:  "text",

		maxConnections:  1024,
		unusedClientTTL: 24 * time.Hour,
	}
	flags := newFlagSet("serve")
	flags.Var(hostPortFlag{s: &c.addr}, "addr", "listen `ADDRESS`, host:port")
	flags.StringVar(&c.baseURL, "base-url", "", "public `URL` of the server, the OAuth issuer: MCP is at this URL + /mcp.\n"+
		"Required unless --addr is a loopback address (then http://<addr>), e.g. https://mcp.example.com")
	flags.StringVar(&c.db, "db", c.db, "the `DATABASE` of clients, grants and tokens: a SQLite file, created if absent,\n"+
		"or a postgres:// URL, which several replicas of the server may share")
	flags.StringVar(&c.users, "users", c.users, "users `FILE`, see \"user add\"")
	flags.Var(durationFlag{&c.accessTTL, minAccessTTL, maxAccessTTL}, "access-ttl", "access token `LIFETIME`")
	flags.Var(durationFlag{&c.refreshTTL, minRefreshTTL, maxRefreshTTL}, "refresh-ttl", "refresh token `LIFETIME`; refresh tokens rotate on every use")
	flags.Var(listFlag{&c.origins, checkOrigin}, "allowed-origins", "comma-separated browser `ORIGINS` allowed besides the server's own,\n"+
		"e.g. http://localhost:6274 for MCP Inspector")
	flags.Var(listFlag{&c.proxies, checkPrefix}, "trusted-proxies", "comma-separated `NETWORKS` (CIDR) of reverse proxies whose\n"+
		"X-Forwarded-For is believed, e.g. 127.0.0.1/32")
	addLogFlag(flags, &c.logFormat)
	flags.Var(hostPortFlag{s: &c.metricsAddr, defaultHost: "127.0.0.1", optional: true}, "metrics-addr",
		"serve Prometheus metrics at http://`ADDRESS`/metrics, on a listener of their own;\n"+
			"off unless set, and a bare port (9090 or :9090) listens on 127.0.0.1 only")
	flags.Var(intFlag{&c.maxConnections, minMaxConnections, maxMaxConnections}, "max-connections",
		"most client `CONNECTIONS` open at once; past it new ones are answered 503.\n"+
			"One client address may hold a sixteenth of them (at least 8); --trusted-proxies are exempt")
	flags.Var(durationFlag{&c.unusedClientTTL, minUnusedClientTTL, maxUnusedClientTTL}, "unused-client-ttl",
		"how long a registered app that never completed a sign-in is kept (`DURATION`):\n"+
			"anyone may register apps, and this is how the unused ones go away")
	if opts.Flags != nil {
		opts.Flags(flags.FlagSet)
	}
	flags.bindEnv()
	return flags
}

const serveSynopsis = "serve [flags]"

// Running is a server started by Start.
type Running struct {
	// URL is the base URL of the server: the OAuth issuer, with MCP at
	// URL + "/mcp".
	URL string
	// Addr is the address the server listens on, host:port. Behind a
	// proxy (--base-url set) it differs from URL's.
	Addr string
	// MetricsURL is where the Prometheus metrics are served, "" without
	// --metrics-addr.
	MetricsURL string

	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// Wait waits until the server has stopped (its context was cancelled, or
// Stop called) and returns why, nil for a normal shutdown.
func (r *Running) Wait() error {
	<-r.done
	return r.err
}

// Stop shuts the server down gracefully and waits for it.
func (r *Running) Stop() error {
	r.cancel()
	return r.Wait()
}

// Start runs serve with args (its flags) in the background: it checks the
// configuration, binds the listen address, opens the database, logs one
// "listening" line and returns. The server stops when ctx is cancelled or
// Stop is called. With --addr 127.0.0.1:0 it listens on a free port, and
// URL says which.
func Start(ctx context.Context, opts Options, args []string, env Env) (*Running, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	env = env.withDefaults()
	var c serveConfig
	flags := serveFlags(opts, &c)
	if err := flags.parse(args, 0, env.Getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			flags.printUsage(env.Stdout, serveSynopsis)
		}
		return nil, err
	}
	// The log is buffered (log.go); whatever returns from here on
	// flushes it first.
	logs := newLogBuffer(env.Stderr, logFlushAfter)
	log := newLogger(c.logFormat, logs, env)
	r, err := start(ctx, opts, c, log, logs)
	if err != nil {
		logs.Close()
		return nil, err
	}
	return r, nil
}

// start is Start after the flags are parsed; the caller closes logs if it
// fails, the server's goroutine when it stops.
func start(ctx context.Context, opts Options, c serveConfig, log *slog.Logger, logs *logBuffer) (*Running, error) {
	cfg, err := c.authConfig(opts, log)
	if err != nil {
		return nil, err
	}
	if err := requireUsers(c.users, progName(opts)); err != nil {
		return nil, err
	}

	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return nil, fmt.Errorf("--addr %s (env MCP_ADDR): %w", c.addr, unwrapOpError(err))
	}
	var metricsLn net.Listener
	if c.metricsAddr != "" {
		if metricsLn, err = net.Listen("tcp", c.metricsAddr); err != nil {
			ln.Close()
			return nil, fmt.Errorf("--metrics-addr %s (env MCP_METRICS_ADDR): %w", c.metricsAddr, unwrapOpError(err))
		}
	}
	closeListeners := func() {
		ln.Close()
		if metricsLn != nil {
			metricsLn.Close()
		}
	}
	if cfg.BaseURL == "" {
		// A loopback address (checked by authConfig): its port may have
		// been 0, so take the one the listener got.
		host, _, _ := net.SplitHostPort(c.addr)
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		cfg.BaseURL = "http://" + net.JoinHostPort(host, port)
	}
	cfg.Addr = ln.Addr().String()

	// Metrics are counted always, and exposed only on --metrics-addr.
	cfg.Metrics = mcpauth.NewMetrics()
	srv, err := mcpauth.New(cfg, opts.newMCPServer(log, cfg.Metrics))
	if err != nil {
		closeListeners()
		if dbErr, ok := errors.AsType[*mcpauth.DatabaseError](err); ok {
			return nil, fmt.Errorf("--db (env MCP_DB): %w", dbErr.Err)
		}
		return nil, err
	}

	ctx, cancel := context.WithCancel(ctx)
	r := &Running{URL: cfg.BaseURL, Addr: ln.Addr().String(), cancel: cancel, done: make(chan struct{})}
	attrs := []any{"url", cfg.BaseURL + "/mcp", "addr", ln.Addr().String()}
	var metricsSrv *http.Server
	if metricsLn != nil {
		r.MetricsURL = "http://" + metricsLn.Addr().String() + "/metrics"
		attrs = append(attrs, "metrics", r.MetricsURL)
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", cfg.Metrics.Handler())
		metricsSrv = &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slogLogger(log),
		}
		go metricsSrv.Serve(metricsLn)
	}
	log.Info("listening", attrs...)
	logs.Flush() // the start is worth seeing at once
	go func() {
		defer close(r.done)
		defer logs.Close() // before done: Main exits right after
		r.err = srv.Serve(ctx, ln)
		if metricsSrv != nil {
			metricsSrv.Close()
		}
		if err := srv.Close(); err != nil && r.err == nil {
			r.err = err
		}
		if r.err == nil {
			log.Info("stopped")
		}
	}()
	return r, nil
}

// serve runs the serve command until ctx is cancelled.
func serve(ctx context.Context, opts Options, args []string, env Env) error {
	r, err := Start(ctx, opts, args, env)
	if err != nil {
		return err
	}
	return r.Wait()
}

// authConfig checks the values of serve's flags together and turns them
// into an mcpauth.Config. Every error names the flag and its variable.
func (c *serveConfig) authConfig(opts Options, log *slog.Logger) (mcpauth.Config, error) {
	cfg := mcpauth.Config{
		Addr:         c.addr,
		Database:     c.db,
		UsersPath:    c.users,
		AccessTTL:    c.accessTTL,
		RefreshTTL:   c.refreshTTL,
		ResourceName: opts.Name,
		Logger:       log,
		Routes:       opts.Routes,
		Middleware:   opts.Middleware,

		MaxConnections:  c.maxConnections,
		UnusedClientTTL: c.unusedClientTTL,
	}
	if c.refreshTTL < c.accessTTL {
		return cfg, usageErrorf("--refresh-ttl %s (env MCP_REFRESH_TTL) is shorter than --access-ttl %s (env MCP_ACCESS_TTL): a refresh token must outlive the access tokens it renews",
			formatDuration(c.refreshTTL), formatDuration(c.accessTTL))
	}
	for _, o := range c.origins {
		cfg.AllowedOrigins = append(cfg.AllowedOrigins, strings.TrimSuffix(o, "/"))
	}
	for _, p := range c.proxies {
		prefix, _ := parsePrefix(p) // checked by the flag
		cfg.TrustedProxies = append(cfg.TrustedProxies, prefix)
	}

	host, _, _ := net.SplitHostPort(c.addr) // checked by the flag
	if c.baseURL == "" {
		// The base URL is the OAuth issuer and the token audience: it must
		// be the URL clients really use, so only a loopback listen address
		// can stand in for it (plain http is allowed only there).
		if !isLoopback(host) {
			return cfg, usageErrorf("--base-url (env MCP_BASE_URL) is required with --addr %s (env MCP_ADDR): "+
				"set it to the URL clients use, e.g. https://mcp.example.com (plain http only works on 127.0.0.1 or localhost)", c.addr)
		}
		return cfg, nil
	}
	base, err := checkBaseURL(c.baseURL)
	if err != nil {
		return cfg, usageErrorf("invalid value %q for --base-url (env MCP_BASE_URL): %v", c.baseURL, err)
	}
	cfg.BaseURL = base
	return cfg, nil
}

// checkBaseURL checks a public URL: http(s), a host, no path, query,
// fragment or user info, and plain http only on a loopback host. It
// returns the URL as scheme://host[:port], the form clients are shown.
func checkBaseURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "", errors.New("not a URL")
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		return "", errors.New("want an http(s) URL such as https://mcp.example.com")
	case u.User != nil, u.RawQuery != "", u.ForceQuery, u.Fragment != "", strings.Contains(raw, "#"), u.Path != "" && u.Path != "/":
		return "", errors.New("want only scheme, host and port, e.g. https://mcp.example.com (MCP is served at its /mcp)")
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		return "", errors.New("plain http is allowed only on 127.0.0.1, [::1] or localhost; use https behind a TLS-terminating proxy")
	}
	if p := u.Port(); p != "" || strings.HasSuffix(u.Host, ":") {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("port %q: want a number from 1 to 65535", p)
		}
	}
	return u.Scheme + "://" + u.Host, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && ip.Unmap().IsLoopback()
}

// checkOrigin checks a browser origin: scheme://host[:port].
func checkOrigin(o string) error {
	u, err := url.Parse(strings.TrimSuffix(o, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
		return errors.New("want an origin such as https://app.example.com or http://localhost:6274")
	}
	return nil
}

func checkPrefix(s string) error {
	_, err := parsePrefix(s)
	return err
}

// requireUsers fails, with the command to run, when nobody could sign in.
func requireUsers(path, prog string) error {
	users, err := userfile.List(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("--users %s (env MCP_USERS): %w", path, err)
	}
	if len(users) > 0 {
		return nil
	}
	extra := ""
	if path != "users.txt" {
		extra = " --users " + path
	}
	return fmt.Errorf("no users in %s, so nobody could sign in; add one, then start again:\n\n"+
		"\tgo run . user add NAME%s    (in the project directory)\n"+
		"\t%s user add NAME%s    (with the built binary)", path, extra, prog, extra)
}

// unwrapOpError drops the "listen tcp 127.0.0.1:8080:" prefix that the
// caller's message repeats.
func unwrapOpError(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}
