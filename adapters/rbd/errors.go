package rbd

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	"github.com/virtstoraged-go/virtstoraged/adapters/lib/oserr"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// errnoText finds the "(N) strerror" Ceph's tools print for a failed call.
var errnoText = regexp.MustCompile(`\((\d{1,3})\) [A-Z]`)

// errno is the error number a failed rbd or rados command reports: the last
// "(N) text" of its stderr (rados exits 1 whatever failed), else its exit
// status (rbd exits with the errno of the call that failed). A command we
// killed at its deadline counts as timed out, as Ceph's own timeouts do.
func errno(err error) (syscall.Errno, bool) {
	var xe *ports.ExitError
	if !errors.As(err, &xe) {
		return 0, false
	}
	if xe.Code < 0 {
		return syscall.ETIMEDOUT, true
	}
	if m := errnoText.FindAllStringSubmatch(xe.Stderr, -1); len(m) > 0 {
		if n, err := strconv.Atoi(m[len(m)-1][1]); err == nil && n > 0 {
			return syscall.Errno(n), true
		}
	}
	if xe.Code == 0 || xe.Code > 255 {
		return 0, false
	}
	return syscall.Errno(xe.Code), true
}

// notConnected reports a command that never reached the cluster.
func notConnected(err error) bool {
	var xe *ports.ExitError
	return errors.As(err, &xe) && strings.Contains(xe.Stderr, "couldn't connect to")
}

// noPool reports a command that found no such pool.
func noPool(err error) bool {
	var xe *ports.ExitError
	return errors.As(err, &xe) && (strings.Contains(xe.Stderr, "error opening pool") || strings.Contains(xe.Stderr, "does not exist"))
}

// cmdError turns a failed command into libvirt's error for the operation
// (virReportSystemError: "<text>: <strerror>"), with the errno the command
// really failed with, where libvirt often reports a stale one. A command
// that could not reach the cluster says so, as libvirt's connect step does,
// and a missing pool gets libvirt's "Does the pool exist?" text.
func (b *Backend) cmdError(err error, c *Conn, pool string, format string, args ...any) *domain.Error {
	var de *domain.Error
	if errors.As(err, &de) {
		return de
	}
	en, ok := errno(err)
	if !ok {
		return oserr.Command(err, []string{"rbd"})
	}
	var e *domain.Error
	switch {
	case notConnected(err):
		e = oserr.Errno(en, "failed to connect to the RADOS monitor on: %s", c.MonHost)
	case noPool(err):
		e = oserr.Errno(en, "failed to create the RBD IoCTX. Does the pool '%s' exist?", pool)
	default:
		e = oserr.Errno(en, format, args...)
	}
	e.Err = err
	return e
}
