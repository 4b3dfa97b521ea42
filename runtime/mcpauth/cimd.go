package mcpauth

import (
	"context"
	"errors"
)

// cimdSupported says whether client ID metadata documents are advertised.
const cimdSupported = false

// cimdFetcher fetches client ID metadata documents.
type cimdFetcher struct {
	allowLoopback bool
}

func newCIMDFetcher(allowLoopback bool) *cimdFetcher {
	return &cimdFetcher{allowLoopback: allowLoopback}
}

// lookupClient returns the client with id, or nil if there is none.
func (s *Server) lookupClient(ctx context.Context, id string) (*client, error) {
	c, err := s.store.getClient(ctx, id)
	if errors.Is(err, errNotFound) {
		return nil, nil
	}
	return c, err
}
