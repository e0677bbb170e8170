package conformnfsmpathlab_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/adapters/osexec"
	"github.com/virtstoraged-go/virtstoraged/internal/backendtest"
	"github.com/virtstoraged-go/virtstoraged/internal/backendtest/harness"
	"github.com/virtstoraged-go/virtstoraged/internal/lab"
	"github.com/virtstoraged-go/virtstoraged/internal/labe2e/labkit"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// TestConformanceNetFS runs the backends' conformance suite for the netfs
// backend against the guest's NFS server: each pool mounts an export of its
// own (all on the server's one tmpfs, so not isolated), by its NFSv4 path,
// which the mount's version negotiation reaches first.
func TestConformanceNetFS(t *testing.T) {
	lab.Require(t)
	var n atomic.Int32
	backendtest.RunConformanceTests(t, harness.NetFS(func(t *testing.T) (harness.NetFSEnv, error) {
		export := func(pool string) (string, error) {
			return lab.NFSExport(t, fmt.Sprintf("conf%d-%s", n.Add(1), pool)).V4Path, nil
		}
		return harness.NetFSEnv{Host: "127.0.0.1", Export: export, Runner: osexec.New(testkit.QuietLog())}, nil
	}))
}

// TestConformanceMpath runs the suite for the mpath backend over real
// dm-multipath maps, each with one path on a slice of a lab disk, read
// from the real sysfs.
func TestConformanceMpath(t *testing.T) {
	lab.Require(t)
	if len(lab.MultipathMaps()) != 0 {
		t.Fatalf("multipath maps before the suite: %v", lab.MultipathMaps())
	}
	lab.Modprobe(t, "dm_multipath")
	slices := labkit.NewSlicer(t, "confmp")
	backendtest.RunConformanceTests(t, harness.Mpath(func(t *testing.T) (harness.MpathEnv, error) {
		return harness.MpathEnv{Sysfs: "/sys", Maps: &labkit.Multipath{T: t, Slices: slices}}, nil
	}))
}
