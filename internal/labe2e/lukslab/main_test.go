// Package lukslab_test proves LUKS-encrypted volumes on real LVM in the
// storage lab (internal/lab): encrypted LVs made through virsh with a
// passphrase from libvirtd's secret driver, opened by cryptsetup, and the
// same scenario through libvirtd 9.0's own storage driver, compared. It is a
// package of its own (not part of lvmlab) because every LUKS header costs a
// key derivation, seconds of the emulated CPU.
package lukslab_test

import (
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/lab"
	"github.com/virtstoraged-go/virtstoraged/internal/labe2e/labkit"
)

// TestMain boots the package's guest, with our daemon built on the host.
func TestMain(m *testing.M) {
	lab.Main(m, lab.Options{Disks: 2, Prepare: labkit.PrepareDaemon})
}
