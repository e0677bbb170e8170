package dir

import (
	"context"
	"errors"

	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/adapters/lib/blockdev"
	"github.com/virtstoraged-go/virtstoraged/adapters/lib/imgformat"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// scrub is the program the non-zero wipe algorithms run.
const scrub = "scrub"

// WipeVol overwrites the volume's data. Zero is done in process; the other
// algorithms run scrub(1). A volume holding an image format (qcow2, vmdk ...)
// is refused: libvirt wipes the header along with the data and leaves a raw
// file of zeros behind, which the volume's users then misread. Delete and
// re-create such a volume instead.
func (v *FileVolumes) WipeVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, algorithm domain.WipeAlgorithm, flags uint32) error {
	if flags != 0 {
		return domain.ErrUnsupportedFlags(flags, "virStorageBackendVolWipeLocal")
	}
	if !algorithm.Valid() {
		return domain.Errorf(domain.KindInvalidArg, "wiping algorithm %d not supported", algorithm)
	}
	if algorithm == domain.WipeTrim {
		return domain.Errorf(domain.KindArgumentUnsupported, "'trim' algorithm not supported")
	}
	path := vol.Target.Path
	if vol.Type == domain.VolDir {
		return errnoErr(unix.EISDIR, "Failed to open storage volume with path '%s'", path)
	}
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return sysErr(err, "Failed to open storage volume with path '%s'", path)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return sysErr(err, "Failed to stat storage volume with path '%s'", path)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return errnoErr(unix.EISDIR, "Failed to open storage volume with path '%s'", path)
	}
	// Trust the bytes on disk over the definition: the file may have been
	// replaced since the last refresh.
	format := vol.Target.Format
	if st.Mode&unix.S_IFMT == unix.S_IFREG {
		if info, err := imgformat.Probe(fdReader(fd), st.Size); err == nil || imgformat.IsHeaderError(err) {
			if info.Format != imgformat.Raw {
				format = info.Format
			}
		}
	}
	if format != "" && format != imgformat.Raw && format != imgformat.ISO {
		return domain.Errorf(domain.KindOperationUnsupported,
			"wiping a %s volume would destroy its format; delete and re-create the volume instead", format)
	}
	if algorithm != domain.WipeZero {
		args := scrubArgs(path, algorithm.ScrubName())
		if _, err := v.Runner.Run(ctx, ports.Command{Path: scrub, Args: args}); err != nil {
			if errors.Is(err, ports.ErrCommandNotFound) {
				return errnoErr(unix.ENOENT, "Cannot find '%s' in path", scrub)
			}
			return commandError(err, append([]string{scrub}, args...))
		}
		return nil
	}
	return wipeZero(ctx, fd, path, &st)
}

// wipeSegment is how much of a zero wipe is written before its writeback is
// started.
const wipeSegment = 32 << 20

// wipeZero zeroes a file as libvirt does: a sparse regular file is truncated to
// nothing and back (all holes, no writes); anything else gets zeros written
// over its whole size, then fdatasync.
func wipeZero(ctx context.Context, fd int, path string, st *unix.Stat_t) error {
	size := st.Size
	if st.Mode&unix.S_IFMT == unix.S_IFBLK {
		end, err := unix.Seek(fd, 0, unix.SEEK_END)
		if err != nil {
			return sysErr(err, "Failed to seek in storage volume with path '%s'", path)
		}
		size = end
	}
	if st.Mode&unix.S_IFMT == unix.S_IFREG && st.Blocks*512 < size {
		if err := unix.Ftruncate(fd, 0); err != nil {
			return sysErr(err, "Failed to truncate volume with path '%s' to 0 bytes", path)
		}
		if err := unix.Ftruncate(fd, size); err != nil {
			return sysErr(err, "Failed to truncate volume with path '%s' to %d bytes", path, size)
		}
		ports.ProgressOf(ctx).Advance(size)
		return nil
	}
	// Writeback of each segment starts while the next is written, so that
	// the final sync waits for the disk, not for the copy and then the disk.
	for off := int64(0); off < size; off += wipeSegment {
		n := min(wipeSegment, size-off)
		if err := blockdev.WriteZeros(ctx, fd, off, n); err != nil {
			if ctx.Err() != nil {
				return err
			}
			return sysErr(err, "Failed to write to storage volume with path '%s'", path)
		}
		_ = unix.SyncFileRange(fd, off, n, unix.SYNC_FILE_RANGE_WRITE) // a hint; the fdatasync below is what counts
	}
	if err := unix.Fdatasync(fd); err != nil {
		return sysErr(err, "cannot sync data to volume with path '%s'", path)
	}
	return nil
}
