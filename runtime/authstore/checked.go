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

// end classifies err and reports the operation; it returns the error the
// caller sees.
func (c *checked) end(op string, start time.Time, err error) error {
	if err != nil && !errors.Is(err, ErrUnavailable) && !errors.Is(err, ErrNotFound) && c.e.unavailable(err) {
		err = fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if c.observe != nil {
		c.observe(op, time.Since(start), err)
	}
	return err
}

func (c *checked) CreateClient(ctx context.Context, cl *Client) error {
	t := c.begin()
	return c.end("create_client", t, c.e.CreateClient(ctx, cl))
}

func (c *checked) CountClients(ctx context.Context) (int, error) {
	t := c.begin()
	n, err := c.e.CountClients(ctx)
	return n, c.end("count_clients", t, err)
}

func (c *checked) SaveMetadataClient(ctx context.Context, cl *Client) error {
	t := c.begin()
	return c.end("save_metadata_client", t, c.e.SaveMetadataClient(ctx, cl))
}

func (c *checked) Client(ctx context.Context, id string) (*Client, error) {
	t := c.begin()
	cl, err := c.e.Client(ctx, id)
	return cl, c.end("client", t, err)
}

func (c *checked) CreateCode(ctx context.Context, code *Code, now time.Time) error {
	t := c.begin()
	return c.end("create_code", t, c.e.CreateCode(ctx, code, now))
}

func (c *checked) Code(ctx context.Context, hash []byte) (*Code, error) {
	t := c.begin()
	code, err := c.e.Code(ctx, hash)
	return code, c.end("code", t, err)
}

func (c *checked) RedeemCode(ctx context.Context, hash []byte, g *Grant, tok *Tokens, now time.Time) (bool, error) {
	t := c.begin()
	ok, err := c.e.RedeemCode(ctx, hash, g, tok, now)
	return ok, c.end("redeem_code", t, err)
}

func (c *checked) LookupAccess(ctx context.Context, hash []byte, now time.Time) (*Access, error) {
	t := c.begin()
	a, err := c.e.LookupAccess(ctx, hash, now)
	return a, c.end("lookup_access", t, err)
}

func (c *checked) Refresh(ctx context.Context, hash []byte) (*RefreshToken, error) {
	t := c.begin()
	r, err := c.e.Refresh(ctx, hash)
	return r, c.end("refresh", t, err)
}

func (c *checked) RotateRefresh(ctx context.Context, oldHash []byte, tok *Tokens, grace time.Duration, now time.Time) (Rotation, error) {
	t := c.begin()
	r, err := c.e.RotateRefresh(ctx, oldHash, tok, grace, now)
	return r, c.end("rotate_refresh", t, err)
}

func (c *checked) RevokeGrant(ctx context.Context, grantID string, now time.Time) error {
	t := c.begin()
	return c.end("revoke_grant", t, c.e.RevokeGrant(ctx, grantID, now))
}

func (c *checked) RevokeToken(ctx context.Context, hash []byte, clientID string, now time.Time) (string, error) {
	t := c.begin()
	id, err := c.e.RevokeToken(ctx, hash, clientID, now)
	return id, c.end("revoke_token", t, err)
}

func (c *checked) Cleanup(ctx context.Context, now time.Time) error {
	t := c.begin()
	return c.end("cleanup", t, c.e.Cleanup(ctx, now))
}

func (c *checked) RotationKey() []byte { return c.e.RotationKey() }

func (c *checked) Ping(ctx context.Context) error {
	t := c.begin()
	return c.end("ping", t, c.e.Ping(ctx))
}

func (c *checked) Close() error { return c.e.Close() }
