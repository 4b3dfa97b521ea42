package authstore

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// checked is the Store that Open returns: it wraps an engine so that every
// method, whatever the engine, reports a locked, busy or unreachable
// database as ErrUnavailable, and reports its latency to Options.Observe.
type checked struct {
	e       engine
	observe func(op string, d time.Duration, err error)
}

var _ Store = (*checked)(nil)

// begin returns the start time of an operation (zero when nobody observes).
func (c *checked) begin() time.Time {
	if c.observe == nil {
		return time.Time{}
	}
	return time.Now()
}

// opTimeout bounds each operation, so that a database that stops answering
// (a network partition drops packets rather than refusing them) makes
// requests fail with ErrUnavailable, a 503, instead of hanging. Operations
// take milliseconds; a few retried transactions under contention stay well
// within it.
const opTimeout = 5 * time.Second

// bounded returns ctx with the operation deadline.
func bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, opTimeout)
}

// end classifies err and reports the operation; it returns the error the
// caller sees.
func (c *checked) end(op string, start time.Time, err error) error {
	if err != nil && !errors.Is(err, ErrUnavailable) && !errors.Is(err, ErrNotFound) &&
		(c.e.unavailable(err) || errors.Is(err, context.DeadlineExceeded)) {
		err = fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if c.observe != nil {
		c.observe(op, time.Since(start), err)
	}
	return err
}

func (c *checked) CreateClient(ctx context.Context, cl *Client) error {
	t := c.begin()
	ctx, cancel := bounded(ctx)
	defer cancel()
	return c.end("create_client", t, c.e.CreateClient(ctx, cl))
}

func (c *checked) SaveMetadataClient(ctx context.Context, cl *Client) error {
	t := c.begin()
	ctx, cancel := bounded(ctx)
	defer cancel()
	return c.end("save_metadata_client", t, c.e.SaveMetadataClient(ctx, cl))
}

func (c *checked) Client(ctx context.Context, id string) (*Client, error) {
	t := c.begin()
	ctx, cancel := bounded(ctx)
	defer cancel()
	cl, err := c.e.Client(ctx, id)
	return cl, c.end("client", t, err)
}

func (c *checked) CreateCode(ctx context.Context, code *Code, now time.Time) error {
	t := c.begin()
	ctx, cancel := bounded(ctx)
	defer cancel()
	return c.end("create_code", t, c.e.CreateCode(ctx, code, now))
}

func (c *checked) Code(ctx context.Context, hash []byte) (*Code, error) {
	t := c.begin()
	ctx, cancel := bounded(ctx)
	defer cancel()
	code, err := c.e.Code(ctx, hash)
	return code, c.end("code", t, err)
}

func (c *checked) RedeemCode(ctx context.Context, hash []byte, g *Grant, tok *Tokens, now time.Time) (bool, error) {
	t := c.begin()
	ctx, cancel := bounded(ctx)
	defer cancel()
	ok, err := c.e.RedeemCode(ctx, hash, g, tok, now)
	return ok, c.end("redeem_code", t, err)
}

func (c *checked) LookupAccess(ctx context.Context, hash []byte, now time.Time) (*Access, error) {
	t := c.begin()
	ctx, cancel := bounded(ctx)
	defer cancel()
	a, err := c.e.LookupAccess(ctx, hash, now)
	return a, c.end("lookup_access", t, err)
}

func (c *checked) Refresh(ctx context.Context, hash []byte) (*RefreshToken, error) {
	t := c.begin()
	ctx, cancel := bounded(ctx)
	defer cancel()
	r, err := c.e.Refresh(ctx, hash)
	return r, c.end("refresh", t, err)
}

func (c *checked) RotateRefresh(ctx context.Context, oldHash []byte, tok *Tokens, grace time.Duration, now time.Time) (Rotation, error) {
	t := c.begin()
	ctx, cancel := bounded(ctx)
	defer cancel()
	r, err := c.e.RotateRefresh(ctx, oldHash, tok, grace, now)
	return r, c.end("rotate_refresh", t, err)
}

func (c *checked) RevokeGrant(ctx context.Context, grantID string, now time.Time) error {
	t := c.begin()
	ctx, cancel := bounded(ctx)
	defer cancel()
	return c.end("revoke_grant", t, c.e.RevokeGrant(ctx, grantID, now))
}

func (c *checked) RevokeToken(ctx context.Context, hash []byte, clientID string, now time.Time) (string, error) {
	t := c.begin()
	ctx, cancel := bounded(ctx)
	defer cancel()
	id, err := c.e.RevokeToken(ctx, hash, clientID, now)
	return id, c.end("revoke_token", t, err)
}

func (c *checked) Cleanup(ctx context.Context, now time.Time, unusedClientTTL time.Duration) error {
	t := c.begin()
	return c.end("cleanup", t, c.e.Cleanup(ctx, now, unusedClientTTL))
}

func (c *checked) Stats(ctx context.Context, now time.Time) (Stats, error) {
	t := c.begin()
	ctx, cancel := bounded(ctx)
	defer cancel()
	st, err := c.e.Stats(ctx, now)
	return st, c.end("stats", t, err)
}

func (c *checked) Grants(ctx context.Context, f GrantFilter, now time.Time) ([]GrantInfo, error) {
	t := c.begin()
	ctx, cancel := bounded(ctx)
	defer cancel()
	gs, err := c.e.Grants(ctx, f, now)
	return gs, c.end("grants", t, err)
}

func (c *checked) RevokeGrants(ctx context.Context, f GrantFilter, now time.Time) (int, error) {
	t := c.begin()
	ctx, cancel := bounded(ctx)
	defer cancel()
	n, err := c.e.RevokeGrants(ctx, f, now)
	return n, c.end("revoke_grants", t, err)
}

func (c *checked) TouchGrant(ctx context.Context, grantID string, now time.Time) error {
	t := c.begin()
	ctx, cancel := bounded(ctx)
	defer cancel()
	return c.end("touch_grant", t, c.e.TouchGrant(ctx, grantID, now))
}

func (c *checked) DeleteUserGrants(ctx context.Context, user string) (int, error) {
	t := c.begin()
	ctx, cancel := bounded(ctx)
	defer cancel()
	n, err := c.e.DeleteUserGrants(ctx, user)
	return n, c.end("delete_user_grants", t, err)
}

func (c *checked) DeleteStampGrants(ctx context.Context, user, stamp string) (int, error) {
	t := c.begin()
	ctx, cancel := bounded(ctx)
	defer cancel()
	n, err := c.e.DeleteStampGrants(ctx, user, stamp)
	return n, c.end("delete_stamp_grants", t, err)
}

func (c *checked) CreateSignIn(ctx context.Context, si *SignIn) error {
	t := c.begin()
	ctx, cancel := bounded(ctx)
	defer cancel()
	return c.end("create_sign_in", t, c.e.CreateSignIn(ctx, si))
}

func (c *checked) TakeSignIn(ctx context.Context, idHash, browserHash []byte, now time.Time) (*SignIn, error) {
	t := c.begin()
	ctx, cancel := bounded(ctx)
	defer cancel()
	si, err := c.e.TakeSignIn(ctx, idHash, browserHash, now)
	return si, c.end("take_sign_in", t, err)
}

func (c *checked) Allow(ctx context.Context, l Limit, key string, now time.Time) (time.Duration, bool, error) {
	t := c.begin()
	ctx, cancel := bounded(ctx)
	defer cancel()
	d, ok, err := c.e.Allow(ctx, l, key, now)
	return d, ok, c.end("allow", t, err)
}

func (c *checked) Add(ctx context.Context, l Limit, key string, now time.Time) error {
	t := c.begin()
	ctx, cancel := bounded(ctx)
	defer cancel()
	return c.end("add", t, c.e.Add(ctx, l, key, now))
}

func (c *checked) Blocked(ctx context.Context, l Limit, key string, now time.Time) (time.Duration, bool, error) {
	t := c.begin()
	ctx, cancel := bounded(ctx)
	defer cancel()
	d, b, err := c.e.Blocked(ctx, l, key, now)
	return d, b, c.end("blocked", t, err)
}

func (c *checked) Undo(ctx context.Context, l Limit, key string, now time.Time) error {
	t := c.begin()
	ctx, cancel := bounded(ctx)
	defer cancel()
	return c.end("undo", t, c.e.Undo(ctx, l, key, now))
}

func (c *checked) Reset(ctx context.Context, l Limit, key string) error {
	t := c.begin()
	ctx, cancel := bounded(ctx)
	defer cancel()
	return c.end("reset", t, c.e.Reset(ctx, l, key))
}

func (c *checked) CreateSession(ctx context.Context, idHash []byte, user string, now time.Time) error {
	t := c.begin()
	ctx, cancel := bounded(ctx)
	defer cancel()
	return c.end("create_session", t, c.e.CreateSession(ctx, idHash, user, now))
}

func (c *checked) Session(ctx context.Context, idHash []byte, now time.Time) (string, error) {
	t := c.begin()
	ctx, cancel := bounded(ctx)
	defer cancel()
	u, err := c.e.Session(ctx, idHash, now)
	return u, c.end("session", t, err)
}

func (c *checked) TouchSession(ctx context.Context, idHash []byte, now time.Time) error {
	t := c.begin()
	ctx, cancel := bounded(ctx)
	defer cancel()
	return c.end("touch_session", t, c.e.TouchSession(ctx, idHash, now))
}

func (c *checked) EndSession(ctx context.Context, idHash []byte) (bool, error) {
	t := c.begin()
	ctx, cancel := bounded(ctx)
	defer cancel()
	ok, err := c.e.EndSession(ctx, idHash)
	return ok, c.end("end_session", t, err)
}

func (c *checked) CreateWebSession(ctx context.Context, ws *WebSession) error {
	t := c.begin()
	ctx, cancel := bounded(ctx)
	defer cancel()
	return c.end("create_web_session", t, c.e.CreateWebSession(ctx, ws))
}

func (c *checked) WebSession(ctx context.Context, idHash []byte, now time.Time) (*WebSession, error) {
	t := c.begin()
	ctx, cancel := bounded(ctx)
	defer cancel()
	ws, err := c.e.WebSession(ctx, idHash, now)
	return ws, c.end("web_session", t, err)
}

func (c *checked) EndWebSession(ctx context.Context, idHash []byte) error {
	t := c.begin()
	ctx, cancel := bounded(ctx)
	defer cancel()
	return c.end("end_web_session", t, c.e.EndWebSession(ctx, idHash))
}

func (c *checked) Epoch(ctx context.Context) (uint64, error) {
	t := c.begin()
	ctx, cancel := bounded(ctx)
	defer cancel()
	n, err := c.e.Epoch(ctx)
	return n, c.end("epoch", t, err)
}

func (c *checked) Ack(ctx context.Context, id string, epoch uint64) error {
	t := c.begin()
	ctx, cancel := bounded(ctx)
	defer cancel()
	return c.end("ack", t, c.e.Ack(ctx, id, epoch))
}

func (c *checked) Lagging(ctx context.Context, self string, epoch uint64, lease time.Duration) (int, error) {
	t := c.begin()
	ctx, cancel := bounded(ctx)
	defer cancel()
	n, err := c.e.Lagging(ctx, self, epoch, lease)
	return n, c.end("lagging", t, err)
}

func (c *checked) LeaveReplica(ctx context.Context, id string) error {
	t := c.begin()
	ctx, cancel := bounded(ctx)
	defer cancel()
	return c.end("leave_replica", t, c.e.LeaveReplica(ctx, id))
}

func (c *checked) WatchEpochs(ctx context.Context) (<-chan struct{}, error) {
	ch, err := c.e.WatchEpochs(ctx)
	return ch, c.end("watch_epochs", c.begin(), err)
}

func (c *checked) RotationKey() []byte { return c.e.RotationKey() }

func (c *checked) Ping(ctx context.Context) error {
	t := c.begin()
	ctx, cancel := bounded(ctx)
	defer cancel()
	return c.end("ping", t, c.e.Ping(ctx))
}

func (c *checked) Close() error { return c.e.Close() }
