// Package sanconformlab_test runs the shared PoolBackend conformance suite
// (internal/backendtest) over the iscsi and scsi backends on real devices in
// the storage lab (internal/lab): tgtd's targets and scsi_debug's hosts.
package sanconformlab_test

import (
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/lab"
)

// TestMain boots the package's guest; the suite drives the backends
// directly, without a daemon.
func TestMain(m *testing.M) {
	lab.Main(m, lab.Options{})
}
