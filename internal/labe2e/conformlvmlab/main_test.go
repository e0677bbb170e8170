// Package conformlvmlab_test runs the backends' conformance suite
// (internal/backendtest) for the logical backend on real LVM and
// device-mapper in the storage lab (internal/lab). It is a package of its
// own, not part of lvmlab, to keep each guest's time in bounds: the suite
// builds and removes a VG for almost every test.
package conformlvmlab_test

import (
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/lab"
)

// TestMain boots the package's guest; the suite drives the backend itself,
// no daemon.
func TestMain(m *testing.M) {
	lab.Main(m, lab.Options{Disks: 1})
}
