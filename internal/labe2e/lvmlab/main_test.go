// Package lvmlab_test proves the logical backend on real LVM and
// device-mapper in the storage lab (internal/lab): a pool's whole life, thin
// pools, I/O faults under a PV, and the same scenario against libvirtd 9.0.
package lvmlab_test

import (
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/lab"
	"github.com/virtstoraged-go/virtstoraged/internal/labe2e/labkit"
)

// TestMain boots the package's guest, with our daemon built on the host.
func TestMain(m *testing.M) {
	lab.Main(m, lab.Options{Disks: 6, Prepare: labkit.PrepareDaemon})
}
