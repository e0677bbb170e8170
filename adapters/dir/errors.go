package dir

import (
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf8"

	"github.com/virtstoraged-go/virtstoraged/adapters/osexec"
	"github.com/virtstoraged-go/virtstoraged/domain"
)

// errnoText is an errno whose message reads as glibc's strerror ("No such file
// or directory"), since libvirt's system errors end with that text and clients
// and people compare it. Go's own table is the same text starting lower-case.
type errnoText struct{ errno syscall.Errno }

func (e errnoText) Error() string {
	s := e.errno.Error()
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:]
}

func (e errnoText) Unwrap() error { return e.errno }

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
	if en := errnoOf(err); en != 0 {
		return domain.SystemError(int32(en), errnoText{en}, format, args...)
	}
	return domain.SystemError(0, err, format, args...)
}

// errnoErr is sysErr for a bare errno.
func errnoErr(en syscall.Errno, format string, args ...any) *domain.Error {
	return domain.SystemError(int32(en), errnoText{en}, format, args...)
}

// commandError turns a runner failure into libvirt's virCommandRun errors: a
// missing program is "Cannot find 'X' in path", a failed one reports its exit
// status and stderr.
func commandError(err error, argv []string) *domain.Error {
	if errors.Is(err, exec.ErrNotFound) {
		return errnoErr(syscall.ENOENT, "Cannot find '%s' in path", argv[0])
	}
	var xe *osexec.ExitError
	if errors.As(err, &xe) {
		detail := strings.TrimSpace(xe.Stderr)
		e := domain.Errorf(domain.KindInternal, "Child process (%s) unexpected exit status %d", strings.Join(argv, " "), xe.Code)
		if detail != "" {
			e.Detail += ": " + detail
		}
		e.Err = err
		return e
	}
	var de *domain.Error
	if errors.As(err, &de) {
		return de
	}
	return &domain.Error{Kind: domain.KindInternal, Detail: err.Error(), Err: err}
}
