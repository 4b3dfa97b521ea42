package createmcpserver_test

import (
	"io/fs"
	"regexp"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	createmcpserver "github.com/mcpgen/create-mcp-server"
	"github.com/mcpgen/create-mcp-server/runtime/mcpauth"
)

// TestOperationsDocListsMetrics: the metrics table of a generated project's
// operations guide names exactly the mcp_ metrics the server registers.
func TestOperationsDocListsMetrics(t *testing.T) {
	doc, err := fs.ReadFile(createmcpserver.Templates(), "docs/operations.md.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	// Table rows: | `mcp_name` | type | ...
	var documented []string
	for _, m := range regexp.MustCompile("(?m)^\\| `(mcp_[a-z_]+)` \\|").FindAllSubmatch(doc, -1) {
		documented = append(documented, string(m[1]))
	}
	slices.Sort(documented)

	ch := make(chan *prometheus.Desc)
	go func() { mcpauth.NewMetrics().Describe(ch); close(ch) }()
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	var registered []string
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			registered = append(registered, m[1])
		}
	}
	slices.Sort(registered)

	if len(registered) == 0 {
		t.Fatal("no metrics described")
	}
	if !slices.Equal(documented, registered) {
		for _, n := range registered {
			if !slices.Contains(documented, n) {
				t.Errorf("%s is registered but not in the table of docs/operations.md.tmpl", n)
			}
		}
		for _, n := range documented {
			if !slices.Contains(registered, n) {
				t.Errorf("docs/operations.md.tmpl lists %s, which the server does not register", n)
			}
		}
	}
}
