package authstore

// The shared state of a server: everything that decides an authorization
// outcome lives in the database, so that any request may land on any
// replica. Every table here is bounded: each insert that would pass a
// bound evicts the oldest rows of its kind, so no stranger can grow the
// database, or lock others out by filling it.

import (
	"context"
	"time"
)

// Limits bounds the tables that unauthenticated requests can grow. Zero
// fields take the defaults (DefaultLimits).
type Limits struct {
	// Clients is the most registered clients kept; at the cap the oldest
	// never-used clients are evicted (default 100,000).
	Clients int
	// SignIns is the most pending sign-ins overall; at the cap the oldest
	// is evicted (default 100,000).
	SignIns int
	// SignInsPerAddr is the most pending sign-ins started from one address
	// key; a new one evicts that address's oldest (default 100).
	SignInsPerAddr int
	// SignInsPerBrowser is the most pending sign-ins of one browser; a new
	// one evicts that browser's oldest (default 10).
	SignInsPerBrowser int
	// ThrottleKeys is the most keys kept per throttle rule; at the cap the
	// least recently seen keys that are not locked out are evicted, so a
	// flood of new keys never lifts a lockout (default 100,000).
	ThrottleKeys int
	// SessionsPerUser is the most MCP sessions one user keeps open; a new
	// one ends the user's least recently used (default 100).
	SessionsPerUser int
}

// DefaultLimits are the bounds used for zero fields of Limits.
var DefaultLimits = Limits{
	Clients:           100_000,
	SignIns:           100_000,
	SignInsPerAddr:    100,
	SignInsPerBrowser: 10,
	ThrottleKeys:      100_000,
	SessionsPerUser:   100,
}

// withDefaults returns l with zero fields set to their defaults.
func (l Limits) withDefaults() Limits {
	set := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	set(&l.Clients, DefaultLimits.Clients)
	set(&l.SignIns, DefaultLimits.SignIns)
	set(&l.SignInsPerAddr, DefaultLimits.SignInsPerAddr)
	set(&l.SignInsPerBrowser, DefaultLimits.SignInsPerBrowser)
	set(&l.ThrottleKeys, DefaultLimits.ThrottleKeys)
	set(&l.SessionsPerUser, DefaultLimits.SessionsPerUser)
	return l
}

// GrantStore lists and revokes grants for the operator (the grants
// command) and for users (their /account page), and deletes the grants of
// users who no longer exist.
type GrantStore interface {
	// Grants lists the live grants (not revoked, not expired at now)
	// matching f, oldest first.
	Grants(ctx context.Context, f GrantFilter, now time.Time) ([]GrantInfo, error)
	// RevokeGrants revokes the live grants matching f and returns how many.
	// It also deletes the authorization codes matching f that were issued
	// and not yet exchanged (a sign-in under way): a grant those would
	// create is revoked before it exists. A filter that names nothing (the
	// zero GrantFilter) is refused, so that a bug cannot revoke everyone.
	RevokeGrants(ctx context.Context, f GrantFilter, now time.Time) (int, error)
	// TouchGrant records that a token of the grant was used at now. The
	// bearer check calls it at most once a minute per grant.
	TouchGrant(ctx context.Context, grantID string, now time.Time) error
	// DeleteUserGrants deletes, for good, every grant, code and session of
	// the user (the user was removed).
	DeleteUserGrants(ctx context.Context, user string) (int, error)
	// DeleteStampGrants deletes, for good, the user's grants, codes and web
	// sessions that bear stamp: those made before the user was removed from
	// the users file or their password changed. A server calls it for each
	// user it saw go or change between two versions of the file; it is
	// idempotent, so every replica may call it.
	DeleteStampGrants(ctx context.Context, user, stamp string) (int, error)
}

// GrantFilter selects grants: by ID, or by user, client or both. Empty
// fields match anything.
type GrantFilter struct {
	ID       string
	User     string
	ClientID string
}

// GrantInfo is a grant with what a person needs to recognise it.
type GrantInfo struct {
	Grant
	ClientName   string
	RedirectURIs []string  // the client's registered redirect URIs
	LastUsedAt   time.Time // zero: not used since it was created
}

// SignInStore holds pending sign-ins: what GET /authorize validated,
// waiting for the user to submit the sign-in form, on any replica.
type SignInStore interface {
	// CreateSignIn stores a pending sign-in. It evicts that address's
	// oldest pending sign-in at Limits.SignInsPerAddr, that browser's at
	// Limits.SignInsPerBrowser and the oldest of all at Limits.SignIns, so
	// a flood from one address never stops another's sign-in.
	CreateSignIn(ctx context.Context, si *SignIn) error
	// TakeSignIn returns and deletes (single use) the pending sign-in with
	// this id hash if it has not expired at now and was started by the
	// browser with this cookie hash. Anything else is ErrNotFound and
	// deletes nothing: a sign-in id shown to another browser cannot be
	// used to cancel the real one.
	TakeSignIn(ctx context.Context, idHash, browserHash []byte, now time.Time) (*SignIn, error)
}

// SignIn is a pending sign-in. Its size is bounded by the caller (the
// store keeps what it is given): the client's name, one redirect URI and
// the state, never the whole client.
type SignIn struct {
	IDHash        []byte // SHA-256 of the id in the sign-in form
	BrowserHash   []byte // SHA-256 of the browser's cookie
	AddrKey       string // the client address key (IPv4 address or IPv6 /64)
	ClientID      string
	ClientName    string
	RedirectURI   string
	State         string
	HasState      bool
	CodeChallenge string
	Scope         string
	Resource      string
	CreatedAt     time.Time
	ExpiresAt     time.Time
}

// ThrottleStore keeps throttling counters, shared by every replica: fixed
// windows per (rule, key), each event one atomic statement.
//
// A key's window starts with its first event and lasts Limit.Window; the
// key is locked while it has Limit.Max events within its window. Keys may
// be any string (addresses, usernames, a client id with an address).
type ThrottleStore interface {
	// Allow counts one event for key under l if the key is not locked, and
	// reports whether it was counted; if not, retry is how long until the
	// window ends. The check and the count are one statement, so parallel
	// requests on any number of replicas never overshoot Max.
	Allow(ctx context.Context, l Limit, key string, now time.Time) (retry time.Duration, ok bool, err error)
	// Add counts one event without checking.
	Add(ctx context.Context, l Limit, key string, now time.Time) error
	// Blocked reports whether key is locked at now, and for how long.
	Blocked(ctx context.Context, l Limit, key string, now time.Time) (retry time.Duration, blocked bool, err error)
	// Undo takes back one event counted by Allow (the attempt succeeded).
	Undo(ctx context.Context, l Limit, key string, now time.Time) error
	// Reset forgets key under l.
	Reset(ctx context.Context, l Limit, key string) error
}

// Limit is one throttling rule: at most Max events per key in a fixed
// window of Window that starts with the key's first event. Name is stored
// with each key, so it must be stable across releases and replicas.
type Limit struct {
	Name   string
	Max    int
	Window time.Duration
}

// SessionStore binds MCP session ids (of protocol revisions that have
// sessions) to their user, so that a session opened on one replica can be
// used on any other, by its owner only.
//
// A session expires after SessionIdle without use. Callers touch a session
// when they use it; the store records at most one touch a minute.
type SessionStore interface {
	// CreateSession stores a new session of user. At
	// Limits.SessionsPerUser it ends the user's least recently used.
	// That eviction bounds the table; it is not a revocation, so it does
	// not move the revocation epoch (EndSession does): a replica that has
	// the evicted session's owner cached may accept it, from that owner,
	// until its cache entry runs out. Moving the epoch would let one user
	// opening sessions in a loop flush every replica's caches, for
	// everyone, over and over.
	CreateSession(ctx context.Context, idHash []byte, user string, now time.Time) error
	// Session returns the session's owner, or ErrNotFound if it never
	// existed, was ended or has been idle for SessionIdle at now.
	Session(ctx context.Context, idHash []byte, now time.Time) (user string, err error)
	// TouchSession records a use at now (a no-op within a minute of the
	// last recorded one).
	TouchSession(ctx context.Context, idHash []byte, now time.Time) error
	// EndSession deletes the session and reports whether it existed.
	EndSession(ctx context.Context, idHash []byte) (bool, error)
}

// SessionIdle is how long an MCP session lives without use.
const SessionIdle = 30 * time.Minute

// sessionTouchEvery is how often, at most, a session's last use is written.
const sessionTouchEvery = time.Minute

// WebSessionStore holds the sessions of people signed in to their account
// page in a browser.
type WebSessionStore interface {
	// CreateWebSession stores a web session.
	CreateWebSession(ctx context.Context, ws *WebSession) error
	// WebSession returns the live web session with this id hash, or
	// ErrNotFound.
	WebSession(ctx context.Context, idHash []byte, now time.Time) (*WebSession, error)
	// EndWebSession deletes the web session (sign out).
	EndWebSession(ctx context.Context, idHash []byte) error
}

// WebSession is a browser signed in to its account page.
type WebSession struct {
	IDHash    []byte // SHA-256 of the session cookie
	User      string
	Stamp     string // the user's users-file stamp at sign-in
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Revocations keeps the caches of several replicas coherent with the
// database. See Replica, which runs the protocol on top of these methods.
//
// The database holds a revocation epoch, a counter that every revoking
// write increments in its own transaction (token and grant revocations, a
// refresh token's reuse, deleted grants, ended sessions). Each serving
// process registers as a replica and acknowledges the epochs it has seen,
// after dropping its caches; a revoking process waits until every live
// replica has acknowledged its epoch before it answers.
type Revocations interface {
	// Epoch returns the current revocation epoch.
	Epoch(ctx context.Context) (uint64, error)
	// Ack records that replica id is alive and has dropped every cache
	// entry older than epoch. The store stamps it with its own clock.
	Ack(ctx context.Context, id string, epoch uint64) error
	// Lagging returns how many replicas other than self were seen within
	// lease (by the store's clock) and have not acknowledged epoch.
	Lagging(ctx context.Context, self string, epoch uint64, lease time.Duration) (int, error)
	// LeaveReplica removes the replica (at shutdown): nobody waits for it.
	LeaveReplica(ctx context.Context, id string) error
	// WatchEpochs delivers, as soon as another process commits a revoking
	// write, a value on the returned channel (coalesced: a slow reader gets
	// one value for many writes). Engines without notifications return a
	// nil channel; the caller polls. The channel is closed when ctx ends.
	WatchEpochs(ctx context.Context) (<-chan struct{}, error)
}
