package process

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// SealInheritedFDs marks every descriptor above stderr close-on-exec. Whatever
// started the daemon (a shell, a service manager, a test harness) may have
// left descriptors open without that flag, and os/exec passes those on to
// every command the daemon runs: LVM then prefixes each error with "File
// descriptor N (...) leaked on lvcreate invocation", which reaches the user's
// error text. libvirt closes them in each child between fork and exec; Go
// gives us no hook there, so they are sealed once, before anything runs.
//
// Descriptors the daemon itself opens already carry the flag (the Go runtime
// and os always ask for it), so sealing every one is safe. The daemon keeps
// using the ones it needs: the socket-activation listeners and the readiness
// pipe of -d stay open in the daemon and are only kept from its children,
// which must not have them either.
func SealInheritedFDs() error {
	err := unix.CloseRange(3, math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("process: mark inherited descriptors close-on-exec: %w", err)
	}
	// Before Linux 5.11 close_range has no CLOEXEC mode (EINVAL), before 5.9
	// no close_range at all (ENOSYS): walk the open descriptors instead.
	return sealListed("/proc/self/fd")
}

// sealListed sets FD_CLOEXEC on the descriptors above stderr named in dir
// (/proc/self/fd).
func sealListed(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("process: list open descriptors: %w", err)
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < 3 {
			continue
		}
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if errors.Is(err, unix.EBADF) {
			continue // the directory's own descriptor, closed by now
		}
		if err != nil {
			return fmt.Errorf("process: descriptor %d: %w", fd, err)
		}
		if flags&unix.FD_CLOEXEC != 0 {
			continue
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, flags|unix.FD_CLOEXEC); err != nil && !errors.Is(err, unix.EBADF) {
			return fmt.Errorf("process: descriptor %d: %w", fd, err)
		}
	}
	return nil
}
