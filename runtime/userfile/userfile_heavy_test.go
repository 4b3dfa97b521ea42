package userfile

// Benchmarks and fuzzing. Files named *_heavy_test.go stay in this repository
// and are not copied into generated projects.

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// BenchmarkStamp measures the per-request cost the bearer check pays: a map
// lookup in the version loaded (the file is checked in the background).
func BenchmarkStamp(b *testing.B) {
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprintf("users=%d", n), func(b *testing.B) {
			path := usersPath(b)
			h := hash(b, "pw")
			var sb strings.Builder
			for i := range n {
				fmt.Fprintf(&sb, "user%d:%s\n", i, h)
			}
			writeFile(b, path, sb.String())
			f := mustOpen(b, path)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, ok, _ := f.Stamp("user7"); !ok {
						b.Fatal("user7 missing")
					}
				}
			})
		})
	}
}

// BenchmarkAuthenticate compares a wrong password for a known user with an
// unknown user, at the cost Add uses. The two must take about the same time
// (security rule I4 of mcpauth, no username enumeration); compare their ns/op.
func BenchmarkAuthenticate(b *testing.B) {
	path := usersPath(b)
	h, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.DefaultCost)
	if err != nil {
		b.Fatal(err)
	}
	writeFile(b, path, "alice:"+string(h)+"\n")
	f := mustOpen(b, path)
	ctx := context.Background()
	f.Authenticate(ctx, "warm-up", "x") // make the dummy hash outside the timing
	for _, user := range []string{"alice", "mallory"} {
		b.Run("user="+user, func(b *testing.B) {
			for b.Loop() {
				if ok, _ := f.Authenticate(ctx, user, "wrong"); ok {
					b.Fatal("wrong password accepted")
				}
			}
		})
	}
}

// FuzzParse checks that parsing never panics, and that whatever it accepts
// holds only valid usernames and bcrypt hashes and survives a rewrite.
func FuzzParse(f *testing.F) {
	h := hash(f, "pw")
	for _, seed := range []string{
		"",
		"# c\n\nalice:" + h + "\n",
		"alice:" + h + "\r\nbob:" + h,
		"\uFEFF  alice:" + h + " \n",
		"alice\n",
		":" + h,
		"alice:" + h + "\nalice:" + h + "\n",
		"alice:$2a$04$" + strings.Repeat(".", 53),
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := parse("users.txt", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "users.txt:") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		var raw []byte
		for _, l := range p.lines {
			raw = append(raw, l.raw...)
			if l.user == "" {
				continue
			}
			if err := ValidateUsername(l.user); err != nil {
				t.Fatalf("accepted invalid username: %v", err)
			}
			if _, err := bcrypt.Cost(p.users[l.user].hash); err != nil {
				t.Fatalf("accepted invalid hash for %q: %v", l.user, err)
			}
		}
		if string(raw) != string(data) {
			t.Fatalf("lines do not reassemble the file")
		}
	})
}
