package e2e_test

import (
	"os"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// TestRuntimeDirAtStart: like libvirt's storage driver, the daemon makes its
// run-time status directory when it starts, not at the first pool start.
func TestRuntimeDirAtStart(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, testkit.DaemonOptions{})
	st, err := os.Stat(d.StatusDir())
	if err != nil || !st.IsDir() {
		t.Fatalf("%s after start: %v", d.StatusDir(), err)
	}
	if st.Mode().Perm()&0o022 != 0 {
		t.Errorf("%s has mode %o: writable by others", d.StatusDir(), st.Mode().Perm())
	}
}
