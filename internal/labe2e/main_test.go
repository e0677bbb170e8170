package labe2e_test

import (
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/lab"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// TestMain boots the package's guest. The daemon is built on the host (a Go
// build under emulation would take minutes) and reaches the guest through
// the shared root.
func TestMain(m *testing.M) {
	lab.Main(m, lab.Options{
		Disks: 8,
		Prepare: func() ([]string, func(), error) {
			bin, err := testkit.DaemonBinary()
			if err != nil {
				return nil, nil, err
			}
			return []string{testkit.DaemonBinEnv + "=" + bin}, testkit.CleanupBuild, nil
		},
	})
}
