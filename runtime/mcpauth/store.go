package mcpauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"time"
)

// Storage model.
//
// A client is a registered OAuth client. A grant is what one login produced:
// the user, the client, the scope and the resource; every access and refresh
// token carries its grant id, so revoking a grant (one UPDATE) kills every
// token issued from it. An authorization code names the grant it will create
// when redeemed, so a replayed code can revoke what it issued.
//
// Only SHA-256 hashes of codes, tokens and client secrets are stored.

// errNotFound is returned by lookups that find no live row.
var errNotFound = errors.New("not found")

// errBusy is returned when the database stayed locked after retries; it
// becomes 503 temporarily_unavailable.
var errBusy = errors.New("database busy")

// client is a registered OAuth client.
type client struct {
	ID            string
	SecretHash    []byte // nil for public clients
	AuthMethod    string // none, client_secret_post, client_secret_basic
	RedirectURIs  []string
	GrantTypes    []string
	ResponseTypes []string
	Name          string
	Scope         string
	CreatedAt     time.Time
	// Metadata is true for clients described by a client ID metadata
	// document; they are stored only once a user authorizes them, so that
	// codes and grants can refer to them.
	Metadata bool
}

// authCode is a stored authorization code.
type authCode struct {
	Hash          []byte
	GrantID       string
	ClientID      string
	User          string
	RedirectURI   string
	CodeChallenge string
	Scope         string
	Resource      string
	Stamp         string
	ExpiresAt     time.Time
	Used          bool
}

// grant is what one authorization produced.
type grant struct {
	ID        string
	ClientID  string
	User      string
	Scope     string
	Resource  string
	Stamp     string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// accessInfo is what the bearer check needs to know about an access token.
type accessInfo struct {
	GrantID  string
	ClientID string
	User     string
	Scope    string
	Resource string
	Stamp    string
	// ExpiresAt is the access token's expiry.
	ExpiresAt time.Time
}

// refreshInfo is a refresh token with its grant.
type refreshInfo struct {
	Hash      []byte
	Grant     grant
	ExpiresAt time.Time
	UsedAt    time.Time // zero while unused
	Revoked   bool
}

// issued is a token pair to store.
type issued struct {
	AccessHash     []byte
	AccessScope    string
	AccessExpires  time.Time
	RefreshHash    []byte
	RefreshExpires time.Time
}

// rotation is the outcome of a refresh-token rotation attempt.
type rotation int

const (
	rotated rotation = iota // the token was fresh and is now rotated
	retried                 // the token was rotated within the grace; successor reissued
	reused                  // reuse outside the grace: the grant is now revoked
	dead                    // revoked, expired or unknown
)

// store is everything the handlers need from storage. store_sqlite.go
// implements it on a SQLite file.
type store interface {
	// register.go
	createClient(ctx context.Context, c *client) error
	countClients(ctx context.Context) (int, error)
	// upsertClient stores a client described by a metadata document.
	upsertClient(ctx context.Context, c *client) error
	// authorize.go, token.go, revoke.go
	getClient(ctx context.Context, id string) (*client, error)
	// authorize.go
	createCode(ctx context.Context, c *authCode, now time.Time) error
	// token.go: code grant
	getCode(ctx context.Context, hash []byte) (*authCode, error)
	// redeemCode marks the code used (one conditional UPDATE) and stores the
	// grant and its first token pair in the same transaction. It reports
	// false when the code was already used.
	redeemCode(ctx context.Context, hash []byte, g *grant, t *issued, now time.Time) (bool, error)
	revokeGrant(ctx context.Context, grantID string, now time.Time) error
	// token.go: refresh grant
	getRefresh(ctx context.Context, hash []byte) (*refreshInfo, error)
	// rotateRefresh rotates old into next (whose raw value is derived from
	// old's) within the retry grace, revoking the grant on reuse.
	rotateRefresh(ctx context.Context, oldHash []byte, t *issued, grace time.Duration, now time.Time) (rotation, error)
	// bearer.go
	lookupAccess(ctx context.Context, hash []byte, now time.Time) (*accessInfo, error)
	// revoke.go: revokeToken revokes the access token or, for a refresh
	// token, its grant, if it belongs to clientID. It reports the grant id
	// affected ("" if none).
	revokeToken(ctx context.Context, hash []byte, clientID string, now time.Time) (string, error)
	// cleanup deletes expired rows, keeping consumed codes until they expire.
	cleanup(ctx context.Context, now time.Time) error
	// rotationKey is the server's secret for deriving successor refresh tokens.
	rotationKey() []byte
	close() error
}

// newSecret returns a random value with 256 bits of entropy, base64url
// encoded without padding (43 characters).
func newSecret() string {
	var b [32]byte
	rand.Read(b[:]) // never fails
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// hashSecret is the stored form of a code, token or client secret.
func hashSecret(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}
