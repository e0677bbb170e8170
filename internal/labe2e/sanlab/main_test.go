// Package sanlab_test proves the iscsi and scsi backends on real devices in
// the storage lab (internal/lab) through our daemon: iSCSI pools against
// tgtd's targets on 127.0.0.1 (discovery, login, LUNs, CHAP with libvirtd's
// secret driver, an unreachable portal), scsi pools on scsi_debug's and the
// IDE controller's SCSI hosts. The same scenarios against libvirtd 9.0 are
// in sandifflab, the conformance suite over both backends in
// sanconformlab: three guests, each a few minutes.
package sanlab_test

import (
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/lab"
	"github.com/virtstoraged-go/virtstoraged/internal/labe2e/labkit"
)

// TestMain boots the package's guest, with our daemon built on the host.
func TestMain(m *testing.M) {
	lab.Main(m, lab.Options{Prepare: labkit.PrepareDaemon})
}
