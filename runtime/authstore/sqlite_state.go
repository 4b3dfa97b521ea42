package authstore

// The SQLite engine's shared state: grants listing, pending sign-ins,
// throttles, sessions and the revocation epoch. (One server process uses
// a SQLite file, but the command-line tools may open the same file while
// it serves, so the state lives in the file here too.)

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// grantWhere returns the WHERE conditions and arguments selecting the live
// grants (alias g) that f matches at now.
func grantWhere(f GrantFilter, now time.Time, placeholder func(int) string) (string, []any) {
	return filterWhere(f, "g.id", "g.username", "g.client_id", placeholder,
		[]string{"g.revoked_at IS NULL", "g.expires_at > " + placeholder(1)}, ms(now))
}

func sqlitePlaceholder(i int) string { return fmt.Sprintf("?%d", i) }

// pendingCodeWhere is the WHERE clause and arguments of the codes f
// selects that have not been exchanged yet: each would create a grant f
// selects. Their grant_id is the ID the grant will have.
func pendingCodeWhere(f GrantFilter, placeholder func(int) string) (string, []any) {
	return filterWhere(f, "grant_id", "username", "client_id", placeholder, []string{"used_at IS NULL"})
}

// filterWhere joins conds, whose arguments are args, and a condition for
// each field of f that is set (its grant ID, user and client, in the
// columns named) into a WHERE clause, returning it and its arguments.
func filterWhere(f GrantFilter, idCol, userCol, clientCol string, placeholder func(int) string, conds []string, args ...any) (string, []any) {
	for _, c := range []struct{ col, v string }{{idCol, f.ID}, {userCol, f.User}, {clientCol, f.ClientID}} {
		if c.v != "" {
			args = append(args, c.v)
			conds = append(conds, c.col+" = "+placeholder(len(args)))
		}
	}
	return strings.Join(conds, " AND "), args
}

// errNoFilter refuses RevokeGrants with an empty filter.
var errNoFilter = errors.New("authstore: revoking grants needs a grant ID, a user or a client")

func (s *sqliteStore) Grants(ctx context.Context, f GrantFilter, now time.Time) ([]GrantInfo, error) {
	where, args := grantWhere(f, now, sqlitePlaceholder)
	rows, err := s.db.QueryContext(ctx, `SELECT g.id, g.client_id, g.username, g.scope, g.resource, g.stamp,
		g.created_at, g.expires_at, g.last_used_at, coalesce(c.client_name, ''), coalesce(c.redirect_uris, '[]')
		FROM grants g LEFT JOIN clients c ON c.id = g.client_id
		WHERE `+where+` ORDER BY g.created_at, g.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("list grants: %w", err)
	}
	defer rows.Close()
	var out []GrantInfo
	for rows.Next() {
		var gi GrantInfo
		var created, expires int64
		var used sql.NullInt64
		var uris string
		if err := rows.Scan(&gi.ID, &gi.ClientID, &gi.User, &gi.Scope, &gi.Resource, &gi.Stamp,
			&created, &expires, &used, &gi.ClientName, &uris); err != nil {
			return nil, fmt.Errorf("list grants: %w", err)
		}
		gi.CreatedAt, gi.ExpiresAt = fromMS(created), fromMS(expires)
		if used.Valid {
			gi.LastUsedAt = fromMS(used.Int64)
		}
		if err := json.Unmarshal([]byte(uris), &gi.RedirectURIs); err != nil {
			return nil, fmt.Errorf("decode client %s: %w", gi.ClientID, err)
		}
		out = append(out, gi)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list grants: %w", err)
	}
	return out, nil
}

func (s *sqliteStore) RevokeGrants(ctx context.Context, f GrantFilter, now time.Time) (int, error) {
	if f == (GrantFilter{}) {
		return 0, errNoFilter
	}
	where, args := grantWhere(f, now, sqlitePlaceholder)
	args = append(args, ms(now))
	codes, codeArgs := pendingCodeWhere(f, sqlitePlaceholder)
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM codes WHERE `+codes, codeArgs...); err != nil {
			return fmt.Errorf("revoke grants: delete pending codes: %w", err)
		}
		res, err := tx.ExecContext(ctx, `UPDATE grants AS g SET revoked_at = `+sqlitePlaceholder(len(args))+
			` WHERE `+where, args...)
		if err != nil {
			return fmt.Errorf("revoke grants: %w", err)
		}
		if n, err = res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		return bumpEpoch(ctx, tx)
	})
	return int(n), err
}

func (s *sqliteStore) TouchGrant(ctx context.Context, grantID string, now time.Time) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE grants SET last_used_at = ?
			WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`, ms(now), grantID, ms(now))
		if err != nil {
			return fmt.Errorf("touch grant: %w", err)
		}
		return nil
	})
}

func (s *sqliteStore) DeleteUserGrants(ctx context.Context, user string) (int, error) {
	var n int
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		n, err = deleteUser(ctx, tx, user, nil)
		return err
	})
	return n, err
}

// deleteUser deletes user's grants (their tokens cascade), codes and web
// sessions, all of them or, with stamp, only those bearing that stamp; and,
// for a removed user (nil stamp), the user's MCP sessions. It bumps the
// epoch if anything went, and returns the number of grants deleted.
func deleteUser(ctx context.Context, tx *sql.Tx, user string, stamp *string) (int, error) {
	cond, args := "username = ?", []any{user}
	if stamp != nil {
		cond, args = "username = ? AND stamp = ?", []any{user, *stamp}
	}
	var grants int64
	var deleted bool
	tables := []string{"grants", "codes", "web_sessions"}
	if stamp == nil {
		tables = append(tables, "sessions")
	}
	for _, table := range tables {
		q := "DELETE FROM " + table + " WHERE " + cond
		a := args
		if table == "sessions" {
			q, a = "DELETE FROM sessions WHERE username = ?", []any{user}
		}
		res, err := tx.ExecContext(ctx, q, a...)
		if err != nil {
			return 0, fmt.Errorf("delete %s of %s: %w", table, user, err)
		}
		n, _ := res.RowsAffected()
		if table == "grants" {
			grants = n
		}
		deleted = deleted || n > 0
	}
	if deleted {
		if err := bumpEpoch(ctx, tx); err != nil {
			return 0, err
		}
	}
	return int(grants), nil
}

func (s *sqliteStore) DeleteStampGrants(ctx context.Context, user, stamp string) (int, error) {
	var n int
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		n, err = deleteUser(ctx, tx, user, &stamp)
		return err
	})
	return n, err
}

func (s *sqliteStore) CreateSignIn(ctx context.Context, si *SignIn) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO signins (id_hash, browser_hash, addr_key, client_id, client_name,
			redirect_uri, state, has_state, code_challenge, scope, resource, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			si.IDHash, si.BrowserHash, si.AddrKey, si.ClientID, si.ClientName, si.RedirectURI, si.State, si.HasState,
			si.CodeChallenge, si.Scope, si.Resource, ms(si.CreatedAt), ms(si.ExpiresAt))
		if err != nil {
			return fmt.Errorf("insert sign-in: %w", err)
		}
		// The newest rows (highest seq) stay; the oldest beyond a bound go.
		for _, q := range []struct {
			sql string
			arg any
			max int
		}{
			{`DELETE FROM signins WHERE seq IN (SELECT seq FROM signins WHERE addr_key = ? ORDER BY seq DESC LIMIT -1 OFFSET ?)`,
				si.AddrKey, s.limits.SignInsPerAddr},
			{`DELETE FROM signins WHERE seq IN (SELECT seq FROM signins WHERE browser_hash = ? ORDER BY seq DESC LIMIT -1 OFFSET ?)`,
				si.BrowserHash, s.limits.SignInsPerBrowser},
		} {
			if _, err := tx.ExecContext(ctx, q.sql, q.arg, q.max); err != nil {
				return fmt.Errorf("evict sign-ins: %w", err)
			}
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT n FROM sizes WHERE name = 'signins'`).Scan(&n); err != nil {
			return fmt.Errorf("count sign-ins: %w", err)
		}
		if over := n - s.limits.SignIns; over > 0 {
			if _, err := tx.ExecContext(ctx, `DELETE FROM signins WHERE seq IN (SELECT seq FROM signins ORDER BY seq LIMIT ?)`, over); err != nil {
				return fmt.Errorf("evict sign-ins: %w", err)
			}
		}
		return nil
	})
}

func (s *sqliteStore) TakeSignIn(ctx context.Context, idHash, browserHash []byte, now time.Time) (*SignIn, error) {
	var si *SignIn
	err := s.write(ctx, func(tx *sql.Tx) error {
		si = &SignIn{}
		var created, expires int64
		err := tx.QueryRowContext(ctx, `DELETE FROM signins WHERE id_hash = ? AND browser_hash = ? AND expires_at > ?
			RETURNING id_hash, browser_hash, addr_key, client_id, client_name, redirect_uri, state, has_state,
				code_challenge, scope, resource, created_at, expires_at`, idHash, browserHash, ms(now)).
			Scan(&si.IDHash, &si.BrowserHash, &si.AddrKey, &si.ClientID, &si.ClientName, &si.RedirectURI, &si.State,
				&si.HasState, &si.CodeChallenge, &si.Scope, &si.Resource, &created, &expires)
		if errors.Is(err, sql.ErrNoRows) {
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

// Throttle windows. One row per (rule, key): count events in the window
// that ends at reset_at. A key is locked while count >= Max and the window
// has not ended. count stops at Max+1, which means "locked, and an attempt
// was refused": so one UPSERT both checks and counts, and Allow reads its
// answer from the count it returns (at most Max: counted).

// sqliteThrottleUpsert counts one event for (?1, ?2) at ?3 in a window of
// ?4 ms, the count stopping at ?5 (Max+1).
const sqliteThrottleUpsert = `INSERT INTO throttles (rule, key, count, reset_at, last_seen)
	VALUES (?1, ?2, 1, ?3 + ?4, ?3)
	ON CONFLICT (rule, key) DO UPDATE SET
		count = CASE WHEN reset_at <= ?3 THEN 1 ELSE min(count + 1, ?5) END,
		reset_at = CASE WHEN reset_at <= ?3 THEN ?3 + ?4 ELSE reset_at END,
		last_seen = ?3
	RETURNING count, reset_at`

// count runs the upsert and evicts least recently seen unlocked keys of the
// rule beyond Limits.ThrottleKeys. It returns the key's count and window end.
func (s *sqliteStore) count(ctx context.Context, l Limit, key string, now time.Time) (int, time.Time, error) {
	var count int
	var reset int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, sqliteThrottleUpsert, l.Name, []byte(key), ms(now), l.Window.Milliseconds(), l.Max+1).
			Scan(&count, &reset)
		if err != nil {
			return fmt.Errorf("count %s: %w", l.Name, err)
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT n FROM sizes WHERE name = ?`, "throttles/"+l.Name).Scan(&n); err != nil {
			return fmt.Errorf("count %s keys: %w", l.Name, err)
		}
		if over := n - s.limits.ThrottleKeys; over > 0 {
			if _, err := tx.ExecContext(ctx, `DELETE FROM throttles WHERE rule = ?1 AND key IN (
				SELECT key FROM throttles WHERE rule = ?1 AND key <> ?2 AND NOT (count >= ?3 AND reset_at > ?4)
				ORDER BY last_seen LIMIT ?5)`, l.Name, []byte(key), l.Max, ms(now), over); err != nil {
				return fmt.Errorf("evict %s keys: %w", l.Name, err)
			}
		}
		return nil
	})
	return count, fromMS(reset), err
}

func (s *sqliteStore) Allow(ctx context.Context, l Limit, key string, now time.Time) (time.Duration, bool, error) {
	count, reset, err := s.count(ctx, l, key, now)
	if err != nil {
		return 0, false, err
	}
	if count > l.Max {
		return reset.Sub(now), false, nil
	}
	return 0, true, nil
}

func (s *sqliteStore) Add(ctx context.Context, l Limit, key string, now time.Time) error {
	_, _, err := s.count(ctx, l, key, now)
	return err
}

func (s *sqliteStore) Blocked(ctx context.Context, l Limit, key string, now time.Time) (time.Duration, bool, error) {
	var count int
	var reset int64
	err := s.db.QueryRowContext(ctx, `SELECT count, reset_at FROM throttles WHERE rule = ? AND key = ?`,
		l.Name, []byte(key)).Scan(&count, &reset)
	if errors.Is(err, sql.ErrNoRows) {
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

func (s *sqliteStore) Undo(ctx context.Context, l Limit, key string, now time.Time) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE throttles SET count = count - 1
			WHERE rule = ? AND key = ? AND count > 0 AND reset_at > ?`, l.Name, []byte(key), ms(now))
		if err != nil {
			return fmt.Errorf("undo %s: %w", l.Name, err)
		}
		return nil
	})
}

func (s *sqliteStore) Reset(ctx context.Context, l Limit, key string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM throttles WHERE rule = ? AND key = ?`, l.Name, []byte(key)); err != nil {
			return fmt.Errorf("reset %s: %w", l.Name, err)
		}
		return nil
	})
}

func (s *sqliteStore) CreateSession(ctx context.Context, idHash []byte, user string, now time.Time) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO sessions (id_hash, username, created_at, last_used) VALUES (?, ?, ?, ?)`,
			idHash, user, ms(now), ms(now)); err != nil {
			return fmt.Errorf("insert session: %w", err)
		}
		// Past the cap, the user's least recently used go, without
		// moving the revocation epoch (SessionStore.CreateSession).
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE seq IN (SELECT seq FROM sessions WHERE username = ?
			ORDER BY last_used DESC, seq DESC LIMIT -1 OFFSET ?)`, user, s.limits.SessionsPerUser); err != nil {
			return fmt.Errorf("evict sessions: %w", err)
		}
		return nil
	})
}

func (s *sqliteStore) Session(ctx context.Context, idHash []byte, now time.Time) (string, error) {
	var user string
	err := s.db.QueryRowContext(ctx, `SELECT username FROM sessions WHERE id_hash = ? AND last_used > ?`,
		idHash, ms(now.Add(-SessionIdle))).Scan(&user)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("read session: %w", err)
	}
	return user, nil
}

func (s *sqliteStore) TouchSession(ctx context.Context, idHash []byte, now time.Time) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE sessions SET last_used = ?1
			WHERE id_hash = ?2 AND last_used <= ?3 AND last_used > ?4`,
			ms(now), idHash, ms(now.Add(-sessionTouchEvery)), ms(now.Add(-SessionIdle)))
		if err != nil {
			return fmt.Errorf("touch session: %w", err)
		}
		return nil
	})
}

func (s *sqliteStore) EndSession(ctx context.Context, idHash []byte) (bool, error) {
	var ended bool
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE id_hash = ?`, idHash)
		if err != nil {
			return fmt.Errorf("end session: %w", err)
		}
		n, _ := res.RowsAffected()
		if ended = n > 0; ended {
			return bumpEpoch(ctx, tx)
		}
		return nil
	})
	return ended, err
}

func (s *sqliteStore) CreateWebSession(ctx context.Context, ws *WebSession) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO web_sessions (id_hash, username, stamp, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?)`, ws.IDHash, ws.User, ws.Stamp, ms(ws.CreatedAt), ms(ws.ExpiresAt)); err != nil {
			return fmt.Errorf("insert web session: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM web_sessions WHERE seq IN (SELECT seq FROM web_sessions
			WHERE username = ? ORDER BY seq DESC LIMIT -1 OFFSET ?)`, ws.User, s.limits.SessionsPerUser); err != nil {
			return fmt.Errorf("evict web sessions: %w", err)
		}
		return nil
	})
}

func (s *sqliteStore) WebSession(ctx context.Context, idHash []byte, now time.Time) (*WebSession, error) {
	var ws WebSession
	var created, expires int64
	err := s.db.QueryRowContext(ctx, `SELECT id_hash, username, stamp, created_at, expires_at FROM web_sessions
		WHERE id_hash = ? AND expires_at > ?`, idHash, ms(now)).
		Scan(&ws.IDHash, &ws.User, &ws.Stamp, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read web session: %w", err)
	}
	ws.CreatedAt, ws.ExpiresAt = fromMS(created), fromMS(expires)
	return &ws, nil
}

func (s *sqliteStore) EndWebSession(ctx context.Context, idHash []byte) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM web_sessions WHERE id_hash = ?`, idHash)
		if err != nil {
			return fmt.Errorf("end web session: %w", err)
		}
		if n, _ := res.RowsAffected(); n > 0 {
			return bumpEpoch(ctx, tx)
		}
		return nil
	})
}

func (s *sqliteStore) Epoch(ctx context.Context) (uint64, error) {
	var n uint64
	if err := s.db.QueryRowContext(ctx, `SELECT n FROM epoch WHERE id = 1`).Scan(&n); err != nil {
		return 0, fmt.Errorf("read revocation epoch: %w", err)
	}
	return n, nil
}

// The SQLite engine's clock is the process's: the server and the tools
// that share the file run on one machine.

func (s *sqliteStore) Ack(ctx context.Context, id string, epoch uint64) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO replicas (id, acked_epoch, seen_at) VALUES (?1, ?2, ?3)
			ON CONFLICT (id) DO UPDATE SET acked_epoch = max(acked_epoch, ?2), seen_at = ?3`,
			id, int64(epoch), ms(time.Now()))
		if err != nil {
			return fmt.Errorf("acknowledge epoch: %w", err)
		}
		return nil
	})
}

func (s *sqliteStore) Lagging(ctx context.Context, self string, epoch uint64, lease time.Duration) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM replicas WHERE id <> ? AND seen_at > ? AND acked_epoch < ?`,
		self, ms(time.Now().Add(-lease)), int64(epoch)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("read replicas: %w", err)
	}
	return n, nil
}

func (s *sqliteStore) LeaveReplica(ctx context.Context, id string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM replicas WHERE id = ?`, id); err != nil {
			return fmt.Errorf("remove replica: %w", err)
		}
		return nil
	})
}

// WatchEpochs: SQLite has no notifications; callers poll Epoch.
func (s *sqliteStore) WatchEpochs(ctx context.Context) (<-chan struct{}, error) { return nil, nil }
