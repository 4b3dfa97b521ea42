package main

// The load generator: a fixed number of clients, each on its own keep-alive
// connection, sending tools/call requests back to back for a fixed time and
// recording the latency of every request.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The protocol revisions the benchmark speaks.
const (
	protoStateless = "2026-07-28" // every request stands alone, no session
	protoSession   = "2025-11-25" // initialize once per client, then Mcp-Session-Id
	// loadRefresh stands for a protocol: the refresh_token grant at the
	// token endpoint instead of tools/call.
	loadRefresh = "refresh"
)

// echoText is the argument of every call; a successful answer contains it.
const echoText = "hello, load"

// target is one running server.
type target struct {
	name  string // "generated" or "plain"
	url   string // its MCP endpoint
	token string // bearer access token, "" for none
	pid   int
	// For the refresh load: the token endpoint, the public client's ID
	// and one chain of refresh tokens per client.
	tokenURL string
	clientID string
	chains   []*chain
}

// chain is one grant's current refresh token: each refresh rotates it.
type chain struct{ refresh string }

// callBody is the JSON-RPC tools/call request of protocol revision proto.
// 2026-07-28 carries the protocol version and client capabilities in _meta
// on every request.
func callBody(proto string) []byte {
	meta := ""
	if proto == protoStateless {
		meta = `,"_meta":{"io.modelcontextprotocol/protocolVersion":"` + proto + `",` +
			`"io.modelcontextprotocol/clientCapabilities":{},` +
			`"io.modelcontextprotocol/clientInfo":{"name":"loadbench","version":"0"}}`
	}
	return []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"` + echoText + `"}` + meta + `}}`)
}

// client is one simulated MCP client on one keep-alive connection. It
// speaks just enough HTTP/1.1 itself (prebuilt requests, a minimal response
// parser) to cost a fraction of what net/http's client does, so that the
// load generator's CPU stays well below the server's.
type client struct {
	t       target
	proto   string
	host    string // host:port of the server
	path    string // request target, "/mcp"
	header  []string
	conn    net.Conn
	r       *bufio.Reader
	call    []byte // the whole tools/call request, headers and body
	body    []byte // the last response body, valid until the next request
	session string
	chain   *chain // the refresh load's chain; nil for tools/call
	lat     []time.Duration
	errs    int
	lastErr error
}

func newClient(t target, proto string) (*client, error) {
	endpoint := t.url
	if proto == loadRefresh {
		endpoint = t.tokenURL
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, err
	}
	c := &client{t: t, proto: proto, host: u.Host, path: u.RequestURI()}
	if proto == loadRefresh {
		c.header = []string{"Content-Type: application/x-www-form-urlencoded", "Accept: application/json"}
		return c, nil
	}
	c.header = []string{
		"Content-Type: application/json",
		"Accept: application/json, text/event-stream",
	}
	if t.token != "" {
		c.header = append(c.header, "Authorization: Bearer "+t.token)
	}
	c.buildCall()
	return c, nil
}

// buildCall prebuilds the tools/call request with the client's headers
// (and session, once it has one).
func (c *client) buildCall() {
	h := append(slices.Clip(c.header), "Mcp-Protocol-Version: "+c.proto)
	if c.proto == protoStateless {
		h = append(h, "Mcp-Method: tools/call", "Mcp-Name: echo")
	}
	if c.session != "" {
		h = append(h, "Mcp-Session-Id: "+c.session)
	}
	c.call = c.request(http.MethodPost, h, callBody(c.proto))
}

// request renders an HTTP/1.1 request to the MCP endpoint.
func (c *client) request(method string, header []string, body []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: loadbench\r\n", method, c.path, c.host)
	for _, h := range header {
		b.WriteString(h + "\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n", len(body))
	b.Write(body)
	return b.Bytes()
}

// roundTrip sends a prebuilt request on the client's connection (dialing
// it first if needed) and reads the response: its status, its
// Mcp-Session-Id header, and its body into c.body.
func (c *client) roundTrip(req []byte) (status int, session string, err error) {
	if c.conn == nil {
		if c.conn, err = net.DialTimeout("tcp", c.host, 10*time.Second); err != nil {
			return 0, "", err
		}
		c.r = bufio.NewReaderSize(c.conn, 64<<10)
		// A connection lives for one round: this only stops a hung
		// server from hanging the benchmark.
		c.conn.SetDeadline(time.Now().Add(15 * time.Minute))
	}
	status, session, closeConn, err := c.exchange(req)
	if err != nil || closeConn {
		c.conn.Close()
		c.conn = nil
	}
	return status, session, err
}

// exchange writes req and parses the response (status line, the few
// headers that matter, a body of known length or chunked).
func (c *client) exchange(req []byte) (status int, session string, closeConn bool, err error) {
	if _, err := c.conn.Write(req); err != nil {
		return 0, "", true, err
	}
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return 0, "", true, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, "", true, fmt.Errorf("bad status line %q", line)
	}
	if status, err = strconv.Atoi(string(line[9:12])); err != nil {
		return 0, "", true, fmt.Errorf("bad status line %q", line)
	}
	length, chunked := -1, false
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return 0, "", true, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		k, v, _ := bytes.Cut(line, []byte(":"))
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(v)); err != nil {
				return 0, "", true, fmt.Errorf("bad Content-Length %q", v)
			}
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(v, []byte("chunked"))
		case bytes.EqualFold(k, []byte("Mcp-Session-Id")):
			session = string(v)
		case bytes.EqualFold(k, []byte("Connection")):
			closeConn = bytes.EqualFold(v, []byte("close"))
		}
	}
	c.body = c.body[:0]
	switch {
	case chunked:
		for {
			line, err := c.r.ReadSlice('\n')
			if err != nil {
				return 0, "", true, err
			}
			size, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(";"))
			n, err := strconv.ParseInt(string(size), 16, 32)
			if err != nil || n < 0 {
				return 0, "", true, fmt.Errorf("bad chunk size %q", line)
			}
			if n == 0 {
				for { // trailers, then a blank line
					line, err := c.r.ReadSlice('\n')
					if err != nil {
						return 0, "", true, err
					}
					if len(bytes.TrimRight(line, "\r\n")) == 0 {
						break
					}
				}
				break
			}
			if err := c.readBody(int(n) + 2); err != nil { // the chunk and its CRLF
				return 0, "", true, err
			}
			c.body = c.body[:len(c.body)-2]
		}
	case length >= 0:
		if err := c.readBody(length); err != nil {
			return 0, "", true, err
		}
	default: // no length: the body ends with the connection
		b, err := io.ReadAll(c.r)
		c.body = append(c.body, b...)
		return status, session, true, err
	}
	return status, session, closeConn, nil
}

// readBody appends the next n bytes of the response to c.body.
func (c *client) readBody(n int) error {
	off := len(c.body)
	c.body = slices.Grow(c.body, n)[:off+n]
	_, err := io.ReadFull(c.r, c.body[off:])
	return err
}

// open starts a session for protocol revisions that have one: initialize,
// then notifications/initialized.
func (c *client) open() error {
	if c.proto == protoStateless || c.proto == loadRefresh {
		return nil
	}
	init := []byte(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"` + c.proto + `",` +
		`"capabilities":{},"clientInfo":{"name":"loadbench","version":"0"}}}`)
	st, session, err := c.roundTrip(c.request(http.MethodPost, c.header, init))
	if err != nil {
		return fmt.Errorf("initialize: %w", err)
	}
	if st != http.StatusOK || session == "" {
		return fmt.Errorf("initialize: HTTP %d, session %q: %.200s", st, session, c.body)
	}
	c.session = session
	h := append(slices.Clip(c.header), "Mcp-Protocol-Version: "+c.proto, "Mcp-Session-Id: "+session)
	st, _, err = c.roundTrip(c.request(http.MethodPost, h, []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)))
	if err != nil {
		return fmt.Errorf("notifications/initialized: %w", err)
	}
	if st != http.StatusAccepted {
		return fmt.Errorf("notifications/initialized: HTTP %d: %.200s", st, c.body)
	}
	c.buildCall()
	return nil
}

// close ends the client's session, if it has one, and its connection.
func (c *client) close() {
	if c.session != "" {
		h := append(slices.Clip(c.header), "Mcp-Protocol-Version: "+c.proto, "Mcp-Session-Id: "+c.session)
		c.roundTrip(c.request(http.MethodDelete, h, nil))
		c.session = ""
	}
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

// callOnce sends one tools/call and checks that the echo came back.
func (c *client) callOnce() error {
	st, _, err := c.roundTrip(c.call)
	if err != nil {
		return err
	}
	if st != http.StatusOK || !bytes.Contains(c.body, []byte(`"`+echoText+`"`)) || bytes.Contains(c.body, []byte(`"isError":true`)) {
		return fmt.Errorf("tools/call: HTTP %d: %.300s", st, c.body)
	}
	return nil
}

// refreshOnce redeems the chain's refresh token at the token endpoint (a
// public client) and keeps the rotated one.
func (c *client) refreshOnce() error {
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {c.chain.refresh}, "client_id": {c.t.clientID}}
	st, _, err := c.roundTrip(c.request(http.MethodPost, c.header, []byte(form.Encode())))
	if err != nil {
		return err
	}
	var tok struct {
		RefreshToken string `json:"refresh_token"`
	}
	if st != http.StatusOK || json.Unmarshal(c.body, &tok) != nil || tok.RefreshToken == "" {
		return fmt.Errorf("refresh: HTTP %d: %.300s", st, c.body)
	}
	c.chain.refresh = tok.RefreshToken
	return nil
}

// run calls back to back until stop is set, recording latencies if record.
func (c *client) run(ctx context.Context, stop *atomic.Bool, record bool) {
	step := c.callOnce
	if c.chain != nil {
		step = c.refreshOnce
	}
	for !stop.Load() && ctx.Err() == nil {
		start := time.Now()
		err := step()
		d := time.Since(start)
		if err != nil {
			c.errs++
			c.lastErr = err
			continue
		}
		if record {
			c.lat = append(c.lat, d)
		}
	}
}

// roundResult is what one server did in one round.
type roundResult struct {
	server    string
	proto     string
	clients   int
	requests  int
	elapsed   time.Duration
	cpu       time.Duration // the server's user+system CPU time over the round
	clientCPU time.Duration // this process's CPU time over the round
	lat       []time.Duration
}

func (r roundResult) throughput() float64 { return float64(r.requests) / r.elapsed.Seconds() }
func (r roundResult) cpuPerReq() time.Duration {
	return r.cpu / time.Duration(max(r.requests, 1))
}

// runRound drives t with n clients speaking proto: warmup (not recorded),
// then duration recorded; onMeasure is called as the recorded part starts.
// Any failed request fails the round.
func runRound(ctx context.Context, t target, proto string, n int, warmup, duration time.Duration, onMeasure func()) (roundResult, error) {
	clients := make([]*client, n)
	for i := range clients {
		c, err := newClient(t, proto)
		if err != nil {
			return roundResult{}, err
		}
		c.lat = make([]time.Duration, 0, 1<<14)
		if proto == loadRefresh {
			if i >= len(t.chains) {
				return roundResult{}, fmt.Errorf("%s: %d clients, but only %d refresh token chains", t.name, n, len(t.chains))
			}
			c.chain = t.chains[i]
		}
		clients[i] = c
	}
	defer func() {
		for _, c := range clients {
			c.close()
		}
	}()
	var wg sync.WaitGroup
	errc := make(chan error, n)
	for _, c := range clients {
		wg.Go(func() {
			if err := c.open(); err != nil {
				errc <- err
			}
		})
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return roundResult{}, fmt.Errorf("%s: open %s session: %w", t.name, proto, err)
	}

	phase := func(d time.Duration, record bool) time.Duration {
		var stop atomic.Bool
		start := time.Now()
		for _, c := range clients {
			wg.Go(func() { c.run(ctx, &stop, record) })
		}
		time.Sleep(d)
		stop.Store(true)
		wg.Wait()
		return time.Since(start)
	}
	phase(warmup, false)
	for _, c := range clients {
		c.errs, c.lastErr = 0, nil
	}
	cpu0, err := procCPU(t.pid)
	if err != nil {
		return roundResult{}, err
	}
	self0 := selfCPU()
	onMeasure()
	elapsed := phase(duration, true)
	self1 := selfCPU()
	cpu1, err := procCPU(t.pid)
	if err != nil {
		return roundResult{}, err
	}

	res := roundResult{server: t.name, proto: proto, clients: n, elapsed: elapsed, cpu: cpu1 - cpu0, clientCPU: self1 - self0}
	var errs []string
	for _, c := range clients {
		res.requests += len(c.lat)
		res.lat = append(res.lat, c.lat...)
		if c.errs > 0 {
			errs = append(errs, fmt.Sprintf("%d failed, last: %v", c.errs, c.lastErr))
		}
	}
	if len(errs) > 0 {
		return res, fmt.Errorf("%s, %s, %d clients: %s", t.name, proto, n, strings.Join(errs, "; "))
	}
	if res.requests == 0 {
		return res, errors.New(t.name + ": no request completed")
	}
	return res, nil
}
