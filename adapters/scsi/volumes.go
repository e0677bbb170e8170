package scsi

import (
	"context"
	"errors"
	"io/fs"
	"os"

	"github.com/virtstoraged-go/virtstoraged/adapters/lib/blockdev"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// LUNVolumes are the pool and volume operations the scsi and iscsi backends
// share (libvirt gives both the same): the storage is built and deleted on
// the SAN, never through the pool, so is every LUN; data operations go to
// the LUN's device.
type LUNVolumes struct {
	// Runner runs scrub for wipes.
	Runner ports.CommandRunner
}

// BuildPool does nothing.
func (LUNVolumes) BuildPool(ctx context.Context, def *domain.PoolDef, flags uint32) error {
	return nil
}

// DeletePool is not supported.
func (LUNVolumes) DeletePool(ctx context.Context, def *domain.PoolDef, flags uint32) error {
	return domain.Errorf(domain.KindNoSupport, "pool does not support pool deletion")
}

// PrepareVol refuses: LUNs are not created through the pool.
func (LUNVolumes) PrepareVol(pool *domain.PoolDef, vol *domain.VolDef) error {
	return domain.Errorf(domain.KindNoSupport, "storage pool does not support volume creation")
}

// BuildVol is not supported.
func (LUNVolumes) BuildVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, flags uint32) error {
	return domain.Errorf(domain.KindNoSupport, "storage pool does not support volume creation")
}

// BuildVolFrom is not supported.
func (LUNVolumes) BuildVolFrom(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, srcPool *domain.PoolDef, src *domain.VolDef, flags uint32) error {
	return domain.Errorf(domain.KindNoSupport, "storage pool does not support volume creation from an existing volume")
}

// RefreshVol keeps the figures of the last pool refresh, as libvirt's scsi
// and iscsi backends (which have no volume refresh) show them, but reports a
// LUN whose device node is gone (taken away on the SAN and deleted from the
// kernel) as no volume, as the other backends do for a volume removed
// behind the daemon's back, so that the service forgets it instead of
// describing a device that is not there.
func (LUNVolumes) RefreshVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef) error {
	if _, err := os.Stat(vol.Target.Path); errors.Is(err, fs.ErrNotExist) {
		return domain.Errorf(domain.KindNoStorageVol, "no storage vol with matching name '%s'", vol.Name)
	}
	return nil
}

// DeleteVol is not supported.
func (LUNVolumes) DeleteVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, flags uint32) error {
	return domain.Errorf(domain.KindNoSupport, "storage pool does not support vol deletion")
}

// ResizeVol is not supported.
func (LUNVolumes) ResizeVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, capacity uint64, flags uint32) error {
	return domain.Errorf(domain.KindNoSupport, "storage pool does not support changing of volume capacity")
}

// WipeVol wipes the LUN's device.
func (v LUNVolumes) WipeVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, algorithm domain.WipeAlgorithm, flags uint32) error {
	if flags != 0 {
		return domain.ErrUnsupportedFlags(flags, "virStorageBackendVolWipeLocal")
	}
	return blockdev.Wipe(ctx, v.Runner, vol.Target.Path, algorithm)
}

// UploadVol streams into the LUN's device.
func (LUNVolumes) UploadVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, offset, length uint64, flags uint32) (ports.VolumeWriter, error) {
	return blockdev.Upload(vol.Target.Path, offset, length, flags, "virStorageBackendVolUploadLocal")
}

// DownloadVol streams from the LUN's device.
func (LUNVolumes) DownloadVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, offset, length uint64, flags uint32) (ports.VolumeReader, error) {
	return blockdev.Download(vol.Target.Path, offset, length, flags, "virStorageBackendVolDownloadLocal")
}
