package disk

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/adapters/lib/blockdev"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// cleanupTimeout bounds the removal of a partition after a failed create.
const cleanupTimeout = 30 * time.Second

// PrepareVol checks a new volume: its name is checked against the
// partition parted makes, once made.
func (b *Backend) PrepareVol(pool *domain.PoolDef, vol *domain.VolDef) error {
	if vol.Capacity == 0 {
		return domain.Errorf(domain.KindNoSupport, "volume capacity required for this storage pool")
	}
	if vol.Target.Encryption.Encrypted() {
		if vol.Target.Encryption.Format != "luks" {
			return domain.Errorf(domain.KindConfigUnsupported, "storage pool only supports LUKS encrypted volumes")
		}
		return domain.Errorf(domain.KindConfigUnsupported, "LUKS encrypted disk volumes are not supported yet")
	}
	vol.Type = domain.VolBlock
	// The node the partition will have when the name is right (BuildVol
	// refuses it otherwise); the stable link, where the target has one,
	// is known only once the partition exists.
	vol.Target.Path = filepath.Join(filepath.Dir(device(pool)), vol.Name)
	if n, err := b.newNamer(pool); err == nil {
		vol.Target.Path = filepath.Join(filepath.Dir(n.devPath(1)), vol.Name)
	}
	vol.Key = ""
	// The partition table is the admission check: BuildVol looks for a free
	// extent under the device's lock and fails with libvirt's "no large
	// enough free extent". A reservation against the pool's available sum
	// would refuse the same volumes with another text, or let pass one that
	// no single extent holds. What the partition really takes is charged
	// once it exists.
	vol.Allocation, vol.HasAllocation = 0, true
	if vol.Target.Format == "" {
		vol.Target.Format = "none"
	}
	return nil
}

// BuildVol makes the partition libvirt would make (PlanPartition), then
// finds it in the table read back, checks that the volume was named after
// it and fills the volume's path, key and extent. A wrong name removes the
// partition again.
func (b *Backend) BuildVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, flags uint32) error {
	dev := device(pool)
	defer b.lock(dev)()
	before, err := b.readLayout(ctx, dev)
	if err != nil {
		return err
	}
	format := labelFormat(pool)
	var geom Geometry
	if format == "dos" || format == "pc98" {
		out, err := b.run(ctx, GeometryArgv(dev))
		if err != nil {
			return err
		}
		if geom, err = ParseGeometry(out); err != nil {
			return domain.Errorf(domain.KindInternal, "%s", err.Error())
		}
	}
	plan, err := PlanPartition(format, geom, before, vol.Target.Format, vol.Capacity)
	if err != nil {
		return err
	}
	if _, err := b.run(ctx, MkpartArgv(dev, plan.PartType, plan.Start, plan.End)); err != nil {
		return err
	}
	b.settle(ctx)
	after, err := b.readLayout(ctx, dev)
	if err != nil {
		return err
	}
	r, ok := newPartition(before, after)
	if !ok {
		return domain.Errorf(domain.KindInternal, "cannot find the partition parted created on '%s'", dev)
	}
	n, err := b.newNamer(pool)
	if err != nil {
		b.removeAfterFailure(ctx, pool, dev, r.Num, r.Start)
		return err
	}
	devPath := n.devPath(r.Num)
	if want := filepath.Base(devPath); vol.Name != want {
		b.removeAfterFailure(ctx, pool, dev, r.Num, r.Start)
		return domain.Errorf(domain.KindInvalidArg, "invalid partition name '%s', expected '%s'", vol.Name, want)
	}
	path, err := b.waitStablePath(ctx, pool, n, r.Num)
	if err != nil {
		b.removeAfterFailure(ctx, pool, dev, r.Num, r.Start)
		return err
	}
	b.waitUdev(ctx, n.devPath(r.Num))
	vol.Target.Path, vol.Key = path, path
	vol.SourceDevice = dev
	vol.Extents = []domain.Extent{{Start: r.Start, End: r.End}}
	return b.fillVol(vol, r)
}

// newPartition is the partition in after that was not in before.
func newPartition(before, after []Region) (Region, bool) {
	var found []Region
	for _, a := range after {
		if a.Free {
			continue
		}
		if !slices.ContainsFunc(before, func(b Region) bool { return !b.Free && b.Num == a.Num && b.Start == a.Start }) {
			found = append(found, a)
		}
	}
	if len(found) != 1 {
		return Region{}, false
	}
	return found[0], true
}

// waitStablePath waits, up to StablePathWait, for udev to make the new
// partition's link in a target directory of stable links; as libvirt does,
// it settles for the /dev name when none comes.
func (b *Backend) waitStablePath(ctx context.Context, pool *domain.PoolDef, n *namer, num int) (string, error) {
	if stablePathIsDev(pool.Target.Path) {
		return n.devPath(num), nil
	}
	deadline := time.Now().Add(b.cfg.StablePathWait)
	for {
		links, err := stableLinks(pool.Target.Path)
		if err != nil {
			return "", err
		}
		if l, ok := links[n.devPath(num)]; ok {
			return l, nil
		}
		if !time.Now().Before(deadline) {
			return n.devPath(num), nil
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitUdev waits, up to StablePathWait, for udev to have processed a new
// partition's node: until then the node has the kernel's 0600 root:root,
// not the mode and group udev's rules give it (0660 root:disk), and the
// volume would show those. udevadm settle, run before, can return before
// udev has even read the kernel's event. udev records a device in its
// database after it has set up its node.
func (b *Backend) waitUdev(ctx context.Context, devPath string) {
	if _, err := os.Stat(b.cfg.UdevData); err != nil {
		return
	}
	var st unix.Stat_t
	if err := unix.Stat(devPath, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return
	}
	entry := filepath.Join(b.cfg.UdevData, fmt.Sprintf("b%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev)))
	deadline := time.Now().Add(b.cfg.StablePathWait)
	for !exists(entry) && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// fillVol sets a volume's figures from its region and device node.
func (b *Backend) fillVol(vol *domain.VolDef, r Region) error {
	size, ok := nodeSize(vol.Target.Path)
	if !ok {
		size = r.End - r.Start
	}
	vol.Capacity, vol.Allocation, vol.Physical = size, size, size
	vol.HasCapacity, vol.HasAllocation = true, true
	if r.Kind == KindExtended {
		vol.Capacity, vol.Allocation = r.End-r.Start, 0
	}
	vol.Target.Perms = domain.UnsetPerms()
	fillPerms(vol)
	return nil
}

func (b *Backend) removeAfterFailure(ctx context.Context, pool *domain.PoolDef, dev string, num int, start uint64) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if err := b.removePartition(cctx, dev, num, start); err != nil {
		b.log.WithFields(logrus.Fields{"pool": pool.Name}).WithError(err).Warnf("disk: cannot remove partition %d of '%s' after a failed create", num, dev)
	}
}

// removePartition runs parted rm, then makes sure the kernel forgot the
// partition: parted tells it, but where that notice did not arrive the
// partition's node would stay and point at whatever is written there next.
func (b *Backend) removePartition(ctx context.Context, dev string, num int, start uint64) error {
	if _, err := b.run(ctx, RmArgv(dev, num)); err != nil {
		return err
	}
	b.settle(ctx)
	if b.kernelHasPartition(dev, num, start) {
		if _, err := b.run(ctx, PartxDeleteArgv(dev, num)); err != nil {
			return err
		}
		b.settle(ctx)
	}
	return nil
}

// kernelHasPartition looks for partition num of dev, starting at start
// bytes, in sysfs (SYSFS/class/block/DEV/*/partition holds each partition's
// number, start its first 512-byte sector). The start tells the removed
// partition from a logical one that took its number after it.
func (b *Backend) kernelHasPartition(dev string, num int, start uint64) bool {
	real, err := filepath.EvalSymlinks(dev)
	if err != nil {
		return false
	}
	dir := filepath.Join(b.cfg.SysfsRoot, "class", "block", filepath.Base(real))
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range ents {
		if readNumber(filepath.Join(dir, e.Name(), "partition")) == uint64(num) &&
			readNumber(filepath.Join(dir, e.Name(), "start"))*512 == start {
			return true
		}
	}
	return false
}

// readNumber reads a sysfs number; anything unreadable is MaxUint64, which
// matches nothing.
func readNumber(path string) uint64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 1<<64 - 1
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 1<<64 - 1
	}
	return n
}

// BuildVolFrom makes the partition, then copies src into it: raw data
// directly, other image formats through qemu-img convert.
func (b *Backend) BuildVolFrom(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, srcPool *domain.PoolDef, src *domain.VolDef, flags uint32) error {
	if flags&domain.VolCreatePreallocMetadata != 0 {
		return domain.Errorf(domain.KindOperationUnsupported, "metadata preallocation is not supported for block volumes")
	}
	if flags&^domain.VolCreateReflink != 0 {
		return domain.ErrUnsupportedFlags(flags, "storageBackendCreateRaw")
	}
	if err := b.BuildVol(ctx, pool, vol, 0); err != nil {
		return err
	}
	var err error
	switch src.Target.Format {
	case "", "raw", "none", "iso":
		err = blockdev.Copy(ctx, vol.Target.Path, src.Target.Path, 0)
	default:
		argv := []string{"qemu-img", "convert", "-f", src.Target.Format, "-O", "raw", src.Target.Path, vol.Target.Path}
		_, err = b.run(ctx, argv)
	}
	if err != nil {
		dev := device(pool)
		unlock := b.lock(dev)
		if regions, rerr := b.readLayout(context.WithoutCancel(ctx), dev); rerr == nil {
			if r, ok := findVolume(regions, vol); ok {
				b.removeAfterFailure(ctx, pool, dev, r.Num, r.Start)
			}
		}
		unlock()
		return err
	}
	return nil
}

// findVolume finds a volume's partition by its extent.
func findVolume(regions []Region, vol *domain.VolDef) (Region, bool) {
	if len(vol.Extents) != 1 {
		return Region{}, false
	}
	for _, r := range regions {
		if !r.Free && r.Start == vol.Extents[0].Start && r.End == vol.Extents[0].End {
			return r, true
		}
	}
	return Region{}, false
}

// RefreshVol keeps the figures of the last read of the table, as libvirt's
// disk backend, which has no volume refresh (an extended partition's
// physical size, which the kernel changes once logical partitions exist,
// included), but reports a partition removed behind the pool's back as no
// longer there, so that the service forgets it. While its node or the
// kernel's sysfs entry of that name is there it is (device-mapper
// partitions have a node under /dev/mapper but a dm-N entry). Without
// either, the table decides: udev re-reads a disk's table when a writer
// closes it, and the kernel drops every partition for that moment.
func (b *Backend) RefreshVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef) error {
	if vol.Target.Path == "" || exists(vol.Target.Path) || exists(filepath.Join(b.cfg.SysfsRoot, "class", "block", vol.Name)) {
		return nil
	}
	regions, err := b.readLayout(ctx, device(pool))
	if err != nil {
		return err
	}
	if _, ok := findVolume(regions, vol); ok {
		return nil
	}
	return domain.Errorf(domain.KindNoStorageVol, "no storage vol with matching name '%s'", vol.Name)
}

// DeleteVol removes the partition. Its number comes from the table, not
// from the name: libvirt cuts the source device's name off the partition's
// and keeps the "p" of loop0p3 or nvme0n1p3, which parted rejects.
func (b *Backend) DeleteVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, flags uint32) error {
	if flags != 0 {
		return domain.ErrUnsupportedFlags(flags, "virStorageBackendDiskDeleteVol")
	}
	dev := device(pool)
	defer b.lock(dev)()
	regions, err := b.readLayout(ctx, dev)
	if err != nil {
		return err
	}
	n, err := b.newNamer(pool)
	if err != nil {
		return err
	}
	for _, r := range regions {
		if !r.Free && filepath.Base(n.devPath(r.Num)) == vol.Name {
			// parted refuses a mounted partition, but one held by
			// device-mapper (a PV of an active VG) it removes from the
			// table and leaves in the kernel, whose next partition would
			// then be made over it.
			if exists(n.devPath(r.Num)) {
				if err := checkNotInUse(n.devPath(r.Num)); err != nil {
					return err
				}
			}
			return b.removePartition(ctx, dev, r.Num, r.Start)
		}
	}
	return domain.Errorf(domain.KindNoStorageVol, "no storage vol with matching name '%s'", vol.Name)
}

// ResizeVol is not supported, as in libvirt.
func (b *Backend) ResizeVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, capacity uint64, flags uint32) error {
	return domain.Errorf(domain.KindNoSupport, "storage pool does not support changing of volume capacity")
}

// WipeVol wipes the partition's device; an extended partition holds the
// logical ones and is refused.
func (b *Backend) WipeVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, algorithm domain.WipeAlgorithm, flags uint32) error {
	if flags != 0 {
		return domain.ErrUnsupportedFlags(flags, "virStorageBackendVolWipeLocal")
	}
	regions, err := b.readLayout(ctx, device(pool))
	if err != nil {
		return err
	}
	if r, ok := findVolume(regions, vol); ok && r.Kind == KindExtended {
		return domain.Errorf(domain.KindNoSupport, "cannot wipe extended partition '%s'", vol.Target.Path)
	}
	return blockdev.Wipe(ctx, b.runner, vol.Target.Path, algorithm)
}

// UploadVol streams into the partition's device.
func (b *Backend) UploadVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, offset, length uint64, flags uint32) (ports.VolumeWriter, error) {
	return blockdev.Upload(vol.Target.Path, offset, length, flags, "virStorageBackendVolUploadLocal")
}

// DownloadVol streams from the partition's device.
func (b *Backend) DownloadVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, offset, length uint64, flags uint32) (ports.VolumeReader, error) {
	return blockdev.Download(vol.Target.Path, offset, length, flags, "virStorageBackendVolDownloadLocal")
}
