// Package disklab_test proves the disk backend on real block devices in the
// storage lab (internal/lab): partition tables on virtio disks and on loop
// devices with partition scanning, their volumes' names, extents, figures
// and data, the pool's free extents, devices in use, the conformance suite
// (internal/backendtest), and the same scenarios against libvirtd 9.0.
package disklab_test

import (
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/lab"
	"github.com/virtstoraged-go/virtstoraged/internal/labe2e/labkit"
)

// diskSize is the lab disks' size: small enough that the cylinder
// arithmetic of dos labels stays readable, large enough for a dozen
// partitions.
const diskSize = 256 << 20

// TestMain boots the package's guest, with our daemon built on the host.
func TestMain(m *testing.M) {
	lab.Main(m, lab.Options{Disks: 8, DiskSize: diskSize, Prepare: labkit.PrepareDaemon})
}
