// Package authstoretest gives tests a fresh database of each engine that
// package authstore supports, so that one test runs on SQLite and on
// PostgreSQL alike:
//
//	for _, e := range authstoretest.Engines() {
//		t.Run(e.Name, func(t *testing.T) {
//			s, err := authstore.Open(t.Context(), e.NewDSN(t), authstore.Options{})
//			…
//		})
//	}
//
// SQLite databases are files in the test's temporary directory.
// PostgreSQL databases are new schemas (dropped when the test ends) of the
// database named by the environment variable MCP_TEST_POSTGRES, a
// postgres:// URL of a user that may create schemas. Without it the
// PostgreSQL tests are skipped, saying so; with MCP_REQUIRE_POSTGRES=1 they
// fail instead (CI sets both, so that they cannot be skipped there by
// accident).
package authstoretest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Engine makes fresh, empty databases of one engine.
type Engine struct {
	Name string
	// NewDSN returns the name of a new database (for authstore.Open),
	// deleted when t ends. It skips t when the engine is not available.
	NewDSN func(t testing.TB) string
}

// Engines lists SQLite and PostgreSQL.
func Engines() []Engine {
	return []Engine{
		{"sqlite", SQLite},
		{"postgres", Postgres},
	}
}

// SQLite returns the path of a new SQLite file in t's temporary directory.
func SQLite(t testing.TB) string {
	return filepath.Join(t.TempDir(), "auth.db")
}

// Postgres returns the URL of a new schema in the database named by
// MCP_TEST_POSTGRES, dropped when t ends; see the package documentation.
func Postgres(t testing.TB) string {
	t.Helper()
	base := os.Getenv("MCP_TEST_POSTGRES")
	if base == "" {
		if os.Getenv("MCP_REQUIRE_POSTGRES") == "1" {
			t.Fatal("MCP_REQUIRE_POSTGRES=1 but MCP_TEST_POSTGRES is not set")
		}
		t.Skip("PostgreSQL tests skipped: set MCP_TEST_POSTGRES to a postgres:// URL of a database the tests may create schemas in")
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal("MCP_TEST_POSTGRES is not a URL")
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "authstore_test_" + hex.EncodeToString(b[:])
	if err := exec(t.Context(), base, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("MCP_TEST_POSTGRES: %s", scrub(err, u))
	}
	t.Cleanup(func() {
		if err := exec(context.Background(), base, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %s", schema, scrub(err, u))
		}
	})
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// exec runs one statement on its own connection.
func exec(ctx context.Context, dsn, sql string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// scrub returns err's message without the URL's password.
func scrub(err error, u *url.URL) string {
	msg := err.Error()
	if pw, ok := u.User.Password(); ok && pw != "" {
		msg = strings.ReplaceAll(msg, pw, "xxxxx")
	}
	return msg
}
