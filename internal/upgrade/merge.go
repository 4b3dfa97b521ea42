package upgrade

import (
	"bytes"
	"slices"
	"strings"
)

// Labels name the three sides of a merge in its conflict markers.
type Labels struct {
	Yours  string // follows "<<<<<<< "
	Base   string // follows "||||||| "; empty leaves the base section out
	Theirs string // follows ">>>>>>> "
}

// Conflict marker prefixes, as git writes them.
const (
	markerYours  = "<<<<<<<"
	markerBase   = "|||||||"
	markerSep    = "======="
	markerTheirs = ">>>>>>>"
)

// Merge3 merges two descendants of base line by line, the way diff3 -m and
// git merge-file do: a region changed on one side only takes that side's
// lines; a region changed identically on both sides takes them once; a region
// changed differently on both sides becomes a conflict block
//
//	<<<<<<< yours
//	(yours)
//	||||||| base
//	(base)
//	=======
//	(theirs)
//	>>>>>>> theirs
//
// and is counted in conflicts. No line of yours or theirs is lost: every
// line either side added is in merged, clean or inside a conflict block.
// Merge3 is the Khanna–Kunal–Pierce formulation of diff3 ("A Formal
// Investigation of Diff3", 2007) over Myers line matchings.
func Merge3(base, yours, theirs []byte, l Labels) (merged []byte, conflicts int) {
	ol, al, bl := splitLines(base), splitLines(yours), splitLines(theirs)
	in := interner{}
	o, a, b := in.ids(ol), in.ids(al), in.ids(bl)
	ma := matchIndex(len(o), lineMatches(o, a))
	mb := matchIndex(len(o), lineMatches(o, b))

	var out bytes.Buffer
	out.Grow(max(len(yours), len(theirs)))
	i, j, k := 0, 0, 0 // next line of base, yours, theirs
	for {
		// A stable run: base lines present, in order, on both sides.
		n := 0
		for i+n < len(o) && ma[i+n] == j+n && mb[i+n] == k+n {
			n++
		}
		writeLines(&out, ol[i:i+n])
		i, j, k = i+n, j+n, k+n

		// The next base line matched on both sides ends the unstable chunk.
		next := i
		for next < len(o) && (ma[next] < 0 || mb[next] < 0) {
			next++
		}
		ni, nj, nk := len(o), len(a), len(b)
		if next < len(o) {
			ni, nj, nk = next, ma[next], mb[next]
		}
		if i == ni && j == nj && k == nk {
			break // only possible at the end of all three
		}
		oc, ac, bc := o[i:ni], a[j:nj], b[k:nk]
		switch {
		case slices.Equal(oc, ac): // only theirs changed
			writeLines(&out, bl[k:nk])
		case slices.Equal(oc, bc), slices.Equal(ac, bc): // only yours, or both alike
			writeLines(&out, al[j:nj])
		default:
			conflicts++
			writeConflict(&out, l, al[j:nj], ol[i:ni], bl[k:nk])
		}
		i, j, k = ni, nj, nk
	}
	return out.Bytes(), conflicts
}

// matchIndex returns, for each of n lines of a, the index of its matching
// line in b, or -1.
func matchIndex(n int, ms []match) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = -1
	}
	for _, m := range ms {
		idx[m.A] = m.B
	}
	return idx
}

func writeLines(out *bytes.Buffer, lines []string) {
	for _, l := range lines {
		out.WriteString(l)
	}
}

func writeConflict(out *bytes.Buffer, l Labels, yours, base, theirs []string) {
	// A marker must start a line, even after a last line without "\n".
	section := func(marker, label string, lines []string) {
		if b := out.Bytes(); len(b) > 0 && b[len(b)-1] != '\n' {
			out.WriteByte('\n')
		}
		out.WriteString(marker)
		if label != "" {
			out.WriteByte(' ')
			out.WriteString(label)
		}
		out.WriteByte('\n')
		writeLines(out, lines)
	}
	section(markerYours, l.Yours, yours)
	if l.Base != "" {
		section(markerBase, l.Base, base)
	}
	section(markerSep, "", theirs)
	section(markerTheirs, l.Theirs, nil)
}

// FindConflictMarker reports the 1-based number of the first line of data
// that starts a conflict block written by Merge3 with a "yours" label of
// yoursLabel, or 0 if there is none. Upgrade refuses to run on top of
// unresolved conflicts.
func FindConflictMarker(data []byte, yoursLabel string) int {
	start := markerYours + " " + yoursLabel
	for n, line := range splitLines(data) {
		if strings.TrimRight(line, "\r\n") == start {
			return n + 1
		}
	}
	return 0
}
