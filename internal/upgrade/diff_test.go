package upgrade

import (
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestSplitLines(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"a", []string{"a"}},
		{"a\n", []string{"a\n"}},
		{"a\nb", []string{"a\n", "b"}},
		{"\n\n", []string{"\n", "\n"}},
		{"a\r\nb\r\n", []string{"a\r\n", "b\r\n"}},
	}
	for _, tt := range tests {
		if got := splitLines([]byte(tt.in)); !slices.Equal(got, tt.want) {
			t.Errorf("splitLines(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// lcsLen is the textbook dynamic-programming LCS length, the oracle for
// lineMatches.
func lcsLen(a, b []int) int {
	dp := make([][]int, len(a)+1)
	for i := range dp {
		dp[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				dp[i][j] = dp[i+1][j+1] + 1
			} else {
				dp[i][j] = max(dp[i+1][j], dp[i][j+1])
			}
		}
	}
	return dp[0][0]
}

// TestLineMatchesIsLongest checks on many random inputs that lineMatches
// returns a valid common subsequence (increasing, equal lines) that is as
// long as the longest one: the diff is minimal, so merges see every line
// both sides kept.
func TestLineMatchesIsLongest(t *testing.T) {
	iterations := 2000
	if testing.Short() {
		iterations = 300
	}
	r := rand.New(rand.NewSource(1))
	for iter := range iterations {
		a := randInts(r, r.Intn(25), 1+r.Intn(6))
		b := randInts(r, r.Intn(25), 1+r.Intn(6))
		ms := lineMatches(a, b)
		for n, m := range ms {
			if m.A < 0 || m.A >= len(a) || m.B < 0 || m.B >= len(b) || a[m.A] != b[m.B] {
				t.Fatalf("iteration %d: bad match %v for a=%v b=%v", iter, m, a, b)
			}
			if n > 0 && (m.A <= ms[n-1].A || m.B <= ms[n-1].B) {
				t.Fatalf("iteration %d: matches not increasing: %v for a=%v b=%v", iter, ms, a, b)
			}
		}
		if want := lcsLen(a, b); len(ms) != want {
			t.Fatalf("iteration %d: %d matches, longest common subsequence has %d\na=%v\nb=%v", iter, len(ms), want, a, b)
		}
	}
}

func randInts(r *rand.Rand, n, alphabet int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = r.Intn(alphabet)
	}
	return s
}

func TestLineMatchesLarge(t *testing.T) {
	// Two unrelated 5,000-line inputs, the worst case (D = N+M): linear
	// space keeps the memory at O(N+M) instead of O(D²).
	a := make([]int, 5000)
	b := make([]int, 5000)
	for i := range a {
		a[i], b[i] = i, len(a)+i
	}
	if ms := lineMatches(a, b); len(ms) != 0 {
		t.Fatalf("got %d matches between disjoint inputs", len(ms))
	}
}

func TestUnifiedDiff(t *testing.T) {
	tests := []struct {
		name     string
		old, new []byte
		want     string
	}{
		{"equal", []byte("a\n"), []byte("a\n"), ""},
		{"change in middle", []byte("1\n2\n3\n4\n5\n6\n7\n8\n9\n"), []byte("1\n2\n3\n4\nfive\n6\n7\n8\n9\n"),
			"--- a/f\n+++ b/f\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n"},
		{"new file", nil, []byte("x\ny\n"),
			"--- /dev/null\n+++ b/f\n@@ -0,0 +1,2 @@\n+x\n+y\n"},
		{"deleted file", []byte("x\n"), nil,
			"--- a/f\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n"},
		{"no newline at end", []byte("x\n"), []byte("x\ny"),
			"--- a/f\n+++ b/f\n@@ -1 +1,2 @@\n x\n+y\n\\ No newline at end of file\n"},
		{"two hunks", []byte("a\n1\n2\n3\n4\n5\n6\n7\n8\nb\n"), []byte("A\n1\n2\n3\n4\n5\n6\n7\n8\nB\n"),
			"--- a/f\n+++ b/f\n@@ -1,4 +1,4 @@\n-a\n+A\n 1\n 2\n 3\n@@ -7,4 +7,4 @@\n 6\n 7\n 8\n-b\n+B\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(UnifiedDiff("a/f", "b/f", tt.old, tt.new))
			if got != tt.want {
				t.Errorf("UnifiedDiff =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// TestUnifiedDiffApplies feeds random diffs to patch(1), when it is
// installed, and checks that they turn the old file into the new one.
func TestUnifiedDiffApplies(t *testing.T) {
	patch, err := exec.LookPath("patch")
	if err != nil {
		t.Skip("patch(1) not installed")
	}
	r := rand.New(rand.NewSource(2))
	dir := t.TempDir()
	for iter := range 40 {
		old := randText(r, r.Intn(30))
		new := randText(r, r.Intn(30))
		if iter%5 == 0 {
			new += "tail without newline"
		}
		file := filepath.Join(dir, "f")
		if err := os.WriteFile(file, []byte(old), 0o644); err != nil {
			t.Fatal(err)
		}
		d := UnifiedDiff("a/f", "b/f", []byte(old), []byte(new))
		if d == nil {
			continue
		}
		cmd := exec.Command(patch, "-s", "-p1", "--no-backup-if-mismatch")
		cmd.Dir = dir
		cmd.Stdin = strings.NewReader(string(d))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("iteration %d: patch: %v\n%s\ndiff:\n%s", iter, err, out, d)
		}
		got, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != new {
			t.Fatalf("iteration %d: patched file =\n%q\nwant\n%q\ndiff:\n%s", iter, got, new, d)
		}
	}
}

func randText(r *rand.Rand, n int) string {
	var b strings.Builder
	for range n {
		fmt.Fprintf(&b, "line %d\n", r.Intn(8))
	}
	return b.String()
}
