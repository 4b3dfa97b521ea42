package mcpauth

// Prometheus metrics. Everything is counted always (a few atomic adds per
// request); whether anyone scrapes them is the operator's choice: serve
// Metrics.Handler on a separate, private listener (the generated server's
// --metrics-addr). Names follow the Prometheus conventions (mcp_ prefix,
// counters end in _total, durations are _seconds) and every label has a
// small, fixed set of values: HTTP requests are labelled with their route
// pattern, never the raw path, and tools with their registered names.

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mcpgen/create-mcp-server/runtime/authstore"
)

// Metrics holds the Prometheus metrics of a Server and of the tool calls
// audited by ToolAudit. Create one with NewMetrics, pass it in
// Config.Metrics and to ToolAudit, and serve Handler where Prometheus can
// scrape it. It is safe for concurrent use.
//
// A Metrics is also a prometheus.Collector of the mcp_ metrics, for
// programs that already serve a registry of their own.
type Metrics struct {
	reg        *prometheus.Registry
	collectors []prometheus.Collector

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	routes       labelCache[*routeMetrics]

	signIns           [3]prometheus.Counter // by signInOutcomeIndex
	consents          [2]prometheus.Counter // granted, denied
	clientsRegistered prometheus.Counter
	codesIssued       prometheus.Counter
	tokensIssued      prometheus.Counter
	tokensRefreshed   prometheus.Counter
	tokensRevoked     [len(revokedByNames)]prometheus.Counter
	refreshReuse      prometheus.Counter
	codeReplays       prometheus.Counter
	throttles         [len(throttleKinds)]prometheus.Counter

	toolCalls    *prometheus.CounterVec
	toolDuration *prometheus.HistogramVec
	tools        labelCache[*toolMetrics]

	dbDuration *prometheus.HistogramVec
	dbErrors   *prometheus.CounterVec
	dbOps      labelCache[*dbOpMetrics]

	counts *countsCollector
}

// Who revoked tokens (the by label of mcp_tokens_revoked_total).
const (
	revokedByClient  = iota // the client, at the revocation endpoint (RFC 7009)
	revokedByAccount        // the user, on the account page
)

var revokedByNames = [...]string{"client", "account"}

// Throttles (the kind label of mcp_throttle_rejections_total).
const (
	throttleSignIn       = iota // failed sign-ins, per user and per address
	throttleToken               // failed token and revocation requests
	throttleRegistration        // client registrations per address
	throttleAuthorize           // sign-ins started per address
	throttleConnection          // connections per address, or in total
)

var throttleKinds = [...]string{"sign_in", "token", "registration", "authorize", "connection"}

// countsInterval is how long the gauges of registered clients and active
// grants may be stale: a scrape recounts (two indexed COUNTs) at most this
// often, so scraping never costs a table scan per request.
const countsInterval = 30 * time.Second

// NewMetrics returns a fresh set of metrics in its own registry, which also
// holds the Go runtime and process collectors (go_*, process_*).
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	add := func(c prometheus.Collector) { m.collectors = append(m.collectors, c) }
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
		add(c)
		return c
	}

	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mcp_http_requests_total",
		Help: "HTTP requests answered, by method, endpoint (route pattern) and status code.",
	}, []string{"method", "endpoint", "code"})
	add(m.httpRequests)
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "mcp_http_request_duration_seconds",
		Help: "Time to answer an HTTP request, by method and endpoint; for event streams (GET /mcp), how long the stream stayed open.",
		// DefBuckets (5 ms to 10 s) plus the sub-millisecond answers of
		// the bearer-checked MCP endpoint.
		Buckets: append([]float64{.0005, .001, .0025}, prometheus.DefBuckets...),
	}, []string{"method", "endpoint"})
	add(m.httpDuration)

	signIns := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mcp_sign_ins_total",
		Help: "Sign-in attempts on the authorization and account pages, by outcome (succeeded, failed, throttled).",
	}, []string{"outcome"})
	add(signIns)
	for i, o := range []string{signInSucceeded, signInFailed, signInThrottled} {
		m.signIns[i] = signIns.WithLabelValues(o)
	}
	consents := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mcp_consents_total",
		Help: "Answers on the consent page, by decision (granted, denied).",
	}, []string{"decision"})
	add(consents)
	m.consents[0] = consents.WithLabelValues("granted")
	m.consents[1] = consents.WithLabelValues("denied")

	m.clientsRegistered = counter("mcp_clients_registered_total", "OAuth clients registered (RFC 7591).")
	m.codesIssued = counter("mcp_codes_issued_total", "Authorization codes issued.")
	m.tokensIssued = counter("mcp_tokens_issued_total", "Authorization codes exchanged for tokens (each starts a grant).")
	m.tokensRefreshed = counter("mcp_tokens_refreshed_total", "Refresh tokens exchanged for new tokens.")
	revoked := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mcp_tokens_revoked_total",
		Help: "Revocations, by who revoked (client: RFC 7009 revocation request; account: the user disconnected an app).",
	}, []string{"by"})
	add(revoked)
	for i, by := range revokedByNames {
		m.tokensRevoked[i] = revoked.WithLabelValues(by)
	}
	m.refreshReuse = counter("mcp_refresh_reuse_detected_total",
		"Rotated refresh tokens presented again (a stolen token or a broken client); each revoked its grant.")
	m.codeReplays = counter("mcp_code_replays_detected_total",
		"Used authorization codes redeemed again by their client; each revoked the grant the code created.")
	throttles := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mcp_throttle_rejections_total",
		Help: "Requests refused by a throttle, by kind (sign_in, token, registration, authorize, connection).",
	}, []string{"kind"})
	add(throttles)
	for i, k := range throttleKinds {
		m.throttles[i] = throttles.WithLabelValues(k)
	}

	m.toolCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mcp_tool_calls_total",
		Help: "MCP tool calls, by tool and outcome (ok, tool_error, error).",
	}, []string{"tool", "outcome"})
	add(m.toolCalls)
	m.toolDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "mcp_tool_call_duration_seconds",
		Help:    "Time a tool handler took, by tool.",
		Buckets: append([]float64{.0005, .001, .0025}, prometheus.DefBuckets...),
	}, []string{"tool"})
	add(m.toolDuration)

	m.dbDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "mcp_db_operation_duration_seconds",
		Help:    "Time a database operation took, by operation.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"op"})
	add(m.dbDuration)
	m.dbErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mcp_db_operation_errors_total",
		Help: "Database operations that failed (not counting lookups that found nothing), by operation.",
	}, []string{"op"})
	add(m.dbErrors)

	m.counts = newCountsCollector()
	add(m.counts)

	m.reg.MustRegister(m,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus exposition formats. Serve it
// on a listener only the monitoring system reaches.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry is the registry Handler serves. Register the program's own
// collectors in it to expose them on the same endpoint.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors {
		c.Collect(ch)
	}
}

// throttled counts a request refused by a throttle of this kind.
func (m *Metrics) throttled(kind int) { m.throttles[kind].Inc() }

// toolMetrics are one tool's series.
type toolMetrics struct {
	calls    [3]prometheus.Counter // ok, tool_error, error
	duration prometheus.Observer
}

// toolCall counts a tool call.
func (m *Metrics) toolCall(tool, outcome string, d time.Duration) {
	tm := m.tools.get(tool, func() *toolMetrics {
		return &toolMetrics{
			calls: [3]prometheus.Counter{
				m.toolCalls.WithLabelValues(tool, outcomeOK),
				m.toolCalls.WithLabelValues(tool, outcomeToolError),
				m.toolCalls.WithLabelValues(tool, outcomeError),
			},
			duration: m.toolDuration.WithLabelValues(tool),
		}
	})
	i := 0
	switch outcome {
	case outcomeToolError:
		i = 1
	case outcomeError:
		i = 2
	}
	tm.calls[i].Inc()
	tm.duration.Observe(d.Seconds())
}

// dbOpMetrics are one database operation's series.
type dbOpMetrics struct {
	duration prometheus.Observer
	errors   prometheus.Counter
}

// observeDB records a database operation: it is the store's Observe hook
// (authstore.Options). A lookup that found nothing has not failed.
func (m *Metrics) observeDB(op string, d time.Duration, err error) {
	om := m.dbOps.get(op, func() *dbOpMetrics {
		return &dbOpMetrics{duration: m.dbDuration.WithLabelValues(op), errors: m.dbErrors.WithLabelValues(op)}
	})
	om.duration.Observe(d.Seconds())
	if err != nil && !errors.Is(err, authstore.ErrNotFound) {
		om.errors.Inc()
	}
}

// setCounter sets how the gauges of registered clients and active grants
// are counted (by the Server using these metrics).
func (m *Metrics) setCounter(count func(ctx context.Context) (clients, grants int, err error)) {
	m.counts.mu.Lock()
	m.counts.count = count
	m.counts.at = time.Time{}
	m.counts.mu.Unlock()
}

// countsCollector exposes mcp_registered_clients and mcp_active_grants from
// counts taken at most every countsInterval.
type countsCollector struct {
	clientsDesc, grantsDesc *prometheus.Desc

	mu              sync.Mutex
	count           func(ctx context.Context) (clients, grants int, err error)
	at              time.Time // when the counts were last taken (zero: never)
	clients, grants float64
	ok              bool // the counts were taken at least once
}

func newCountsCollector() *countsCollector {
	return &countsCollector{
		clientsDesc: prometheus.NewDesc("mcp_registered_clients",
			"Registered OAuth clients (counted at most every 30 s).", nil, nil),
		grantsDesc: prometheus.NewDesc("mcp_active_grants",
			"Grants (an app connected to an account) that are neither revoked nor expired (counted at most every 30 s).", nil, nil),
	}
}

func (c *countsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.clientsDesc
	ch <- c.grantsDesc
}

func (c *countsCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.count != nil && (c.at.IsZero() || time.Since(c.at) >= countsInterval) {
		// A failed count keeps the last values (and is retried after the
		// interval, so a database outage is not hammered by scrapes).
		c.at = time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		clients, grants, err := c.count(ctx)
		cancel()
		if err == nil {
			c.clients, c.grants, c.ok = float64(clients), float64(grants), true
		}
	}
	if !c.ok {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.clientsDesc, prometheus.GaugeValue, c.clients)
	ch <- prometheus.MustNewConstMetric(c.grantsDesc, prometheus.GaugeValue, c.grants)
}

// labelCache maps a label value to the series made for it, so that the hot
// paths (every request, every tool call, every database operation) look up
// their series without the CounterVec's label hashing and allocation. Reads
// are lock-free; a miss copies the map (label sets are small and fixed).
type labelCache[V any] struct {
	mu sync.Mutex
	m  atomic.Pointer[map[string]V]
}

func (c *labelCache[V]) get(key string, create func() V) V {
	if m := c.m.Load(); m != nil {
		if v, ok := (*m)[key]; ok {
			return v
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old != nil {
		if v, ok := (*old)[key]; ok {
			return v
		}
	}
	next := make(map[string]V, 1+lenMap(old))
	if old != nil {
		for k, v := range *old {
			next[k] = v
		}
	}
	v := create()
	next[key] = v
	c.m.Store(&next)
	return v
}

func lenMap[V any](m *map[string]V) int {
	if m == nil {
		return 0
	}
	return len(*m)
}

// routeMetrics are the series of one route pattern: by method and status.
type routeMetrics struct {
	endpoint string
	methods  [len(httpMethods)]atomic.Pointer[methodMetrics]
	mu       sync.Mutex
}

// methodMetrics are the series of one method of one route.
type methodMetrics struct {
	method   string
	duration prometheus.Observer
	codes    atomic.Pointer[[]codeCounter] // copy on write; a route answers few distinct codes
	mu       sync.Mutex
}

type codeCounter struct {
	code int
	c    prometheus.Counter
}

// httpMethods are the method label's values; any other method is "other".
var httpMethods = [...]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}

func methodIndex(method string) int {
	for i, m := range httpMethods[:len(httpMethods)-1] {
		if m == method {
			return i
		}
	}
	return len(httpMethods) - 1
}

// instrument counts and times every request next answers. The endpoint
// label is the route pattern net/http's ServeMux matched (Request.Pattern,
// set by next), so next must be, or end in, the ServeMux; "other" when no
// route matched.
func (m *Metrics) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		d := time.Since(start)
		m.observeHTTP(r, sw.status, d)
	})
}

func (m *Metrics) observeHTTP(r *http.Request, status int, d time.Duration) {
	pattern := r.Pattern
	method := ""
	// "POST /token": the method is part of the route; "/mcp": any method.
	if i := strings.IndexByte(pattern, ' '); i >= 0 {
		method, pattern = pattern[:i], strings.TrimLeft(pattern[i+1:], " \t")
	}
	if pattern == "" {
		pattern = "other"
	}
	if method == "" || (method == "GET" && r.Method == "HEAD") {
		method = r.Method
	}
	rm := m.routes.get(pattern, func() *routeMetrics { return &routeMetrics{endpoint: pattern} })
	mm := rm.method(m, methodIndex(method))
	mm.duration.Observe(d.Seconds())
	if status == 0 {
		status = http.StatusOK // net/http's answer when the handler wrote nothing
	}
	mm.count(m, rm.endpoint, status)
}

func (rm *routeMetrics) method(m *Metrics, i int) *methodMetrics {
	if mm := rm.methods[i].Load(); mm != nil {
		return mm
	}
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if mm := rm.methods[i].Load(); mm != nil {
		return mm
	}
	mm := &methodMetrics{method: httpMethods[i], duration: m.httpDuration.WithLabelValues(httpMethods[i], rm.endpoint)}
	rm.methods[i].Store(mm)
	return mm
}

func (mm *methodMetrics) count(m *Metrics, endpoint string, status int) {
	if p := mm.codes.Load(); p != nil {
		for _, cc := range *p {
			if cc.code == status {
				cc.c.Inc()
				return
			}
		}
	}
	mm.mu.Lock()
	defer mm.mu.Unlock()
	var codes []codeCounter
	if p := mm.codes.Load(); p != nil {
		codes = *p
	}
	for _, cc := range codes {
		if cc.code == status {
			cc.c.Inc()
			return
		}
	}
	c := m.httpRequests.WithLabelValues(mm.method, endpoint, strconv.Itoa(status))
	next := append(codes[:len(codes):len(codes)], codeCounter{status, c})
	mm.codes.Store(&next)
	c.Inc()
}

// statusWriter remembers the status code of a response. It keeps
// streaming working: Flush reaches the connection (mcp-go's event streams
// check for http.Flusher) and Unwrap lets http.ResponseController set
// deadlines on the connection.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 { // 1xx responses are not the final status
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush sends buffered data to the client (http.Flusher).
func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
