package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// The load generator's own HTTP/1.1 client reads every response shape a
// Go server writes: a body of known length, a chunked (flushed) body, no
// body, and a connection the server closes.
func TestClientRoundTrip(t *testing.T) {
	big := strings.Repeat("x", 100_000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Mcp-Session-Id", "s-"+r.URL.Query().Get("case"))
		switch r.URL.Query().Get("case") {
		case "length":
			w.Write([]byte("hello"))
		case "chunked":
			w.Write([]byte("hel"))
			w.(http.Flusher).Flush()
			w.Write([]byte("lo"))
		case "big":
			w.Write([]byte(big))
		case "empty":
			w.WriteHeader(http.StatusAccepted)
		case "close":
			w.Header().Set("Connection", "close")
			w.Write([]byte("bye"))
		}
	}))
	defer srv.Close()

	tests := []struct {
		name, want string
		status     int
	}{
		{"length", "hello", 200},
		{"chunked", "hello", 200},
		{"big", big, 200},
		{"empty", "", 202},
		{"close", "bye", 200},
		{"length", "hello", 200}, // after a closed connection: dials again
	}
	c, err := newClient(target{name: "test", url: srv.URL + "/mcp"}, protoStateless)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	for _, tt := range tests {
		c.path = "/mcp?case=" + tt.name
		for range 2 { // twice on the same connection
			st, session, err := c.roundTrip(c.request(http.MethodPost, c.header, []byte("{}")))
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if st != tt.status || string(c.body) != tt.want || session != "s-"+tt.name {
				t.Errorf("%s: got %d %.20q session %q, want %d %.20q", tt.name, st, c.body, session, tt.status, tt.want)
			}
		}
	}
}

func TestPercentile(t *testing.T) {
	ms := func(n ...int) []time.Duration {
		var d []time.Duration
		for _, v := range n {
			d = append(d, time.Duration(v)*time.Millisecond)
		}
		return d
	}
	tests := []struct {
		lat  []time.Duration
		p    float64
		want time.Duration
	}{
		{nil, 50, 0},
		{ms(7), 99, 7 * time.Millisecond},
		{ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{ms(1, 2, 3, 4), 99, 4 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 90, 9 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := percentile(tt.lat, tt.p); got != tt.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", tt.lat, tt.p, got, tt.want)
		}
	}
	if s := spreadOf([]float64{3, 1, 2, 10}); s != (spread{med: 2.5, lo: 1, hi: 10}) {
		t.Errorf("spreadOf = %+v", s)
	}
}

// The refresh load redeems each chain's refresh token and keeps the
// rotated one; a refused refresh is an error.
func TestRefreshClient(t *testing.T) {
	var next int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		if r.URL.Path != "/token" || r.Form.Get("grant_type") != "refresh_token" || r.Form.Get("client_id") != "cid" ||
			r.Form.Get("refresh_token") != fmt.Sprintf("rt-%d", next) {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":"invalid_grant"}`))
			return
		}
		next++
		fmt.Fprintf(w, `{"access_token":"at","refresh_token":"rt-%d"}`, next)
	}))
	defer srv.Close()
	ch := &chain{refresh: "rt-0"}
	c, err := newClient(target{name: "test", tokenURL: srv.URL + "/token", clientID: "cid"}, loadRefresh)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	c.chain = ch
	for i := range 3 {
		if err := c.refreshOnce(); err != nil {
			t.Fatalf("refresh %d: %v", i, err)
		}
	}
	if ch.refresh != "rt-3" {
		t.Errorf("the chain holds %q, want rt-3", ch.refresh)
	}
	ch.refresh = "rt-0" // reused: refused
	if err := c.refreshOnce(); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Errorf("a reused refresh token: %v, want the refusal", err)
	}
}
