package rpc

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"unsafe"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/ports"
	"github.com/virtstoraged-go/virtstoraged/xdr"
)

// Downloads whose reader hands out file sections (ports.VolumeSectionReader)
// send them with sendfile: the socket takes the data from the page cache, one
// copy of every byte fewer than a read into a buffer and a write from it.
//
// The connection's writer does the sendfile, since a frame must go out whole.
// A section whose pages are not all in memory and read would make the writer
// wait for the disk while every other reply of the connection, keepalive
// PONGs included, waits behind it. Such a section is read by the download's
// own goroutine first, as the buffered path does, and sent from there.

// fileSection is the body of a download packet still in its file: n bytes at
// off of fd, which the item owns (a dup) until its done runs.
type fileSection struct {
	fd  int
	off int64
	n   int
}

// fileError is what the writer reports for a section it could not take whole
// from its file. The frame was made whole with zeros and the connection goes
// on. err == nil: the file ended first (it shrank since), and the download
// ends there, as a read reaching the end would. Otherwise reading the file
// failed with err, and so does the stream, with the reader's text.
type fileError struct{ err error }

func (e *fileError) Error() string {
	if e.err == nil {
		return "rpc: the file ended within the section"
	}
	return e.err.Error()
}

// canSendFiles reports whether the connection's socket takes file sections.
func (c *conn) canSendFiles() bool {
	_, ok := c.nc.(*rawIO)
	return ok
}

// sectionSender is pumpDownload's sender for a reader of sections.
type sectionSender struct {
	s     *stream
	rd    ports.VolumeSectionReader
	hdr   []byte        // the frame header of sendfile packets
	frame []byte        // for sections not in memory: read into it, then sent
	pages pageMap       // what tells whether a section is in memory
	busy  chan struct{} // closed when the writer is done with the last section
	// byFile and byRead count the packets sent each way, for the debug log.
	byFile, byRead int
}

func newSectionSender(s *stream, rd ports.VolumeSectionReader, hdr []byte) *sectionSender {
	return &sectionSender{s: s, rd: rd, hdr: hdr}
}

// send sends the next data packet, if any, and returns the hole that follows.
func (ss *sectionSender) send() (int64, error) {
	sec, err := ss.rd.NextSection(downloadChunk)
	fd, off, n, hole := sec.FD, sec.Offset, sec.Len, sec.Hole
	if n == 0 {
		return hole, err
	}
	if ss.pages.inMemory(fd, off, n) {
		binary.BigEndian.PutUint32(ss.hdr, uint32(xdr.MinFrameLen+n))
		ss.byFile++
		ss.busy = make(chan struct{})
		serr := ss.s.sendFileFrame(ss.hdr, fd, off, n, ss.busy)
		var fe *fileError
		switch {
		case errors.As(serr, &fe) && fe.err == nil:
			return 0, io.EOF
		case errors.As(serr, &fe):
			return 0, ss.rd.SectionError(fe.err)
		case serr != nil:
			return 0, serr
		}
		return hole, err
	}
	if ss.frame == nil {
		ss.frame = make([]byte, xdr.MinFrameLen+downloadChunk)
		copy(ss.frame, ss.hdr)
	}
	got, rerr := preadFull(fd, ss.frame[xdr.MinFrameLen:xdr.MinFrameLen+n], off)
	if rerr != nil {
		return 0, ss.rd.SectionError(rerr)
	}
	if got > 0 {
		ss.byRead++
		binary.BigEndian.PutUint32(ss.frame, uint32(xdr.MinFrameLen+got))
		if serr := ss.s.send(ss.s.ctx, ss.frame[:xdr.MinFrameLen+got]); serr != nil {
			return 0, serr
		}
	}
	if got < n {
		return 0, io.EOF // the file shrank under us: end where the data ends
	}
	return hole, err
}

// idle is closed once the writer no longer uses the reader's file: at once
// unless the download ended (aborted) while a section was still queued.
func (ss *sectionSender) idle() <-chan struct{} {
	if ss.busy == nil {
		return closedChan
	}
	return ss.busy
}

func (ss *sectionSender) close() {
	ss.pages.unmap()
	ss.s.c.log.WithFields(logrus.Fields{"serial": ss.s.h.serial, "sendfile": ss.byFile, "read": ss.byRead}).
		Debug("rpc: download packets sent from the page cache, and read first")
}

// preadFull reads len(body) bytes at off of fd, fewer where the file ends.
func preadFull(fd int, body []byte, off int64) (int, error) {
	got := 0
	for got < len(body) {
		r, err := unix.Pread(fd, body[got:], off+int64(got))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return got, err
		}
		if r == 0 {
			break
		}
		got += r
	}
	return got, nil
}

// pageMap tells whether sections of one file are in memory: mincore over a
// mapping of the file (never touched, so nothing is read), made for a window
// of it at a time so that the unmapping, which costs a TLB flush on every
// CPU running the daemon, comes once a GiB rather than once a packet.
// mincore counts a page only once its data is there (unlike cachestat, which
// also counts pages readahead has only begun to read). A file that cannot be
// mapped (procfs, a window past what the address space holds) is taken as
// not in memory; so is every page when the daemon may not learn about the
// file's cache (mincore then answers only for pages mapped in, none here).
type pageMap struct {
	fd    int
	start int64  // file offset of m
	m     []byte // the window mapped; nil when none
	vec   []byte // mincore's answer, kept between calls
}

// pageWindow is how much of a file one mapping covers: one GiB plus a packet,
// so that a section starting anywhere in the GiB fits.
const pageWindow = 1<<30 + downloadChunk

// inMemory reports whether every page of the n bytes at off of fd is in
// memory, so that sending them cannot wait for a disk.
func (p *pageMap) inMemory(fd int, off int64, n int) bool {
	pageSize := int64(os.Getpagesize())
	first := off &^ (pageSize - 1)
	end := off + int64(n)
	if p.m == nil || p.fd != fd || first < p.start || end > p.start+int64(len(p.m)) {
		p.unmap()
		start := off &^ (1<<30 - 1)
		m, err := unix.Mmap(fd, start, pageWindow, unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			return false
		}
		p.fd, p.start, p.m = fd, start, m
	}
	span := p.m[first-p.start : end-p.start]
	count := (len(span) + int(pageSize) - 1) / int(pageSize)
	if cap(p.vec) < count {
		p.vec = make([]byte, count)
	}
	vec := p.vec[:count]
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&span[0])), uintptr(len(span)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		return false
	}
	for _, v := range vec {
		if v&1 == 0 {
			return false
		}
	}
	return true
}

func (p *pageMap) unmap() {
	if p.m != nil {
		_ = unix.Munmap(p.m)
		p.m = nil
	}
}

// sendFileFrame sends a data packet whose body, n bytes at off of the file
// open as fd, goes from the file to the socket without passing through us.
// released is closed once the writer is done with the file. What the writer
// found wrong with the file (*fileError) comes back as it is; any other
// failure is xdr.ErrStreamAborted.
func (st *stream) sendFileFrame(hdr []byte, fd int, off int64, n int, released chan struct{}) error {
	return st.sendWith(st.ctx, func(ctx context.Context) error {
		return st.c.writeFileFrame(ctx, hdr, fd, off, n, released)
	})
}

// writeFileFrame is write for a frame whose body is n bytes at off of the
// file open as fd: hdr goes out, then the body straight from the file. The
// item holds its own duplicate of fd, closed once the writer is done with it,
// so that a reader closed meanwhile cannot make the writer send from
// whatever file takes the descriptor's number next.
func (c *conn) writeFileFrame(ctx context.Context, hdr []byte, fd int, off int64, n int, released chan struct{}) error {
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		close(released)
		return os.NewSyscallError("fcntl", err)
	}
	return c.writeItem(ctx, outItem{buf: hdr, section: fileSection{fd: dup, off: off, n: n}}, func() {
		_ = unix.Close(dup)
		close(released)
	})
}

// writeFileBody is the writer's half: the section goes out with sendfile.
// Whatever sendfile could not take from the file, because the file ended
// (it shrank) or a read of it failed, is made up with zeros, so that the
// frame is whole and the connection can go on: fileErr (*fileError) tells
// the download why. err is the socket's failure, which ends the connection.
func (c *conn) writeFileBody(sec fileSection) (fileErr, err error) {
	raw, ok := c.nc.(*rawIO)
	if !ok {
		return nil, errors.New("rpc: this connection cannot send files")
	}
	sent, serr := raw.sendFile(sec.fd, sec.off, sec.n)
	if sent < sec.n {
		// sendfile does not say which side failed: if the zeros go out, the
		// socket is fine and it was the file.
		fileErr = &fileError{err: serr}
	}
	for sent < sec.n {
		w, err := c.nc.Write(zeroPage[:min(len(zeroPage), sec.n-sent)])
		if err != nil {
			return nil, err
		}
		sent += w
	}
	return fileErr, nil
}

var zeroPage = make([]byte, 64<<10)

// sendFile sends n bytes at off of the file open as fd with sendfile(2). It
// returns how many went out: fewer than n when the file ends first, or with
// the error that stopped it, the file's or the socket's.
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
				serr = e
				return true
			case m == 0:
				return true // the file ends here
			default:
				sent += m
			}
		}
		return true
	})
	if err != nil {
		return sent, &net.OpError{Op: "sendfile", Net: "unix", Addr: r.LocalAddr(), Err: err}
	}
	return sent, serr
}
