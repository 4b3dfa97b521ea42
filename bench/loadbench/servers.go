package main

// Building, starting and signing in to the two servers under test.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mcpgen/create-mcp-server/runtime/mcpauthtest"
)

// benchUser signs in to the generated server. The password only ever
// exists in the benchmark's work directory.
const (
	benchUser     = "bench"
	benchPassword = "load-bench-password"
)

// pprofSource is added to both servers' main packages (with go build
// -overlay, so nothing in the tree changes) when -profile is given: a pprof
// listener on $LOADBENCH_PPROF_ADDR, idle unless a profile is requested.
const pprofSource = `package main

import (
	"net"
	"net/http"
	"net/http/pprof"
	"os"
)

func init() {
	addr := os.Getenv("LOADBENCH_PPROF_ADDR")
	if addr == "" {
		return
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	go http.Serve(ln, mux)
}
`

// run runs a command in dir and returns its combined output, or an error
// with that output.
func run(dir, name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out, nil
}

// builds holds the paths of the built binaries.
type builds struct {
	generated string            // the freshly generated project's server
	plain     string            // bench/plainmcp
	compare   map[string]string // the servers of the -compare projects, by name
	mcpGo     string            // the mcp-go version every binary was built with
}

// build generates a project with this repository's generator into
// work/gen, builds its server, the plain server and those of the compare
// projects (name → directory) into work/bin, and checks that all use the
// same mcp-go. With profile, each gets a pprof listener.
func build(root, work string, compare map[string]string, profile bool) (builds, error) {
	b := builds{compare: map[string]string{}}
	bin := filepath.Join(work, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return b, err
	}
	gen := filepath.Join(bin, "create-mcp-server")
	if _, err := run(root, "go", "build", "-o", gen, "./cmd/create-mcp-server"); err != nil {
		return b, err
	}
	genDir := filepath.Join(work, "gen")
	if _, err := run(work, gen, "--yes", "--module", "example.com/benchsrv", "--name", "benchsrv", genDir); err != nil {
		return b, err
	}
	type pkg struct{ dir, target, out string }
	pkgs := []pkg{{genDir, ".", "generated"}, {root, "./bench/plainmcp", "plain"}}
	for name, dir := range compare {
		pkgs = append(pkgs, pkg{dir, ".", name})
	}
	var flags []string
	if profile {
		src := filepath.Join(work, "pprof.go")
		if err := os.WriteFile(src, []byte(pprofSource), 0o644); err != nil {
			return b, err
		}
		replace := map[string]string{}
		for _, p := range pkgs {
			replace[filepath.Join(p.dir, p.target, "zz_loadbench_pprof.go")] = src
		}
		overlay, err := json.Marshal(map[string]any{"Replace": replace})
		if err != nil {
			return b, err
		}
		ov := filepath.Join(work, "overlay.json")
		if err := os.WriteFile(ov, overlay, 0o644); err != nil {
			return b, err
		}
		flags = append(flags, "-overlay", ov)
	}
	for _, p := range pkgs {
		out := filepath.Join(bin, p.out)
		if _, err := run(p.dir, "go", append(append([]string{"build"}, flags...), "-o", out, p.target)...); err != nil {
			return b, err
		}
		v, err := depVersion(out, "github.com/mark3labs/mcp-go")
		if err != nil {
			return b, err
		}
		if b.mcpGo == "" {
			b.mcpGo = v
		} else if v != b.mcpGo {
			return b, fmt.Errorf("%s uses mcp-go %s but the generated server %s: align go.mod with templates/go.mod.tmpl", p.out, v, b.mcpGo)
		}
		switch p.out {
		case "generated":
			b.generated = out
		case "plain":
			b.plain = out
		default:
			b.compare[p.out] = out
		}
	}
	return b, nil
}

// depVersion reads the version of module mod that binary was built with.
func depVersion(binary, mod string) (string, error) {
	out, err := run("", "go", "version", "-m", binary)
	if err != nil {
		return "", err
	}
	m := regexp.MustCompile(`(?m)^\s+dep\s+` + regexp.QuoteMeta(mod) + `\s+(\S+)`).FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("%s: not built with %s", binary, mod)
	}
	return string(m[1]), nil
}

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// proc is a started server.
type proc struct {
	name      string
	cmd       *exec.Cmd
	addr      string
	pprofAddr string
	logPath   string
	exited    chan struct{}
}

// start runs binary args pinned to cpus (taskset) at nice value nice, with its output in
// logPath, in an environment without MCP_ variables, and waits until addr
// accepts connections.
func start(name, dir, cpus string, nice int, addr, logPath string, profile bool, binary string, args ...string) (*proc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command("nice", append([]string{"-n", strconv.Itoa(nice), "taskset", "-c", cpus, binary}, args...)...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MCP_") && !strings.HasPrefix(kv, "GOMAXPROCS=") && !strings.HasPrefix(kv, "GODEBUG=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	p := &proc{name: name, cmd: cmd, addr: addr, logPath: logPath, exited: make(chan struct{})}
	if profile {
		if p.pprofAddr, err = freeAddr(); err != nil {
			return nil, err
		}
		cmd.Env = append(cmd.Env, "LOADBENCH_PPROF_ADDR="+p.pprofAddr)
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() { cmd.Wait(); close(p.exited) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-p.exited:
			return nil, fmt.Errorf("%s exited at start: %s", name, p.logTail())
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return p, nil
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("%s does not listen on %s after 30 s: %s", name, addr, p.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// logTail is the end of the server's output, for error messages.
func (p *proc) logTail() string {
	b, _ := os.ReadFile(p.logPath)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// stop ends the server with SIGTERM (SIGKILL after 10 s).
func (p *proc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// profile saves a CPU profile and an allocation profile of the next
// seconds of the server into dir, named by prefix.
func (p *proc) profile(ctx context.Context, dir, prefix string, seconds int) error {
	get := func(path, file string) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.pprofAddr+path, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: HTTP %d: %s", path, resp.StatusCode, body)
		}
		return os.WriteFile(filepath.Join(dir, file), body, 0o644)
	}
	errc := make(chan error, 1)
	go func() {
		errc <- get("/debug/pprof/allocs?seconds="+strconv.Itoa(seconds), prefix+".allocs.pprof")
	}()
	err := get("/debug/pprof/profile?seconds="+strconv.Itoa(seconds), prefix+".cpu.pprof")
	return errors.Join(err, <-errc)
}

// signIn runs the OAuth flow against the generated server as a new client
// (registration, login form, code exchange) and returns the client and its
// tokens.
func signIn(ctx context.Context, baseURL string) (*mcpauthtest.Client, *mcpauthtest.Token, error) {
	c, err := mcpauthtest.Register(ctx, baseURL, map[string]any{"client_name": "loadbench"})
	if err != nil {
		return nil, nil, err
	}
	res, err := c.Authorize(ctx, mcpauthtest.AuthorizeOptions{Username: benchUser, Password: benchPassword})
	if err != nil {
		return nil, nil, err
	}
	if res.Error != "" {
		return nil, nil, fmt.Errorf("authorize: %s: %s", res.Error, res.ErrorDescription)
	}
	tok, err := c.Exchange(ctx, res.Code, res.Verifier)
	if err != nil {
		return nil, nil, err
	}
	return c, tok, nil
}

// scrape fetches a Prometheus exposition and returns the sum of the
// samples of the metric family name (0 if absent).
func scrape(ctx context.Context, addr, name string) (float64, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return 0, false, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, false, err
	}
	var sum float64
	found := false
	for line := range bytes.Lines(body) {
		s := strings.TrimSpace(string(line))
		if !strings.HasPrefix(s, name) || len(s) > len(name) && s[len(name)] != '{' && s[len(name)] != ' ' {
			continue
		}
		f := strings.Fields(s)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
			found = true
		}
	}
	return sum, found, nil
}
