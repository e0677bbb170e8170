// Package mpath is the "mpath" pool backend: the pool is the host's set of
// device-mapper multipath maps, each map a volume. The pool cannot be built,
// deleted or given new volumes; it only lists what multipathd set up.
//
// libvirt lists the maps through libdevmapper (DM_DEVICE_LIST, then the table
// of each map to keep those of target type "multipath"). We read the same
// facts from sysfs, without a library or a command: every map is
// SYSFS/block/dm-N, its dm/name is the /dev/mapper name, and multipathd gives
// its maps a dm/uuid starting with "mpath-", which is how multipath-tools
// itself tells its maps from other device-mapper devices.
package mpath

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/virtstoraged-go/virtstoraged/adapters/lib/blockdev"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

var _ ports.PoolBackend = (*Backend)(nil)

// TargetPath is where multipath maps appear; libvirt forces every mpath pool's
// target to it.
const TargetPath = "/dev/mapper"

// LegacyMpathDir is what libvirt checks at daemon start to decide whether an
// mpath pool is still active.
const LegacyMpathDir = "/dev/mpath"

// uuidPrefix marks the device-mapper maps multipathd created.
const uuidPrefix = "mpath-"

// sectorSize is the unit of sysfs block device sizes.
const sectorSize = 512

// Backend serves mpath pools.
type Backend struct {
	runner    ports.CommandRunner
	sysfsRoot string
	log       *logrus.Entry
	// CheckDir is the directory whose existence CheckPool reports as the pool
	// being active (LegacyMpathDir unless a test changes it).
	CheckDir string
}

// New returns the mpath backend reading device-mapper maps under sysfsRoot
// (normally "/sys"); runner runs scrub for wipes.
func New(runner ports.CommandRunner, sysfsRoot string, log *logrus.Entry) *Backend {
	if log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		log = logrus.NewEntry(l)
	}
	return &Backend{runner: runner, sysfsRoot: sysfsRoot, log: log, CheckDir: LegacyMpathDir}
}

// Type is PoolMpath.
func (b *Backend) Type() domain.PoolType { return domain.PoolMpath }

// DefaultVolFormat is empty: maps carry no image format.
func (b *Backend) DefaultVolFormat() string { return "" }

// ValidatePool forces the target path to /dev/mapper.
func (b *Backend) ValidatePool(def *domain.PoolDef) error {
	def.Target.Path = TargetPath
	return nil
}

// CheckPool reports the pool active when the legacy /dev/mpath directory
// exists, as libvirt does; on current systems it does not, so mpath pools come
// back inactive after a daemon restart there too.
func (b *Backend) CheckPool(ctx context.Context, def *domain.PoolDef) (bool, error) {
	st, err := os.Stat(b.CheckDir)
	return err == nil && st.IsDir(), nil
}

// BuildPool does nothing: multipathd builds the maps.
func (b *Backend) BuildPool(ctx context.Context, def *domain.PoolDef, flags uint32) error { return nil }

// StartPool does nothing.
func (b *Backend) StartPool(ctx context.Context, def *domain.PoolDef) error { return nil }

// StopPool does nothing.
func (b *Backend) StopPool(ctx context.Context, def *domain.PoolDef) error { return nil }

// DeletePool is not supported.
func (b *Backend) DeletePool(ctx context.Context, def *domain.PoolDef, flags uint32) error {
	return domain.Errorf(domain.KindNoSupport, "pool does not support pool deletion")
}

// FindPoolSources is not supported.
func (b *Backend) FindPoolSources(ctx context.Context, spec *domain.PoolSource, flags uint32) ([]domain.PoolSource, error) {
	return nil, domain.Errorf(domain.KindNoSupport, "pool type '%s' does not support source discovery", domain.PoolMpath)
}

// Map is one multipath map found in sysfs.
type Map struct {
	Minor int
	Name  string
	Size  uint64 // bytes
}

// Maps lists the multipath maps under sysfsRoot, by minor number.
func Maps(sysfsRoot string) ([]Map, error) {
	blockDir := filepath.Join(sysfsRoot, "block")
	ents, err := os.ReadDir(blockDir)
	if err != nil {
		return nil, blockdev.SysErr(err, "cannot read directory '%s'", blockDir)
	}
	var maps []Map
	for _, e := range ents {
		m, ok, err := readMap(blockDir, e.Name())
		if err != nil {
			return nil, err
		}
		if ok {
			maps = append(maps, m)
		}
	}
	sort.Slice(maps, func(i, j int) bool { return maps[i].Minor < maps[j].Minor })
	return maps, nil
}

// readMap reads one SYSFS/block entry; ok is false for anything that is not a
// multipath map. A map that vanishes while being read is skipped.
func readMap(blockDir, name string) (Map, bool, error) {
	minorStr, isDM := strings.CutPrefix(name, "dm-")
	if !isDM {
		return Map{}, false, nil
	}
	minor, err := strconv.Atoi(minorStr)
	if err != nil || minor < 0 {
		return Map{}, false, nil
	}
	dir := filepath.Join(blockDir, name)
	uuid, err := readLine(filepath.Join(dir, "dm", "uuid"))
	if errors.Is(err, fs.ErrNotExist) {
		return Map{}, false, nil
	}
	if err != nil {
		return Map{}, false, err
	}
	if !strings.HasPrefix(uuid, uuidPrefix) {
		return Map{}, false, nil
	}
	mapName, err := readLine(filepath.Join(dir, "dm", "name"))
	if errors.Is(err, fs.ErrNotExist) {
		return Map{}, false, nil
	}
	if err != nil {
		return Map{}, false, err
	}
	if mapName == "" || strings.Contains(mapName, "/") {
		return Map{}, false, nil
	}
	size, err := readSize(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return Map{}, false, nil
	}
	if err != nil {
		return Map{}, false, err
	}
	return Map{Minor: minor, Name: mapName, Size: size}, true, nil
}

func readLine(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		return "", blockdev.SysErr(err, "cannot read '%s'", path)
	}
	return strings.TrimSpace(string(b)), nil
}

// readSize reads SYSFS/block/dm-N/size, in 512-byte sectors whatever the
// device's logical block size.
func readSize(dir string) (uint64, error) {
	path := filepath.Join(dir, "size")
	s, err := readLine(path)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > (1<<64-1)/sectorSize {
		return 0, domain.Errorf(domain.KindInternal, "malformed device size '%s' in '%s'", s, path)
	}
	return n * sectorSize, nil
}

func volOf(m Map) *domain.VolDef {
	path := TargetPath + "/" + m.Name
	v := &domain.VolDef{
		Name:          "dm-" + strconv.Itoa(m.Minor),
		Key:           path,
		Type:          domain.VolBlock,
		Capacity:      m.Size,
		Allocation:    m.Size,
		HasCapacity:   true,
		HasAllocation: true,
	}
	v.Target.Path = path
	v.Target.Perms = domain.UnsetPerms()
	// What libvirt reads from the node (virStorageBackendUpdateVolInfo): its
	// owner, mode and times, and its size as the physical size. A map whose
	// node udev has not made yet, or already removed, keeps sysfs' figures.
	if n, err := blockdev.StatNode(path); err == nil {
		v.Target.Perms, v.Target.Timestamps = n.Perms, n.Times
		if n.Block {
			v.Physical = n.Size
		}
	}
	return v
}

// RefreshPool lists the maps; the pool's capacity and allocation are their
// total size, and nothing is available.
func (b *Backend) RefreshPool(ctx context.Context, def *domain.PoolDef) (domain.PoolStats, []*domain.VolDef, error) {
	maps, err := Maps(b.sysfsRoot)
	if err != nil {
		return domain.PoolStats{}, nil, err
	}
	var stats domain.PoolStats
	vols := make([]*domain.VolDef, 0, len(maps))
	for _, m := range maps {
		stats.Capacity += m.Size
		vols = append(vols, volOf(m))
	}
	stats.Allocation = stats.Capacity
	return stats, vols, nil
}

// PrepareVol refuses: multipath maps are not created through the pool.
func (b *Backend) PrepareVol(pool *domain.PoolDef, vol *domain.VolDef) error {
	return domain.Errorf(domain.KindNoSupport, "storage pool does not support volume creation")
}

// BuildVol is not supported.
func (b *Backend) BuildVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, flags uint32) error {
	return domain.Errorf(domain.KindNoSupport, "storage pool does not support volume creation")
}

// BuildVolFrom is not supported.
func (b *Backend) BuildVolFrom(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, srcPool *domain.PoolDef, src *domain.VolDef, flags uint32) error {
	return domain.Errorf(domain.KindNoSupport, "storage pool does not support volume creation from an existing volume")
}

// RefreshVol re-reads the map's size.
func (b *Backend) RefreshVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef) error {
	m, ok, err := readMap(filepath.Join(b.sysfsRoot, "block"), vol.Name)
	if err != nil {
		return err
	}
	if !ok {
		return domain.Errorf(domain.KindNoStorageVol, "no storage vol with matching name '%s'", vol.Name)
	}
	*vol = *volOf(m)
	return nil
}

// DeleteVol is not supported.
func (b *Backend) DeleteVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, flags uint32) error {
	return domain.Errorf(domain.KindNoSupport, "storage pool does not support vol deletion")
}

// ResizeVol is not supported.
func (b *Backend) ResizeVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, capacity uint64, flags uint32) error {
	return domain.Errorf(domain.KindNoSupport, "storage pool does not support changing of volume capacity")
}

// WipeVol wipes the map's device.
func (b *Backend) WipeVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, algorithm domain.WipeAlgorithm, flags uint32) error {
	if flags != 0 {
		return domain.ErrUnsupportedFlags(flags, "virStorageBackendVolWipeLocal")
	}
	return blockdev.Wipe(ctx, b.runner, vol.Target.Path, algorithm)
}

// UploadVol streams into the map's device.
func (b *Backend) UploadVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, offset, length uint64, flags uint32) (ports.VolumeWriter, error) {
	return blockdev.Upload(vol.Target.Path, offset, length, flags, "virStorageBackendVolUploadLocal")
}

// DownloadVol streams from the map's device.
func (b *Backend) DownloadVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, offset, length uint64, flags uint32) (ports.VolumeReader, error) {
	return blockdev.Download(vol.Target.Path, offset, length, flags, "virStorageBackendVolDownloadLocal")
}
