package interop

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// replicaHeader names the replica that served a response; the round-robin
// proxy adds it, so that a client (or a person reading a trace) can tell.
const replicaHeader = "X-Interop-Replica"

// rrProxy is the load balancer in front of the replicas: a reverse proxy
// that sends each request to the next replica in turn (no stickiness of any
// kind), keeps the Host header, and appends the client's address to
// X-Forwarded-For, the way nginx or a cloud load balancer does. A replica
// that refuses connections is marked dead and skipped from then on; the
// request goes to the next one (it never reached the dead replica, so
// retrying it is safe). Any other failure is answered 502, as a proxy does.
//
// It records every request it served (hits), so tests can assert which
// replica served what.
type rrProxy struct {
	URL  string // http://127.0.0.1:PORT, the deployment's base URL
	Host string // 127.0.0.1:PORT

	srv      *http.Server
	backends []*url.URL

	mu   sync.Mutex
	next int
	dead []bool
	hits []hit
	seq  int // requests begun so far
}

// hit is one request the proxy served.
type hit struct {
	Seq       int // the order in which the proxy received the request
	Replica   int // index of the replica that answered, -1 if none did
	Method    string
	Path      string
	GrantType string // grant_type of a POST /token
	Status    int    // -1: the response was cut off (the replica died)
}

func (h hit) String() string {
	s := fmt.Sprintf("replica %d: %s %s", h.Replica, h.Method, h.Path)
	if h.GrantType != "" {
		s += " grant_type=" + h.GrantType
	}
	return fmt.Sprintf("%s -> %d", s, h.Status)
}

// newRRProxy listens on a loopback port; it proxies nothing until
// setBackends is called. It stops when t ends.
func newRRProxy(t *testing.T) *rrProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("setup: proxy: %v", err)
	}
	p := &rrProxy{Host: l.Addr().String()}
	p.URL = "http://" + p.Host
	p.srv = &http.Server{Handler: p}
	go p.srv.Serve(l)
	t.Cleanup(func() { p.srv.Close() })
	return p
}

// setBackends sets the replicas' listen addresses, in replica order.
func (p *rrProxy) setBackends(addrs []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.backends = nil
	for _, a := range addrs {
		p.backends = append(p.backends, &url.URL{Scheme: "http", Host: a})
	}
	p.dead = make([]bool, len(addrs))
}

// pick returns the next live replica after the last one picked, or -1.
func (p *rrProxy) pick(tried map[int]bool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for range len(p.backends) {
		i := p.next % len(p.backends)
		p.next++
		if !p.dead[i] && !tried[i] {
			return i
		}
	}
	return -1
}

func (p *rrProxy) markDead(i int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dead[i] = true
}

func (p *rrProxy) record(h hit) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hits = append(p.hits, h)
}

// mark returns a position in the record, for hitsSince.
func (p *rrProxy) mark() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seq
}

// hitsSince returns the requests that reached the proxy after mark
// returned m; a request in flight at the mark, answered or cut off after
// it, is not among them.
func (p *rrProxy) hitsSince(m int) []hit {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []hit
	for _, h := range p.hits {
		if h.Seq >= m {
			out = append(out, h)
		}
	}
	return out
}

// maxProxiedBody caps the request bodies the proxy buffers (to retry them
// on another replica). MCP and OAuth requests are far smaller.
const maxProxiedBody = 4 << 20

func (p *rrProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxProxiedBody+1))
	if err != nil || len(body) > maxProxiedBody {
		http.Error(w, "proxy: cannot read the request body", http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	h := hit{Seq: p.seq, Replica: -1, Method: r.Method, Path: r.URL.Path}
	p.seq++
	p.mu.Unlock()
	if r.Method == http.MethodPost && r.URL.Path == "/token" {
		if form, err := url.ParseQuery(string(body)); err == nil {
			h.GrantType = form.Get("grant_type")
		}
	}
	tried := map[int]bool{}
	for {
		i := p.pick(tried)
		if i < 0 {
			h.Status = http.StatusBadGateway
			p.record(h)
			http.Error(w, "proxy: no replica is reachable", http.StatusBadGateway)
			return
		}
		tried[i] = true
		p.mu.Lock()
		target := p.backends[i]
		p.mu.Unlock()

		var proxyErr error
		sw := &statusWriter{ResponseWriter: w}
		rp := &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(target)
				pr.Out.Host = pr.In.Host // keep the public Host
				// Append the peer to the X-Forwarded-For the client sent
				// (tests send one to act as different client addresses).
				pr.Out.Header["X-Forwarded-For"] = pr.In.Header["X-Forwarded-For"]
				pr.SetXForwarded()
			},
			ModifyResponse: func(resp *http.Response) error {
				resp.Header.Set(replicaHeader, fmt.Sprint(i))
				return nil
			},
			ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
				proxyErr = err
			},
			FlushInterval: -1, // stream event streams as they come
		}
		req := r.Clone(r.Context())
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
		h.Replica = i
		func() {
			// The reverse proxy aborts the response (panics with
			// http.ErrAbortHandler) when the replica dies mid-body:
			// record that, then let the server abort.
			defer func() {
				if v := recover(); v != nil {
					h.Status = -1
					p.record(h)
					panic(v)
				}
			}()
			rp.ServeHTTP(sw, req)
		}()
		if proxyErr == nil {
			h.Status = sw.status
			p.record(h)
			return
		}
		if isRefused(proxyErr) && !sw.wrote {
			h.Replica = -1
			// The replica is gone (killed): skip it from now on and give
			// the request to the next one.
			p.markDead(i)
			fmt.Fprintf(os.Stderr, "interop proxy: replica %d refuses connections (%v); skipping it from now on\n", i, proxyErr)
			continue
		}
		h.Status = http.StatusBadGateway
		p.record(h)
		if !sw.wrote {
			http.Error(w, "proxy: "+proxyErr.Error(), http.StatusBadGateway)
		}
		return
	}
}

// isRefused reports whether err is a refused connection: nothing listens
// at the replica's address, so the request never reached it.
func isRefused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED)
}

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote && code >= 200 {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController (which the reverse proxy uses to
// flush event streams) reach the real writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// formatHits renders hits one per line, for failure messages.
func formatHits(hits []hit) string {
	var b strings.Builder
	for _, h := range hits {
		b.WriteString("  " + h.String() + "\n")
	}
	return b.String()
}

// tcpProxy forwards TCP connections from a loopback port to target. It is
// put between the replicas and PostgreSQL, so that a test can take the
// database away (stop: every connection is cut and new ones are refused)
// and bring it back (start, on the same port) without touching the shared
// PostgreSQL server.
type tcpProxy struct {
	Addr   string // 127.0.0.1:PORT
	target string

	mu    sync.Mutex
	l     net.Listener
	conns map[net.Conn]bool
}

// newTCPProxy starts forwarding to target; it stops when t ends.
func newTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	p := &tcpProxy{target: target, conns: map[net.Conn]bool{}}
	if err := p.start("127.0.0.1:0"); err != nil {
		t.Fatalf("setup: database proxy: %v", err)
	}
	t.Cleanup(p.stop)
	return p
}

// start listens at addr (the old address to restart) and forwards.
func (p *tcpProxy) start(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.l, p.Addr = l, l.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go p.forward(c)
		}
	}()
	return nil
}

// restart listens again on the address it had.
func (p *tcpProxy) restart() error { return p.start(p.Addr) }

// stop closes the listener and cuts every connection.
func (p *tcpProxy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.l != nil {
		p.l.Close()
		p.l = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *tcpProxy) forward(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.l == nil { // stopped meanwhile
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.conns[c], p.conns[up] = true, true
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src)
		dst.Close()
		src.Close()
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}
