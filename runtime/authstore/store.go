// Package authstore is the database of an OAuth-protected MCP server: the
// registered clients, the authorization codes, the grants and their tokens.
//
// # Engines
//
// [Open] picks the engine from the data source name:
//
//   - a file path ("auth.db", "/var/lib/mcp/auth.db") is a SQLite database,
//     created on first use with mode 0600. SQLite needs no setup and suits
//     one server process (plus the command-line tools, which may open the
//     same file while it serves).
//   - a "postgres://" or "postgresql://" URL is a PostgreSQL database,
//     reached through a connection pool. Several replicas of a server may
//     share one PostgreSQL database.
//
// Both engines keep the same data with the same semantics and pass the same
// test suite. Each has its own versioned, forward-only schema migrations,
// which Open runs before it returns; a database written by a newer program
// (at a higher schema version) is refused rather than guessed at.
//
// # Data model
//
// A [Client] is a registered OAuth client. A [Grant] is what one sign-in
// produced: the user, the client, the scope and the resource. Every access
// and refresh token carries its grant's id, so revoking a grant (one UPDATE)
// kills every token issued from it. An authorization [Code] names the grant
// it will create when redeemed, so a replayed code can revoke what it
// issued.
//
// # Secrets
//
// The store never sees a raw code, token or client secret: callers pass the
// SHA-256 hash of a value with at least 256 random bits, and the store keeps
// and compares only hashes. The one secret the store creates and keeps is
// the rotation key ([Store.RotationKey]), from which the server derives
// successor refresh tokens. Data source names are shown only through
// [Redact], which removes the password.
//
// # Shared state and replicas
//
// Everything that decides an authorization outcome is in the database, so
// that any request may land on any replica: pending sign-ins, throttling
// counters, MCP session owners, account-page sessions (see state.go), as
// well as codes, grants and tokens. Tables that strangers can grow are
// bounded by [Limits]; a full table evicts its oldest rows, never refusing
// everyone. A [Replica] keeps each process's caches coherent: a revocation
// answered by one replica holds on all of them.
//
// # Moving
//
// [Copy] copies a deployment to another database (for example from a
// SQLite file to PostgreSQL) without signing anyone out.
//
// # Tests
//
// The package's tests are one suite that runs on every engine; package
// authstoretest gives tests fresh databases of each engine. PostgreSQL
// tests need MCP_TEST_POSTGRES (a postgres:// URL) and are skipped,
// saying so, without it.
//
// # Errors
//
// Lookups that find no live row return [ErrNotFound]. A database that is
// locked, busy or unreachable makes any method return an error wrapping
// [ErrUnavailable]; an HTTP server answers those with 503
// temporarily_unavailable (the client may retry), never with a 500 and
// never with a silent success. Any other error is a fault.
package authstore

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned by lookups that find no live row.
var ErrNotFound = errors.New("authstore: not found")

// ErrUnavailable is wrapped by every error caused by a database that is
// busy, locked or unreachable: the operation did not happen and may be
// retried later.
var ErrUnavailable = errors.New("authstore: database unavailable")

// ErrFull is returned when a bounded table is full of rows that may not be
// evicted (for example, every registered client has been used).
var ErrFull = errors.New("authstore: full")

// Store is the database. Its methods are safe for concurrent use. Times are
// passed in by the caller (its clock, which tests move) and stored with
// millisecond precision.
//
// The methods are grouped by the part of the server that uses them; a
// handler may declare the smaller interface it needs.
type Store interface {
	ClientStore
	CodeStore
	TokenStore
	GrantStore
	SignInStore
	ThrottleStore
	SessionStore
	WebSessionStore
	Revocations
	Maintenance
}

// ClientStore holds registered clients (dynamic client registration, RFC
// 7591, and clients described by a metadata document).
//
// Open registration lets anyone add clients, so the table is bounded: a
// client that never had a code issued is "never used"; never-used clients
// expire (see [Maintenance.Cleanup]) and, when the table holds
// [Limits.Clients] clients, registering one evicts the oldest never-used
// ones instead of refusing everyone.
type ClientStore interface {
	// CreateClient stores a newly registered client. Its ID is new. At the
	// cap it first evicts the oldest never-used clients; if every client
	// has been used it returns ErrFull.
	CreateClient(ctx context.Context, c *Client) error
	// SaveMetadataClient stores or replaces a client described by a client
	// ID metadata document (a public client whose ID is an https URL), so
	// that codes and grants can refer to it. It keeps UsedAt.
	SaveMetadataClient(ctx context.Context, c *Client) error
	// Client returns the client with this ID, or ErrNotFound.
	Client(ctx context.Context, id string) (*Client, error)
}

// CodeStore holds authorization codes and turns them into grants.
type CodeStore interface {
	// CreateCode stores an authorization code issued at now, and marks its
	// client used (it no longer expires unused).
	CreateCode(ctx context.Context, c *Code, now time.Time) error
	// Code returns the code with this hash, used or not (a used code is
	// kept until it expires, so that a replay can be detected), or
	// ErrNotFound.
	Code(ctx context.Context, hash []byte) (*Code, error)
	// RedeemCode marks the code used and, in the same transaction, stores
	// the grant g and its first tokens t. Marking is one conditional
	// UPDATE, so of any number of concurrent redemptions exactly one
	// reports true; it reports false, storing nothing, when the code was
	// already used or has expired.
	RedeemCode(ctx context.Context, hash []byte, g *Grant, t *Tokens, now time.Time) (bool, error)
}

// TokenStore holds access and refresh tokens and the grants they belong to.
type TokenStore interface {
	// LookupAccess returns what the bearer check needs to know about a live
	// access token: not expired at now, not revoked, its grant not revoked.
	// Anything else is ErrNotFound.
	LookupAccess(ctx context.Context, hash []byte, now time.Time) (*Access, error)
	// Refresh returns the refresh token with this hash and its grant,
	// whatever its state (the caller decides), or ErrNotFound.
	Refresh(ctx context.Context, hash []byte) (*RefreshToken, error)
	// RotateRefresh exchanges the refresh token oldHash for the tokens t,
	// in one transaction. The server derives t.RefreshHash from the old
	// token (with the rotation key), so that every retry of one refresh
	// names the same successor. The outcome:
	//
	//   - Rotated: the old token was unused; it is now used and t is stored.
	//   - Retried: the old token was used less than grace ago and its
	//     successor t.RefreshHash is still unused: a client retrying a
	//     refresh whose answer it lost. Only t's access token is stored.
	//   - Reused: the old token was used before, outside that grace. This
	//     is what a stolen refresh token looks like, so the whole grant is
	//     revoked.
	//   - Dead: unknown, expired or revoked; nothing changes.
	RotateRefresh(ctx context.Context, oldHash []byte, t *Tokens, grace time.Duration, now time.Time) (Rotation, error)
	// RevokeGrant revokes a grant and with it every token issued from it.
	// Revoking a revoked or unknown grant is not an error.
	RevokeGrant(ctx context.Context, grantID string, now time.Time) error
	// RevokeToken revokes a token for the client clientID (RFC 7009): an
	// access token alone, a refresh token with its whole grant. A token
	// that is unknown or belongs to another client is left alone. It
	// returns the id of the affected grant, "" if none.
	RevokeToken(ctx context.Context, hash []byte, clientID string, now time.Time) (grantID string, err error)
}

// Maintenance is what the server's lifecycle needs.
type Maintenance interface {
	// Cleanup deletes what has expired at now: tokens, codes (consumed
	// codes are kept until they expire, so a replay can still revoke),
	// grants that are revoked, expired or have nothing left, pending
	// sign-ins, throttle windows that have ended, idle MCP sessions,
	// web sessions, replicas gone for an hour, and clients never used
	// within unusedClientTTL of their registration (zero: keep them).
	Cleanup(ctx context.Context, now time.Time, unusedClientTTL time.Duration) error
	// Stats counts what the operator's gauges show. It is cheap.
	Stats(ctx context.Context, now time.Time) (Stats, error)
	// RotationKey is the server's 32-byte secret for deriving successor
	// refresh tokens. It is created on first use and never changes.
	RotationKey() []byte
	// Ping checks that the database answers (for a readiness probe).
	Ping(ctx context.Context) error
	// Close releases the database. The Store must not be used afterwards.
	Close() error
}

// Stats are the sizes an operator watches.
type Stats struct {
	Clients int // registered clients
	Grants  int // live grants: not revoked, not expired
}

// Client is a registered OAuth client.
type Client struct {
	ID            string
	SecretHash    []byte // SHA-256 of the client secret; nil for public clients
	AuthMethod    string // none, client_secret_post or client_secret_basic
	RedirectURIs  []string
	GrantTypes    []string
	ResponseTypes []string
	Name          string
	Scope         string
	CreatedAt     time.Time
	// UsedAt is when a code was first issued to the client; zero while
	// the client was never used. It is set by CreateCode.
	UsedAt time.Time
	// Metadata is true for clients described by a client ID metadata
	// document; they are stored only once a user authorizes them, so that
	// codes and grants can refer to them.
	Metadata bool
}

// Code is a stored authorization code: everything the token endpoint must
// check when the code is redeemed.
type Code struct {
	Hash          []byte // SHA-256 of the code
	GrantID       string // the grant that redeeming it creates
	ClientID      string
	User          string
	RedirectURI   string
	CodeChallenge string // PKCE S256 challenge
	Scope         string
	Resource      string
	Stamp         string // the user's users-file stamp at sign-in
	ExpiresAt     time.Time
	Used          bool
}

// Grant is what one authorization produced.
type Grant struct {
	ID       string
	ClientID string
	User     string
	Scope    string
	Resource string
	// Stamp is the user's users-file stamp at sign-in; a grant whose stamp
	// no longer matches (password changed) is no longer honoured.
	Stamp     string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Access is what the bearer check needs to know about a live access token.
type Access struct {
	GrantID   string
	ClientID  string
	User      string
	Scope     string // the token's scope (a refresh may narrow the grant's)
	Resource  string
	Stamp     string
	ExpiresAt time.Time // the access token's expiry
}

// RefreshToken is a refresh token with its grant.
type RefreshToken struct {
	Hash      []byte
	Grant     Grant
	ExpiresAt time.Time
	UsedAt    time.Time // zero while unused
	Revoked   bool      // the token or its grant is revoked
}

// Tokens is a token pair to store: an access token and, optionally, a
// refresh token.
type Tokens struct {
	AccessHash     []byte
	AccessScope    string
	AccessExpires  time.Time
	RefreshHash    []byte // nil: no refresh token
	RefreshExpires time.Time
}

// Rotation is the outcome of [TokenStore.RotateRefresh].
type Rotation int

const (
	Rotated Rotation = iota // the token was fresh and is now rotated
	Retried                 // rotated within the grace: access token reissued, same successor
	Reused                  // used outside the grace: the grant is now revoked
	Dead                    // revoked, expired or unknown
)

func (r Rotation) String() string {
	switch r {
	case Rotated:
		return "rotated"
	case Retried:
		return "retried"
	case Reused:
		return "reused"
	case Dead:
		return "dead"
	}
	return "Rotation(?)"
}
