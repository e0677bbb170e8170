package rpc

import (
	"io"
	"net"
	"os"
	"syscall"
)

// rawIO reads and writes a client socket with raw system calls, still waiting
// for readiness through Go's poller. The socket is non-blocking, so read and
// write never block in the kernel, and the runtime's syscall bookkeeping buys
// nothing: on a lockstep client it wakes the runtime's monitor thread on
// every call, which cost a third of the daemon's CPU per small call.
//
// One goroutine reads and one writes at a time (the reader hand-off and the
// output queue's claim see to that), so the buffers live in the struct and
// the callbacks are built once.
type rawIO struct {
	net.Conn
	rc syscall.RawConn

	rbuf  []byte
	rn    int
	rerr  syscall.Errno
	readF func(fd uintptr) bool

	wbuf   []byte
	wn     int
	werr   syscall.Errno
	writeF func(fd uintptr) bool
}

// sendBuffer is the SO_SNDBUF asked for each client connection.
const sendBuffer = 1 << 20

// setSendBuffer asks for an n-byte send buffer: forced past
// net.core.wmem_max when the daemon has CAP_NET_ADMIN (as root), else as far
// as that limit allows.
func setSendBuffer(uc *net.UnixConn, n int) {
	rc, err := uc.SyscallConn()
	if err != nil {
		return
	}
	var serr error
	if rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUFFORCE, n)
	}) == nil && serr == nil {
		return
	}
	_ = uc.SetWriteBuffer(n)
}

// newRawIO wraps nc when it exposes its file descriptor, and returns it
// unchanged otherwise (tests use in-memory pipes).
func newRawIO(nc net.Conn) net.Conn {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nc
	}
	if uc, ok := nc.(*net.UnixConn); ok {
		// A download packet is 256 KiB, above the default send buffer
		// (208 KiB): the daemon would wait for the client to drain each one
		// before reading the next from disk. Room for a few lets both run at
		// once (download 2.4 -> 3.4 GB/s here). It is a limit, not an
		// allocation: idle clients cost nothing. The kernel caps it at
		// net.core.wmem_max (208 KiB on most hosts) unless we may force it.
		setSendBuffer(uc, sendBuffer)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nc
	}
	r := &rawIO{Conn: nc, rc: rc}
	r.readF = r.readOnce
	r.writeF = r.writeSome
	return r
}

func (r *rawIO) readOnce(fd uintptr) bool {
	for {
		n, e := rawRead(fd, r.rbuf)
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		r.rn, r.rerr = int(n), e
		return true
	}
}

func (r *rawIO) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.rbuf = p
	err := r.rc.Read(r.readF)
	r.rbuf = nil
	switch {
	case err != nil:
		return 0, err
	case r.rerr != 0:
		return 0, &net.OpError{Op: "read", Net: "unix", Addr: r.LocalAddr(), Err: os.NewSyscallError("read", r.rerr)}
	case r.rn == 0:
		return 0, io.EOF
	}
	return r.rn, nil
}

func (r *rawIO) writeSome(fd uintptr) bool {
	for r.wn < len(r.wbuf) {
		n, e := rawWrite(fd, r.wbuf[r.wn:])
		switch e {
		case 0:
			r.wn += int(n)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			r.werr = e
			return true
		}
	}
	return true
}

func (r *rawIO) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.wbuf, r.wn, r.werr = p, 0, 0
	err := r.rc.Write(r.writeF)
	n := r.wn
	r.wbuf = nil
	switch {
	case err != nil:
		return n, err
	case r.werr != 0:
		return n, &net.OpError{Op: "write", Net: "unix", Addr: r.LocalAddr(), Err: os.NewSyscallError("write", r.werr)}
	}
	return n, nil
}
