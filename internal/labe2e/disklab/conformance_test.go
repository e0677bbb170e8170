package disklab_test

import (
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/internal/backendtest"
	"github.com/virtstoraged-go/virtstoraged/internal/backendtest/harness"
	"github.com/virtstoraged-go/virtstoraged/internal/lab"
)

// TestConformance runs the PoolBackend conformance suite for the disk
// backend on one virtio disk, cleared for each pool (the suite holds one
// pool at a time).
func TestConformance(t *testing.T) {
	lab.Require(t)
	dev := lab.Disk(t)
	backendtest.RunConformanceTests(t, harness.Disk(func(t *testing.T) (string, error) {
		clearDisk(t, dev)
		return dev, nil
	}))
}

// clearDisk zeroes the label of a disk and has the kernel drop the
// partitions it still lists (zeroing alone, as pool-delete does, leaves
// them).
func clearDisk(t *testing.T, dev string) {
	t.Helper()
	lab.Run(t, "wipefs", "-a", "-q", dev)
	// udev probes the partitions after the wipe's change event, and the
	// kernel refuses to re-read a table while one is open.
	lab.WaitFor(t, "the kernel re-reading "+dev+"'s table", time.Minute, func() bool {
		lab.Try("udevadm", "settle", "--timeout=10")
		_, err := lab.Try("blockdev", "--rereadpt", dev)
		return err == nil
	})
	lab.Run(t, "udevadm", "settle", "--timeout=10")
}
