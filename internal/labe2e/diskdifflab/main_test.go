// Package diskdifflab_test runs disk pool scenarios against libvirtd 9.0
// and against our daemon in the storage lab (internal/lab), each on a
// device of its own, and compares the transcripts: dos and gpt on virtio
// disks, gpt on loop devices (where libvirt cannot remove a partition), and
// the other labels libvirt accepts. internal/labe2e/disklab proves the
// backend on its own (against the kernel, the conformance suite, devices
// in use); the two packages boot a guest each, in parallel.
package diskdifflab_test

import (
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/lab"
	"github.com/virtstoraged-go/virtstoraged/internal/labe2e/labkit"
)

// TestMain boots the package's guest, with our daemon built on the host.
func TestMain(m *testing.M) {
	lab.Main(m, lab.Options{Disks: 2, DiskSize: 256 << 20, Prepare: labkit.PrepareDaemon})
}
