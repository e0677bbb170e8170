package dir

import (
	"errors"
	"syscall"

	"github.com/virtstoraged-go/virtstoraged/adapters/lib/oserr"
	"github.com/virtstoraged-go/virtstoraged/domain"
)

// errnoOf digs the errno out of err, 0 when there is none.
func errnoOf(err error) syscall.Errno {
	var en syscall.Errno
	if errors.As(err, &en) {
		return en
	}
	return 0
}

// sysErr builds libvirt's virReportSystemError: "<what>: <strerror>".
func sysErr(err error, format string, args ...any) *domain.Error {
	return oserr.System(err, format, args...)
}

// utilErr is sysErr for what libvirt reports from its util code (virDirOpen,
// virFileResize, ...): the same text with no error domain.
func utilErr(err error, format string, args ...any) *domain.Error {
	return oserr.FromUtil(oserr.System(err, format, args...))
}

// errnoErr is sysErr for a bare errno.
func errnoErr(en syscall.Errno, format string, args ...any) *domain.Error {
	return oserr.Errno(en, format, args...)
}

// commandError is virCommandRun's error for a failed tool.
func commandError(err error, argv []string) *domain.Error { return oserr.Command(err, argv) }
