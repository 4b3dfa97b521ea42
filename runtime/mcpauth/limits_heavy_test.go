package mcpauth_test

// K1, slowloris: a client that never finishes its request headers is cut
// off by Serve's ReadHeaderTimeout. Waits about ten seconds, so it stays in
// this repository.

import (
	"io"
	"net"
	"testing"
	"time"
)

func TestK1_SlowHeadersCutOff(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the header timeout")
	}
	_, addr := startServe(t)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /.well-known/oauth-authorization-server HTTP/1.1\r\nHost: "+addr+"\r\nX-Slow: "); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(40 * time.Second))
	start := time.Now()
	_, err = io.ReadAll(conn) // returns when the server closes the connection
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("connection with unfinished headers still open after %v", time.Since(start).Round(time.Second))
	}
	t.Logf("server closed the connection after %v", time.Since(start).Round(time.Second))
}
