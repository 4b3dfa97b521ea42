package mcpauth

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/mcpgen/create-mcp-server/runtime/authstore"
)

// metricNames returns the names of the metrics m describes.
func metricNames(m prometheus.Collector) []string {
	ch := make(chan *prometheus.Desc)
	go func() { m.Describe(ch); close(ch) }()
	re := regexp.MustCompile(`fqName: "([^"]+)"`)
	var names []string
	for d := range ch {
		if sm := re.FindStringSubmatch(d.String()); sm != nil {
			names = append(names, sm[1])
		}
	}
	slices.Sort(names)
	return names
}

// scrape fetches the exposition served by h.
func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	res, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 {
		t.Fatalf("scrape: %s\n%s", res.Status, body)
	}
	return string(body)
}

// TestMetricsExposition: with every series in use, the endpoint serves
// every mcp_ metric, and the exposition passes promlint.
func TestMetricsExposition(t *testing.T) {
	m := NewMetrics()
	a := auditor{log: discardLogger(), m: m}
	ctx := context.Background()
	a.signIn(ctx, signInSucceeded, "alice", "c1", "192.0.2.1", viaAuthorize, "")
	a.signIn(ctx, signInFailed, "alice", "c1", "192.0.2.1", viaAuthorize, "")
	a.signIn(ctx, signInThrottled, "alice", "c1", "192.0.2.1", viaAccount, "user")
	a.consent(ctx, true, "alice", "c1", "mcp")
	a.consent(ctx, false, "alice", "c1", "mcp")
	a.clientRegistered(ctx, "c1", "Client", "192.0.2.1")
	a.codeIssued(ctx, "alice", "c1", "g1")
	a.tokensIssued(ctx, "alice", "c1", "g1", "mcp")
	a.tokenRefreshed(ctx, "alice", "c1", "g1")
	a.tokenRevoked(ctx, "c1", "g1")
	a.grantRevoked(ctx, "alice", "c1", "g1", revokedByAccount)
	a.refreshReuse(ctx, "alice", "c1", "g1")
	a.codeReplay(ctx, "alice", "c1", "g1")
	m.throttled(throttleRegistration)
	m.observeDB("lookup_access", time.Millisecond, nil)
	m.observeDB("lookup_access", time.Millisecond, authstore.ErrNotFound)
	m.observeDB("rotate_refresh", time.Millisecond, authstore.ErrUnavailable)
	m.setCounter(func(context.Context) (int, int, error) { return 3, 2, nil })
	call := ToolAudit(discardLogger(), m)(func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("hi"), nil
	})
	if _, err := call(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "echo"}}); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(400) })
	h := m.instrument(mux)
	for _, path := range []string{"/token", "/token/x"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", path, nil))
	}

	body := scrape(t, m.Handler())
	problems, err := promlint.New(strings.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	for _, name := range metricNames(m) {
		if !strings.Contains(body, "\n"+name) {
			t.Errorf("the exposition has no %s", name)
		}
	}
	for _, want := range []string{
		`mcp_http_requests_total{code="400",endpoint="/token",method="POST"} 1`,
		`mcp_http_requests_total{code="404",endpoint="other",method="POST"} 1`,
		`mcp_sign_ins_total{outcome="throttled"} 1`,
		`mcp_throttle_rejections_total{kind="sign_in"} 1`,
		`mcp_tool_calls_total{outcome="ok",tool="echo"} 1`,
		`mcp_db_operation_errors_total{op="rotate_refresh"} 1`,
		`mcp_db_operation_errors_total{op="lookup_access"} 0`,
		`mcp_db_operation_duration_seconds_count{op="lookup_access"} 2`,
		`mcp_registered_clients 3`,
		`mcp_active_grants 2`,
		"\ngo_goroutines ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the exposition lacks %q", want)
		}
	}
}

// TestMetricsCountsCached: the gauges recount at most every 30 s, whatever
// the number of scrapes, and a failed count keeps the last values.
func TestMetricsCountsCached(t *testing.T) {
	m := NewMetrics()
	calls := 0
	var fail error
	m.setCounter(func(context.Context) (int, int, error) {
		calls++
		return calls, 10 * calls, fail
	})
	for range 5 {
		scrape(t, m.Handler())
	}
	if calls != 1 {
		t.Fatalf("5 scrapes counted %d times, want 1", calls)
	}
	m.counts.mu.Lock()
	m.counts.at = time.Now().Add(-countsInterval)
	m.counts.mu.Unlock()
	fail = errors.New("database down")
	body := scrape(t, m.Handler())
	if calls != 2 || !strings.Contains(body, "mcp_active_grants 10\n") {
		t.Fatalf("after a failed recount: %d counts, want 2, and the last value kept:\n%s", calls, grep(body, "mcp_active"))
	}
}

func grep(s, substr string) string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if strings.Contains(sc.Text(), substr) {
			out = append(out, sc.Text())
		}
	}
	return strings.Join(out, "\n")
}

// TestInstrumentStreams: behind the instrumentation an event stream still
// flushes each event as it is written (http.Flusher and
// http.ResponseController both reach the connection), and the request is
// counted when the stream ends.
func TestInstrumentStreams(t *testing.T) {
	m := NewMetrics()
	next := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if err := rc.SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
			t.Errorf("SetWriteDeadline through the wrapper: %v", err)
		}
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		<-next
		io.WriteString(w, "data: two\n\n")
		if err := rc.Flush(); err != nil {
			t.Errorf("ResponseController.Flush through the wrapper: %v", err)
		}
	})
	srv := httptest.NewServer(m.instrument(mux))
	defer srv.Close()
	res, err := http.Get(srv.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	br := bufio.NewReader(res.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "data: one\n" {
		t.Fatalf("first event before the handler returned: %q, %v", line, err)
	}
	close(next)
	rest, _ := io.ReadAll(br)
	if !strings.Contains(string(rest), "data: two") {
		t.Fatalf("second event: %q", rest)
	}
	srv.Close() // waits for the handler
	body := scrape(t, m.Handler())
	if want := `mcp_http_requests_total{code="200",endpoint="/events",method="GET"} 1`; !strings.Contains(body, want) {
		t.Errorf("the exposition lacks %q:\n%s", want, grep(body, "mcp_http_requests_total"))
	}
}

// TestObserveHTTPLabels: the endpoint label is the route pattern, never
// the path a client chose, and methods outside the usual set are "other".
func TestObserveHTTPLabels(t *testing.T) {
	m := NewMetrics()
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, r *http.Request) {}
	mux.HandleFunc("/mcp", ok)
	mux.HandleFunc("GET /clients/{id}", ok)
	mux.HandleFunc("GET /{$}", ok)
	h := m.instrument(mux)
	for _, req := range []struct{ method, path string }{
		{"GET", "/clients/a"}, {"GET", "/clients/b"}, {"HEAD", "/clients/c"},
		{"BREW", "/mcp"}, {"DELETE", "/mcp"}, {"GET", "/random-1"}, {"GET", "/random-2"}, {"GET", "/"},
	} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(req.method, req.path, nil))
	}
	body := scrape(t, m.Handler())
	for _, want := range []string{
		`mcp_http_requests_total{code="200",endpoint="/clients/{id}",method="GET"} 2`,
		`mcp_http_requests_total{code="200",endpoint="/clients/{id}",method="HEAD"} 1`,
		`mcp_http_requests_total{code="200",endpoint="/mcp",method="other"} 1`,
		`mcp_http_requests_total{code="200",endpoint="/mcp",method="DELETE"} 1`,
		`mcp_http_requests_total{code="404",endpoint="other",method="GET"} 2`,
		`mcp_http_requests_total{code="200",endpoint="/{$}",method="GET"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the exposition lacks %q", want)
		}
	}
	if strings.Contains(body, "random") {
		t.Errorf("a raw path became a label:\n%s", grep(body, "random"))
	}
}

// BenchmarkInstrument is the cost the metrics add to every HTTP request.
func BenchmarkInstrument(b *testing.B) {
	m := NewMetrics()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /mcp", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	h := m.instrument(mux)
	req := httptest.NewRequest("POST", "/mcp", nil)
	w := discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
}

// BenchmarkMux is the same request without the metrics, for comparison.
func BenchmarkMux(b *testing.B) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /mcp", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	req := httptest.NewRequest("POST", "/mcp", nil)
	w := discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		mux.ServeHTTP(w, req)
	}
}

type discardWriter struct{ h http.Header }

func (w discardWriter) Header() http.Header         { return w.h }
func (w discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w discardWriter) WriteHeader(int)             {}
