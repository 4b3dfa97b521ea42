// Package upgrade brings a project made by create-mcp-server up to date
// with this generator version without losing an edit.
//
// Its core is pure: [Merge3] is a line-based three-way merge (diff3 over
// Myers' diff) that writes standard conflict markers, and [UnifiedDiff]
// prints what would change. Both work offline on bytes only.
package upgrade
