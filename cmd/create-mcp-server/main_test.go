package main

import (
	"flag"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

var update = flag.Bool("update", false, "rewrite the expected output in testdata/script/*.txtar")

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){"create-mcp-server": main})
}

// TestScripts runs the command-line scenarios in testdata/script: each is a
// txtar of commands, their expected output, and the files they work on.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "../../testdata/script",
		UpdateScripts:       *update,
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			// Scripts that build a generated project share the caller's
			// Go caches, so they download and compile nothing twice.
			for _, key := range []string{"GOCACHE", "GOMODCACHE", "GOPROXY", "GOROOT"} {
				if v := goEnv(key); v != "" {
					env.Setenv(key, v)
				}
			}
			env.Setenv("GOFLAGS", "-buildvcs=false")
			env.Setenv("GOWORK", "off")
			return nil
		},
	})
}

func goEnv(key string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	out, err := exec.Command("go", "env", key).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
