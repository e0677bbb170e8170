package dir

import (
	"context"
	"errors"

	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/adapters/lib/blockdev"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// copyChunk is how much one copy_file_range call moves before the copy looks
// at its context again.
const copyChunk = 64 << 20

// rwBlock is the buffer of a copy on filesystems without copy_file_range.
const rwBlock = 1 << 20

// createRaw makes a raw file volume, empty or as a copy of src, as libvirt's
// storageBackendCreateRaw: O_EXCL create with the volume's mode and owner
// (createFile: as the owner on netfs), ftruncate to the capacity, fallocate
// of the asked allocation, copy, fsync. Any failure removes the file.
func (v *FileVolumes) createRaw(ctx context.Context, vol *domain.VolDef, src *domain.VolDef, flags uint32) (err error) {
	if flags&^(domain.VolCreatePreallocMetadata|domain.VolCreateReflink) != 0 {
		return domain.ErrUnsupportedFlags(flags&^(domain.VolCreatePreallocMetadata|domain.VolCreateReflink), "storageBackendCreateRaw")
	}
	if flags&domain.VolCreatePreallocMetadata != 0 {
		return domain.Errorf(domain.KindConfigUnsupported, "metadata preallocation is not supported for raw volumes")
	}
	if vol.Backing != nil && vol.Backing.Path != "" {
		return domain.Errorf(domain.KindNoSupport, "backing storage not supported for raw volumes")
	}
	reflink := flags&domain.VolCreateReflink != 0
	path := vol.Target.Path
	fd, err := v.createFile(path, vol.Target.Perms)
	if err != nil {
		return err
	}
	defer func() {
		unix.Close(fd)
		if err != nil {
			v.removeFile(path, vol.Target.Perms)
		}
	}()
	if vol.Target.Nocow {
		setNocow(fd)
	}
	if reflink {
		return cloneRaw(ctx, fd, vol, src)
	}
	if err := unix.Ftruncate(fd, int64(vol.Capacity)); err != nil {
		return sysErr(err, "cannot extend file '%s'", path)
	}
	alloc := allocationOf(vol)
	// A copy asked to be smaller than its source stays sparse (libvirt's rule).
	needAlloc := src == nil || alloc >= src.Capacity
	if needAlloc && alloc > 0 {
		if err := allocate(ctx, fd, 0, int64(alloc)); err != nil {
			return sysErr(err, "cannot allocate %d bytes in file '%s'", alloc, path)
		}
	}
	if src != nil {
		if err := copySparse(ctx, fd, src.Target.Path, int64(vol.Capacity)); err != nil {
			return err
		}
	}
	if err := unix.Fsync(fd); err != nil {
		return sysErr(err, "cannot sync data to file '%s'", path)
	}
	return nil
}

// cloneRaw shares src's extents with the new file through FICLONE, then grows
// it to the asked capacity.
func cloneRaw(ctx context.Context, fd int, vol, src *domain.VolDef) error {
	if src == nil {
		return domain.ErrUnsupportedFlags(domain.VolCreateReflink, "storageBackendCreateRaw")
	}
	sfd, err := unix.Open(src.Target.Path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return sysErr(err, "could not open input path '%s'", src.Target.Path)
	}
	defer unix.Close(sfd)
	if err := unix.IoctlFileClone(fd, sfd); err != nil {
		return sysErr(err, "failed to clone files from '%s'", src.Target.Path)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return sysErr(err, "cannot stat file '%s'", vol.Target.Path)
	}
	if uint64(st.Size) < vol.Capacity {
		if err := unix.Ftruncate(fd, int64(vol.Capacity)); err != nil {
			return sysErr(err, "cannot extend file '%s'", vol.Target.Path)
		}
	}
	return nil
}

// allocate reserves [off, off+length) with fallocate, writing zeros where the
// filesystem has no fallocate (as libvirt's fallback does).
func allocate(ctx context.Context, fd int, off, length int64) error {
	err := unix.Fallocate(fd, 0, off, length)
	if err == nil || !(errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS)) {
		return err
	}
	return blockdev.WriteZeros(ctx, fd, off, length)
}

// copySparse copies the data extents of the file at srcPath into fd at the
// same offsets, up to limit bytes, skipping holes (SEEK_DATA/SEEK_HOLE) so the
// copy stays as sparse as its source. copy_file_range keeps the bytes in the
// kernel and lets filesystems that can share extents do so.
func copySparse(ctx context.Context, dst int, srcPath string, limit int64) error {
	src, err := unix.Open(srcPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return sysErr(err, "could not open input path '%s'", srcPath)
	}
	defer unix.Close(src)
	var st unix.Stat_t
	if err := unix.Fstat(src, &st); err != nil {
		return sysErr(err, "cannot stat file '%s'", srcPath)
	}
	size := st.Size
	if st.Mode&unix.S_IFMT == unix.S_IFBLK {
		// A block device (an LV cloned into a file) has no st_size.
		if size, err = unix.Seek(src, 0, unix.SEEK_END); err != nil {
			return sysErr(err, "cannot seek in '%s'", srcPath)
		}
	}
	end := min(size, limit)
	// Holes count as done as they are skipped, so that the progress of a
	// copy reaches its end whatever the source holds.
	progress := ports.ProgressOf(ctx)
	for pos := int64(0); pos < end; {
		data, err := unix.Seek(src, pos, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			progress.Advance(end - pos)
			break // only a hole remains
		}
		if err != nil {
			return sysErr(err, "failed reading from file '%s'", srcPath)
		}
		if data >= end {
			progress.Advance(end - pos)
			break
		}
		progress.Advance(data - pos)
		hole, err := unix.Seek(src, data, unix.SEEK_HOLE)
		if err != nil {
			return sysErr(err, "failed reading from file '%s'", srcPath)
		}
		hole = min(hole, end)
		if err := copyRange(ctx, dst, src, data, hole-data, srcPath, progress); err != nil {
			return err
		}
		pos = hole
	}
	return nil
}

func copyRange(ctx context.Context, dst, src int, off, length int64, srcPath string, progress ports.Progress) error {
	for length > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		roff, woff := off, off
		n, err := unix.CopyFileRange(src, &roff, dst, &woff, int(min(length, copyChunk)), 0)
		if err != nil {
			if errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL) {
				return copyRangeRW(ctx, dst, src, off, length, srcPath, progress)
			}
			return sysErr(err, "failed writing to file from '%s'", srcPath)
		}
		if n == 0 {
			return nil // the source shrank under us
		}
		progress.Advance(int64(n))
		off += int64(n)
		length -= int64(n)
	}
	return nil
}

// copyRangeRW is copyRange for filesystems without copy_file_range.
func copyRangeRW(ctx context.Context, dst, src int, off, length int64, srcPath string, progress ports.Progress) error {
	buf := make([]byte, min(length, rwBlock))
	for length > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := unix.Pread(src, buf[:min(length, int64(len(buf)))], off)
		if err != nil {
			return sysErr(err, "failed reading from file '%s'", srcPath)
		}
		if n == 0 {
			return nil
		}
		if _, err := unix.Pwrite(dst, buf[:n], off); err != nil {
			return sysErr(err, "failed writing to file from '%s'", srcPath)
		}
		progress.Advance(int64(n))
		off += int64(n)
		length -= int64(n)
	}
	return nil
}

// setNocow marks the file no-copy-on-write (btrfs); failures are ignored, as
// in libvirt, since the volume works without it.
func setNocow(fd int) {
	const fsNocowFl = 0x00800000
	attr, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err != nil {
		return
	}
	_ = unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(attr|fsNocowFl))
}
