// Package sandifflab_test runs the iscsi and scsi pool scenarios of
// internal/labe2e/sanlab against libvirtd 9.0 and against our daemon in the
// storage lab (internal/lab), on the same tgtd target and SCSI hosts, and
// compares the transcripts step by step. It is a package of its own so that
// its guest boots in parallel with sanlab's.
package sandifflab_test

import (
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/lab"
	"github.com/virtstoraged-go/virtstoraged/internal/labe2e/labkit"
)

// TestMain boots the package's guest, with our daemon built on the host.
func TestMain(m *testing.M) {
	lab.Main(m, lab.Options{Prepare: labkit.PrepareDaemon})
}
