package upgrade

import (
	"bytes"
	"cmp"
	"fmt"
	"go/version"
	"slices"
	"strings"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
)

// MergeGoMod merges go.mod semantically rather than line by line, starting
// from the user's file (current) so that its layout, comments and every
// directive the user added are kept:
//
//   - the module path and the go and toolchain versions move to next's
//     values unless the user changed them; a user's go or toolchain version
//     newer than next's is kept;
//   - each module next requires moves to next's version unless the user
//     changed it, in which case the higher of the two versions wins (what
//     minimal version selection would pick anyway); a generator-required
//     module the user removed is required again, since generated code
//     imports it;
//   - requirements the user added are kept, and so are requirements the
//     generator no longer makes (user code may import them);
//   - replace and exclude directives the generator added or changed are
//     applied, those it dropped are dropped unless the user changed them,
//     and the user's own are kept.
//
// base may be nil when the merge base is unknown: every difference is then
// treated as the user's, and required versions only ever move up.
func MergeGoMod(base, current, next []byte) ([]byte, error) {
	cf, err := modfile.Parse("go.mod", current, nil)
	if err != nil {
		return nil, fmt.Errorf("parse your go.mod: %w", err)
	}
	nf, err := modfile.Parse("go.mod (new)", next, nil)
	if err != nil {
		return nil, fmt.Errorf("parse generated go.mod: %w", err)
	}
	if err := checkModulePaths(cf); err != nil {
		return nil, fmt.Errorf("your go.mod: %w", err)
	}
	if err := checkModulePaths(nf); err != nil {
		return nil, fmt.Errorf("generated go.mod: %w", err)
	}
	bf, err := modfile.Parse("go.mod (base)", base, nil)
	if err != nil || checkModulePaths(bf) != nil {
		// An unreadable base is no base: every difference counts as the user's.
		bf = new(modfile.File)
	}

	if b, c, n := modulePath(bf), modulePath(cf), modulePath(nf); c == b && n != c && n != "" {
		if err := cf.AddModuleStmt(n); err != nil {
			return nil, fmt.Errorf("set module path: %w", err)
		}
	}
	if v := pickGoVersion(goVersion(bf), goVersion(cf), goVersion(nf)); v != goVersion(cf) {
		if err := cf.AddGoStmt(v); err != nil {
			return nil, fmt.Errorf("set go version: %w", err)
		}
	}
	if v := pickGoVersion(toolchain(bf), toolchain(cf), toolchain(nf)); v != toolchain(cf) {
		if v == "" {
			cf.DropToolchainStmt()
		} else if err := cf.AddToolchainStmt(v); err != nil {
			return nil, fmt.Errorf("set toolchain: %w", err)
		}
	}

	mergeRequires(bf, cf, nf)
	if err := mergeReplaces(bf, cf, nf); err != nil {
		return nil, err
	}
	if err := mergeExcludes(bf, cf, nf); err != nil {
		return nil, err
	}
	cf.Cleanup()
	out := modfile.Format(cf.Syntax)
	// The merge edits a syntax tree, so it cannot produce what modfile
	// would refuse; check anyway, because a go.mod that does not parse
	// would stop the whole project from building.
	if _, err := modfile.Parse("go.mod (merged)", out, nil); err != nil {
		return nil, fmt.Errorf("merged go.mod does not parse (please report this): %w", err)
	}
	return out, nil
}

// checkModulePaths reports a require, exclude or replaced module path that is
// not a valid module path. modfile.Parse accepts some tokens (such as "(")
// that the go command would refuse and that could not be written back.
func checkModulePaths(f *modfile.File) error {
	var paths []string
	for _, r := range f.Require {
		paths = append(paths, r.Mod.Path)
	}
	for _, e := range f.Exclude {
		paths = append(paths, e.Mod.Path)
	}
	for _, r := range f.Replace {
		paths = append(paths, r.Old.Path)
	}
	for _, p := range paths {
		if err := module.CheckImportPath(p); err != nil {
			return fmt.Errorf("invalid module path %q: %w", p, err)
		}
	}
	return nil
}

func modulePath(f *modfile.File) string {
	if f.Module == nil {
		return ""
	}
	return f.Module.Mod.Path
}

func goVersion(f *modfile.File) string {
	if f.Go == nil {
		return ""
	}
	return f.Go.Version
}

func toolchain(f *modfile.File) string {
	if f.Toolchain == nil {
		return ""
	}
	return f.Toolchain.Name
}

// pickGoVersion merges one go or toolchain version: next's, unless the user
// changed it, and never older than the user's.
func pickGoVersion(base, cur, next string) string {
	if cur == base || cur == "" {
		return next
	}
	if next == "" {
		return cur
	}
	c, n := strings.TrimPrefix(cur, "go"), strings.TrimPrefix(next, "go")
	if version.Compare("go"+n, "go"+c) > 0 {
		return next
	}
	return cur
}

type requirement struct {
	version  string
	indirect bool
}

func requires(f *modfile.File) map[string]requirement {
	m := make(map[string]requirement, len(f.Require))
	for _, r := range f.Require {
		m[r.Mod.Path] = requirement{r.Mod.Version, r.Indirect}
	}
	return m
}

func mergeRequires(bf, cf, nf *modfile.File) {
	base, cur := requires(bf), requires(cf)
	final := make([]*modfile.Require, 0, len(cf.Require)+len(nf.Require))
	byPath := map[string]*modfile.Require{}
	for _, r := range cf.Require {
		if byPath[r.Mod.Path] != nil {
			continue
		}
		nr := &modfile.Require{Mod: r.Mod, Indirect: r.Indirect}
		byPath[r.Mod.Path] = nr
		final = append(final, nr)
	}
	for _, n := range nf.Require {
		path := n.Mod.Path
		r := byPath[path]
		if r == nil {
			r = &modfile.Require{Mod: n.Mod, Indirect: n.Indirect}
			byPath[path] = r
			final = append(final, r)
			continue
		}
		c, inCur := cur[path]
		b, inBase := base[path]
		switch {
		case inCur && inBase && c.version == b.version && r.Mod.Version == c.version:
			r.Mod.Version = n.Mod.Version // the user left it: take the new pin
		case semver.Compare(n.Mod.Version, r.Mod.Version) > 0:
			r.Mod.Version = n.Mod.Version // never below the new pin
		}
		if inCur && inBase && c.indirect == b.indirect {
			r.Indirect = n.Indirect
		}
	}
	cf.SetRequireSeparateIndirect(final)
}

func mergeReplaces(bf, cf, nf *modfile.File) error {
	key := func(r *modfile.Replace) module.Version { return r.Old }
	same := func(x, y *modfile.Replace) bool { return x.New == y.New }
	for _, op := range threeWay(bf.Replace, cf.Replace, nf.Replace, key, same) {
		var err error
		if op.drop {
			err = cf.DropReplace(op.item.Old.Path, op.item.Old.Version)
		} else {
			err = cf.AddReplace(op.item.Old.Path, op.item.Old.Version, op.item.New.Path, op.item.New.Version)
		}
		if err != nil {
			return fmt.Errorf("merge replace %s: %w", op.item.Old.Path, err)
		}
	}
	return nil
}

func mergeExcludes(bf, cf, nf *modfile.File) error {
	key := func(e *modfile.Exclude) module.Version { return e.Mod }
	same := func(x, y *modfile.Exclude) bool { return true }
	for _, op := range threeWay(bf.Exclude, cf.Exclude, nf.Exclude, key, same) {
		var err error
		if op.drop {
			err = cf.DropExclude(op.item.Mod.Path, op.item.Mod.Version)
		} else {
			err = cf.AddExclude(op.item.Mod.Path, op.item.Mod.Version)
		}
		if err != nil {
			return fmt.Errorf("merge exclude %s: %w", op.item.Mod.Path, err)
		}
	}
	return nil
}

type setOp[T any] struct {
	item T
	drop bool
}

// threeWay returns the edits that bring the generator's changes from base to
// next into cur, for directives identified by key: additions and changes
// are applied where the user left the directive as it was in base (or has
// none), removals where the user had not changed it.
func threeWay[T any](base, cur, next []T, key func(T) module.Version, same func(x, y T) bool) []setOp[T] {
	find := func(list []T, k module.Version) (T, bool) {
		for _, x := range list {
			if key(x) == k {
				return x, true
			}
		}
		var zero T
		return zero, false
	}
	var ops []setOp[T]
	for _, n := range next {
		b, inBase := find(base, key(n))
		c, inCur := find(cur, key(n))
		switch {
		case !inCur && !inBase:
			ops = append(ops, setOp[T]{item: n})
		case inCur && inBase && same(c, b) && !same(c, n):
			ops = append(ops, setOp[T]{item: n})
		}
	}
	for _, b := range base {
		if _, inNext := find(next, key(b)); inNext {
			continue
		}
		if c, inCur := find(cur, key(b)); inCur && same(c, b) {
			ops = append(ops, setOp[T]{item: b, drop: true})
		}
	}
	return ops
}

// MergeGoSum returns the union of the lines of the user's go.sum and the
// generated one, without duplicates, sorted the way the go command sorts
// them (by module path, then version). Checksums are facts about module
// versions, so keeping a line never hurts, and dropping one the user's
// dependencies need would break the build.
func MergeGoSum(current, next []byte) []byte {
	seen := map[string]bool{}
	var lines []string
	for _, data := range [][]byte{current, next} {
		for _, l := range strings.Split(string(data), "\n") {
			l = strings.TrimSpace(l)
			if l != "" && !seen[l] {
				seen[l] = true
				lines = append(lines, l)
			}
		}
	}
	slices.SortFunc(lines, compareSumLines)
	var buf bytes.Buffer
	for _, l := range lines {
		buf.WriteString(l)
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

// compareSumLines orders go.sum lines "path version[/go.mod] hash" by path,
// then by semantic version, with a version's tree hash before its go.mod
// hash.
func compareSumLines(x, y string) int {
	xf, yf := strings.Fields(x), strings.Fields(y)
	if len(xf) < 2 || len(yf) < 2 {
		return strings.Compare(x, y)
	}
	if c := strings.Compare(xf[0], yf[0]); c != 0 {
		return c
	}
	xv, xmod := strings.CutSuffix(xf[1], "/go.mod")
	yv, ymod := strings.CutSuffix(yf[1], "/go.mod")
	if c := semver.Compare(xv, yv); c != 0 {
		return c
	}
	if c := strings.Compare(xv, yv); c != 0 { // invalid versions: keep a total order
		return c
	}
	if xmod != ymod {
		if xmod {
			return 1
		}
		return -1
	}
	return cmp.Compare(x, y)
}
