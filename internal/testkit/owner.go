package testkit

import (
	"os"
	"path/filepath"
	"testing"
)

// RequireRoot skips a test that must take other users' ids (setfsuid, a
// child's credential): only root can. CI runs as root, so these always run there.
func RequireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("taking another uid needs root (CI runs as root)")
	}
}

// OwnedDir returns a new directory of uid's with mode 0700, reachable by
// anyone through its parents, so that only uid may create in it.
//
// It is how the create-as-owner tests tell who created a file, which the
// file's owner alone cannot (root creating and then chowning gives the same):
// leaving fsuid 0, or setuid in a child, also drops CAP_DAC_OVERRIDE, so a
// create done as the owner fails in OwnedDir(t, 0) although root itself could
// create there, and succeeds in OwnedDir(t, owner).
func OwnedDir(t *testing.T, uid int) string {
	t.Helper()
	tmp := t.TempDir()
	for _, d := range []string{filepath.Dir(tmp), tmp} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	d := filepath.Join(tmp, "d")
	if err := os.Mkdir(d, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(d, uid, uid); err != nil {
		t.Fatal(err)
	}
	return d
}
