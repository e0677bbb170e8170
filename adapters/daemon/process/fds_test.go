package process_test

import (
	"os/exec"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/adapters/daemon/process"
)

// leakedFD returns a descriptor opened without close-on-exec, as one inherited
// from a careless parent would be (dup never sets the flag).
func leakedFD(t *testing.T) int {
	t.Helper()
	fd, err := unix.Dup(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Close(fd) })
	if flags, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); flags&unix.FD_CLOEXEC != 0 {
		t.Fatalf("dup'd descriptor %d already close-on-exec", fd)
	}
	return fd
}

// childSees reports whether a command run through os/exec has fd open.
func childSees(t *testing.T, fd int) bool {
	t.Helper()
	err := exec.Command("/bin/sh", "-c", "test -e /proc/self/fd/"+strconv.Itoa(fd)).Run()
	if _, isExit := err.(*exec.ExitError); err != nil && !isExit {
		t.Fatal(err)
	}
	return err == nil
}

func TestSealInheritedFDs(t *testing.T) {
	fd := leakedFD(t)
	if !childSees(t, fd) {
		t.Fatalf("a child does not see the unsealed descriptor %d: the check proves nothing", fd)
	}
	if err := process.SealInheritedFDs(); err != nil {
		t.Fatal(err)
	}
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err != nil {
		t.Fatalf("descriptor %d closed instead of sealed: %v", fd, err)
	}
	if flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("descriptor %d not close-on-exec after SealInheritedFDs", fd)
	}
	if childSees(t, fd) {
		t.Errorf("a child still has descriptor %d", fd)
	}
	// stdin, stdout and stderr are the children's too.
	for std := 0; std <= 2; std++ {
		if flags, _ := unix.FcntlInt(uintptr(std), unix.F_GETFD, 0); flags&unix.FD_CLOEXEC != 0 {
			t.Errorf("descriptor %d sealed", std)
		}
	}
}
