package process

import (
	"testing"

	"golang.org/x/sys/unix"
)

// The fallback for kernels without close_range's CLOEXEC mode.
func TestSealListed(t *testing.T) {
	fd, err := unix.Dup(0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := sealListed("/proc/self/fd"); err != nil {
		t.Fatal(err)
	}
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("descriptor %d: flags %#x, %v; want FD_CLOEXEC", fd, flags, err)
	}
	if flags, _ := unix.FcntlInt(0, unix.F_GETFD, 0); flags&unix.FD_CLOEXEC != 0 {
		t.Error("stdin sealed")
	}
}
