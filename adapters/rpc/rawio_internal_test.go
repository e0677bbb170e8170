package rpc

import (
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
)

func TestSetSendBuffer(t *testing.T) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fds[0]), "a")
	defer syscall.Close(fds[1])
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	uc := nc.(*net.UnixConn)
	setSendBuffer(uc, sendBuffer)
	rc, _ := uc.SyscallConn()
	var got int
	if err := rc.Control(func(fd uintptr) {
		got, err = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF)
	}); err != nil {
		t.Fatal(err)
	}
	// The kernel doubles what it is given, for its own bookkeeping.
	want := sendBuffer
	if os.Geteuid() != 0 {
		if raw, err := os.ReadFile("/proc/sys/net/core/wmem_max"); err == nil {
			var max int
			if _, err := fmt.Sscan(string(raw), &max); err == nil && max < want {
				want = max
			}
		}
	}
	if got < want {
		t.Errorf("SO_SNDBUF = %d, want at least %d", got, want)
	}
}
