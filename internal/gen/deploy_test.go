package gen

// Checks of the deployment files a project gets: the Dockerfile and its
// .dockerignore, compose.yaml, deploy/Caddyfile and deploy/nginx.conf. No
// container engine or registry is reachable where these tests run, so they
// parse the files the way the tools do (BuildKit's own Dockerfile parser,
// Docker's .dockerignore matcher, a YAML decoder for Compose) and check
// what can be checked without pulling an image. Each check returns the
// problems it finds as text; TestDeployChecksFail breaks the rendered files
// one way at a time and makes sure the checks notice.

import (
	"bytes"
	"fmt"
	"maps"
	"net/netip"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"go.yaml.in/yaml/v3"
	"golang.org/x/mod/modfile"
	"golang.org/x/mod/semver"
)

// project is a rendered project: file contents by slash path.
type project map[string][]byte

func renderProject(t *testing.T, a Answers) project {
	t.Helper()
	p := project{}
	for _, f := range render(t, a) {
		p[f.Path] = f.Data
	}
	return p
}

// exists reports whether name is a file or a directory of the project.
func (p project) exists(name string) bool {
	name = path.Clean(strings.TrimPrefix(name, "./"))
	if name == "." {
		return true
	}
	if _, ok := p[name]; ok {
		return true
	}
	for f := range p {
		if strings.HasPrefix(f, name+"/") {
			return true
		}
	}
	return false
}

// pinRules say, per base image, what a pinned tag looks like. An image with
// no rule is a problem: a new base image needs a rule saying how it is
// pinned. A digest (@sha256:...) may follow any tag.
var pinRules = []struct {
	image string         // repository, without tag
	tag   *regexp.Regexp // what a pinned tag looks like
}{
	// An exact Go release on an explicit Debian release.
	{"golang", regexp.MustCompile(`^\d+\.\d+\.\d+-(bookworm|trixie)$`)},
	// distroless publishes no version tags: the Debian release is in the
	// repository name, and the tag picks the user.
	{"gcr.io/distroless/static-debian12", regexp.MustCompile(`^nonroot$`)},
	// PostgreSQL's minor release (its patch level) on an explicit Debian.
	{"postgres", regexp.MustCompile(`^\d+\.\d+-(bookworm|trixie)$`)},
	{"caddy", regexp.MustCompile(`^\d+\.\d+\.\d+(-alpine)?$`)},
}

// pinProblem returns what is wrong with the pin of image ref, or "".
func pinProblem(ref string) string {
	name, _, _ := strings.Cut(ref, "@")
	repo, tag := name, ""
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		repo, tag = name[:i], name[i+1:]
	}
	switch {
	case tag == "":
		return fmt.Sprintf("image %s has no tag: it is whatever \"latest\" is on the day of the build", ref)
	case tag == "latest":
		return fmt.Sprintf("image %s is not pinned (latest)", ref)
	}
	for _, r := range pinRules {
		if r.image == repo {
			if !r.tag.MatchString(tag) {
				return fmt.Sprintf("image %s is not pinned to an exact version (want a tag matching %s)", ref, r.tag)
			}
			return ""
		}
	}
	return fmt.Sprintf("image %s: no pin rule for %s in pinRules", ref, repo)
}

// dockerfileProblems checks the project's Dockerfile and .dockerignore.
func dockerfileProblems(p project, binary string) []string {
	var probs []string
	addf := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }

	res, err := parser.Parse(bytes.NewReader(p["Dockerfile"]))
	if err != nil {
		return []string{"Dockerfile does not parse: " + err.Error()}
	}
	for _, w := range res.Warnings {
		addf("Dockerfile: BuildKit warns: %s", w.Short)
	}
	lint := linter.New(&linter.Config{Warn: func(rule, desc, url, msg string, loc []parser.Range) {
		addf("Dockerfile:%d: BuildKit lint %s: %s", loc[0].Start.Line, rule, msg)
	}})
	stages, metaArgs, err := instructions.Parse(res.AST, lint)
	if err != nil {
		return append(probs, "Dockerfile: "+err.Error())
	}
	if len(metaArgs) > 0 {
		addf("Dockerfile: ARG before FROM: base images must not depend on build arguments")
	}
	if len(stages) < 2 {
		return append(probs, fmt.Sprintf("Dockerfile has %d stage(s), want a build stage and a final one", len(stages)))
	}

	ignore, err := ignorefile.ReadAll(bytes.NewReader(p[".dockerignore"]))
	if err != nil {
		addf(".dockerignore: %v", err)
	}
	pm, err := patternmatcher.New(ignore)
	if err != nil {
		return append(probs, ".dockerignore: "+err.Error())
	}
	excluded := func(name string) bool {
		ok, err := pm.MatchesOrParentMatches(name)
		if err != nil {
			addf(".dockerignore: %v", err)
		}
		return ok
	}

	// Files that must never reach the builder, and files the build needs.
	for _, secret := range []string{"users.txt", "auth.db", "auth.db-wal", "auth.db-shm", "data/users.txt",
		".git/config", binary, "main.go.user-edit", ".env"} {
		if !excluded(secret) {
			addf(".dockerignore lets %s into the build context", secret)
		}
	}
	for name := range p {
		if (path.Ext(name) == ".go" || name == "go.mod" || name == "go.sum") && excluded(name) {
			addf(".dockerignore keeps %s, which the build needs, out of the build context", name)
		}
	}

	// The stages so far, by name, with the command lines of their RUNs:
	// COPY --from checks that the stage makes what it copies.
	names := map[string]bool{}
	stageRuns := map[string][]string{}
	for i, st := range stages {
		final := i == len(stages)-1
		if st.Name == "" && !final {
			addf("Dockerfile: stage %d has no name (FROM ... AS name)", i)
		}
		if !names[st.BaseName] {
			if msg := pinProblem(st.BaseName); msg != "" {
				addf("Dockerfile: FROM %s", msg)
			}
			if repo, tag, _ := strings.Cut(st.BaseName, ":"); repo == "golang" {
				probs = append(probs, goVersionProblems(p, tag)...)
			}
		}
		var runs []string
		var user string
		var health *instructions.HealthCheckCommand
		var entry *instructions.EntrypointCommand
		var volumes, copied []string
		chowns := map[string]string{}
		env := map[string]string{}
		for _, c := range st.Commands {
			switch c := c.(type) {
			case *instructions.RunCommand:
				runs = append(runs, strings.Join(c.CmdLine, " "))
			case *instructions.CopyCommand:
				dest := c.DestPath
				for _, src := range c.SourcePaths {
					if c.From != "" {
						if !names[c.From] {
							addf("Dockerfile: COPY --from=%s: no earlier stage has that name", c.From)
						} else if !slices.ContainsFunc(stageRuns[c.From], func(r string) bool { return strings.Contains(r, src) }) {
							addf("Dockerfile: COPY --from=%s %s: no RUN of that stage makes %s", c.From, src, src)
						}
					} else if !p.exists(src) {
						addf("Dockerfile: COPY %s: the project has no %s", src, src)
					} else if src != "." && excluded(path.Clean(src)) {
						addf("Dockerfile: COPY %s: .dockerignore keeps it out of the build context", src)
					}
					if strings.HasSuffix(dest, "/") {
						copied = append(copied, path.Join(dest, path.Base(src)))
					} else {
						copied = append(copied, dest)
					}
					chowns[path.Clean(dest)] = c.Chown
				}
			case *instructions.UserCommand:
				user = c.User
			case *instructions.HealthCheckCommand:
				health = c
			case *instructions.EntrypointCommand:
				entry = c
			case *instructions.VolumeCommand:
				volumes = append(volumes, c.Volumes...)
			case *instructions.EnvCommand:
				for _, kv := range c.Env {
					env[kv.Key] = kv.Value
				}
			}
		}
		if st.Name != "" {
			names[st.Name] = true
			stageRuns[st.Name] = runs
		}
		if !final {
			continue
		}

		// The final stage: what runs.
		if uid, _, _ := strings.Cut(user, ":"); uid == "" || uid == "0" || uid == "root" {
			addf("Dockerfile: the final stage runs as %q, want an unprivileged user (USER 65532:65532)", user)
		}
		bin := "/usr/local/bin/" + binary
		if !slices.Contains(copied, bin) {
			addf("Dockerfile: the final stage does not COPY the binary to %s", bin)
		}
		if entry == nil || entry.PrependShell || !slices.Equal(entry.CmdLine, []string{bin}) {
			addf("Dockerfile: ENTRYPOINT is not [%q] in exec form", bin)
		}
		switch {
		case health == nil:
			addf("Dockerfile: the final stage has no HEALTHCHECK")
		case len(health.Health.Test) == 0 || health.Health.Test[0] != "CMD":
			addf("Dockerfile: HEALTHCHECK %q is not in exec form (CMD [...]): the image has no shell", health.Health.Test)
		case !slices.Equal(health.Health.Test[1:], []string{bin, "healthcheck"}):
			addf("Dockerfile: HEALTHCHECK runs %q, want [%q \"healthcheck\"]", health.Health.Test[1:], bin)
		}
		// The state lives on a volume owned by the user the server runs as,
		// and the defaults point into it.
		if len(volumes) != 1 {
			addf("Dockerfile: the final stage declares volumes %q, want one (/data)", volumes)
		}
		for _, v := range volumes {
			if chowns[path.Clean(v)] != user {
				addf("Dockerfile: VOLUME %s is not copied in with --chown=%s, the USER", v, user)
			}
			for _, k := range []string{"MCP_DB", "MCP_USERS"} {
				if !strings.HasPrefix(env[k], path.Clean(v)+"/") {
					addf("Dockerfile: ENV %s=%q is not on the volume %s", k, env[k], v)
				}
			}
		}
	}
	return probs
}

// goVersionProblems checks that the golang image's Go is at least the go
// line of the project's go.mod.
func goVersionProblems(p project, tag string) []string {
	f, err := modfile.ParseLax("go.mod", p["go.mod"], nil)
	if err != nil || f.Go == nil {
		return []string{fmt.Sprintf("go.mod: no go line (%v)", err)}
	}
	version, _, _ := strings.Cut(tag, "-")
	if semver.Compare("v"+version, "v"+f.Go.Version) < 0 {
		return []string{fmt.Sprintf("Dockerfile: golang:%s is older than go.mod's go %s", tag, f.Go.Version)}
	}
	return nil
}

// composeFile is the part of the Compose file format the checks read.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Build       any               `yaml:"build"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
	Ports       []string          `yaml:"ports"`
	Profiles    []string          `yaml:"profiles"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck *struct {
		Test    []string `yaml:"test"`
		Disable bool     `yaml:"disable"`
	} `yaml:"healthcheck"`
}

// composeEnv is the environment the checks interpolate compose.yaml with:
// what .env holds after the README's first step.
var composeEnv = map[string]string{"POSTGRES_PASSWORD": "0123456789abcdef"}

var composeVar = regexp.MustCompile(`\$\{([A-Z_][A-Z0-9_]*)(?:(:?[-?])([^}]*))?\}`)

// interpolate substitutes ${VAR}, ${VAR:-default} and ${VAR:?error} as
// Compose does, and reports a required variable that is not set.
func interpolate(s string, env map[string]string) (string, []string) {
	var probs []string
	out := composeVar.ReplaceAllStringFunc(s, func(m string) string {
		sub := composeVar.FindStringSubmatch(m)
		v, ok := env[sub[1]]
		switch {
		case ok && v != "":
			return v
		case strings.HasSuffix(sub[2], "-"):
			return sub[3]
		case strings.HasSuffix(sub[2], "?"):
			probs = append(probs, fmt.Sprintf("compose.yaml needs %s: %s", sub[1], sub[3]))
		}
		return ""
	})
	return strings.ReplaceAll(out, "$$", "$"), probs
}

// composeProblems checks compose.yaml and the proxy configuration it uses.
func composeProblems(p project, image, binary string) []string {
	var probs []string
	addf := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }

	src, missing := interpolate(string(p["compose.yaml"]), composeEnv)
	probs = append(probs, missing...)
	var c composeFile
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(false)
	if err := dec.Decode(&c); err != nil {
		return append(probs, "compose.yaml does not parse: "+err.Error())
	}

	pg, ok := c.Services["postgres"]
	if !ok {
		return append(probs, "compose.yaml has no postgres service")
	}
	proxy, ok := c.Services["proxy"]
	if !ok {
		return append(probs, "compose.yaml has no proxy service")
	}
	var replicas []string
	for name, s := range c.Services {
		if s.Image == image && len(s.Profiles) == 0 {
			replicas = append(replicas, name)
		}
	}
	slices.Sort(replicas)
	if len(replicas) != 2 {
		addf("compose.yaml starts %d replicas of %s (%q), want 2", len(replicas), image, replicas)
	}

	for name, s := range c.Services {
		switch {
		case s.Build != nil && s.Image != image:
			addf("compose.yaml: service %s builds the project but names its image %q, want %q", name, s.Image, image)
		case s.Build == nil:
			if msg := pinProblem(s.Image); msg != "" {
				addf("compose.yaml: service %s: %s", name, msg)
			}
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			switch {
			case strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/"):
				if !p.exists(src) {
					addf("compose.yaml: service %s mounts %s, which the project does not have", name, src)
				}
			case c.Volumes == nil || !hasKey(c.Volumes, src):
				addf("compose.yaml: service %s mounts volume %q, which is not declared under volumes", name, src)
			}
		}
		if len(s.Profiles) > 0 {
			continue // started only when asked for
		}
		if s.Healthcheck == nil || s.Healthcheck.Disable || len(s.Healthcheck.Test) == 0 {
			addf("compose.yaml: service %s has no healthcheck", name)
		}
		for dep, d := range s.DependsOn {
			if d.Condition != "service_healthy" {
				addf("compose.yaml: %s depends on %s with condition %q, want service_healthy", name, dep, d.Condition)
			}
		}
	}

	// The replicas: one database, one users file, one base URL, reached
	// only through the proxy.
	db := pg.Environment
	users := map[string]bool{}
	for _, name := range replicas {
		s := c.Services[name]
		if _, ok := s.DependsOn["postgres"]; !ok {
			addf("compose.yaml: %s does not depend on postgres", name)
		}
		if h := s.Healthcheck; h != nil && !slices.Equal(h.Test, []string{"CMD", "/usr/local/bin/" + binary, "healthcheck"}) {
			addf("compose.yaml: %s's healthcheck runs %q, not the binary's healthcheck command", name, h.Test)
		}
		u, err := url.Parse(s.Environment["MCP_DB"])
		if err != nil {
			addf("compose.yaml: %s: MCP_DB: %v", name, err)
		} else {
			pw, _ := u.User.Password()
			if u.Scheme != "postgres" || u.Hostname() != "postgres" || u.User.Username() != db["POSTGRES_USER"] ||
				pw != db["POSTGRES_PASSWORD"] || u.Path != "/"+db["POSTGRES_DB"] {
				addf("compose.yaml: %s: MCP_DB %s is not the postgres service's database (postgres://%s:...@postgres/%s)",
					name, u.Redacted(), db["POSTGRES_USER"], db["POSTGRES_DB"])
			}
		}
		users[s.Environment["MCP_USERS"]+" on "+strings.Join(s.Volumes, ",")] = true
		if !slices.ContainsFunc(s.Volumes, func(v string) bool {
			return strings.HasSuffix(v, ":ro") && strings.HasPrefix(s.Environment["MCP_USERS"], strings.Split(v, ":")[1]+"/")
		}) {
			addf("compose.yaml: %s does not read MCP_USERS=%s from a read-only mount", name, s.Environment["MCP_USERS"])
		}
		if s.Environment["MCP_BASE_URL"] != c.Services[replicas[0]].Environment["MCP_BASE_URL"] {
			addf("compose.yaml: the replicas have different MCP_BASE_URL values")
		}
		for _, n := range strings.Split(s.Environment["MCP_TRUSTED_PROXIES"], ",") {
			if _, err := netip.ParsePrefix(n); err != nil {
				addf("compose.yaml: %s: MCP_TRUSTED_PROXIES: %v", name, err)
			}
		}
		if len(s.Ports) > 0 {
			addf("compose.yaml: %s publishes %q: the replicas must be reached through the proxy only", name, s.Ports)
		}
		if d, ok := proxy.DependsOn[name]; !ok || d.Condition != "service_healthy" {
			addf("compose.yaml: proxy does not wait for %s to be healthy", name)
		}
	}
	if len(users) > 1 {
		addf("compose.yaml: the replicas read different users files: %v", slices.Sorted(maps.Keys(users)))
	}
	if len(proxy.Ports) == 0 {
		addf("compose.yaml: the proxy publishes no port")
	}

	// The proxy's configuration names every replica.
	var caddyfile string
	for _, v := range proxy.Volumes {
		if src, dst, _ := strings.Cut(v, ":"); strings.HasPrefix(dst, "/etc/caddy/Caddyfile") {
			caddyfile = path.Clean(strings.TrimPrefix(src, "./"))
		}
	}
	if caddyfile == "" {
		return append(probs, "compose.yaml: the proxy mounts no Caddyfile")
	}
	conf := stripComments(p[caddyfile])
	for _, name := range replicas {
		if !regexp.MustCompile(`\breverse_proxy\b[^{\n]*\b` + regexp.QuoteMeta(name) + `:8080\b`).MatchString(conf) {
			addf("%s: reverse_proxy does not name replica %s:8080", caddyfile, name)
		}
	}
	return probs
}

func hasKey(m map[string]any, k string) bool { _, ok := m[k]; return ok }

// stripComments drops # comments (whole lines and line ends) from a
// configuration file, so that a directive in a comment does not count.
func stripComments(data []byte) string {
	var b strings.Builder
	for _, line := range strings.Split(string(data), "\n") {
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

// proxyDirectives are what each reverse proxy configuration must say, as
// regular expressions over its lines without comments.
var proxyDirectives = map[string][]struct{ re, why string }{
	"deploy/Caddyfile": {
		{`(?m)^\s*lb_policy\s+round_robin\s*$`, "balance round robin"},
		{`(?m)^\s*flush_interval\s+-1\s*$`, "stream responses unbuffered"},
		{`(?m)^\s*health_uri\s+/readyz\s*$`, "leave out replicas that are not ready"},
		{`(?m)^\s*reverse_proxy\s+\S+:8080\s`, "proxy to the replicas"},
	},
	"deploy/nginx.conf": {
		{`(?m)^\s*proxy_buffering\s+off;`, "stream responses unbuffered"},
		{`(?m)^\s*proxy_read_timeout\s+\d+[hm];`, "keep event streams open past 60 s"},
		{`(?m)^\s*proxy_set_header\s+Host\s+\$host;`, "keep the Host clients used"},
		{`(?m)^\s*proxy_set_header\s+X-Forwarded-For\s+\$(proxy_add_x_forwarded_for|remote_addr);`, "pass the client's address"},
		{`(?m)^\s*client_max_body_size\s+4m;`, "accept /mcp bodies up to the server's 4 MiB"},
		{`(?m)^\s*location\s+/\s*\{`, "forward every path"},
		{`(?m)^\s*proxy_pass\s+http://[a-z_]+;`, "forward paths unchanged (no URI after the upstream)"},
		{`(?m)^\s*listen\s+443\s+ssl`, "terminate TLS"},
		{`(?m)^limit_conn_zone\s+\$binary_remote_addr\s+zone=(\w+):\d+m;(?s:.*)^\s+limit_conn\s+\w+\s+\d+;`, "cap connections per client address (the replicas cannot: every connection comes from the proxy)"},
	},
}

func proxyProblems(p project) []string {
	var probs []string
	for name, dirs := range proxyDirectives {
		conf := stripComments(p[name])
		for _, d := range dirs {
			if !regexp.MustCompile(d.re).MatchString(conf) {
				probs = append(probs, fmt.Sprintf("%s does not %s (%s)", name, d.why, d.re))
			}
		}
	}
	return probs
}

func deployProblems(p project, a Answers) []string {
	data := newTemplateData(a, Version)
	probs := dockerfileProblems(p, data.Binary)
	probs = append(probs, composeProblems(p, data.Image, data.Binary)...)
	return append(probs, proxyProblems(p)...)
}

// TestDeployFiles checks the deployment files of every golden answer set.
func TestDeployFiles(t *testing.T) {
	for _, set := range goldenSets {
		t.Run(set.name, func(t *testing.T) {
			for _, prob := range deployProblems(renderProject(t, set.answers), set.answers) {
				t.Error(prob)
			}
		})
	}
}

// TestDeployChecksFail breaks the rendered deployment files one way at a
// time: each break must be reported, or the checks above check nothing.
func TestDeployChecksFail(t *testing.T) {
	a := goldenSets[0].answers // binary and image "weather"
	tests := []struct {
		name      string
		file      string
		old, new  string // the edit; new "" deletes old
		wantProbs string // a problem must contain this
	}{
		{"golang without patch release", "Dockerfile", "golang:1.26.8-bookworm", "golang:1.26", "not pinned to an exact version"},
		{"golang older than go.mod", "Dockerfile", "golang:1.26.8-bookworm", "golang:1.25.9-bookworm", "older than go.mod"},
		{"final image latest", "Dockerfile", "FROM gcr.io/distroless/static-debian12:nonroot", "FROM gcr.io/distroless/static-debian12:latest", "not pinned (latest)"},
		{"final image untagged", "Dockerfile", "FROM gcr.io/distroless/static-debian12:nonroot", "FROM gcr.io/distroless/static-debian12", "has no tag"},
		{"unknown base image", "Dockerfile", "FROM gcr.io/distroless/static-debian12:nonroot", "FROM alpine:3.22.1", "no pin rule"},
		{"runs as root", "Dockerfile", "USER 65532:65532", "USER root", "want an unprivileged user"},
		{"no USER", "Dockerfile", "USER 65532:65532\n", "", "want an unprivileged user"},
		{"no HEALTHCHECK", "Dockerfile", "HEALTHCHECK --interval=10s --timeout=6s --start-period=10s --retries=3 \\\n    CMD [\"/usr/local/bin/weather\", \"healthcheck\"]\n", "", "no HEALTHCHECK"},
		{"HEALTHCHECK needs a shell", "Dockerfile", `CMD ["/usr/local/bin/weather", "healthcheck"]`, "CMD /usr/local/bin/weather healthcheck", "not in exec form"},
		{"HEALTHCHECK runs something else", "Dockerfile", `"healthcheck"]`, `"version"]`, "want [\"/usr/local/bin/weather\" \"healthcheck\"]"},
		{"COPY of a missing file", "Dockerfile", "COPY go.mod go.sum ./", "COPY go.mod go.sum go.work ./", "the project has no go.work"},
		{"COPY from a stage that does not make it", "Dockerfile", "COPY --from=build /out/weather", "COPY --from=build /out/other", "no RUN of that stage makes /out/other"},
		{"ENTRYPOINT through a shell", "Dockerfile", `ENTRYPOINT ["/usr/local/bin/weather"]`, "ENTRYPOINT /usr/local/bin/weather", "exec form"},
		{"volume not owned by the user", "Dockerfile", "--chown=65532:65532 /out/data", "/out/data", "not copied in with --chown"},
		{"users file not ignored", ".dockerignore", "**/users.txt\n", "", "lets users.txt into the build context"},
		{"database not ignored", ".dockerignore", "**/auth.db*\n", "", "lets auth.db into the build context"},
		{"source ignored", ".dockerignore", ".env\n", ".env\n*.go\n", "keeps main.go, which the build needs"},

		{"postgres by major version only", "compose.yaml", "postgres:17.6-bookworm", "postgres:17", "not pinned to an exact version"},
		{"caddy latest", "compose.yaml", "caddy:2.11.2-alpine", "caddy:latest", "not pinned (latest)"},
		{"one replica", "compose.yaml", "  server-2:\n    <<: *server\n    volumes:\n      - users:/data:ro\n    restart: unless-stopped\n", "", "starts 1 replicas"},
		{"replica on another database", "compose.yaml", "@postgres:5432/mcp", "@db:5432/mcp", "is not the postgres service's database"},
		{"database not awaited", "compose.yaml", "    postgres:\n      condition: service_healthy\n", "    postgres:\n      condition: service_started\n", "want service_healthy"},
		{"proxy does not wait", "compose.yaml", "      server-2:\n        condition: service_healthy\n", "", "proxy does not wait for server-2"},
		{"no postgres healthcheck", "compose.yaml", "      test: [\"CMD\", \"pg_isready\", \"--username=mcp\", \"--dbname=mcp\"]\n", "", "service postgres has no healthcheck"},
		{"users file writable", "compose.yaml", "      - users:/data:ro\n    restart: unless-stopped\n\n  server-2", "      - users:/data\n    restart: unless-stopped\n\n  server-2", "read-only mount"},
		{"missing config file", "compose.yaml", "./deploy/Caddyfile:", "./Caddyfile:", "mounts ./Caddyfile, which the project does not have"},
		{"undeclared volume", "compose.yaml", "  caddy-config:\n", "", "volume \"caddy-config\", which is not declared"},
		{"replica published", "compose.yaml", "  server-1:\n    <<: *server\n", "  server-1:\n    <<: *server\n    ports: [\"8080:8080\"]\n", "reached through the proxy only"},
		{"Caddyfile forgets a replica", "deploy/Caddyfile", "server-1:8080 server-2:8080", "server-1:8080", "does not name replica server-2:8080"},
		{"Caddyfile buffers", "deploy/Caddyfile", "flush_interval -1", "flush_interval 1s", "stream responses unbuffered"},
		{"nginx buffers", "deploy/nginx.conf", "proxy_buffering off;", "proxy_buffering on;", "stream responses unbuffered"},
		{"nginx cuts event streams", "deploy/nginx.conf", "proxy_read_timeout 1h;", "", "keep event streams open"},
		{"nginx rewrites the Host", "deploy/nginx.conf", "proxy_set_header Host $host;", "", "keep the Host clients used"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := renderProject(t, a)
			if !strings.Contains(string(p[tt.file]), tt.old) {
				t.Fatalf("%s does not contain %q: update this test to the template", tt.file, tt.old)
			}
			p[tt.file] = []byte(strings.Replace(string(p[tt.file]), tt.old, tt.new, 1))
			probs := deployProblems(p, a)
			if !slices.ContainsFunc(probs, func(s string) bool { return strings.Contains(s, tt.wantProbs) }) {
				t.Errorf("no problem mentions %q; got:\n%s", tt.wantProbs, strings.Join(probs, "\n"))
			}
		})
	}
}
