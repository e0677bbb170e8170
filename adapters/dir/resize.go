package dir

import (
	"context"
	"errors"

	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/adapters/lib/imgformat"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// ResizeVol sets the volume's capacity to capacity (bytes, already resolved
// from a delta by the service, which also applied the shrink rules). A raw
// file is truncated in process, with VolResizeAllocate also reserving the grown
// part; other formats go through qemu-img resize.
func (v *FileVolumes) ResizeVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, capacity uint64, flags uint32) error {
	if flags&^(domain.VolResizeAllocate|domain.VolResizeDelta|domain.VolResizeShrink) != 0 {
		return domain.ErrUnsupportedFlags(flags&^(domain.VolResizeAllocate|domain.VolResizeDelta|domain.VolResizeShrink), "virStorageBackendVolResizeLocal")
	}
	alloc := flags&domain.VolResizeAllocate != 0
	switch {
	case vol.Type == domain.VolDir:
		return domain.Errorf(domain.KindOperationUnsupported, "cannot resize a directory volume")
	case vol.Target.Format == imgformat.Raw && !vol.Target.Encryption.Encrypted():
		return resizeRaw(ctx, vol.Target.Path, capacity, alloc)
	case alloc && vol.Target.Format == imgformat.Raw:
		return domain.Errorf(domain.KindOperationUnsupported, "preallocate is only supported for an unencrypted raw volume")
	case alloc:
		return domain.Errorf(domain.KindOperationUnsupported, "preallocate is only supported for raw type volume")
	case vol.Target.Encryption.Encrypted():
		return v.resizeEncrypted(ctx, pool, vol, capacity)
	}
	args := qemuImgResizeArgs(vol.Target.Path, capacity, capacity < vol.Capacity)
	if _, err := v.Runner.Run(ctx, ports.Command{Path: qemuImg, Args: args}); err != nil {
		return v.qemuImgError(err, args)
	}
	return nil
}

// resizeRaw truncates the file to capacity; with alloc the whole new size is
// allocated first, holes of the old part included, as libvirt does (a sparse
// volume resized with --allocate comes out fully allocated). Unlike libvirt, a
// failed allocation returns the file to its old size instead of leaving the
// grown part allocated.
func resizeRaw(ctx context.Context, path string, capacity uint64, alloc bool) error {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return utilErr(err, "Unable to open '%s'", path)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return sysErr(err, "cannot stat file '%s'", path)
	}
	old := st.Size
	if alloc && int64(capacity) > old {
		if err := allocate(ctx, fd, 0, int64(capacity)); err != nil {
			_ = unix.Ftruncate(fd, old)
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return err
			}
			return utilErr(err, "Failed to pre-allocate space for file '%s'", path)
		}
	}
	if err := unix.Ftruncate(fd, int64(capacity)); err != nil {
		return utilErr(err, "Failed to truncate file '%s'", path)
	}
	return nil
}
