package authstore

// The PostgreSQL engine's shared state; see sqlite_state.go for the same
// methods on SQLite, and state.go for their contracts.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

func pgPlaceholder(i int) string { return fmt.Sprintf("$%d", i) }

func (s *pgStore) Grants(ctx context.Context, f GrantFilter, now time.Time) ([]GrantInfo, error) {
	where, args := grantWhere(f, now, pgPlaceholder)
	var out []GrantInfo
	err := s.read(ctx, func() error {
		out = nil
		rows, err := s.pool.Query(ctx, `SELECT g.id, g.client_id, g.username, g.scope, g.resource, g.stamp,
			g.created_at, g.expires_at, g.last_used_at, coalesce(c.client_name, ''), coalesce(c.redirect_uris, '[]')
			FROM grants g LEFT JOIN clients c ON c.id = g.client_id
			WHERE `+where+` ORDER BY g.created_at, g.id`, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var gi GrantInfo
			var created, expires int64
			var used *int64
			var uris string
			if err := rows.Scan(&gi.ID, &gi.ClientID, &gi.User, &gi.Scope, &gi.Resource, &gi.Stamp,
				&created, &expires, &used, &gi.ClientName, &uris); err != nil {
				return err
			}
			gi.CreatedAt, gi.ExpiresAt, gi.LastUsedAt = fromMS(created), fromMS(expires), nullMS(used)
			if err := json.Unmarshal([]byte(uris), &gi.RedirectURIs); err != nil {
				return fmt.Errorf("decode client %s: %w", gi.ClientID, err)
			}
			out = append(out, gi)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list grants: %w", err)
	}
	return out, nil
}

func (s *pgStore) RevokeGrants(ctx context.Context, f GrantFilter, now time.Time) (int, error) {
	if f == (GrantFilter{}) {
		return 0, errNoFilter
	}
	where, args := grantWhere(f, now, pgPlaceholder)
	args = append(args, ms(now))
	codes, codeArgs := pendingCodeWhere(f, pgPlaceholder)
	var n int64
	err := s.write(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM codes WHERE `+codes, codeArgs...); err != nil {
			return fmt.Errorf("revoke grants: delete pending codes: %w", err)
		}
		tag, err := tx.Exec(ctx, `UPDATE grants AS g SET revoked_at = `+pgPlaceholder(len(args))+` WHERE `+where, args...)
		if err != nil {
			return fmt.Errorf("revoke grants: %w", err)
		}
		if n = tag.RowsAffected(); n == 0 {
			return nil
		}
		return pgBumpEpoch(ctx, tx)
	})
	return int(n), err
}

func (s *pgStore) TouchGrant(ctx context.Context, grantID string, now time.Time) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE grants SET last_used_at = $1
			WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)`, ms(now), grantID)
		if err != nil {
			return fmt.Errorf("touch grant: %w", err)
		}
		return nil
	})
}

func (s *pgStore) DeleteUserGrants(ctx context.Context, user string) (int, error) {
	var n int
	err := s.write(ctx, func(tx pgx.Tx) error {
		var err error
		n, err = pgDeleteUser(ctx, tx, user, nil)
		return err
	})
	return n, err
}

// pgDeleteUser is deleteUser (sqlite_state.go) on PostgreSQL.
func pgDeleteUser(ctx context.Context, tx pgx.Tx, user string, stamp *string) (int, error) {
	cond, args := "username = $1", []any{user}
	if stamp != nil {
		cond, args = "username = $1 AND stamp = $2", []any{user, *stamp}
	}
	tables := []string{"grants", "codes", "web_sessions"}
	if stamp == nil {
		tables = append(tables, "sessions")
	}
	var grants int64
	var deleted bool
	for _, table := range tables {
		q, a := "DELETE FROM "+table+" WHERE "+cond, args
		if table == "sessions" {
			q, a = "DELETE FROM sessions WHERE username = $1", []any{user}
		}
		tag, err := tx.Exec(ctx, q, a...)
		if err != nil {
			return 0, fmt.Errorf("delete %s of %s: %w", table, user, err)
		}
		if table == "grants" {
			grants = tag.RowsAffected()
		}
		deleted = deleted || tag.RowsAffected() > 0
	}
	if deleted {
		if err := pgBumpEpoch(ctx, tx); err != nil {
			return 0, err
		}
	}
	return int(grants), nil
}

func (s *pgStore) DeleteStampGrants(ctx context.Context, user, stamp string) (int, error) {
	var n int
	err := s.write(ctx, func(tx pgx.Tx) error {
		var err error
		n, err = pgDeleteUser(ctx, tx, user, &stamp)
		return err
	})
	return n, err
}

func (s *pgStore) CreateSignIn(ctx context.Context, si *SignIn) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO signins (id_hash, browser_hash, addr_key, client_id, client_name,
			redirect_uri, state, has_state, code_challenge, scope, resource, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
			si.IDHash, si.BrowserHash, si.AddrKey, si.ClientID, si.ClientName, si.RedirectURI, si.State, si.HasState,
			si.CodeChallenge, si.Scope, si.Resource, ms(si.CreatedAt), ms(si.ExpiresAt))
		if err != nil {
			return fmt.Errorf("insert sign-in: %w", err)
		}
		// The newest rows (highest seq) stay; the oldest beyond a bound go.
		if _, err := tx.Exec(ctx, `DELETE FROM signins WHERE seq IN (SELECT seq FROM signins WHERE addr_key = $1
			ORDER BY seq DESC OFFSET $2)`, si.AddrKey, s.limits.SignInsPerAddr); err != nil {
			return fmt.Errorf("evict sign-ins: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM signins WHERE seq IN (SELECT seq FROM signins WHERE browser_hash = $1
			ORDER BY seq DESC OFFSET $2)`, si.BrowserHash, s.limits.SignInsPerBrowser); err != nil {
			return fmt.Errorf("evict sign-ins: %w", err)
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT n FROM sizes WHERE name = 'signins'`).Scan(&n); err != nil {
			return fmt.Errorf("count sign-ins: %w", err)
		}
		if over := n - s.limits.SignIns; over > 0 {
			if _, err := tx.Exec(ctx, `DELETE FROM signins WHERE seq IN (SELECT seq FROM signins ORDER BY seq LIMIT $1
				FOR UPDATE SKIP LOCKED)`, over); err != nil {
				return fmt.Errorf("evict sign-ins: %w", err)
			}
		}
		return nil
	})
}

func (s *pgStore) TakeSignIn(ctx context.Context, idHash, browserHash []byte, now time.Time) (*SignIn, error) {
	var si *SignIn
	err := s.write(ctx, func(tx pgx.Tx) error {
		si = &SignIn{}
		var created, expires int64
		err := tx.QueryRow(ctx, `DELETE FROM signins WHERE id_hash = $1 AND browser_hash = $2 AND expires_at > $3
			RETURNING id_hash, browser_hash, addr_key, client_id, client_name, redirect_uri, state, has_state,
				code_challenge, scope, resource, created_at, expires_at`, idHash, browserHash, ms(now)).
			Scan(&si.IDHash, &si.BrowserHash, &si.AddrKey, &si.ClientID, &si.ClientName, &si.RedirectURI, &si.State,
				&si.HasState, &si.CodeChallenge, &si.Scope, &si.Resource, &created, &expires)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("take sign-in: %w", err)
		}
		si.CreatedAt, si.ExpiresAt = fromMS(created), fromMS(expires)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return si, nil
}

// pgThrottleUpsert is sqliteThrottleUpsert: one atomic statement per event
// (the row lock of ON CONFLICT DO UPDATE orders concurrent events on one
// key, on any number of replicas).
const pgThrottleUpsert = `INSERT INTO throttles AS t (rule, key, count, reset_at, last_seen)
	VALUES ($1, $2, 1, $3::bigint + $4::bigint, $3::bigint)
	ON CONFLICT (rule, key) DO UPDATE SET
		count = CASE WHEN t.reset_at <= $3::bigint THEN 1 ELSE least(t.count + 1, $5::integer) END,
		reset_at = CASE WHEN t.reset_at <= $3::bigint THEN $3::bigint + $4::bigint ELSE t.reset_at END,
		last_seen = $3::bigint
	RETURNING count, reset_at`

// count is sqliteStore.count on PostgreSQL. The eviction runs in its own
// statement after the event is counted, and skips rows other replicas are
// updating.
func (s *pgStore) count(ctx context.Context, l Limit, key string, now time.Time) (int, time.Time, error) {
	var count int
	var reset int64
	err := s.write(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, pgThrottleUpsert, l.Name, []byte(key), ms(now), l.Window.Milliseconds(), l.Max+1).
			Scan(&count, &reset)
		if err != nil {
			return fmt.Errorf("count %s: %w", l.Name, err)
		}
		return nil
	})
	if err != nil {
		return 0, time.Time{}, err
	}
	var n int
	err = s.read(ctx, func() error {
		return s.pool.QueryRow(ctx, `SELECT n FROM sizes WHERE name = $1`, "throttles/"+l.Name).Scan(&n)
	})
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("count %s keys: %w", l.Name, err)
	}
	if over := n - s.limits.ThrottleKeys; over > 0 {
		err := s.write(ctx, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `DELETE FROM throttles WHERE (rule, key) IN (
				SELECT rule, key FROM throttles WHERE rule = $1 AND key <> $2 AND NOT (count >= $3 AND reset_at > $4)
				ORDER BY last_seen LIMIT $5 FOR UPDATE SKIP LOCKED)`, l.Name, []byte(key), l.Max, ms(now), over)
			return err
		})
		if err != nil {
			return 0, time.Time{}, fmt.Errorf("evict %s keys: %w", l.Name, err)
		}
	}
	return count, fromMS(reset), nil
}

func (s *pgStore) Allow(ctx context.Context, l Limit, key string, now time.Time) (time.Duration, bool, error) {
	count, reset, err := s.count(ctx, l, key, now)
	if err != nil {
		return 0, false, err
	}
	if count > l.Max {
		return reset.Sub(now), false, nil
	}
	return 0, true, nil
}

func (s *pgStore) Add(ctx context.Context, l Limit, key string, now time.Time) error {
	_, _, err := s.count(ctx, l, key, now)
	return err
}

func (s *pgStore) Blocked(ctx context.Context, l Limit, key string, now time.Time) (time.Duration, bool, error) {
	var count int
	var reset int64
	err := s.read(ctx, func() error {
		return s.pool.QueryRow(ctx, `SELECT count, reset_at FROM throttles WHERE rule = $1 AND key = $2`,
			l.Name, []byte(key)).Scan(&count, &reset)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read %s: %w", l.Name, err)
	}
	if count >= l.Max && ms(now) < reset {
		return fromMS(reset).Sub(now), true, nil
	}
	return 0, false, nil
}

func (s *pgStore) Undo(ctx context.Context, l Limit, key string, now time.Time) error {
	return s.exec(ctx, "undo "+l.Name, `UPDATE throttles SET count = count - 1
		WHERE rule = $1 AND key = $2 AND count > 0 AND reset_at > $3`, l.Name, []byte(key), ms(now))
}

func (s *pgStore) Reset(ctx context.Context, l Limit, key string) error {
	return s.exec(ctx, "reset "+l.Name, `DELETE FROM throttles WHERE rule = $1 AND key = $2`, l.Name, []byte(key))
}

// exec runs one statement as its own transaction.
func (s *pgStore) exec(ctx context.Context, what, sql string, args ...any) error {
	err := s.write(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, sql, args...)
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// execBump runs one statement and bumps the epoch if it changed a row; it
// reports whether it did.
func (s *pgStore) execBump(ctx context.Context, what, sql string, args ...any) (bool, error) {
	var changed bool
	err := s.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, sql, args...)
		if err != nil {
			return err
		}
		if changed = tag.RowsAffected() > 0; changed {
			return pgBumpEpoch(ctx, tx)
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	return changed, nil
}

func (s *pgStore) CreateSession(ctx context.Context, idHash []byte, user string, now time.Time) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO sessions (id_hash, username, created_at, last_used) VALUES ($1, $2, $3, $3)`,
			idHash, user, ms(now)); err != nil {
			return fmt.Errorf("insert session: %w", err)
		}
		// Past the cap, the user's least recently used go, without
		// moving the revocation epoch (SessionStore.CreateSession).
		if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE seq IN (SELECT seq FROM sessions WHERE username = $1
			ORDER BY last_used DESC, seq DESC OFFSET $2)`, user, s.limits.SessionsPerUser); err != nil {
			return fmt.Errorf("evict sessions: %w", err)
		}
		return nil
	})
}

func (s *pgStore) Session(ctx context.Context, idHash []byte, now time.Time) (string, error) {
	var user string
	err := s.read(ctx, func() error {
		return s.pool.QueryRow(ctx, `SELECT username FROM sessions WHERE id_hash = $1 AND last_used > $2`,
			idHash, ms(now.Add(-SessionIdle))).Scan(&user)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("read session: %w", err)
	}
	return user, nil
}

func (s *pgStore) TouchSession(ctx context.Context, idHash []byte, now time.Time) error {
	return s.exec(ctx, "touch session", `UPDATE sessions SET last_used = $1
		WHERE id_hash = $2 AND last_used <= $3 AND last_used > $4`,
		ms(now), idHash, ms(now.Add(-sessionTouchEvery)), ms(now.Add(-SessionIdle)))
}

func (s *pgStore) EndSession(ctx context.Context, idHash []byte) (bool, error) {
	return s.execBump(ctx, "end session", `DELETE FROM sessions WHERE id_hash = $1`, idHash)
}

func (s *pgStore) CreateWebSession(ctx context.Context, ws *WebSession) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO web_sessions (id_hash, username, stamp, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5)`, ws.IDHash, ws.User, ws.Stamp, ms(ws.CreatedAt), ms(ws.ExpiresAt)); err != nil {
			return fmt.Errorf("insert web session: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM web_sessions WHERE seq IN (SELECT seq FROM web_sessions
			WHERE username = $1 ORDER BY seq DESC OFFSET $2)`, ws.User, s.limits.SessionsPerUser); err != nil {
			return fmt.Errorf("evict web sessions: %w", err)
		}
		return nil
	})
}

func (s *pgStore) WebSession(ctx context.Context, idHash []byte, now time.Time) (*WebSession, error) {
	var ws WebSession
	var created, expires int64
	err := s.read(ctx, func() error {
		return s.pool.QueryRow(ctx, `SELECT id_hash, username, stamp, created_at, expires_at FROM web_sessions
			WHERE id_hash = $1 AND expires_at > $2`, idHash, ms(now)).
			Scan(&ws.IDHash, &ws.User, &ws.Stamp, &created, &expires)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read web session: %w", err)
	}
	ws.CreatedAt, ws.ExpiresAt = fromMS(created), fromMS(expires)
	return &ws, nil
}

func (s *pgStore) EndWebSession(ctx context.Context, idHash []byte) error {
	_, err := s.execBump(ctx, "end web session", `DELETE FROM web_sessions WHERE id_hash = $1`, idHash)
	return err
}

func (s *pgStore) Epoch(ctx context.Context) (uint64, error) {
	var n int64
	err := s.read(ctx, func() error {
		return s.pool.QueryRow(ctx, `SELECT n FROM epoch WHERE id = 1`).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("read revocation epoch: %w", err)
	}
	return uint64(n), nil
}

// pgNowMS is the database's clock in milliseconds: replicas compare their
// heartbeats by one clock, whatever their own clocks say.
const pgNowMS = `(extract(epoch FROM clock_timestamp()) * 1000)::bigint`

func (s *pgStore) Ack(ctx context.Context, id string, epoch uint64) error {
	return s.exec(ctx, "acknowledge epoch", `INSERT INTO replicas AS r (id, acked_epoch, seen_at)
		VALUES ($1, $2, `+pgNowMS+`)
		ON CONFLICT (id) DO UPDATE SET acked_epoch = greatest(r.acked_epoch, excluded.acked_epoch), seen_at = excluded.seen_at`,
		id, int64(epoch))
}

func (s *pgStore) Lagging(ctx context.Context, self string, epoch uint64, lease time.Duration) (int, error) {
	var n int
	err := s.read(ctx, func() error {
		return s.pool.QueryRow(ctx, `SELECT count(*) FROM replicas
			WHERE id <> $1 AND seen_at > `+pgNowMS+` - $2 AND acked_epoch < $3`,
			self, lease.Milliseconds(), int64(epoch)).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("read replicas: %w", err)
	}
	return n, nil
}

func (s *pgStore) LeaveReplica(ctx context.Context, id string) error {
	return s.exec(ctx, "remove replica", `DELETE FROM replicas WHERE id = $1`, id)
}

// WatchEpochs LISTENs on a connection of its own (outside the pool, which
// it must not hold for the listener's lifetime) and reconnects after a
// failure, signalling once on reconnect since notifications may have been
// missed meanwhile.
func (s *pgStore) WatchEpochs(ctx context.Context) (<-chan struct{}, error) {
	conn, err := s.listen(ctx)
	if err != nil {
		return nil, fmt.Errorf("listen for revocations: %w", err)
	}
	ch := make(chan struct{}, 1)
	signal := func() {
		select {
		case ch <- struct{}{}:
		default: // one pending signal is enough
		}
	}
	go func() {
		defer close(ch)
		for {
			for {
				if _, err := conn.WaitForNotification(ctx); err != nil {
					break
				}
				signal()
			}
			conn.Close(context.WithoutCancel(ctx))
			for conn = nil; conn == nil; {
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Second):
				}
				conn, _ = s.listen(ctx)
			}
			signal()
		}
	}()
	return ch, nil
}

// listen opens a connection and LISTENs on the epoch channel.
func (s *pgStore) listen(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, s.cfg.ConnConfig.Copy())
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgEpochChannel); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	return conn, nil
}
