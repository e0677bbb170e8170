// Package disklab_test proves the disk backend on real block devices in the
// storage lab (internal/lab): a pool's life on a loop device with partition
// scanning, its partitions' names, extents, figures and data against the
// kernel, devices in use, and the conformance suite (internal/backendtest)
// on a virtio disk. The same scenarios against libvirtd 9.0 are in
// internal/labe2e/diskdifflab, a guest of its own booting in parallel.
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
	lab.Main(m, lab.Options{Disks: 3, DiskSize: diskSize, Prepare: labkit.PrepareDaemon})
}
