// Package nfsmpathlab_test proves the netfs and mpath backends on a real
// NFS server (v3, v4) and on real multipath maps (scsi_debug, an iSCSI LUN)
// in the storage lab (internal/lab), with the server stopped mid-operation,
// and the same scenarios against libvirtd 9.0.
package nfsmpathlab_test

import (
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/lab"
	"github.com/virtstoraged-go/virtstoraged/internal/labe2e/labkit"
)

// TestMain boots the package's guest, with our daemon built on the host.
func TestMain(m *testing.M) {
	lab.Main(m, lab.Options{Prepare: labkit.PrepareDaemon})
}
