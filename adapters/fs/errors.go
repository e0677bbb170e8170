package fs

import (
	"fmt"
	"strings"
	"time"

	"github.com/virtstoraged-go/virtstoraged/adapters/oserr"
	"github.com/virtstoraged-go/virtstoraged/domain"
)

// TimeoutError is a command that did not finish within its bound: a mount of
// an unreachable NFS server, a showmount of a host that drops packets.
type TimeoutError struct {
	Argv  []string
	After time.Duration
}

// Error names the command and the bound.
func (e *TimeoutError) Error() string {
	return fmt.Sprintf("fs: %s: timed out after %s", strings.Join(e.Argv, " "), e.After)
}

// SysErr builds libvirt's virReportSystemError, "<what>: <strerror>".
func SysErr(err error, format string, args ...any) *domain.Error {
	return oserr.System(err, format, args...)
}

// CommandError is virCommandRun's error for a failed tool.
func CommandError(err error, argv []string) *domain.Error { return oserr.Command(err, argv) }

// NotMountedError is what a refresh of an fs or netfs pool returns when its
// filesystem is no longer mounted. libvirt silently lists the directory
// underneath instead, showing the host's filesystem as the pool's; failing
// makes the service mark the pool inactive, as for a vanished dir pool.
func NotMountedError(def *domain.PoolDef) *domain.Error {
	return domain.Errorf(domain.KindOperationInvalid,
		"storage pool '%s' is not mounted on '%s': the filesystem was unmounted behind our back", def.Name, def.Target.Path)
}
