package sockets

import (
	"errors"
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// PeerCred returns the process, user and group ids of the process at the
// other end of a UNIX socket connection, as the kernel recorded them at
// connect time.
func PeerCred(c net.Conn) (pid, uid, gid int32, err error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, 0, 0, fmt.Errorf("sockets: peer credentials: %T is not a socket", c)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0, 0, 0, fmt.Errorf("sockets: peer credentials: %w", err)
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, 0, 0, fmt.Errorf("sockets: peer credentials: %w", err)
	}
	if credErr != nil {
		return 0, 0, 0, fmt.Errorf("sockets: SO_PEERCRED: %w", credErr)
	}
	if cred == nil {
		return 0, 0, 0, errors.New("sockets: SO_PEERCRED returned nothing")
	}
	return cred.Pid, int32(cred.Uid), int32(cred.Gid), nil
}
