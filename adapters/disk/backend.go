// Package disk is the "disk" pool backend: the pool is one block device with
// a partition table, its volumes are the partitions. parted writes labels and
// creates and removes partitions with libvirt's command lines; the table is
// read back through parted too (see Layout for why not through a helper of
// our own), so that the volumes, their extents and the pool's free extents
// are libparted's own figures, as libvirt shows them.
//
// Beyond libvirt: removing a partition works on loop and NVMe devices
// (libvirt strips the "p" only for device-mapper names and asks parted to
// remove partition "p3"); a wrong volume name is refused after parted has
// made the partition and the partition is removed again (libvirt's removal
// fails the same way and leaves it); a device in use (mounted, an active
// VG) is never relabelled or zeroed; bsd and pc98 labels can hold volumes.
package disk

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/adapters/lib/blockdev"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

var (
	_ ports.PoolBackend          = (*Backend)(nil)
	_ ports.LayoutSharingBackend = (*Backend)(nil)
)

// labelWipeBytes is how much libvirt zeroes at each end of the device before
// writing a label, and to delete the pool.
const labelWipeBytes = 1 << 20

// Config holds the backend's paths; the zero value of a field means the
// system's.
type Config struct {
	// SysfsRoot is where the kernel's view of partitions is read ("/sys").
	SysfsRoot string
	// ProcDevices lists the block majors ("/proc/devices"), to tell
	// device-mapper devices.
	ProcDevices string
	// StablePathWait bounds the wait for a new partition's link to appear
	// in a pool target such as /dev/disk/by-id (libvirt waits 10 s).
	StablePathWait time.Duration
	// UdevData is udev's database of the devices it has processed
	// ("/run/udev/data"); without it (no udev) nothing waits for udev.
	UdevData string
}

// Backend serves disk pools.
type Backend struct {
	runner ports.CommandRunner
	cfg    Config
	log    *logrus.Entry

	mu    sync.Mutex
	locks map[string]*sync.Mutex // per source device: one table change at a time
}

// New returns the disk backend; parted, blkid, partx, udevadm, scrub and
// qemu-img run through runner.
func New(runner ports.CommandRunner, cfg Config, log *logrus.Entry) *Backend {
	if log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		log = logrus.NewEntry(l)
	}
	if cfg.SysfsRoot == "" {
		cfg.SysfsRoot = "/sys"
	}
	if cfg.ProcDevices == "" {
		cfg.ProcDevices = "/proc/devices"
	}
	if cfg.UdevData == "" {
		cfg.UdevData = "/run/udev/data"
	}
	if cfg.StablePathWait == 0 {
		cfg.StablePathWait = 10 * time.Second
	}
	return &Backend{runner: runner, cfg: cfg, log: log, locks: map[string]*sync.Mutex{}}
}

// Type is PoolDisk.
func (b *Backend) Type() domain.PoolType { return domain.PoolDisk }

// DefaultVolFormat is "none", libvirt's first disk volume format.
func (b *Backend) DefaultVolFormat() string { return "none" }

// VolumesShareLayout is true: every volume is carved out of one table.
func (b *Backend) VolumesShareLayout() bool { return true }

// ValidatePool needs nothing beyond the XML rules (one source device).
func (b *Backend) ValidatePool(def *domain.PoolDef) error { return nil }

func device(def *domain.PoolDef) string {
	if len(def.Source.Devices) == 0 {
		return ""
	}
	return def.Source.Devices[0].Path
}

// labelFormat is the pool's label format, with libvirt's reading of
// "unknown" (the default) as dos.
func labelFormat(def *domain.PoolDef) string {
	if def.Source.Format == "" || def.Source.Format == "unknown" {
		return "dos"
	}
	return def.Source.Format
}

// partedLabel is parted's name of a label format.
func partedLabel(format string) string {
	if format == "dos" {
		return "msdos"
	}
	return format
}

func (b *Backend) lock(dev string) func() {
	b.mu.Lock()
	m := b.locks[dev]
	if m == nil {
		m = &sync.Mutex{}
		b.locks[dev] = m
	}
	b.mu.Unlock()
	m.Lock()
	return m.Unlock
}

func (b *Backend) run(ctx context.Context, argv []string) ([]byte, error) {
	out, err := b.runner.Run(ctx, ports.Command{Path: argv[0], Args: argv[1:]})
	if err != nil {
		return out, blockdev.CommandError(err, argv)
	}
	return out, nil
}

// settle waits for udev like libvirt's virWaitForDevices, which goes on
// when udevadm is missing or fails.
func (b *Backend) settle(ctx context.Context) {
	if _, err := b.run(ctx, SettleArgv()); err != nil {
		b.log.WithError(err).Debug("disk: udevadm settle failed")
	}
}

func deviceMissing(dev string) error {
	return domain.Errorf(domain.KindInvalidArg, "device path '%s' doesn't exist", dev)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// checkLabel is libvirt's virStorageBackendDeviceIsEmpty for the pool's
// device and format: before a build (writeLabel) the device must carry
// nothing, at start it must carry the pool's label.
func (b *Backend) checkLabel(ctx context.Context, dev, format string, writeLabel bool) error {
	if !exists(dev) {
		// libblkid cannot open it; the blkid command would call that
		// "nothing found".
		return domain.Errorf(domain.KindStorageProbeFailed, "Failed to create filesystem probe for device %s", dev)
	}
	probe, err := blockdev.RunBlkid(ctx, b.runner, dev)
	var unreadable *blockdev.BlkidOutputError
	if errors.As(err, &unreadable) {
		return domain.Errorf(domain.KindStorageProbeFailed, "Failed to probe for format type '%s'", format)
	}
	if err != nil {
		return blockdev.CommandError(err, blockdev.BlkidArgv(dev))
	}
	v := BlkidVerdict(probe, format)
	if v != AskParted {
		return blkidError(v, dev, format, writeLabel)
	}
	argv := LabelArgv(dev)
	out, err := b.runner.Run(ctx, ports.Command{Path: argv[0], Args: argv[1:]})
	var xe *ports.ExitError
	failed := err != nil
	errOut := ""
	if errors.As(err, &xe) {
		errOut = xe.Stderr
	} else if err != nil {
		return blockdev.CommandError(err, argv)
	}
	v, why := PartedVerdict(failed, string(out), errOut, format)
	return partedError(v, why, format, writeLabel)
}

// CheckPool reports the pool active when its device carries its label, as
// libvirt does at daemon start.
func (b *Backend) CheckPool(ctx context.Context, def *domain.PoolDef) (bool, error) {
	dev := device(def)
	if !exists(dev) {
		return false, nil
	}
	if err := b.checkLabel(ctx, dev, labelFormat(def), false); err != nil {
		b.log.WithField("pool", def.Name).WithError(err).Debug("disk: pool label not found")
		return false, nil
	}
	return true, nil
}

// BuildPool writes a new label: unless OVERWRITE, only on a device that
// carries nothing (for a pool of format "unknown" libvirt probes for that
// very name, so any label is "different"); then zeroes a MiB at both ends
// and runs parted mklabel.
func (b *Backend) BuildPool(ctx context.Context, def *domain.PoolDef, flags uint32) error {
	if flags&^(domain.PoolBuildOverwrite|domain.PoolBuildNoOverwrite) != 0 {
		return domain.ErrUnsupportedFlags(flags, "virStorageBackendDiskBuildPool")
	}
	if err := domain.CheckBuildFlags(flags); err != nil {
		return err
	}
	dev := device(def)
	probeFormat := def.Source.Format
	if probeFormat == "" {
		probeFormat = "unknown"
	}
	if flags&domain.PoolBuildOverwrite == 0 {
		if err := b.checkLabel(ctx, dev, probeFormat, true); err != nil {
			return err
		}
	}
	if err := checkNotInUse(dev); err != nil {
		return err
	}
	defer b.lock(dev)()
	if err := blockdev.ZeroHeadTail(dev, labelWipeBytes); err != nil {
		return err
	}
	_, err := b.run(ctx, MklabelArgv(dev, partedLabel(labelFormat(def))))
	return err
}

// StartPool checks that the device exists and carries the pool's label.
func (b *Backend) StartPool(ctx context.Context, def *domain.PoolDef) error {
	dev := device(def)
	b.settle(ctx)
	if !exists(dev) {
		return deviceMissing(dev)
	}
	return b.checkLabel(ctx, dev, labelFormat(def), false)
}

// StopPool does nothing.
func (b *Backend) StopPool(ctx context.Context, def *domain.PoolDef) error { return nil }

// DeletePool zeroes a MiB at both ends of the device, which removes the
// label (and the backup GPT).
func (b *Backend) DeletePool(ctx context.Context, def *domain.PoolDef, flags uint32) error {
	if flags != 0 {
		return domain.ErrUnsupportedFlags(flags, "virStorageBackendDiskDeletePool")
	}
	dev := device(def)
	if err := checkNotInUse(dev); err != nil {
		return err
	}
	defer b.lock(dev)()
	return blockdev.ZeroHeadTail(dev, labelWipeBytes)
}

// FindPoolSources is not supported.
func (b *Backend) FindPoolSources(ctx context.Context, spec *domain.PoolSource, flags uint32) ([]domain.PoolSource, error) {
	return nil, domain.Errorf(domain.KindNoSupport, "pool type '%s' does not support source discovery", domain.PoolDisk)
}

// readLayout lists the device's table and classifies it.
func (b *Backend) readLayout(ctx context.Context, dev string) ([]Region, error) {
	out, err := b.run(ctx, ListArgv(dev))
	if err != nil {
		return nil, err
	}
	l, err := ParseLayout(out)
	if err != nil {
		return nil, domain.Errorf(domain.KindInternal, "%s", err.Error())
	}
	return Classify(l), nil
}

// namer turns partition numbers into names and paths for one pool.
type namer struct {
	canonical string
	devMapper bool
	partSep   bool
	links     map[string]string
}

func (b *Backend) newNamer(def *domain.PoolDef) (*namer, error) {
	dev := device(def)
	n := &namer{canonical: dev, devMapper: isDevMapper(b.cfg.ProcDevices, dev)}
	n.partSep = def.Source.Devices[0].PartSeparator == "yes"
	if !n.devMapper {
		if p, err := filepath.EvalSymlinks(dev); err == nil {
			n.canonical = p
		}
	}
	links, err := stableLinks(def.Target.Path)
	if err != nil {
		return nil, err
	}
	n.links = links
	return n, nil
}

// devPath is the partition's node under /dev; path is what the volume shows
// (the stable link when the target holds one).
func (n *namer) devPath(num int) string {
	return PartitionPath(n.canonical, n.devMapper, n.partSep, num)
}

func (n *namer) path(num int) string {
	p := n.devPath(num)
	if l, ok := n.links[p]; ok {
		return l
	}
	return p
}

// RefreshPool lists the partitions as volumes and measures the pool as
// libvirt does (see Summarize). The live definition gets the free extents,
// and "unknown" turns into the dos it was read as.
func (b *Backend) RefreshPool(ctx context.Context, def *domain.PoolDef) (domain.PoolStats, []*domain.VolDef, error) {
	dev := device(def)
	b.settle(ctx)
	if !exists(dev) {
		return domain.PoolStats{}, nil, deviceMissing(dev)
	}
	regions, err := b.readLayout(ctx, dev)
	if err != nil {
		return domain.PoolStats{}, nil, err
	}
	n, err := b.newNamer(def)
	if err != nil {
		return domain.PoolStats{}, nil, err
	}
	stats, vols, free := Summarize(regions, dev, n.names, nodeSize)
	for _, v := range vols {
		fillPerms(v)
	}
	def.Source.Devices[0].FreeExtents = free
	// Written only when it changes: volume jobs read the format of the
	// definition a refresh may be updating at the same time.
	if f := labelFormat(def); def.Source.Format != f {
		def.Source.Format = f
	}
	return stats, vols, nil
}

// names gives a partition's node and the path its volume shows.
func (n *namer) names(num int) (string, string) { return n.devPath(num), n.path(num) }

// Summarize turns a classified table into the pool's figures, volumes and
// free extents with libvirt's rules. A partition's capacity and allocation
// are its device's size (node reads it; a partition without a node, which
// libvirt fails the refresh for, counts its extent); an extended partition
// has its extent as capacity and its logical partitions' allocation as its
// own, and counts for nothing in the pool's allocation. Capacity is where
// the last partition or free extent ends; available is the sum of the free
// extents, the first of which starts at 512 at least.
func Summarize(regions []Region, dev string, names func(num int) (devPath, path string), node func(devPath string) (uint64, bool)) (domain.PoolStats, []*domain.VolDef, []domain.Extent) {
	var stats domain.PoolStats
	var vols []*domain.VolDef
	var free []domain.Extent
	var extended *domain.VolDef
	for _, r := range regions {
		stats.Capacity = max(stats.Capacity, r.End)
		if r.Free {
			start := freeStart(r.Start)
			if start >= r.End {
				continue
			}
			free = append(free, domain.Extent{Start: start, End: r.End})
			stats.Available += r.End - start
			continue
		}
		devPath, path := names(r.Num)
		size, ok := node(devPath)
		if !ok {
			size = r.End - r.Start
		}
		v := &domain.VolDef{
			Name:          filepath.Base(devPath),
			Key:           path,
			Type:          domain.VolBlock,
			Capacity:      size,
			Allocation:    size,
			Physical:      size,
			HasCapacity:   true,
			HasAllocation: true,
			SourceDevice:  dev,
			Extents:       []domain.Extent{{Start: r.Start, End: r.End}},
		}
		v.Target.Path = path
		v.Target.Perms = domain.UnsetPerms()
		switch r.Kind {
		case KindExtended:
			v.Capacity, v.Allocation = r.End-r.Start, 0
			extended = v
		case KindLogical:
			if extended != nil {
				extended.Allocation += v.Allocation
			}
		}
		vols = append(vols, v)
		if r.Kind != KindExtended {
			stats.Allocation += v.Allocation
		}
	}
	return stats, vols, free
}

// nodeSize is the size of a partition's device node, where it ends.
func nodeSize(devPath string) (uint64, bool) {
	fd, err := unix.Open(devPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, false
	}
	defer unix.Close(fd)
	size, err := blockdev.Size(fd)
	if err != nil || size < 0 {
		return 0, false
	}
	return uint64(size), true
}

// fillPerms reads the owner, mode and times of the volume's path, as
// libvirt shows them; a missing node leaves them unset.
func fillPerms(v *domain.VolDef) {
	var st unix.Stat_t
	if err := unix.Stat(v.Target.Path, &st); err != nil {
		return
	}
	v.Target.Perms.Mode = int64(st.Mode & 0o777)
	v.Target.Perms.Owner = int64(st.Uid)
	v.Target.Perms.Group = int64(st.Gid)
	v.Target.Timestamps = &domain.Timestamps{
		Atime: time.Unix(st.Atim.Unix()),
		Mtime: time.Unix(st.Mtim.Unix()),
		Ctime: time.Unix(st.Ctim.Unix()),
	}
}
