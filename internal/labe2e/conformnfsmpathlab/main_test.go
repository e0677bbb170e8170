// Package conformnfsmpathlab_test runs the backends' conformance suite
// (internal/backendtest) for the netfs backend against a real NFS server
// and for the mpath backend over real dm-multipath maps in the storage lab
// (internal/lab). It is a package of its own, not part of nfsmpathlab, to
// keep each guest's time in bounds, and because the mpath pool lists every
// map of the system: no other test's maps may be there.
package conformnfsmpathlab_test

import (
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/lab"
)

// TestMain boots the package's guest; the suites drive the backends
// themselves, no daemon.
func TestMain(m *testing.M) {
	lab.Main(m, lab.Options{Disks: 1})
}
