package conformlvmlab_test

import (
	"testing"

	"github.com/virtstoraged-go/virtstoraged/adapters/osexec"
	"github.com/virtstoraged-go/virtstoraged/internal/backendtest"
	"github.com/virtstoraged-go/virtstoraged/internal/backendtest/harness"
	"github.com/virtstoraged-go/virtstoraged/internal/lab"
	"github.com/virtstoraged-go/virtstoraged/internal/labe2e/labkit"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// TestConformanceLogical runs the backends' conformance suite for the
// logical backend on real LVM: each pool a VG on a device-mapper slice of a
// lab disk, its LVs real devices whose data the suite reads and writes.
func TestConformanceLogical(t *testing.T) {
	lab.Require(t)
	slices := labkit.NewSlicer(t, "confvg")
	backendtest.RunConformanceTests(t, harness.Logical(func(t *testing.T) (harness.LogicalEnv, error) {
		return harness.LogicalEnv{Runner: osexec.New(testkit.QuietLog()), Devices: slices.Devices(64 << 20)}, nil
	}))
}
