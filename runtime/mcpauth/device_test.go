package mcpauth

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpgen/create-mcp-server/runtime/authstore"
)

// TestKnownDevice: only an untampered, unexpired device cookie of the same
// user, signed with this deployment's key, makes a browser known.
func TestKnownDevice(t *testing.T) {
	open := func() *Server {
		st, err := authstore.Open(t.Context(), filepath.Join(t.TempDir(), "auth.db"), authstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return &Server{store: st}
	}
	s, other := open(), open()
	now := time.Now()
	cookieOf := func(s *Server, user string, at time.Time) string {
		rec := httptest.NewRecorder()
		s.rememberDevice(rec, user, at)
		c := rec.Result().Cookies()
		if len(c) != 1 || c[0].Name != deviceCookie || !c[0].HttpOnly {
			t.Fatalf("device cookie: %+v", c)
		}
		return c[0].Value
	}
	alice := cookieOf(s, "alice", now)
	user, exp, _ := strings.Cut(alice, ".")
	for _, tc := range []struct {
		name, cookie, user string
		at                 time.Time
		want               bool
	}{
		{"alice's own", alice, "alice", now, true},
		{"alice's, near its end", alice, "alice", now.Add(deviceTTL - time.Minute), true},
		{"expired", alice, "alice", now.Add(deviceTTL), false},
		{"for another user", alice, "bob", now, false},
		{"expiry pushed back", user + "." + "99999999999" + exp[strings.Index(exp, "."):], "alice", now, false},
		{"MAC cut short", alice[:len(alice)-2], "alice", now, false},
		{"another deployment's", cookieOf(other, "alice", now), "alice", now, false},
		{"garbage", "...", "alice", now, false},
		{"empty", "", "alice", now, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/authorize", nil)
			r.AddCookie(&http.Cookie{Name: deviceCookie, Value: tc.cookie})
			if got := s.knownDevice(r, tc.user, tc.at); got != tc.want {
				t.Errorf("knownDevice = %v, want %v", got, tc.want)
			}
		})
	}
}
