package mcpauth

import (
	"context"
	"slices"
)

// Identity is who is calling: the signed-in user, the OAuth client acting for
// them and the scopes they granted it.
type Identity struct {
	User     string
	ClientID string
	Scopes   []string
}

// HasScope reports whether id was granted scope.
func (id Identity) HasScope(scope string) bool { return slices.Contains(id.Scopes, scope) }

type identityKey struct{}

// IdentityFromContext returns the caller's identity inside an MCP tool handler.
// ok is false when the request was not authenticated by this package (or by
// WithIdentity).
func IdentityFromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(*Identity)
	if !ok || id == nil {
		return Identity{}, false
	}
	out := *id
	out.Scopes = slices.Clone(id.Scopes)
	return out, true
}

// WithIdentity returns ctx carrying id (for stdio mode and tests).
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, &id)
}
