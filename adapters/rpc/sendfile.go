package rpc

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/ports"
	"github.com/virtstoraged-go/virtstoraged/xdr"
)

// Downloads whose reader hands out file sections (ports.VolumeSectionReader)
// send them with sendfile: the socket takes the data from the page cache, one
// copy of every byte fewer than a read into a buffer and a write from it.
//
// The connection's writer does the sendfile, since a frame must go out whole.
// A section whose pages are not all in memory would make the writer wait for
// the disk, or for an NFS server that stopped answering, while every other
// reply of the connection, keepalive PONGs included, waits behind it. Such a
// section is read by the download's own goroutine first, as the buffered path
// does, and sent from there.

// fileSection is the body of a download packet still in its file: n bytes at
// off of fd, which the item owns (a dup) until its done runs.
type fileSection struct {
	fd  int
	off int64
	n   int
}

// canSendFiles reports whether the connection's socket takes file sections.
func (c *conn) canSendFiles() bool {
	_, ok := c.nc.(*rawIO)
	return ok
}

// sectionSender is the sendData of pumpDownload for a reader of sections. It
// returns the hole that follows the data it sent, if any.
func sectionSender(s *stream, rd ports.VolumeSectionReader, hdr []byte) func() (int64, error) {
	var frame []byte // for sections not in memory: read into it, then sent
	var pages []byte // inMemory's scratch
	return func() (int64, error) {
		fd, off, n, hole, err := rd.NextSection(downloadChunk)
		if n == 0 {
			return hole, err
		}
		var serr error
		if inMemory(fd, off, n, &pages) {
			// hdr is free again once a send returns: it waits for the writer.
			binary.BigEndian.PutUint32(hdr, uint32(xdr.MinFrameLen+n))
			serr = s.sendSection(hdr, fd, off, n)
		} else {
			if frame == nil {
				frame = make([]byte, xdr.MinFrameLen+downloadChunk)
				copy(frame, hdr)
			}
			body := frame[xdr.MinFrameLen : xdr.MinFrameLen+n]
			if rerr := preadSection(fd, body, off); rerr != nil {
				return 0, rerr
			}
			binary.BigEndian.PutUint32(frame, uint32(xdr.MinFrameLen+n))
			serr = s.send(s.ctx, frame[:xdr.MinFrameLen+n])
		}
		if serr != nil {
			return 0, serr
		}
		return hole, err
	}
}

// preadSection fills body from off of fd; what lies past the end of a file
// that shrank reads as zeros, as sendSection sends it.
func preadSection(fd int, body []byte, off int64) error {
	got := 0
	for got < len(body) {
		r, err := unix.Pread(fd, body[got:], off+int64(got))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return os.NewSyscallError("pread", err)
		}
		if r == 0 {
			clear(body[got:])
			break
		}
		got += r
	}
	return nil
}

// inMemory reports whether every page of the n bytes at off of fd is in the
// page cache, so that sending them cannot wait for a disk or a server.
// cachestat (Linux 6.5) answers in one system call; on older kernels
// mincoreInMemory does, at several times the cost. A file neither can look at
// (procfs) is taken as not in memory. pages is scratch space kept between
// calls.
func inMemory(fd int, off int64, n int, pages *[]byte) bool {
	if !noCachestat.Load() {
		start, length, count := pageSpan(off, n)
		var st unix.Cachestat_t
		err := unix.Cachestat(uint(fd), &unix.CachestatRange{Off: uint64(start), Len: uint64(length)}, &st, 0)
		if err == nil {
			return st.Cache == uint64(count)
		}
		if !errors.Is(err, unix.ENOSYS) {
			return false
		}
		noCachestat.Store(true)
	}
	return mincoreInMemory(fd, off, n, pages)
}

// noCachestat is set once the kernel turned out not to have cachestat.
var noCachestat atomic.Bool

// pageSpan returns the pages that hold n bytes at off: where the first
// starts, how many bytes they span and how many there are.
func pageSpan(off int64, n int) (start, length int64, count int) {
	pageSize := int64(os.Getpagesize())
	start = off &^ (pageSize - 1)
	length = off + int64(n) - start
	return start, length, int((length + pageSize - 1) / pageSize)
}

// mincoreInMemory is inMemory through a mapping of the section (never
// touched, so nothing is read) and mincore. Each unmapping costs the other
// CPUs running the daemon a TLB flush, which is why cachestat comes first.
func mincoreInMemory(fd int, off int64, n int, pages *[]byte) bool {
	start, length, count := pageSpan(off, n)
	m, err := unix.Mmap(fd, start, int(length), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return false
	}
	defer func() { _ = unix.Munmap(m) }()
	if cap(*pages) < count {
		*pages = make([]byte, count)
	}
	vec := (*pages)[:count]
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		return false
	}
	for _, v := range vec {
		if v&1 == 0 {
			return false
		}
	}
	return true
}

// sendSection sends a data packet whose body, n bytes at off of the file
// open as fd, goes from the file to the socket without passing through us.
func (st *stream) sendSection(hdr []byte, fd int, off int64, n int) error {
	return st.sendWith(st.ctx, func(ctx context.Context) error { return st.c.writeSection(ctx, hdr, fd, off, n) })
}

// writeSection is write for a frame whose body is n bytes at off of the file
// open as fd: hdr goes out, then the section straight from the file. The item
// holds its own duplicate of fd, closed once the writer is done with it, so
// that a reader closed meanwhile (the client hung up) cannot make the writer
// send from whatever file takes the descriptor's number next.
func (c *conn) writeSection(ctx context.Context, hdr []byte, fd int, off int64, n int) error {
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("fcntl", err)
	}
	return c.writeItem(ctx, outItem{buf: hdr, section: fileSection{fd: dup, off: off, n: n}}, func() { _ = unix.Close(dup) })
}

// sendSection is the writer's half: the section goes out with sendfile. A
// file that shrank since its length went into the frame header leaves the
// frame short, which would break the framing for everything after it: the
// rest is made up with zeros, as a read past the end of the file would see.
func (c *conn) sendSection(sec fileSection) error {
	raw, ok := c.nc.(*rawIO)
	if !ok {
		return errors.New("rpc: this connection cannot send files")
	}
	sent, err := raw.sendFile(sec.fd, sec.off, sec.n)
	if err != nil {
		return err
	}
	for sent < sec.n {
		w, err := c.nc.Write(zeroPage[:min(len(zeroPage), sec.n-sent)])
		if err != nil {
			return err
		}
		sent += w
	}
	return nil
}

var zeroPage = make([]byte, 64<<10)

// sendFile sends n bytes at off of the file open as fd with sendfile(2). It
// returns how many went out, fewer than n only when the file ends first.
func (r *rawIO) sendFile(fd int, off int64, n int) (int, error) {
	sent := 0
	var serr error
	err := r.rc.Write(func(sock uintptr) bool {
		for sent < n {
			m, e := unix.Sendfile(int(sock), fd, &off, n-sent)
			switch {
			case e == unix.EINTR:
			case e == unix.EAGAIN:
				sent += max(m, 0)
				return false
			case e != nil:
				serr = os.NewSyscallError("sendfile", e)
				return true
			case m == 0:
				return true // the file ends here
			default:
				sent += m
			}
		}
		return true
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return sent, &net.OpError{Op: "sendfile", Net: "unix", Addr: r.LocalAddr(), Err: err}
	}
	return sent, nil
}
