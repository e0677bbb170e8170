package dir

import (
	"context"
	"errors"
	"io"

	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/adapters/lib/blockdev"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// streamErr is the error a stream reports to the client, in libvirt's stream
// error domain ("cannot write to stream: No space left on device").
func streamErr(en unix.Errno, format string, args ...any) *domain.Error {
	e := errnoErr(en, format, args...)
	e.Domain = domain.FromStreams
	return e
}

// openStreamTarget checks a stream's flags (only SPARSE is known), opens the
// volume with mode and stats it, with libvirt's error texts; api names the
// libvirt function in the unsupported-flags error.
func openStreamTarget(vol *domain.VolDef, flags uint32, api string, mode int) (int, unix.Stat_t, error) {
	var st unix.Stat_t
	if flags&^domain.StreamSparse != 0 {
		return -1, st, domain.ErrUnsupportedFlags(flags&^domain.StreamSparse, api)
	}
	path := vol.Target.Path
	if vol.Type == domain.VolDir {
		return -1, st, errnoErr(unix.EISDIR, "Unable to open '%s'", path)
	}
	fd, err := unix.Open(path, mode|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, st, sysErr(err, "Unable to open '%s'", path)
	}
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, st, sysErr(err, "Unable to access '%s'", path)
	}
	return fd, st, nil
}

// UploadVol opens the volume for an upload stream of length bytes (0 = to the
// end) at offset. Unlike libvirt, the writer never writes past the volume's
// capacity (or its file size, when an image's metadata makes it larger).
func (v *FileVolumes) UploadVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, offset, length uint64, flags uint32) (ports.VolumeWriter, error) {
	fd, st, err := openStreamTarget(vol, flags, "virStorageBackendVolUploadLocal", unix.O_WRONLY)
	if err != nil {
		return nil, err
	}
	path := vol.Target.Path
	limit := max(vol.Capacity, uint64(st.Size))
	if st.Mode&unix.S_IFMT == unix.S_IFBLK {
		if end, err := unix.Seek(fd, 0, unix.SEEK_END); err == nil {
			limit = uint64(end)
		}
	}
	if offset > limit {
		unix.Close(fd)
		return nil, domain.Errorf(domain.KindInvalidArg, "offset %d is past the end of volume '%s' (capacity %d)", offset, path, limit)
	}
	end := limit
	lengthBound := false
	if length > 0 && length < limit-offset { // offset <= limit here, no wrap
		end, lengthBound = offset+length, true
	}
	return &uploader{fd: fd, path: path, pos: int64(offset), end: int64(end), lengthBound: lengthBound, size: st.Size, regular: st.Mode&unix.S_IFMT == unix.S_IFREG}, nil
}

type uploader struct {
	fd          int
	path        string
	pos, end    int64
	lengthBound bool // end comes from the length asked, not the capacity
	size        int64
	regular     bool
	closed      bool
}

func (u *uploader) overflow() error {
	if u.lengthBound {
		// libvirt's own words when more bytes come than --length allowed.
		return streamErr(unix.ENOSPC, "cannot write to stream")
	}
	return streamErr(unix.ENOSPC, "cannot write to stream: upload goes past the capacity of volume '%s'", u.path)
}

// Write stores p at the current position; bytes past the end are refused.
func (u *uploader) Write(p []byte) (int, error) {
	if u.closed {
		return 0, streamErr(unix.EBADF, "cannot write to stream")
	}
	room := u.end - u.pos
	data := p
	if int64(len(data)) > room {
		data = data[:max(room, 0)]
	}
	written := 0
	for len(data) > 0 {
		n, err := unix.Pwrite(u.fd, data, u.pos)
		if err != nil {
			return written, sysErr(err, "cannot write to stream")
		}
		data = data[n:]
		written += n
		u.pos += int64(n)
	}
	u.size = max(u.size, u.pos)
	if written < len(p) {
		return written, u.overflow()
	}
	return written, nil
}

// Hole makes [pos, pos+length) read back as zeros: the part inside the file is
// punched out, the part past its end extends it.
func (u *uploader) Hole(length int64) error {
	if u.closed {
		return streamErr(unix.EBADF, "cannot write to stream")
	}
	if length < 0 || length > u.end-u.pos {
		return u.overflow()
	}
	start, stop := u.pos, u.pos+length
	if !u.regular {
		if err := blockdev.WriteZeros(context.Background(), u.fd, start, length); err != nil {
			return sysErr(err, "cannot write to stream")
		}
		u.pos = stop
		return nil
	}
	if punchEnd := min(stop, u.size); punchEnd > start {
		err := unix.Fallocate(u.fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, start, punchEnd-start)
		if errors.Is(err, unix.EOPNOTSUPP) {
			err = blockdev.WriteZeros(context.Background(), u.fd, start, punchEnd-start)
		}
		if err != nil {
			return sysErr(err, "unable to punch hole in '%s'", u.path)
		}
	}
	if stop > u.size {
		if err := unix.Ftruncate(u.fd, stop); err != nil {
			return sysErr(err, "cannot extend file '%s'", u.path)
		}
		u.size = stop
	}
	u.pos = stop
	return nil
}

// Finish closes the file. Like libvirt, the upload is not synced to disk.
func (u *uploader) Finish(ctx context.Context) error {
	if u.closed {
		return nil
	}
	u.closed = true
	if err := unix.Close(u.fd); err != nil {
		return sysErr(err, "cannot close file '%s'", u.path)
	}
	return nil
}

// Abort closes the file, keeping what was written.
func (u *uploader) Abort() {
	if !u.closed {
		u.closed = true
		unix.Close(u.fd)
	}
}

// DownloadVol opens the volume for a download stream of length bytes (0 = to
// the end) from offset. With StreamSparse the reader reports holes
// (SEEK_DATA/SEEK_HOLE) instead of reading zeros.
func (v *FileVolumes) DownloadVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, offset, length uint64, flags uint32) (ports.VolumeReader, error) {
	fd, st, err := openStreamTarget(vol, flags, "virStorageBackendVolDownloadLocal", unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	path := vol.Target.Path
	size := st.Size
	regular := st.Mode&unix.S_IFMT == unix.S_IFREG
	if st.Mode&unix.S_IFMT == unix.S_IFBLK {
		if size, err = unix.Seek(fd, 0, unix.SEEK_END); err != nil {
			unix.Close(fd)
			return nil, sysErr(err, "Unable to seek in '%s'", path)
		}
	}
	end := size
	if length > 0 && offset < uint64(size) && length < uint64(size)-offset {
		end = int64(offset + length)
	}
	// The stream reads front to back once: let the kernel read ahead harder.
	_ = unix.Fadvise(fd, int64(offset), 0, unix.FADV_SEQUENTIAL)
	// An offset past the end gives an immediate EOF, as libvirt.
	pos := int64(min(offset, uint64(end)))
	d := &downloader{fd: fd, path: path, pos: pos, end: end, sparse: flags&domain.StreamSparse != 0 && regular, dataEnd: -1}
	if !regular || onLocalFS(fd) {
		return &sectionDownloader{d}, nil
	}
	return d, nil
}

// onLocalFS reports whether the file open as fd lies on a local filesystem.
// Only there may the transport send its data straight from the page cache
// (ports.VolumeSectionReader): on NFS even a cached page may first wait for
// the server to revalidate the file, which would hold up the connection's
// writer, not just the download.
func onLocalFS(fd int) bool {
	var st unix.Statfs_t
	return unix.Fstatfs(fd, &st) == nil && localFS[uint32(st.Type)]
}

// sectionDownloader is a downloader whose file the transport may send by
// sendfile.
type sectionDownloader struct{ *downloader }

var _ ports.VolumeSectionReader = sectionDownloader{}

type downloader struct {
	fd       int
	path     string
	pos, end int64
	sparse   bool
	// dataEnd is where the data extent at pos ends (the next hole), cached so
	// that a long extent costs one SEEK_HOLE, not one per chunk; -1 unknown.
	dataEnd int64
	closed  bool
}

// span returns where the next data lies, n ≤ max bytes at the current
// position, or a hole length in sparse mode, or io.EOF; it does not move.
func (d *downloader) span(max int) (n int, hole int64, err error) {
	if d.closed {
		return 0, 0, io.ErrClosedPipe
	}
	if d.pos >= d.end {
		return 0, 0, io.EOF
	}
	want := d.end - d.pos
	if d.sparse {
		if d.pos >= d.dataEnd {
			data, err := unix.Seek(d.fd, d.pos, unix.SEEK_DATA)
			if errors.Is(err, unix.ENXIO) {
				data = d.end // a hole up to the end of the file
			} else if err != nil {
				return 0, 0, sysErr(err, "unable to seek in '%s'", d.path)
			}
			if data > d.pos {
				return 0, min(data, d.end) - d.pos, nil
			}
			hole, err := unix.Seek(d.fd, d.pos, unix.SEEK_HOLE)
			if err != nil {
				return 0, 0, sysErr(err, "unable to seek in '%s'", d.path)
			}
			d.dataEnd = hole
		}
		want = min(want, d.dataEnd-d.pos)
	}
	return int(min(int64(max), want)), 0, nil
}

// Next returns the next data bytes, or a hole length in sparse mode, or io.EOF.
func (d *downloader) Next(buf []byte) (int, int64, error) {
	n, hole, err := d.span(len(buf))
	if n == 0 {
		d.pos += hole
		return 0, hole, err
	}
	n, err = unix.Pread(d.fd, buf[:n], d.pos)
	if err != nil {
		return 0, 0, sysErr(err, "cannot read from '%s'", d.path)
	}
	if n == 0 {
		// The file shrank under us: end the stream where the data ends.
		d.end = d.pos
		return 0, 0, io.EOF
	}
	d.pos += int64(n)
	return n, 0, nil
}

// SectionError implements ports.VolumeSectionReader.
func (d sectionDownloader) SectionError(err error) error {
	return sysErr(err, "cannot read from '%s'", d.path)
}

// NextSection implements ports.VolumeSectionReader.
func (d sectionDownloader) NextSection(max int) (ports.FileSection, error) {
	sec := ports.FileSection{FD: d.fd, Offset: d.pos}
	var err error
	sec.Len, sec.Hole, err = d.span(max)
	d.pos += sec.Size()
	return sec, err
}

// Close releases the file.
func (d *downloader) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	return unix.Close(d.fd)
}
