package authstore

// Copy moves a deployment from one database to another, typically from
// SQLite to PostgreSQL when a server grows into several replicas, without
// signing anyone out: clients, grants, codes and tokens are copied as they
// are (hashes stay hashes), and so is the rotation key, from which the
// successors of the copied refresh tokens are derived.

import (
	"context"
	"errors"
	"fmt"
)

// ErrTargetNotEmpty is returned by Copy when the target already holds
// clients, grants, codes or tokens and CopyOptions.Overwrite is not set.
var ErrTargetNotEmpty = errors.New("authstore: the target database is not empty")

// CopyOptions configures Copy.
type CopyOptions struct {
	// Overwrite deletes the target's clients, grants, codes and tokens
	// before copying (signing out whoever used the target). Without it a
	// target that holds any is refused.
	Overwrite bool
}

// CopyStats counts the rows copied, by table.
type CopyStats struct {
	Clients, Grants, Codes, Tokens int
}

// copyTables are the tables Copy moves, parents before children, with
// their columns, which are the same in both engines. settings holds the
// rotation key.
var copyTables = []struct {
	name string
	cols []string
}{
	{"clients", []string{"id", "secret_hash", "auth_method", "redirect_uris", "grant_types", "response_types",
		"client_name", "scope", "created_at", "used_at"}},
	{"grants", []string{"id", "client_id", "username", "scope", "resource", "stamp", "created_at", "expires_at",
		"revoked_at", "last_used_at"}},
	{"codes", []string{"hash", "grant_id", "client_id", "username", "redirect_uri", "code_challenge", "scope",
		"resource", "stamp", "created_at", "expires_at", "used_at"}},
	{"tokens", []string{"hash", "kind", "grant_id", "scope", "created_at", "expires_at", "used_at", "revoked_at"}},
	{"settings", []string{"name", "value"}},
}

// copier is what an engine does for Copy.
type copier interface {
	// holdsGrants reports whether the database holds clients, grants,
	// codes or tokens.
	holdsGrants(ctx context.Context) (bool, error)
	// exportRows calls emit with each row of table, values in cols order
	// (int64, string, []byte or nil).
	exportRows(ctx context.Context, table string, cols []string, emit func(row []any) error) error
	// importRows runs fill in one transaction, in which put stores a row
	// (settings rows replace the target's). With overwrite it first deletes
	// the clients, grants, codes and tokens the target holds.
	importRows(ctx context.Context, overwrite bool, fill func(put func(table string, cols []string, row []any) error) error) error
}

// Copy copies clients, grants, codes, tokens and the rotation key from one
// store to another, in one transaction on the target: all or nothing. Both
// must come from Open. Reopen the target afterwards (its RotationKey still
// returns the key it had when it was opened). Pending sign-ins, throttles
// and sessions are not copied: they are short-lived.
func Copy(ctx context.Context, from, to Store, opts CopyOptions) (CopyStats, error) {
	var st CopyStats
	src, err := copierOf(from)
	if err != nil {
		return st, err
	}
	dst, err := copierOf(to)
	if err != nil {
		return st, err
	}
	if !opts.Overwrite {
		full, err := dst.holdsGrants(ctx)
		if err != nil {
			return st, fmt.Errorf("authstore: copy: %w", err)
		}
		if full {
			return st, ErrTargetNotEmpty
		}
	}
	err = dst.importRows(ctx, opts.Overwrite, func(put func(table string, cols []string, row []any) error) error {
		st = CopyStats{}
		for _, t := range copyTables {
			n := 0
			err := src.exportRows(ctx, t.name, t.cols, func(row []any) error {
				n++
				return put(t.name, t.cols, row)
			})
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			switch t.name {
			case "clients":
				st.Clients = n
			case "grants":
				st.Grants = n
			case "codes":
				st.Codes = n
			case "tokens":
				st.Tokens = n
			}
		}
		return nil
	})
	if err != nil {
		return CopyStats{}, fmt.Errorf("authstore: copy: %w", err)
	}
	return st, nil
}

// copierOf returns the engine of a store from Open.
func copierOf(s Store) (copier, error) {
	c, ok := s.(*checked)
	if !ok {
		return nil, errors.New("authstore: Copy needs stores returned by Open")
	}
	cp, ok := c.e.(copier)
	if !ok {
		return nil, fmt.Errorf("authstore: Copy does not support %T", c.e)
	}
	return cp, nil
}
