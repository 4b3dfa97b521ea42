package authstore

// The PostgreSQL engine's methods. Each mirrors the SQLite engine's method
// of the same name; see there and the interface for the semantics.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// nullMS converts a nullable millisecond column.
func nullMS(v *int64) time.Time {
	if v == nil {
		return time.Time{}
	}
	return fromMS(*v)
}

func (s *pgStore) CreateClient(ctx context.Context, c *Client) error {
	uris, grants, resp := listsJSON(c)
	return s.write(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO clients
			(id, secret_hash, auth_method, redirect_uris, grant_types, response_types, client_name, scope, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			c.ID, c.SecretHash, c.AuthMethod, uris, grants, resp, c.Name, c.Scope, ms(c.CreatedAt))
		if err != nil {
			return fmt.Errorf("insert client: %w", err)
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT n FROM sizes WHERE name = 'clients'`).Scan(&n); err != nil {
			return fmt.Errorf("count clients: %w", err)
		}
		over := n - s.limits.Clients
		if over <= 0 {
			return nil
		}
		tag, err := tx.Exec(ctx, `DELETE FROM clients WHERE id IN (
			SELECT id FROM clients WHERE used_at IS NULL AND id <> $1 ORDER BY created_at, id LIMIT $2
			FOR UPDATE SKIP LOCKED)`, c.ID, over)
		if err != nil {
			return fmt.Errorf("evict unused clients: %w", err)
		}
		if tag.RowsAffected() < int64(over) {
			return fmt.Errorf("%w: %d clients are registered and every one has been used", ErrFull, n-1)
		}
		return nil
	})
}

func (s *pgStore) SaveMetadataClient(ctx context.Context, c *Client) error {
	uris, grants, resp := listsJSON(c)
	return s.write(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO clients
			(id, secret_hash, auth_method, redirect_uris, grant_types, response_types, client_name, scope, created_at)
			VALUES ($1, NULL, 'none', $2, $3, $4, $5, $6, $7)
			ON CONFLICT (id) DO UPDATE SET secret_hash = NULL, auth_method = 'none',
				redirect_uris = excluded.redirect_uris, grant_types = excluded.grant_types,
				response_types = excluded.response_types, client_name = excluded.client_name,
				scope = excluded.scope, created_at = excluded.created_at`,
			c.ID, uris, grants, resp, c.Name, c.Scope, ms(c.CreatedAt))
		if err != nil {
			return fmt.Errorf("store metadata client: %w", err)
		}
		return nil
	})
}

func (s *pgStore) Client(ctx context.Context, id string) (*Client, error) {
	var c Client
	var uris, grants, resp string
	var created int64
	var used *int64
	err := s.read(ctx, func() error {
		return s.pool.QueryRow(ctx, `SELECT id, secret_hash, auth_method, redirect_uris, grant_types,
			response_types, client_name, scope, created_at, used_at FROM clients WHERE id = $1`, id).
			Scan(&c.ID, &c.SecretHash, &c.AuthMethod, &uris, &grants, &resp, &c.Name, &c.Scope, &created, &used)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read client: %w", err)
	}
	if err := errors.Join(json.Unmarshal([]byte(uris), &c.RedirectURIs),
		json.Unmarshal([]byte(grants), &c.GrantTypes),
		json.Unmarshal([]byte(resp), &c.ResponseTypes)); err != nil {
		return nil, fmt.Errorf("decode client %s: %w", id, err)
	}
	c.CreatedAt = fromMS(created)
	c.UsedAt = nullMS(used)
	return &c, nil
}

func (s *pgStore) CreateCode(ctx context.Context, c *Code, now time.Time) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO codes
			(hash, grant_id, client_id, username, redirect_uri, code_challenge, scope, resource, stamp, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			c.Hash, c.GrantID, c.ClientID, c.User, c.RedirectURI, c.CodeChallenge, c.Scope, c.Resource, c.Stamp,
			ms(now), ms(c.ExpiresAt))
		if err != nil {
			return fmt.Errorf("insert code: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE clients SET used_at = $1 WHERE id = $2 AND used_at IS NULL`,
			ms(now), c.ClientID); err != nil {
			return fmt.Errorf("mark client used: %w", err)
		}
		return nil
	})
}

func (s *pgStore) Code(ctx context.Context, hash []byte) (*Code, error) {
	var c Code
	var expires int64
	var used *int64
	err := s.read(ctx, func() error {
		return s.pool.QueryRow(ctx, `SELECT hash, grant_id, client_id, username, redirect_uri, code_challenge,
			scope, resource, stamp, expires_at, used_at FROM codes WHERE hash = $1`, hash).
			Scan(&c.Hash, &c.GrantID, &c.ClientID, &c.User, &c.RedirectURI, &c.CodeChallenge,
				&c.Scope, &c.Resource, &c.Stamp, &expires, &used)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read code: %w", err)
	}
	c.ExpiresAt = fromMS(expires)
	c.Used = used != nil
	return &c, nil
}

func (s *pgStore) RedeemCode(ctx context.Context, hash []byte, g *Grant, t *Tokens, now time.Time) (bool, error) {
	var ok bool
	err := s.write(ctx, func(tx pgx.Tx) error {
		ok = false
		tag, err := tx.Exec(ctx, `UPDATE codes SET used_at = $1 WHERE hash = $2 AND used_at IS NULL AND expires_at > $1`,
			ms(now), hash)
		if err != nil {
			return fmt.Errorf("consume code: %w", err)
		}
		if tag.RowsAffected() != 1 {
			return nil // already used (or expired meanwhile): nothing issued
		}
		if _, err := tx.Exec(ctx, `INSERT INTO grants
			(id, client_id, username, scope, resource, stamp, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			g.ID, g.ClientID, g.User, g.Scope, g.Resource, g.Stamp, ms(now), ms(g.ExpiresAt)); err != nil {
			return fmt.Errorf("insert grant: %w", err)
		}
		if err := pgInsertPair(ctx, tx, g.ID, g.Scope, t, now); err != nil {
			return err
		}
		ok = true
		return nil
	})
	return ok, err
}

// pgInsertPair stores an access token and, if t has one, a refresh token.
func pgInsertPair(ctx context.Context, tx pgx.Tx, grantID, grantScope string, t *Tokens, now time.Time) error {
	if _, err := tx.Exec(ctx, `INSERT INTO tokens (hash, kind, grant_id, scope, created_at, expires_at)
		VALUES ($1, 1, $2, $3, $4, $5)`, t.AccessHash, grantID, t.AccessScope, ms(now), ms(t.AccessExpires)); err != nil {
		return fmt.Errorf("insert access token: %w", err)
	}
	if t.RefreshHash == nil {
		return nil
	}
	if _, err := tx.Exec(ctx, `INSERT INTO tokens (hash, kind, grant_id, scope, created_at, expires_at)
		VALUES ($1, 2, $2, $3, $4, $5)`, t.RefreshHash, grantID, grantScope, ms(now), ms(t.RefreshExpires)); err != nil {
		return fmt.Errorf("insert refresh token: %w", err)
	}
	return nil
}

// pgBumpEpoch increments the revocation epoch and notifies listeners (at
// commit); every revoking write calls it in its own transaction.
func pgBumpEpoch(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `WITH e AS (UPDATE epoch SET n = n + 1 WHERE id = 1 RETURNING n)
		SELECT pg_notify('`+pgEpochChannel+`', n::text) FROM e`); err != nil {
		return fmt.Errorf("bump revocation epoch: %w", err)
	}
	return nil
}

func (s *pgStore) RevokeGrant(ctx context.Context, grantID string, now time.Time) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE grants SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL`,
			ms(now), grantID); err != nil {
			return fmt.Errorf("revoke grant: %w", err)
		}
		return pgBumpEpoch(ctx, tx)
	})
}

const pgSelectRefresh = `SELECT t.hash, t.expires_at, t.used_at, t.revoked_at IS NOT NULL OR g.revoked_at IS NOT NULL,
	g.id, g.client_id, g.username, g.scope, g.resource, g.stamp, g.created_at, g.expires_at
	FROM tokens t JOIN grants g ON g.id = t.grant_id WHERE t.hash = $1 AND t.kind = 2`

func pgScanRefresh(row pgx.Row) (*RefreshToken, error) {
	var r RefreshToken
	var expires, gCreated, gExpires int64
	var used *int64
	err := row.Scan(&r.Hash, &expires, &used, &r.Revoked, &r.Grant.ID, &r.Grant.ClientID, &r.Grant.User,
		&r.Grant.Scope, &r.Grant.Resource, &r.Grant.Stamp, &gCreated, &gExpires)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read refresh token: %w", err)
	}
	r.ExpiresAt = fromMS(expires)
	r.UsedAt = nullMS(used)
	r.Grant.CreatedAt = fromMS(gCreated)
	r.Grant.ExpiresAt = fromMS(gExpires)
	return &r, nil
}

func (s *pgStore) Refresh(ctx context.Context, hash []byte) (*RefreshToken, error) {
	var r *RefreshToken
	err := s.read(ctx, func() error {
		var err error
		r, err = pgScanRefresh(s.pool.QueryRow(ctx, pgSelectRefresh, hash))
		return err
	})
	return r, err
}

func (s *pgStore) RotateRefresh(ctx context.Context, oldHash []byte, t *Tokens, grace time.Duration, now time.Time) (Rotation, error) {
	var out Rotation
	err := s.write(ctx, func(tx pgx.Tx) error {
		// The row lock queues concurrent rotations of this token: each
		// sees the previous one's outcome.
		old, err := pgScanRefresh(tx.QueryRow(ctx, pgSelectRefresh+` FOR UPDATE OF t`, oldHash))
		if errors.Is(err, ErrNotFound) {
			out = Dead
			return nil
		}
		if err != nil {
			return err
		}
		if old.Revoked || !now.Before(old.ExpiresAt) || !now.Before(old.Grant.ExpiresAt) {
			out = Dead
			return nil
		}
		if old.UsedAt.IsZero() {
			if _, err := tx.Exec(ctx, `UPDATE tokens SET used_at = $1 WHERE hash = $2 AND used_at IS NULL`,
				ms(now), oldHash); err != nil {
				return fmt.Errorf("rotate refresh token: %w", err)
			}
			if err := pgInsertPair(ctx, tx, old.Grant.ID, old.Grant.Scope, t, now); err != nil {
				return err
			}
			out = Rotated
			return nil
		}
		// The successor's row is locked too: a rotation of the successor
		// under way must be seen (it makes this a reuse), not raced past
		// with one more access token.
		var succUsed *int64
		var succRevoked bool
		err = tx.QueryRow(ctx, `SELECT used_at, revoked_at IS NOT NULL FROM tokens WHERE hash = $1 AND kind = 2 FOR UPDATE`,
			t.RefreshHash).Scan(&succUsed, &succRevoked)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("read successor refresh token: %w", err)
		}
		if err == nil && succUsed == nil && !succRevoked && now.Sub(old.UsedAt) <= grace {
			t2 := *t
			t2.RefreshHash = nil // the successor exists; only a new access token
			if err := pgInsertPair(ctx, tx, old.Grant.ID, old.Grant.Scope, &t2, now); err != nil {
				return err
			}
			out = Retried
			return nil
		}
		// The grant's revoked_at above may be stale: under READ COMMITTED,
		// the first statement read the grant (which it does not lock) as
		// of before it waited for the token's row lock, and the rotation
		// that held the lock may have revoked the grant meanwhile (reuse
		// seen by a concurrent rotation). This update waits for and
		// rechecks the grant's latest version: if it is already revoked,
		// the token is dead, and the reuse was reported by whoever revoked it.
		tag, err := tx.Exec(ctx, `UPDATE grants SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL`,
			ms(now), old.Grant.ID)
		if err != nil {
			return fmt.Errorf("revoke grant: %w", err)
		}
		if tag.RowsAffected() == 0 {
			out = Dead
			return nil
		}
		out = Reused
		return pgBumpEpoch(ctx, tx)
	})
	return out, err
}

// pgLookupAccess is the bearer check's one query (pgx prepares and caches it
// per connection).
const pgLookupAccess = `SELECT g.id, g.client_id, g.username, t.scope, g.resource, g.stamp, t.expires_at
	FROM tokens t JOIN grants g ON g.id = t.grant_id
	WHERE t.hash = $1 AND t.kind = 1 AND t.revoked_at IS NULL AND t.expires_at > $2 AND g.revoked_at IS NULL`

func (s *pgStore) LookupAccess(ctx context.Context, hash []byte, now time.Time) (*Access, error) {
	var a Access
	var expires int64
	err := s.read(ctx, func() error {
		return s.pool.QueryRow(ctx, pgLookupAccess, hash, ms(now)).
			Scan(&a.GrantID, &a.ClientID, &a.User, &a.Scope, &a.Resource, &a.Stamp, &expires)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("look up access token: %w", err)
	}
	a.ExpiresAt = fromMS(expires)
	return &a, nil
}

func (s *pgStore) RevokeToken(ctx context.Context, hash []byte, clientID string, now time.Time) (string, error) {
	var affected string
	err := s.write(ctx, func(tx pgx.Tx) error {
		affected = ""
		var kind int
		var grantID, owner string
		err := tx.QueryRow(ctx, `SELECT t.kind, g.id, g.client_id FROM tokens t JOIN grants g ON g.id = t.grant_id
			WHERE t.hash = $1`, hash).Scan(&kind, &grantID, &owner)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read token: %w", err)
		}
		if owner != clientID {
			return nil
		}
		affected = grantID
		if kind == kindRefresh {
			_, err = tx.Exec(ctx, `UPDATE grants SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL`, ms(now), grantID)
		} else {
			_, err = tx.Exec(ctx, `UPDATE tokens SET revoked_at = $1 WHERE hash = $2 AND revoked_at IS NULL`, ms(now), hash)
		}
		if err != nil {
			return fmt.Errorf("revoke token: %w", err)
		}
		return pgBumpEpoch(ctx, tx)
	})
	return affected, err
}

func (s *pgStore) Cleanup(ctx context.Context, now time.Time, unusedClientTTL time.Duration) error {
	unusedBefore := int64(-1 << 63) // keep never-used clients
	if unusedClientTTL > 0 {
		unusedBefore = ms(now.Add(-unusedClientTTL))
	}
	// Each statement commits on its own: cleanup holds no long locks.
	nowMS := ms(now)
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`DELETE FROM codes WHERE expires_at <= $1`, []any{nowMS}},
		{`DELETE FROM grants WHERE expires_at <= $1 OR revoked_at IS NOT NULL`, []any{nowMS}},
		{`DELETE FROM tokens WHERE expires_at <= $1`, []any{nowMS}},
		{`DELETE FROM grants WHERE NOT EXISTS (SELECT 1 FROM tokens t WHERE t.grant_id = grants.id)
			AND NOT EXISTS (SELECT 1 FROM codes c WHERE c.grant_id = grants.id)`, nil},
		{`DELETE FROM clients WHERE created_at <= $1
			AND NOT EXISTS (SELECT 1 FROM grants g WHERE g.client_id = clients.id)
			AND NOT EXISTS (SELECT 1 FROM codes c WHERE c.client_id = clients.id)`, []any{ms(now.Add(-clientIdleTTL))}},
		{`DELETE FROM clients WHERE used_at IS NULL AND created_at <= $1`, []any{unusedBefore}},
		{`DELETE FROM signins WHERE expires_at <= $1`, []any{nowMS}},
		{`DELETE FROM throttles WHERE reset_at <= $1`, []any{nowMS}},
		{`DELETE FROM web_sessions WHERE expires_at <= $1`, []any{nowMS}},
		{`DELETE FROM replicas WHERE seen_at <= $1`, []any{ms(now.Add(-replicaGone))}},
	} {
		if err := s.write(ctx, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, q.sql, q.args...)
			return err
		}); err != nil {
			return fmt.Errorf("cleanup: %w", err)
		}
	}
	return s.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM sessions WHERE last_used <= $1`, ms(now.Add(-SessionIdle)))
		if err != nil {
			return fmt.Errorf("cleanup: %w", err)
		}
		if tag.RowsAffected() > 0 {
			return pgBumpEpoch(ctx, tx)
		}
		return nil
	})
}

func (s *pgStore) Stats(ctx context.Context, now time.Time) (Stats, error) {
	var st Stats
	err := s.read(ctx, func() error {
		return s.pool.QueryRow(ctx, `SELECT (SELECT n FROM sizes WHERE name = 'clients'),
			(SELECT count(*) FROM grants WHERE revoked_at IS NULL AND expires_at > $1)`, ms(now)).
			Scan(&st.Clients, &st.Grants)
	})
	if err != nil {
		return st, fmt.Errorf("count clients and grants: %w", err)
	}
	return st, nil
}

// Copy support (copy.go).

func (s *pgStore) holdsGrants(ctx context.Context) (bool, error) {
	var held bool
	err := s.read(ctx, func() error {
		return s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM clients) OR EXISTS (SELECT 1 FROM grants)
			OR EXISTS (SELECT 1 FROM codes) OR EXISTS (SELECT 1 FROM tokens)`).Scan(&held)
	})
	return held, err
}

func (s *pgStore) exportRows(ctx context.Context, table string, cols []string, emit func(row []any) error) error {
	rows, err := s.pool.Query(ctx, "SELECT "+strings.Join(cols, ", ")+" FROM "+table)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		row, err := rows.Values()
		if err != nil {
			return err
		}
		for i, v := range row {
			if n, ok := v.(int16); ok { // smallint (tokens.kind)
				row[i] = int64(n)
			}
		}
		if err := emit(row); err != nil {
			return err
		}
	}
	return rows.Err()
}

func (s *pgStore) importRows(ctx context.Context, overwrite bool, fill func(put func(table string, cols []string, row []any) error) error) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		if overwrite {
			if _, err := tx.Exec(ctx, `DELETE FROM tokens; DELETE FROM codes; DELETE FROM grants; DELETE FROM clients`); err != nil {
				return err
			}
			if err := pgBumpEpoch(ctx, tx); err != nil {
				return err
			}
		}
		return fill(func(table string, cols []string, row []any) error {
			ph := make([]string, len(cols))
			for i := range ph {
				ph[i] = pgPlaceholder(i + 1)
			}
			q := "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES (" + strings.Join(ph, ", ") + ")"
			if table == "settings" {
				q += " ON CONFLICT (name) DO UPDATE SET value = excluded.value"
			}
			_, err := tx.Exec(ctx, q, row...)
			return err
		})
	})
}
