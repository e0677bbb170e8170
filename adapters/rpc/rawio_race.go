//go:build race

package rpc

import (
	"errors"
	"syscall"
)

// Under the race detector the syscall package's wrappers are used: they tell
// the detector that a write to a socket happens before the read of it, which
// raw system calls hide (the kernel orders them, the detector cannot see it).

func rawRead(fd uintptr, p []byte) (int, syscall.Errno) {
	n, err := syscall.Read(int(fd), p)
	return max(n, 0), errnoOf(err)
}

func rawWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	n, err := syscall.Write(int(fd), p)
	return max(n, 0), errnoOf(err)
}

func errnoOf(err error) syscall.Errno {
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return 0
}
