package fs

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/virtstoraged-go/virtstoraged/adapters/osexec"
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

// errnoText prints an errno as glibc's strerror does ("No such file or
// directory"): libvirt's system errors end with that text and people and
// clients compare it; Go's table has the same text starting lower-case.
type errnoText struct{ errno syscall.Errno }

func (e errnoText) Error() string {
	s := e.errno.Error()
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:]
}

func (e errnoText) Unwrap() error { return e.errno }

// SysErr builds libvirt's virReportSystemError, "<what>: <strerror>".
func SysErr(err error, format string, args ...any) *domain.Error {
	var en syscall.Errno
	if errors.As(err, &en) {
		return domain.SystemError(int32(en), errnoText{en}, format, args...)
	}
	return domain.SystemError(0, err, format, args...)
}

// CommandError turns a runner failure into libvirt's virCommandRun errors: a
// missing program is "Cannot find 'X' in path", a failed one reports its exit
// status and stderr.
func CommandError(err error, argv []string) *domain.Error {
	if errors.Is(err, exec.ErrNotFound) {
		return domain.SystemError(int32(syscall.ENOENT), errnoText{syscall.ENOENT}, "Cannot find '%s' in path", argv[0])
	}
	var de *domain.Error
	if errors.As(err, &de) {
		return de
	}
	var xe *osexec.ExitError
	if errors.As(err, &xe) {
		e := domain.Errorf(domain.KindInternal, "Child process (%s) unexpected exit status %d", strings.Join(argv, " "), xe.Code)
		if detail := strings.TrimSpace(xe.Stderr); detail != "" {
			e.Detail += ": " + detail
		}
		e.Err = err
		return e
	}
	return &domain.Error{Kind: domain.KindInternal, Detail: err.Error(), Err: err}
}

// NotMountedError is what a refresh of an fs or netfs pool returns when its
// filesystem is no longer mounted. libvirt silently lists the directory
// underneath instead, showing the host's filesystem as the pool's; failing
// makes the service mark the pool inactive, as for a vanished dir pool.
func NotMountedError(def *domain.PoolDef) *domain.Error {
	return domain.Errorf(domain.KindOperationInvalid,
		"storage pool '%s' is not mounted on '%s': the filesystem was unmounted behind our back", def.Name, def.Target.Path)
}
