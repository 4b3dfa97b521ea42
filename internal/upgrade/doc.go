// Package upgrade brings a project made by create-mcp-server up to date
// with this generator version without losing an edit. It is the engine of
// `create-mcp-server upgrade`; reading flags and printing live in
// internal/cli.
//
// An upgrade has three inputs for every file: what the last generation wrote
// (the merge base, stored in the project as .create-mcp-server/base.txtar
// and checked against the hashes in manifest.json), what the user has now,
// and what this generator renders now. [Plan] decides, purely, what happens
// to each file according to its policy:
//
//   - runtime (vendored internal/ packages) and generated (the guides in
//     docs/): replaced; a copy the user edited is kept beside it as
//     FILE.user-edit and reported;
//   - user (tools.go, tools_test.go, tools_*.go, LICENSE): never touched;
//   - merge (everything else): [Merge3], a line-based three-way merge with
//     standard conflict markers; go.mod is merged by meaning ([MergeGoMod])
//     and go.sum is the union of both ([MergeGoSum]).
//
// [PlanWith] lets a caller merge a file its own way ([Options]); the
// command line uses it to add tools to main.go's tools() list with a
// syntax-aware edit ([AddToolCalls]) instead of a line merge, which would
// conflict with tools the user listed by hand.
//
// Files the user deleted stay deleted, files new in this version are added,
// and files this version no longer makes are removed unless the user edited
// them. [Apply] then writes the plan through temporary files and renames,
// the new manifest and base last, so that an interrupted upgrade can simply
// be run again. [UnifiedDiff] shows a plan without applying it.
//
// Everything works offline; the merge needs neither git nor the network.
package upgrade
