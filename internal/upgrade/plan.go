package upgrade

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"golang.org/x/tools/txtar"

	"github.com/mcpgen/create-mcp-server/internal/gen"
)

// An Action is what an upgrade does with one file.
type Action string

// The actions, as Change.Lines prints them.
const (
	Unchanged     Action = "unchanged"       // the file stays as it is
	Updated       Action = "updated"         // not edited by the user: the new version replaces it
	Merged        Action = "merged"          // edited by both: merged without conflict
	Conflict      Action = "conflict"        // edited by both in the same place: conflict markers
	Kept          Action = "kept"            // the user's file (or an edited one no longer generated): never touched
	Added         Action = "added"           // new in this version
	DeletedByUser Action = "deleted by user" // the user deleted it: it stays deleted
	Replaced      Action = "replaced"        // a runtime file the user edited: replaced, their copy kept
	Removed       Action = "removed"         // no longer generated: deleted (an edited runtime file is moved to a backup)
)

// ConflictLabel is the "yours" label of the conflict markers Plan writes:
// conflict blocks start with "<<<<<<< yours".
const ConflictLabel = "yours"

// BackupSuffix is appended to the name of a runtime file the user edited to
// keep their copy beside the replacement. It does not end in ".go", so the
// copy is not compiled into the package.
const BackupSuffix = ".user-edit"

// A Change is the plan for one file.
type Change struct {
	Path   string // slash-separated, relative to the project root
	Action Action
	Policy string // gen.PolicyRuntime, gen.PolicyGenerated, gen.PolicyMerge or gen.PolicyUser

	Old  []byte      // content on disk now; nil if absent
	New  []byte      // content after the upgrade; nil if absent
	Mode fs.FileMode // permission bits for a file that does not exist yet

	// Backup, if set, is where the user's content (Old) is kept because the
	// file is replaced or removed although the user edited it.
	Backup string
	// Conflicts is the number of conflict blocks in New.
	Conflicts int
	// Note explains an action further, e.g. "yours" or "no longer generated".
	Note string
	// Warnings tell the user what to do by hand, e.g. a line to add.
	Warnings []string
}

// Writes reports whether applying c changes the file at c.Path.
func (c Change) Writes() bool {
	return !bytes.Equal(c.Old, c.New) || (c.Old == nil) != (c.New == nil)
}

// A Result is a planned upgrade: what happens to each file, and the new
// generation state to record once every file is written.
type Result struct {
	// From and To are the generator versions before and after.
	From, To string
	// Changes has one entry per file, sorted by path.
	Changes []Change
	// Manifest and Base are the new contents of gen.ManifestPath and
	// gen.BasePath.
	Manifest, Base []byte
}

// Conflicts returns the changes that left conflict markers.
func (r *Result) Conflicts() []Change {
	var cs []Change
	for _, c := range r.Changes {
		if c.Action == Conflict {
			cs = append(cs, c)
		}
	}
	return cs
}

// UnresolvedError reports conflict markers left by a previous upgrade.
type UnresolvedError struct {
	Path string // file with the markers
	Line int    // 1-based line of the first marker
}

func (e *UnresolvedError) Error() string {
	return fmt.Sprintf("%s:%d: conflict from the last upgrade is not resolved yet", e.Path, e.Line)
}

// A MergeFunc makes the new content of one file of the project instead of
// the line merge (see Options.Merge). base is what the last generation
// wrote (nil when unknown), yours the file now (edited or not), theirs what
// this generator renders; l labels conflict markers.
type MergeFunc func(base, yours, theirs []byte, l Labels) (MergeResult, error)

// Options adjust a plan.
type Options struct {
	// Merge maps slash paths of merge-policy files to the function that
	// makes their new content whenever the generator's differs from the
	// user's, edited by the user or not.
	Merge map[string]MergeFunc
	// Rename, if not nil, is a change of module path since the last
	// generation: the manifest and base were recorded with Rename.From, the
	// project and next use Rename.To. A file that differs from what was
	// generated only by the rename counts as unedited, and the base is
	// renamed before it is merged.
	Rename *ModuleRename
}

// Plan decides what an upgrade does with every file of a project. It is
// pure: it reads its arguments only.
//
//   - current holds the project's files as they are on disk, by slash path.
//     It must include every path of m and of next that exists; other files
//     are ignored, except that backup names are chosen not to collide with
//     any of them.
//   - m and base are the manifest and the merge base recorded by the last
//     generation. A base entry whose hash does not match m is not trusted.
//   - next is what this generator renders with the (possibly changed)
//     answers, as returned by gen.Render, manifest and base included, plus
//     any files of tools added by this upgrade.
//
// Files follow their policy (see the Action constants); merge files are
// merged with Merge3, except go.mod (MergeGoMod) and go.sum (MergeGoSum).
// Plan returns an *UnresolvedError if a merge file still has conflict
// markers from a previous upgrade.
func Plan(current map[string][]byte, m *gen.Manifest, base map[string][]byte, next []gen.File) (*Result, error) {
	return PlanWith(current, m, base, next, Options{})
}

// PlanWith is Plan with options.
func PlanWith(current map[string][]byte, m *gen.Manifest, base map[string][]byte, next []gen.File, opts Options) (*Result, error) {
	nm, nextBase, files, err := splitState(next)
	if err != nil {
		return nil, err
	}
	for _, f := range m.Files {
		if f.Policy != gen.PolicyMerge {
			continue
		}
		if line := FindConflictMarker(current[f.Path], ConflictLabel); line > 0 {
			return nil, &UnresolvedError{Path: f.Path, Line: line}
		}
	}

	p := &planner{
		current: current,
		base:    base,
		labels:  Labels{Yours: ConflictLabel, Base: "base", Theirs: "generator " + nm.GeneratorVersion},
		taken:   map[string]bool{},
		merges:  opts.Merge,
		rename:  opts.Rename,
	}
	for path := range current {
		p.taken[path] = true
	}
	nextByPath := map[string]gen.File{}
	var paths []string
	for _, f := range files {
		if _, dup := nextByPath[f.Path]; dup {
			return nil, fmt.Errorf("plan upgrade: %s is rendered twice", f.Path)
		}
		nextByPath[f.Path] = f
		paths = append(paths, f.Path)
		p.taken[f.Path] = true
	}
	for _, f := range m.Files {
		if _, ok := nextByPath[f.Path]; !ok {
			paths = append(paths, f.Path)
		}
	}
	slices.Sort(paths)

	r := &Result{From: m.GeneratorVersion, To: nm.GeneratorVersion}
	state := &txtar.Archive{Comment: nextBase.Comment}
	var entries []gen.ManifestFile
	for _, path := range paths {
		old, inOld := m.Lookup(path)
		nf, inNext := nextByPath[path]
		c, err := p.plan(path, old, inOld, nf, inNext)
		if err != nil {
			return nil, err
		}
		r.Changes = append(r.Changes, c)

		// Record the new state: user files keep their entry from the
		// generation that wrote them; everything else still generated is
		// recorded as generated now.
		var e gen.ManifestFile
		var baseData []byte
		switch {
		case inOld && old.Policy == gen.PolicyUser:
			e, baseData = old, p.trustedBase(old)
			if baseData != nil && p.rename != nil {
				e.SHA256 = gen.Hash(baseData) // the base is recorded renamed
			}
		case inNext:
			e = gen.ManifestFile{Path: path, Policy: nf.Policy, SHA256: gen.Hash(nf.Data)}
			baseData = nf.Data
		default:
			continue
		}
		entries = append(entries, e)
		if baseData != nil && (e.Policy == gen.PolicyMerge || e.Policy == gen.PolicyUser) {
			state.Files = append(state.Files, txtar.File{Name: path, Data: baseData})
		}
	}
	newM := gen.Manifest{GeneratorVersion: nm.GeneratorVersion, Answers: nm.Answers, Files: entries}
	if r.Manifest, err = json.MarshalIndent(newM, "", "  "); err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	r.Manifest = append(r.Manifest, '\n')
	r.Base = txtar.Format(state)
	return r, nil
}

// splitState separates the manifest and base that gen.Render appends from
// the project files.
func splitState(next []gen.File) (*gen.Manifest, *txtar.Archive, []gen.File, error) {
	var m *gen.Manifest
	var base *txtar.Archive
	var files []gen.File
	for _, f := range next {
		switch {
		case f.Path == gen.ManifestPath:
			var err error
			if m, err = gen.ParseManifest(f.Data); err != nil {
				return nil, nil, nil, fmt.Errorf("new manifest: %w", err)
			}
		case f.Path == gen.BasePath:
			base = txtar.Parse(f.Data)
		case f.Policy == gen.PolicyState:
		default:
			files = append(files, f)
		}
	}
	if m == nil || base == nil {
		return nil, nil, nil, errors.New("plan upgrade: the rendered files lack the manifest or the merge base")
	}
	return m, base, files, nil
}

type planner struct {
	current map[string][]byte
	base    map[string][]byte
	labels  Labels
	taken   map[string]bool // paths that exist or will exist
	merges  map[string]MergeFunc
	rename  *ModuleRename
}

// trustedBase returns the merge base of a file, with the module path
// renamed if it changed, or nil if the base does not have it or has
// something other than what the manifest says was generated.
func (p *planner) trustedBase(old gen.ManifestFile) []byte {
	b, ok := p.base[old.Path]
	if !ok || gen.Hash(b) != old.SHA256 {
		return nil
	}
	if b == nil {
		b = []byte{}
	}
	return p.rename.Apply(old.Path, b)
}

// edited reports whether the user changed cur, the file at path, since the
// last generation recorded old. A change of the module path alone is not
// an edit.
func (p *planner) edited(path string, cur []byte, old gen.ManifestFile) bool {
	if gen.Hash(cur) == old.SHA256 {
		return false
	}
	return p.rename == nil || gen.Hash(p.rename.reverse().Apply(path, cur)) != old.SHA256
}

// backupName returns a free name beside path for the user's copy.
func (p *planner) backupName(path string) string {
	name := path + BackupSuffix
	for i := 2; p.taken[name]; i++ {
		name = fmt.Sprintf("%s%s.%d", path, BackupSuffix, i)
	}
	p.taken[name] = true
	return name
}

func (p *planner) plan(path string, old gen.ManifestFile, inOld bool, nf gen.File, inNext bool) (Change, error) {
	raw, onDisk := p.current[path]
	c := Change{Path: path, Policy: nf.Policy, Mode: nf.Mode}
	if !inNext {
		c.Policy = old.Policy
	}
	if onDisk {
		c.Old = raw
		if raw == nil {
			c.Old = []byte{}
		}
	}
	c.New = c.Old // by default nothing changes
	// A file with CRLF line endings is compared and merged as LF text, and
	// gets them back when written.
	cur, crlf := raw, isCRLF(raw)
	if crlf {
		cur = toLF(raw)
	}
	c, err := p.planLF(c, path, cur, old, inOld, nf, inNext, onDisk)
	if crlf && c.New != nil {
		c.New = toCRLF(c.New)
	}
	return c, err
}

// planLF is plan for cur, the file on disk with LF line endings.
func (p *planner) planLF(c Change, path string, cur []byte, old gen.ManifestFile, inOld bool, nf gen.File, inNext, onDisk bool) (Change, error) {
	edited := !inOld || p.edited(path, cur, old)

	switch {
	case inOld && old.Policy == gen.PolicyUser, !inOld && nf.Policy == gen.PolicyUser && onDisk:
		c.Policy = gen.PolicyUser
		c.Action, c.Note = Kept, "yours"
		if !onDisk {
			c.Action, c.Note = DeletedByUser, ""
		}
	case !onDisk && inOld:
		c.Action = DeletedByUser
	case !onDisk:
		c.Action, c.New = Added, nf.Data
	case !inNext:
		// No longer generated.
		switch {
		case !edited:
			c.Action, c.New = Removed, nil
		case gen.Replaced(c.Policy):
			c.Action, c.New, c.Backup = Removed, nil, p.backupName(path)
		default:
			c.Action, c.Note = Kept, "yours; no longer generated"
		}
	case bytes.Equal(cur, nf.Data):
		c.Action = Unchanged
	case !edited && p.merges[path] == nil:
		c.Action, c.New = Updated, nf.Data
	case gen.Replaced(nf.Policy):
		c.Action, c.New, c.Backup = Replaced, nf.Data, p.backupName(path)
	default:
		var base []byte
		if inOld {
			base = p.trustedBase(old)
		}
		if base != nil && bytes.Equal(base, nf.Data) && p.merges[path] == nil {
			c.Action = Unchanged // only the user changed it
			break
		}
		r, err := p.merge(path, base, cur, nf.Data)
		if err != nil {
			return c, err
		}
		c.New, c.Conflicts = r.Data, r.Conflicts
		if r.Warning != "" {
			c.Warnings = append(c.Warnings, r.Warning)
		}
		if r.KeepOld {
			c.Backup = p.backupName(path)
		}
		switch {
		case r.Conflicts > 0:
			c.Action = Conflict
		case bytes.Equal(r.Data, cur):
			c.Action = Unchanged
		case !edited:
			c.Action = Updated
		default:
			c.Action = Merged
		}
	}
	return c, nil
}

// merge merges one edited merge-policy file. base is nil when unknown.
func (p *planner) merge(path string, base, cur, next []byte) (MergeResult, error) {
	if f := p.merges[path]; f != nil {
		return f(base, cur, next, p.labels)
	}
	switch path {
	case "go.mod":
		merged, err := MergeGoMod(base, cur, next)
		if err == nil {
			return MergeResult{Data: merged}, nil
		}
		// A go.mod that does not parse is merged as text.
	case "go.sum":
		return MergeResult{Data: MergeGoSum(cur, next)}, nil
	}
	merged, n := Merge3(base, cur, next, p.labels)
	return MergeResult{Data: merged, Conflicts: n}, nil
}

// Lines returns the report lines of c: "merged README.md", "kept tools.go
// (yours)", and for a replaced file a WARNING line naming the backup.
func (c Change) Lines() []string {
	line := string(c.Action) + " " + c.Path
	if c.Note != "" {
		line += " (" + c.Note + ")"
	}
	if c.Conflicts > 1 {
		line += fmt.Sprintf(" (%d conflicts)", c.Conflicts)
	}
	lines := []string{line}
	switch {
	case c.Backup != "" && !gen.Replaced(c.Policy):
		lines = append(lines, fmt.Sprintf("WARNING: %s as it was is kept at %s (not compiled)", c.Path, c.Backup))
	case c.Backup != "":
		what := "generated code, replaced by every upgrade"
		if c.New == nil {
			what = "generated code this version no longer has"
		}
		if c.Policy == gen.PolicyGenerated {
			what = strings.Replace(what, "generated code", "a generated file", 1)
		}
		lines = append(lines, fmt.Sprintf("WARNING: you edited %s (%s); your copy is kept at %s", c.Path, what, c.Backup))
	}
	for _, w := range c.Warnings {
		lines = append(lines, "WARNING: "+c.Path+": "+w)
	}
	return lines
}

// String returns the report lines of c, joined by newlines.
func (c Change) String() string { return strings.Join(c.Lines(), "\n") }
