package rpc

import (
	"errors"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

var errTooManyFiles = syscall.EMFILE

// peerCred reads SO_PEERCRED of a UNIX socket connection.
func peerCred(nc net.Conn) (pid, uid, gid int32, err error) {
	uc, ok := nc.(*net.UnixConn)
	if !ok {
		return -1, -1, -1, errors.New("rpc: peer credentials need a UNIX socket")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return -1, -1, -1, err
	}
	var cred *unix.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) {
		cred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return -1, -1, -1, err
	}
	if serr != nil {
		return -1, -1, -1, serr
	}
	return cred.Pid, int32(cred.Uid), int32(cred.Gid), nil
}
