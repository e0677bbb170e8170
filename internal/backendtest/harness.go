package backendtest

import (
	"context"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// Harness is one backend under test with the environment its pools live in:
// a temporary directory, loop devices, simulated LVM tools, a fake sysfs, or
// the storage lab's real devices.
type Harness interface {
	// Backend returns the backend under test, the same one on every call.
	Backend() ports.PoolBackend
	// Capabilities declares what the pool type does, and what this
	// environment lets the suite see of it.
	Capabilities() Capabilities
	// MakePool returns the definition of a new pool called name, with
	// storage of its own: not built yet where the type has a build step,
	// ready to start otherwise. The suite applies ValidatePool to it.
	MakePool(ctx context.Context, name string) (*domain.PoolDef, error)
	// AddVolume makes a volume of size bytes in a started pool behind the
	// backend's back, as an administrator would with the system's tools (a
	// file written, lvcreate, a multipath map appearing), and returns the
	// name the backend lists it under.
	AddVolume(ctx context.Context, pool *domain.PoolDef, name string, size uint64) (string, error)
	// RemoveVolume removes a volume behind the backend's back; name is the
	// one AddVolume returned or BuildVol made.
	RemoveVolume(ctx context.Context, pool *domain.PoolDef, name string) error
}

// VolumeNamer is implemented by a harness whose pool type dictates its
// volumes' names: a disk pool's volume must be called as the partition
// parted makes for it (vdb1, loop0p2), as in libvirt. The suite asks it for
// the name of each volume it makes, by the suite's own name for it, and
// makes such a type's volumes one after the other (their names depend on
// the order).
type VolumeNamer interface {
	// VolumeName is the name of the suite's volume called name in pool:
	// the same answer for the same name in the same pool.
	VolumeName(pool *domain.PoolDef, name string) string
}

// HarnessMaker makes a harness for one test; t is that test, for its
// cleanups and skips.
type HarnessMaker func(ctx context.Context, t *testing.T) (Harness, error)

// Capabilities say what a pool type can do, from libvirt's backend for it.
type Capabilities struct {
	// Type is the pool type the backend serves.
	Type domain.PoolType

	// Build says the type has a build step: BuildPool makes the storage, and
	// a pool that was never built does not start. Without it BuildPool
	// does nothing and succeeds, whatever its flags (libvirt has no
	// buildPool for the type).
	Build bool
	// BuildFlags are the flags a pool is built with (fs formats its device
	// only when asked to).
	BuildFlags uint32
	// Delete says DeletePool removes what BuildPool made; without it
	// DeletePool is refused with KindNoSupport.
	Delete bool
	// DeleteNonEmpty says DeletePool removes a pool with its volumes
	// (logical: vgremove -f); without it such a delete is refused and the
	// volumes stay (dir: rmdir). fs and netfs delete only their mount
	// point, which a stopped pool leaves empty.
	DeleteNonEmpty bool
	// Presence is when CheckPool reports the pool active.
	Presence Presence
	// FindSources says the type discovers sources; without it
	// FindPoolSources is refused with KindNoSupport.
	FindSources bool

	// Ops are the volume operations the type has; the others are refused
	// with KindNoSupport.
	Ops Ops
	// Allocation is how a volume's allocation relates to its capacity.
	Allocation Allocation
	// Granularity is the unit volume sizes are rounded up to (LVM's extent);
	// 0 means sizes are exact.
	Granularity uint64
	// VolumeSize is the capacity of the volumes the suite makes; 0 means 8
	// MiB. It must be a multiple of Granularity, and the pool must hold
	// four such volumes.
	VolumeSize uint64

	// Isolated says the pool has storage of its own, a few volumes large:
	// its figures move only with what the suite does, and the suite may try
	// to overfill it. A pool in a directory of the host's disk is not.
	Isolated bool
	// NoData, when set, says why this environment cannot read or write the
	// volumes' data (LVs made without device-mapper have no device node);
	// the tests that need it are skipped with this reason.
	NoData string
}

// Presence is when CheckPool, asked at daemon start, reports a pool active.
type Presence int

// Presences.
const (
	// PresentWhenBuilt: from BuildPool to DeletePool, started or not (dir,
	// logical: the storage is all the state there is).
	PresentWhenBuilt Presence = iota
	// PresentWhenStarted: from StartPool to StopPool (fs, netfs: the mount).
	PresentWhenStarted
	// PresentNever: never (mpath without the legacy /dev/mpath); the pool
	// comes back inactive after a daemon restart.
	PresentNever
)

// Ops is a set of volume operations.
type Ops uint32

// Volume operations.
const (
	CreateVol Ops = 1 << iota // PrepareVol and BuildVol
	DeleteVol
	ResizeVol
	ShrinkVol // ResizeVol with VolResizeShrink
	CloneVol  // BuildVolFrom
	WipeVol
	UploadVol
	DownloadVol
	// TrimVol is WipeVol with the trim algorithm (rbd discards the whole
	// image); without it that algorithm is refused with
	// KindArgumentUnsupported.
	TrimVol
)

// Allocation is how a type's volumes allocate their space.
type Allocation int

// Allocations.
const (
	// Sparse volumes (files) allocate what they are asked to and what is
	// written; a volume made with no allocation has less than its capacity.
	Sparse Allocation = iota
	// Thick volumes (LVs) allocate their whole capacity; the suite asks
	// for it (a logical volume asked with less is libvirt's sparse LV, a
	// snapshot that needs device-mapper).
	Thick
	// Fixed volumes (multipath maps) are made outside the pool and count
	// their whole size as allocated.
	Fixed
	// Thin volumes (rbd images) allocate only what is written: the
	// allocation a volume is created with is ignored, and ResizeVol refuses
	// VolResizeAllocate with KindInvalidArg (libvirt's rbd backend takes no
	// flag). The suite then asks for no allocation.
	Thin
)

func (c Capabilities) has(o Ops) bool { return c.Ops&o == o }

// onDemand says volumes allocate what is written rather than up front.
func (c Capabilities) onDemand() bool { return c.Allocation == Sparse || c.Allocation == Thin }

// lightAllocation is the allocation the suite asks for a volume of capacity
// bytes when it needs no more: none where the type allocates on demand.
func (c Capabilities) lightAllocation(capacity uint64) uint64 {
	if c.onDemand() {
		return 0
	}
	return capacity
}

func (c Capabilities) volumeSize() uint64 {
	if c.VolumeSize != 0 {
		return c.VolumeSize
	}
	return 8 << 20
}

// roundUp rounds n up to the type's granularity.
func (c Capabilities) roundUp(n uint64) uint64 {
	if c.Granularity <= 1 {
		return n
	}
	return (n + c.Granularity - 1) / c.Granularity * c.Granularity
}
