package logical

import (
	"errors"
	"strings"

	"github.com/virtstoraged-go/virtstoraged/adapters/lib/blockdev"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// stderrKinds classifies a failed LVM command by its stderr, first match
// wins. libvirt reports every failure as an internal error; we keep its text
// but give clients a kind they can act on where the cause is clear.
var stderrKinds = []struct {
	substr string
	kind   domain.Kind
}{
	{"insufficient free space", domain.KindOperationFailed},
	{"Insufficient free space", domain.KindOperationFailed},
	{"Insufficient suitable allocatable extents", domain.KindOperationFailed},
	{"Failed to find logical volume", domain.KindNoStorageVol},
	{"already exists", domain.KindOperationFailed},
	{"contains a filesystem in use", domain.KindOperationInvalid},
	{"Can't remove open logical volume", domain.KindOperationInvalid},
	{"in use", domain.KindOperationInvalid},
	{"not found", domain.KindOperationFailed},
}

// commandError turns a runner failure into a domain error: libvirt's
// "Child process (ARGV) unexpected exit status N: STDERR" text, with a kind
// chosen from the exit status and stderr.
func commandError(err error, argv []string) *domain.Error {
	e := blockdev.CommandError(err, argv)
	var xe *ports.ExitError
	if !errors.As(err, &xe) {
		return e
	}
	e.Kind = classify(xe.Code, xe.Stderr)
	return e
}

// classify maps an LVM failure to a kind by its stderr. The exit status says
// little: lvm2 exits 3 (EINVALID_CMD_LINE) for a malformed command line but
// also when a device-mapper target is missing, so it is not taken to mean a
// bad argument; anything unrecognised is an internal error, as in libvirt.
func classify(code int, stderr string) domain.Kind {
	for _, c := range stderrKinds {
		if strings.Contains(stderr, c.substr) {
			return c.kind
		}
	}
	return domain.KindInternal
}
