package scsi

import (
	"context"

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

// RefreshVol does nothing: libvirt's scsi and iscsi backends have no volume
// refresh, and a LUN shows the figures of the last pool refresh.
func (LUNVolumes) RefreshVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef) error {
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
