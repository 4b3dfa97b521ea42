package authstore

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// TestCopy: a SQLite deployment copied to each engine keeps working on the
// target: a token issued before the copy is accepted after it, its refresh
// token rotates under the copied rotation key, a used code is still a
// replay, and a non-empty target is refused unless told.
func TestCopy(t *testing.T) {
	forEachEngineDSN(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		now := time.Now()
		srcPath := filepath.Join(t.TempDir(), "source.db")
		src := openDSN(t, srcPath, Options{})
		g, p := seedGrant(t, src, "g1", "app", "alice", "s", now)
		seedClient(t, src, "unused", now)
		src.TouchGrant(ctx, g.ID, now.Add(time.Minute))
		revoked, _ := seedGrant(t, src, "g2", "app", "bob", "s", now)
		src.RevokeGrant(ctx, revoked.ID, now)

		dst := openDSN(t, dsn, Options{})
		st, err := Copy(ctx, src, dst, CopyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if st != (CopyStats{Clients: 2, Grants: 2, Codes: 2, Tokens: 4}) {
			t.Errorf("CopyStats = %+v", st)
		}
		dst.Close()
		dst = openDSN(t, dsn, Options{}) // the rotation key is read at Open
		if !bytes.Equal(dst.RotationKey(), src.RotationKey()) {
			t.Fatal("the rotation key was not copied")
		}
		a, err := dst.LookupAccess(ctx, p.AccessHash, now)
		if err != nil || a.User != "alice" || a.ClientID != "app" {
			t.Fatalf("access token after the copy: %+v, %v", a, err)
		}
		if out, err := dst.RotateRefresh(ctx, p.RefreshHash, pairFor("after-copy"), time.Minute, now); out != Rotated || err != nil {
			t.Fatalf("refresh after the copy: %v, %v", out, err)
		}
		code, err := dst.Code(ctx, hashOf("code-g1"))
		if err != nil || !code.Used {
			t.Fatalf("used code after the copy: %+v, %v", code, err)
		}
		gs, err := dst.Grants(ctx, GrantFilter{ID: "g1"}, now)
		if err != nil || len(gs) != 1 || !gs[0].LastUsedAt.Equal(time.UnixMilli(now.Add(time.Minute).UnixMilli())) {
			t.Fatalf("grant after the copy: %+v, %v", gs, err)
		}
		if gs, _ := dst.Grants(ctx, GrantFilter{ID: "g2"}, now); len(gs) != 0 {
			t.Fatal("a revoked grant came back to life")
		}
		if c, err := dst.Client(ctx, "unused"); err != nil || !c.UsedAt.IsZero() {
			t.Fatalf("never-used client after the copy: %+v, %v", c, err)
		}

		// The target is no longer empty.
		if _, err := Copy(ctx, src, dst, CopyOptions{}); !errors.Is(err, ErrTargetNotEmpty) {
			t.Fatalf("copy onto a non-empty target: %v, want ErrTargetNotEmpty", err)
		}
		if _, err := Copy(ctx, src, dst, CopyOptions{Overwrite: true}); err != nil {
			t.Fatalf("copy with Overwrite: %v", err)
		}
		// Overwritten: the rotation done on the target is gone again.
		if r, err := dst.Refresh(ctx, p.RefreshHash); err != nil || !r.UsedAt.IsZero() {
			t.Fatalf("refresh token after overwriting: %+v, %v", r, err)
		}
		if _, err := dst.Refresh(ctx, pairFor("after-copy").RefreshHash); !errors.Is(err, ErrNotFound) {
			t.Fatalf("target-only token survived Overwrite: %v", err)
		}
	})
}
