// Package blockdev does the local data operations of block-device volumes
// (LVM logical volumes, multipath maps): upload and download streams, wipes and
// raw copies, done on the device node itself. Its zero writer serves files too. It is libvirt's generic "local"
// implementation restricted to devices, whose size is where they end rather
// than a file length that writes can grow. It also runs the blkid probe the fs
// and logical builds make before writing over a device (blkid.go).
package blockdev

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/adapters/lib/oserr"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// chunk is the unit of zeroing and copying: big enough for sequential device
// throughput, small enough to react to cancellation quickly.
const chunk = 1 << 20

// SysErr builds libvirt's virReportSystemError, "<what>: <strerror>", from an
// error carrying an errno (or any error, whose text is then used).
func SysErr(err error, format string, args ...any) *domain.Error {
	return oserr.System(err, format, args...)
}

func streamErr(err error, format string, args ...any) *domain.Error {
	e := SysErr(err, format, args...)
	e.Domain = domain.FromStreams
	return e
}

// CommandError is virCommandRun's error for a failed tool.
func CommandError(err error, argv []string) *domain.Error { return oserr.Command(err, argv) }

// Size returns the size of the device (or file) open as fd: where it ends.
func Size(fd int) (int64, error) {
	return unix.Seek(fd, 0, unix.SEEK_END)
}

// WriteZeros writes length zero bytes at off in chunks, checking ctx between
// chunks so that a long wipe stops when the client goes away, and reporting
// each chunk to the job's progress (ports.ProgressOf). Files use it too (dir
// pools: wipes, allocation without fallocate, holes in uploads).
func WriteZeros(ctx context.Context, fd int, off, length int64) error {
	progress := ports.ProgressOf(ctx)
	buf := make([]byte, min(length, chunk))
	for length > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(length, int64(len(buf)))
		w, err := unix.Pwrite(fd, buf[:n], off)
		if err != nil {
			return err
		}
		progress.Advance(int64(w))
		off += int64(w)
		length -= int64(w)
	}
	return nil
}

// ZeroHeadTail zeroes the first and last n bytes of a device, as libvirt does
// before pvcreate so that no stale signature (an old PV label, a partition
// table) survives at either end.
func ZeroHeadTail(path string, n int64) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return SysErr(err, "cannot open device '%s'", path)
	}
	defer unix.Close(fd)
	size, err := Size(fd)
	if err != nil {
		return SysErr(err, "cannot seek to end of file '%s'", path)
	}
	head := min(n, size)
	if err := WriteZeros(context.Background(), fd, 0, head); err != nil {
		return SysErr(err, "cannot clear device header of '%s'", path)
	}
	if tail := max(size-n, head); tail < size {
		if err := WriteZeros(context.Background(), fd, tail, size-tail); err != nil {
			return SysErr(err, "cannot clear device tail of '%s'", path)
		}
	}
	if err := unix.Fsync(fd); err != nil {
		return SysErr(err, "cannot sync device '%s'", path)
	}
	return nil
}

// Wipe overwrites a device: zero in process (then fdatasync), every other
// algorithm through `scrub -f -p ALG DEV`; trim is refused as libvirt does.
func Wipe(ctx context.Context, runner ports.CommandRunner, path string, algorithm domain.WipeAlgorithm) error {
	if !algorithm.Valid() {
		return domain.Errorf(domain.KindInvalidArg, "wiping algorithm %d not supported", algorithm)
	}
	if algorithm == domain.WipeTrim {
		return domain.Errorf(domain.KindArgumentUnsupported, "'trim' algorithm not supported")
	}
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return SysErr(err, "Failed to open storage volume with path '%s'", path)
	}
	defer unix.Close(fd)
	if algorithm != domain.WipeZero {
		// scrub takes a symbolic link for an empty file, writes nothing and
		// exits 0, and /dev/VG/LV or /dev/mapper/NAME are links to
		// /dev/dm-N: it gets the node this open reached. (libvirt hands it
		// the link, and its wipes of LVs with an algorithm do nothing.)
		node, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
		if err != nil {
			return SysErr(err, "cannot resolve storage volume path '%s'", path)
		}
		argv := ScrubArgv(node, algorithm)
		if _, err := runner.Run(ctx, ports.Command{Path: argv[0], Args: argv[1:]}); err != nil {
			return CommandError(err, argv)
		}
		return nil
	}
	size, err := Size(fd)
	if err != nil {
		return SysErr(err, "Failed to seek in storage volume with path '%s'", path)
	}
	if err := WriteZeros(ctx, fd, 0, size); err != nil {
		if ctx.Err() != nil {
			return err
		}
		return SysErr(err, "Failed to write to storage volume with path '%s'", path)
	}
	if err := unix.Fdatasync(fd); err != nil {
		return SysErr(err, "cannot sync data to volume with path '%s'", path)
	}
	return nil
}

// ScrubArgv is the scrub(1) command line libvirt runs for a wipe algorithm.
func ScrubArgv(path string, algorithm domain.WipeAlgorithm) []string {
	return []string{"scrub", "-f", "-p", algorithm.ScrubName(), path}
}

// Copy copies length bytes (0 = the whole source) from the start of src to
// the start of the device dst, refusing to write past dst's end.
func Copy(ctx context.Context, dst, src string, length uint64) error {
	in, err := unix.Open(src, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return SysErr(err, "could not open input path '%s'", src)
	}
	defer unix.Close(in)
	out, err := unix.Open(dst, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return SysErr(err, "could not open output path '%s'", dst)
	}
	defer unix.Close(out)
	srcSize, err := Size(in)
	if err != nil {
		return SysErr(err, "cannot seek in '%s'", src)
	}
	dstSize, err := Size(out)
	if err != nil {
		return SysErr(err, "cannot seek in '%s'", dst)
	}
	n := srcSize
	if length > 0 && int64(length) < n {
		n = int64(length)
	}
	if n > dstSize {
		return domain.Errorf(domain.KindInvalidArg, "source '%s' (%d bytes) does not fit in '%s' (%d bytes)", src, n, dst, dstSize)
	}
	progress := ports.ProgressOf(ctx)
	buf := make([]byte, chunk)
	var off int64
	for off < n {
		if err := ctx.Err(); err != nil {
			return err
		}
		r, err := unix.Pread(in, buf[:min(int64(len(buf)), n-off)], off)
		if err != nil {
			return SysErr(err, "failed reading from file '%s'", src)
		}
		if r == 0 {
			break
		}
		for w := 0; w < r; {
			k, err := unix.Pwrite(out, buf[w:r], off+int64(w))
			if err != nil {
				return SysErr(err, "failed writing to file '%s'", dst)
			}
			w += k
		}
		progress.Advance(int64(r))
		off += int64(r)
	}
	if err := unix.Fdatasync(out); err != nil {
		return SysErr(err, "cannot sync data to file '%s'", dst)
	}
	return nil
}

// Upload opens the device for an upload stream of length bytes (0 = to the
// end) at offset. Writes stop at the device's end with libvirt's ENOSPC
// stream error. fn names the libvirt function in the unsupported-flags error.
func Upload(path string, offset, length uint64, flags uint32, fn string) (ports.VolumeWriter, error) {
	fd, size, err := openStream(path, unix.O_WRONLY, flags, fn)
	if err != nil {
		return nil, err
	}
	if offset > uint64(size) {
		unix.Close(fd)
		return nil, domain.Errorf(domain.KindInvalidArg, "offset %d is past the end of volume '%s' (capacity %d)", offset, path, size)
	}
	return &writer{fd: fd, path: path, pos: int64(offset), end: streamEnd(size, offset, length)}, nil
}

// openStream checks a stream's flags (only SPARSE is known) and opens the
// device with mode, returning its size.
func openStream(path string, mode int, flags uint32, fn string) (int, int64, error) {
	if flags&^domain.StreamSparse != 0 {
		return -1, 0, domain.ErrUnsupportedFlags(flags&^domain.StreamSparse, fn)
	}
	fd, err := unix.Open(path, mode|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, 0, SysErr(err, "Unable to open '%s'", path)
	}
	size, err := Size(fd)
	if err != nil {
		unix.Close(fd)
		return -1, 0, SysErr(err, "Unable to seek in '%s'", path)
	}
	return fd, size, nil
}

// streamEnd is where a stream of length bytes (0 = to the end) from offset
// stops on a device of size bytes.
func streamEnd(size int64, offset, length uint64) int64 {
	if length > 0 && offset+length < uint64(size) {
		return int64(offset + length)
	}
	return size
}

type writer struct {
	fd       int
	path     string
	pos, end int64
	closed   bool
}

// Write stores p at the current position; bytes past the end are refused.
func (w *writer) Write(p []byte) (int, error) {
	if w.closed {
		return 0, streamErr(unix.EBADF, "cannot write to stream")
	}
	data := p[:min(int64(len(p)), max(w.end-w.pos, 0))]
	written := 0
	for len(data) > 0 {
		n, err := unix.Pwrite(w.fd, data, w.pos)
		if err != nil {
			return written, streamErr(err, "cannot write to stream")
		}
		data = data[n:]
		written += n
		w.pos += int64(n)
	}
	if written < len(p) {
		return written, streamErr(unix.ENOSPC, "cannot write to stream")
	}
	return written, nil
}

// Hole writes zeros: a device has no holes to punch, and a hole in the
// stream must read back as zeros.
func (w *writer) Hole(length int64) error {
	if w.closed {
		return streamErr(unix.EBADF, "cannot write to stream")
	}
	if length < 0 || length > w.end-w.pos {
		return streamErr(unix.ENOSPC, "cannot write to stream")
	}
	if err := WriteZeros(context.Background(), w.fd, w.pos, length); err != nil {
		return streamErr(err, "cannot write to stream")
	}
	w.pos += length
	return nil
}

// Finish flushes the device: a guest started right after the upload must
// see the data even if the host then crashes.
func (w *writer) Finish(ctx context.Context) error {
	if w.closed {
		return nil
	}
	w.closed = true
	serr := unix.Fdatasync(w.fd)
	cerr := unix.Close(w.fd)
	if serr != nil {
		return SysErr(serr, "cannot sync data to volume with path '%s'", w.path)
	}
	if cerr != nil {
		return SysErr(cerr, "cannot close file '%s'", w.path)
	}
	return nil
}

// Abort closes the device, keeping what was written.
func (w *writer) Abort() {
	if !w.closed {
		w.closed = true
		unix.Close(w.fd)
	}
}

// Download opens the device for a download stream of length bytes (0 = to
// the end) from offset. A device reports no holes, so a sparse download sends
// every byte as data.
func Download(path string, offset, length uint64, flags uint32, fn string) (ports.VolumeReader, error) {
	fd, size, err := openStream(path, unix.O_RDONLY, flags, fn)
	if err != nil {
		return nil, err
	}
	return &reader{fd: fd, path: path, pos: int64(offset), end: streamEnd(size, offset, length)}, nil
}

type reader struct {
	fd       int
	path     string
	pos, end int64
	closed   bool
}

// Next returns the next data bytes or io.EOF.
func (r *reader) Next(buf []byte) (int, int64, error) {
	if r.closed {
		return 0, 0, io.ErrClosedPipe
	}
	if r.pos >= r.end {
		return 0, 0, io.EOF
	}
	if want := r.end - r.pos; int64(len(buf)) > want {
		buf = buf[:want]
	}
	n, err := unix.Pread(r.fd, buf, r.pos)
	if err != nil {
		return 0, 0, SysErr(err, "cannot read from '%s'", r.path)
	}
	if n == 0 {
		r.end = r.pos
		return 0, 0, io.EOF
	}
	r.pos += int64(n)
	return n, 0, nil
}

var _ ports.VolumeSectionReader = (*reader)(nil)

// SectionError implements ports.VolumeSectionReader.
func (r *reader) SectionError(err error) error {
	return SysErr(err, "cannot read from '%s'", r.path)
}

// NextSection implements ports.VolumeSectionReader.
func (r *reader) NextSection(max int) (ports.FileSection, error) {
	if r.closed {
		return ports.FileSection{}, io.ErrClosedPipe
	}
	if r.pos >= r.end {
		return ports.FileSection{}, io.EOF
	}
	sec := ports.FileSection{FD: r.fd, Offset: r.pos, Len: int(min(int64(max), r.end-r.pos))}
	r.pos += int64(sec.Len)
	return sec, nil
}

// Close releases the device.
func (r *reader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	return unix.Close(r.fd)
}

// StableLinks maps each device node to the first link in dir that points at
// it: how libvirt finds a volume's path in a pool target of stable links
// such as /dev/disk/by-path (virStorageBackendStablePath), for every device
// in one pass over the directory.
func StableLinks(dir string) (map[string]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, SysErr(err, "cannot read dir '%s'", dir)
	}
	links := map[string]string{}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		dst, err := filepath.EvalSymlinks(p)
		if err != nil {
			continue
		}
		if _, seen := links[dst]; !seen {
			links[dst] = p
		}
	}
	return links, nil
}
