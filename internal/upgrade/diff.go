package upgrade

import (
	"bytes"
	"fmt"
	"strings"
)

// splitLines splits data into lines, each keeping its trailing "\n".
// Only the last line may lack one. Empty input has no lines.
func splitLines(data []byte) []string {
	if len(data) == 0 {
		return nil
	}
	s := string(data)
	lines := make([]string, 0, strings.Count(s, "\n")+1)
	for len(s) > 0 {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			lines = append(lines, s)
			break
		}
		lines = append(lines, s[:i+1])
		s = s[i+1:]
	}
	return lines
}

// interner maps distinct lines to small integers so that the diff compares
// ints instead of strings.
type interner map[string]int

func (in interner) ids(lines []string) []int {
	ids := make([]int, len(lines))
	for i, l := range lines {
		id, ok := in[l]
		if !ok {
			id = len(in)
			in[l] = id
		}
		ids[i] = id
	}
	return ids
}

// match is a pair of equal lines: a[A] == b[B].
type match struct{ A, B int }

// lineMatches returns a longest common subsequence of a and b as increasing
// index pairs, computed with Myers' O(ND) algorithm in linear space
// ("An O(ND) Difference Algorithm and Its Variations", 1986, section 4b).
// The result is deterministic: the same inputs always give the same pairs.
func lineMatches(a, b []int) []match {
	d := &differ{a: a, b: b}
	n := len(a) + len(b) + 5
	d.vf = make([]int, n)
	d.vb = make([]int, n)
	d.compare(0, len(a), 0, len(b))
	return d.out
}

type differ struct {
	a, b   []int
	vf, vb []int // scratch for middleSnake, indexed by diagonal + offset
	out    []match
}

// compare appends to d.out the matches of a[alo:ahi] and b[blo:bhi].
func (d *differ) compare(alo, ahi, blo, bhi int) {
	for alo < ahi && blo < bhi && d.a[alo] == d.b[blo] {
		d.out = append(d.out, match{alo, blo})
		alo, blo = alo+1, blo+1
	}
	suffix := 0
	for alo < ahi && blo < bhi && d.a[ahi-1] == d.b[bhi-1] {
		ahi, bhi = ahi-1, bhi-1
		suffix++
	}
	if alo < ahi && blo < bhi {
		// Both sides non-empty and differing at both ends: the edit
		// distance is at least 2, so each part below is strictly cheaper.
		sx, sy, fx, fy := d.middleSnake(alo, ahi, blo, bhi)
		d.compare(alo, sx, blo, sy)
		d.compare(sx, fx, sy, fy)
		d.compare(fx, ahi, fy, bhi)
	}
	for i := 0; i < suffix; i++ {
		d.out = append(d.out, match{ahi + i, bhi + i})
	}
}

// middleSnake finds the middle snake of an optimal edit path through the box
// a[left:right] x b[top:bottom] and returns its start (sx, sy) and end (fx, fy).
// The box must be non-empty on both sides.
func (d *differ) middleSnake(left, right, top, bottom int) (sx, sy, fx, fy int) {
	width, height := right-left, bottom-top
	delta := width - height
	maxD := (width + height + 1) / 2
	off := maxD + 1
	vf, vb := d.vf, d.vb
	vf[off+1] = left   // forward: furthest x reached on diagonal k = x-left-(y-top)
	vb[off+1] = bottom // backward: smallest y reached on diagonal c = k-delta
	for D := 0; D <= maxD; D++ {
		for k := D; k >= -D; k -= 2 {
			var x, px int
			if k == -D || (k != D && vf[off+k-1] < vf[off+k+1]) {
				x = vf[off+k+1]
				px = x
			} else {
				px = vf[off+k-1]
				x = px + 1
			}
			y := top + (x - left) - k
			py := y
			if D != 0 && x == px {
				py = y - 1
			}
			for x < right && y < bottom && d.a[x] == d.b[y] {
				x, y = x+1, y+1
			}
			vf[off+k] = x
			c := k - delta
			if delta%2 != 0 && c >= -(D-1) && c <= D-1 && y >= vb[off+c] {
				return px, py, x, y
			}
		}
		for c := D; c >= -D; c -= 2 {
			var y, py int
			if c == -D || (c != D && vb[off+c-1] > vb[off+c+1]) {
				y = vb[off+c+1]
				py = y
			} else {
				py = vb[off+c-1]
				y = py - 1
			}
			k := c + delta
			x := left + (y - top) + k
			px := x
			if D != 0 && y == py {
				px = x + 1
			}
			for x > left && y > top && d.a[x-1] == d.b[y-1] {
				x, y = x-1, y-1
			}
			vb[off+c] = y
			if delta%2 == 0 && k >= -D && k <= D && x <= vf[off+k] {
				return x, y, px, py
			}
		}
	}
	panic("upgrade: no middle snake found") // unreachable for a non-empty box
}

// opKind is the kind of one line in an edit script.
type opKind byte

const (
	opEqual  opKind = ' '
	opDelete opKind = '-'
	opInsert opKind = '+'
)

// lineOp is one line of an edit script turning a into b.
type lineOp struct {
	Kind opKind
	Line string
	A, B int // index of the line in a (equal, delete) and in b (equal, insert)
}

// editScript returns the line edit script that turns a into b, deletions
// before insertions within each changed region.
func editScript(a, b []string) []lineOp {
	in := interner{}
	ms := lineMatches(in.ids(a), in.ids(b))
	ops := make([]lineOp, 0, len(a)+len(b))
	i, j := 0, 0
	flush := func(ai, bj int) {
		for ; i < ai; i++ {
			ops = append(ops, lineOp{Kind: opDelete, Line: a[i], A: i, B: j})
		}
		for ; j < bj; j++ {
			ops = append(ops, lineOp{Kind: opInsert, Line: b[j], A: i, B: j})
		}
	}
	for _, m := range ms {
		flush(m.A, m.B)
		ops = append(ops, lineOp{Kind: opEqual, Line: a[i], A: i, B: j})
		i, j = i+1, j+1
	}
	flush(len(a), len(b))
	return ops
}

// UnifiedDiff returns the unified diff (3 lines of context, like diff -u)
// that turns oldData into newData, with the given file names in its header.
// It returns nil when the contents are equal. A nil oldData or newData stands
// for an absent file and is named /dev/null.
func UnifiedDiff(oldName, newName string, oldData, newData []byte) []byte {
	if bytes.Equal(oldData, newData) && (oldData == nil) == (newData == nil) {
		return nil
	}
	if oldData == nil {
		oldName = "/dev/null"
	}
	if newData == nil {
		newName = "/dev/null"
	}
	ops := editScript(splitLines(oldData), splitLines(newData))
	const context = 3
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "--- %s\n+++ %s\n", oldName, newName)
	for start := 0; start < len(ops); {
		// Find the next change.
		for start < len(ops) && ops[start].Kind == opEqual {
			start++
		}
		if start == len(ops) {
			break
		}
		// Extend the hunk while changes are within 2*context lines.
		lo := max(start-context, 0)
		end := start
		for {
			for end < len(ops) && ops[end].Kind != opEqual {
				end++
			}
			next := end
			for next < len(ops) && ops[next].Kind == opEqual {
				next++
			}
			if next == len(ops) || next-end > 2*context {
				break
			}
			end = next
		}
		hi := min(end+context, len(ops))
		writeHunk(&buf, ops[lo:hi])
		start = hi
	}
	return buf.Bytes()
}

func writeHunk(buf *bytes.Buffer, ops []lineOp) {
	var na, nb int
	for _, op := range ops {
		if op.Kind != opInsert {
			na++
		}
		if op.Kind != opDelete {
			nb++
		}
	}
	// Line numbers are 1-based; an empty range names the line before it.
	sa, sb := ops[0].A+1, ops[0].B+1
	if na == 0 {
		sa--
	}
	if nb == 0 {
		sb--
	}
	fmt.Fprintf(buf, "@@ -%s +%s @@\n", hunkRange(sa, na), hunkRange(sb, nb))
	for _, op := range ops {
		buf.WriteByte(byte(op.Kind))
		buf.WriteString(op.Line)
		if !strings.HasSuffix(op.Line, "\n") {
			buf.WriteString("\n\\ No newline at end of file\n")
		}
	}
}

func hunkRange(start, n int) string {
	if n == 1 {
		return fmt.Sprint(start)
	}
	return fmt.Sprintf("%d,%d", start, n)
}
