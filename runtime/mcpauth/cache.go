package mcpauth

import (
	"sync"
	"time"

	"github.com/mcpgen/create-mcp-server/runtime/authstore"
)

// tokenCache remembers the validations of a few recently used access tokens
// so the bearer check of an active client usually skips the database. It is
// small on purpose: it serves the hot tokens of the clients at work, not
// the whole table. It never outlives what it caches: entries end at the
// token's expiry, and every revocation (token, grant, code replay, refresh
// reuse, account change) clears the whole cache before the revoking request
// answers. A lookup that raced with a revocation is not cached (the
// generation changed). The user's password stamp is not cached: bearer.go
// checks it on every request against the users file.
type tokenCache struct {
	mu  sync.RWMutex
	gen uint64
	m   map[[32]byte]cachedToken
}

type cachedToken struct {
	info    *authstore.Access
	id      *Identity // identityOf(info), built once
	expires time.Time
}

// maxCachedTokens bounds the cache: a few thousand active clients per
// replica skip the database, at a few hundred bytes each. Only validated
// tokens are cached, so strangers cannot fill it; past the bound, a random
// entry makes room.
const maxCachedTokens = 4096

func newTokenCache() *tokenCache {
	return &tokenCache{m: make(map[[32]byte]cachedToken)}
}

// get returns the cached validation of a token hash (a zero cachedToken
// if none), and the generation to pass to put after a database lookup.
func (c *tokenCache) get(key [32]byte, now time.Time) (cachedToken, uint64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.m[key]
	if ok && now.Before(e.expires) {
		return e, c.gen
	}
	return cachedToken{}, c.gen
}

// put caches a validation made while the cache was at generation gen.
func (c *tokenCache) put(key [32]byte, e cachedToken, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if len(c.m) >= maxCachedTokens {
		for k := range c.m { // evict one entry (map order is unspecified)
			delete(c.m, k)
			break
		}
	}
	c.m[key] = e
}

// invalidate drops every entry.
func (c *tokenCache) invalidate() {
	c.mu.Lock()
	c.gen++
	clear(c.m)
	c.mu.Unlock()
}
