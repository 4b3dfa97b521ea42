package upgrade

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"
)

var testLabels = Labels{Yours: "yours", Base: "base", Theirs: "generator 0.2.0"}

func TestMerge3(t *testing.T) {
	const base = "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfmt.Println(\"hi\")\n}\n\n// end\n"
	tests := []struct {
		name              string
		base, yours, them string
		want              string
		conflicts         int
	}{
		{
			name: "nobody changed", base: base, yours: base, them: base, want: base,
		},
		{
			name: "only theirs changed", base: base, yours: base,
			them: strings.Replace(base, "hi", "hello", 1),
			want: strings.Replace(base, "hi", "hello", 1),
		},
		{
			name: "only yours changed", base: base, them: base,
			yours: strings.Replace(base, "hi", "mine", 1),
			want:  strings.Replace(base, "hi", "mine", 1),
		},
		{
			name:  "both changed apart",
			base:  base,
			yours: strings.Replace(base, "// end", "// the end", 1),
			them:  strings.Replace(base, "import \"fmt\"", "import (\n\t\"fmt\"\n\t\"os\"\n)", 1),
			want:  "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n)\n\nfunc main() {\n\tfmt.Println(\"hi\")\n}\n\n// the end\n",
		},
		{
			name:  "both made the same change",
			base:  base,
			yours: strings.Replace(base, "hi", "hello", 1),
			them:  strings.Replace(base, "hi", "hello", 1),
			want:  strings.Replace(base, "hi", "hello", 1),
		},
		{
			name: "both deleted the same line", base: "a\nb\nc\n", yours: "a\nc\n", them: "a\nc\n", want: "a\nc\n",
		},
		{
			name: "yours deleted, theirs changed elsewhere",
			base: "a\nb\nc\nd\ne\n", yours: "a\nc\nd\ne\n", them: "a\nb\nc\nd\nE\n",
			want: "a\nc\nd\nE\n",
		},
		{
			name:  "both changed the same line",
			base:  base,
			yours: strings.Replace(base, "hi", "mine", 1),
			them:  strings.Replace(base, "hi", "theirs", 1),
			want: "package main\n\nimport \"fmt\"\n\nfunc main() {\n" +
				"<<<<<<< yours\n\tfmt.Println(\"mine\")\n" +
				"||||||| base\n\tfmt.Println(\"hi\")\n" +
				"=======\n\tfmt.Println(\"theirs\")\n" +
				">>>>>>> generator 0.2.0\n}\n\n// end\n",
			conflicts: 1,
		},
		{
			name: "both appended", base: "a\n", yours: "a\nmine\n", them: "a\ntheirs\n",
			want:      "a\n<<<<<<< yours\nmine\n||||||| base\n=======\ntheirs\n>>>>>>> generator 0.2.0\n",
			conflicts: 1,
		},
		{
			name: "yours deleted what theirs changed", base: "a\nb\nc\n", yours: "a\nc\n", them: "a\nB\nc\n",
			want:      "a\n<<<<<<< yours\n||||||| base\nb\n=======\nB\n>>>>>>> generator 0.2.0\nc\n",
			conflicts: 1,
		},
		{
			name: "two conflicts", base: "a\nx\nb\ny\nc\n", yours: "a\nx1\nb\ny1\nc\n", them: "a\nx2\nb\ny2\nc\n",
			want: "a\n<<<<<<< yours\nx1\n||||||| base\nx\n=======\nx2\n>>>>>>> generator 0.2.0\n" +
				"b\n<<<<<<< yours\ny1\n||||||| base\ny\n=======\ny2\n>>>>>>> generator 0.2.0\nc\n",
			conflicts: 2,
		},
		{
			name: "conflict on a last line without newline", base: "a\nb", yours: "a\nmine", them: "a\ntheirs",
			want:      "a\n<<<<<<< yours\nmine\n||||||| base\nb\n=======\ntheirs\n>>>>>>> generator 0.2.0\n",
			conflicts: 1,
		},
		{
			name: "empty base, same content", base: "", yours: "x\n", them: "x\n", want: "x\n",
		},
		{
			name: "empty base, different content", base: "", yours: "x\n", them: "y\n",
			want:      "<<<<<<< yours\nx\n||||||| base\n=======\ny\n>>>>>>> generator 0.2.0\n",
			conflicts: 1,
		},
		{
			name: "crlf lines kept", base: "a\r\nb\r\n", yours: "a\r\nb\r\nc\r\n", them: "A\r\nb\r\n",
			want: "A\r\nb\r\nc\r\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, n := Merge3([]byte(tt.base), []byte(tt.yours), []byte(tt.them), testLabels)
			if string(got) != tt.want || n != tt.conflicts {
				t.Errorf("Merge3 = %d conflicts\n%s\nwant %d conflicts\n%s", n, got, tt.conflicts, tt.want)
			}
		})
	}
}

func TestMerge3WithoutBaseSection(t *testing.T) {
	got, n := Merge3([]byte("a\n"), []byte("b\n"), []byte("c\n"), Labels{Yours: "yours", Theirs: "generator 0.2.0"})
	want := "<<<<<<< yours\nb\n=======\nc\n>>>>>>> generator 0.2.0\n"
	if string(got) != want || n != 1 {
		t.Errorf("Merge3 = %d conflicts\n%s\nwant 1\n%s", n, got, want)
	}
}

func TestFindConflictMarker(t *testing.T) {
	merged, _ := Merge3([]byte("a\nb\n"), []byte("a\nB1\n"), []byte("a\nB2\n"), testLabels)
	tests := []struct {
		data string
		want int
	}{
		{string(merged), 2},
		{"a\nb\n", 0},
		{"<<<<<<< HEAD\n", 0}, // a git conflict is the user's business, not ours
		{"x := \"<<<<<<< yours\"\n", 0},
		{"a\r\n<<<<<<< yours\r\n", 2},
	}
	for _, tt := range tests {
		if got := FindConflictMarker([]byte(tt.data), "yours"); got != tt.want {
			t.Errorf("FindConflictMarker(%q) = %d, want %d", tt.data, got, tt.want)
		}
	}
}

// edit applies up to maxEdits random line edits (insert, delete, replace) to
// lines. Every line it writes is new and unique ("<tag> N"); it returns the
// edited text, the lines it added and the indexes of the lines it removed.
func edit(r *rand.Rand, lines []string, tag string, maxEdits int) (out []string, added []string, removed map[string]bool) {
	type line struct {
		text string
		orig bool
	}
	cur := make([]line, len(lines))
	for i, l := range lines {
		cur[i] = line{l, true}
	}
	removed = map[string]bool{}
	for n := range r.Intn(maxEdits + 1) {
		newLine := fmt.Sprintf("%s %d\n", tag, n)
		pos := r.Intn(len(cur) + 1)
		switch op := r.Intn(3); {
		case op == 0 || len(cur) == 0 || pos == len(cur): // insert
			cur = append(cur[:pos], append([]line{{newLine, false}}, cur[pos:]...)...)
			added = append(added, newLine)
		case op == 1: // delete
			if cur[pos].orig {
				removed[cur[pos].text] = true
			}
			cur = append(cur[:pos], cur[pos+1:]...)
		default: // replace
			if cur[pos].orig {
				removed[cur[pos].text] = true
			}
			cur[pos] = line{newLine, false}
			added = append(added, newLine)
		}
	}
	// Lines added then removed again are not "added".
	present := map[string]bool{}
	for _, l := range cur {
		present[l.text] = true
		out = append(out, l.text)
	}
	kept := added[:0]
	for _, l := range added {
		if present[l] {
			kept = append(kept, l)
		}
	}
	return out, kept, removed
}

// TestMerge3Property runs Merge3 on thousands of random (base, yours,
// theirs) triples made by random line edits on each side of a random base,
// and checks that no edit is ever lost:
//   - every line the user added is in the result exactly once, clean or
//     inside a conflict block;
//   - without conflicts, every line the generator added is in the result
//     exactly once, and a base line survives exactly when neither side
//     removed it;
//   - the number of conflict blocks equals the conflict count;
//   - merging with an unchanged side gives the other side, byte for byte.
//
// Base texts come in two kinds: unique lines, and lines drawn from a small
// alphabet ("}", "", "return nil") so that the diff must choose among many
// equal lines, as it does in real Go code.
func TestMerge3Property(t *testing.T) {
	iterations := 5000
	if testing.Short() {
		iterations = 1000
	}
	r := rand.New(rand.NewSource(42))
	alphabet := []string{"}\n", "\n", "\treturn nil\n", "\t}\n", "// x\n"}
	for iter := range iterations {
		unique := iter%2 == 0
		base := make([]string, r.Intn(40))
		for i := range base {
			if unique {
				base[i] = fmt.Sprintf("base %d\n", i)
			} else {
				base[i] = alphabet[r.Intn(len(alphabet))]
			}
		}
		yours, userAdded, userRemoved := edit(r, base, "user", 6)
		theirs, genAdded, genRemoved := edit(r, base, "gen", 6)
		bs, ys, ts := []byte(strings.Join(base, "")), []byte(strings.Join(yours, "")), []byte(strings.Join(theirs, ""))

		got, conflicts := Merge3(bs, ys, ts, testLabels)
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("iteration %d: %s\nbase:\n%s\nyours:\n%s\ntheirs:\n%s\nmerged (%d conflicts):\n%s",
				iter, fmt.Sprintf(format, args...), bs, ys, ts, conflicts, got)
		}
		count := map[string]int{}
		for _, l := range splitLines(got) {
			count[l]++
		}
		for _, l := range userAdded {
			if count[l] != 1 {
				fail("user line %q appears %d times", l, count[l])
			}
		}
		if n := count["<<<<<<< yours\n"]; n != conflicts {
			fail("%d conflict blocks, %d conflicts reported", n, conflicts)
		}
		if conflicts == 0 {
			for _, l := range genAdded {
				if count[l] != 1 {
					fail("generator line %q appears %d times", l, count[l])
				}
			}
			if unique {
				for _, l := range base {
					want := 1
					if userRemoved[l] || genRemoved[l] {
						want = 0
					}
					if count[l] != want {
						fail("base line %q appears %d times, want %d", l, count[l], want)
					}
				}
			}
		}
		for _, c := range []struct {
			name       string
			y, t, want []byte
		}{
			{"theirs unchanged", ys, bs, ys},
			{"yours unchanged", bs, ts, ts},
			{"same change", ys, ys, ys},
		} {
			if got, n := Merge3(bs, c.y, c.t, testLabels); string(got) != string(c.want) || n != 0 {
				fail("%s: got %d conflicts\n%s", c.name, n, got)
			}
		}
	}
}

// FuzzMerge3 checks the invariants that hold for any input: no panic, every
// line of yours that is not in base survives, and, without conflicts, every
// line of theirs that is not in base survives.
func FuzzMerge3(f *testing.F) {
	f.Add("a\nb\nc\n", "a\nB\nc\n", "a\nb\nC\n")
	f.Add("a\nb\n", "a\nx\n", "a\ny\n")
	f.Add("", "x", "y")
	f.Add("a\r\nb", "a\r\n", "b\n\n\n")
	f.Fuzz(func(t *testing.T, base, yours, theirs string) {
		got, conflicts := Merge3([]byte(base), []byte(yours), []byte(theirs), testLabels)
		inBase := lineSet(base)
		result := lineSet(string(got))
		for l := range lineSet(yours) {
			if !inBase[l] && !result[l] {
				t.Fatalf("line %q of yours lost: %q", l, got)
			}
		}
		if conflicts == 0 {
			for l := range lineSet(theirs) {
				if !inBase[l] && !result[l] {
					t.Fatalf("line %q of theirs lost: %q", l, got)
				}
			}
		}
	})
}

// lineSet returns the lines of s without their line endings ("\n"; a
// conflict block may end a last line that had none).
func lineSet(s string) map[string]bool {
	set := map[string]bool{}
	for _, l := range splitLines([]byte(s)) {
		set[strings.TrimSuffix(l, "\n")] = true
	}
	return set
}

// BenchmarkMerge3 merges a 2,000-line file with a few edits on each side,
// the size of a large main.go or README.
func BenchmarkMerge3(b *testing.B) {
	var base []string
	for i := range 2000 {
		base = append(base, fmt.Sprintf("line %d of a generated file\n", i), "\n")
	}
	r := rand.New(rand.NewSource(1))
	yours, _, _ := edit(r, base, "user", 10)
	theirs, _, _ := edit(r, base, "gen", 10)
	bs, ys, ts := []byte(strings.Join(base, "")), []byte(strings.Join(yours, "")), []byte(strings.Join(theirs, ""))
	b.SetBytes(int64(len(bs)))
	for b.Loop() {
		Merge3(bs, ys, ts, testLabels)
	}
}
