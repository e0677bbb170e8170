package dir

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/adapters/lib/imgformat"
	"github.com/virtstoraged-go/virtstoraged/domain"
)

// PoolStats measures the filesystem holding target as libvirt does: available
// counts f_bfree (root-reserved blocks included), not f_bavail, so that our
// figures match libvirtd's.
func PoolStats(target string) (domain.PoolStats, error) {
	stats, _, err := measure(target)
	return stats, err
}

// targetInfo is what the incremental refresh needs to know of the target
// besides its figures: the filesystem type and the directory's identity.
type targetInfo struct {
	fsType   uint32
	dev, ino uint64
	statOK   bool
}

func measure(target string) (domain.PoolStats, targetInfo, error) {
	var sfs unix.Statfs_t
	if err := unix.Statfs(target, &sfs); err != nil {
		return domain.PoolStats{}, targetInfo{}, sysErr(err, "cannot statvfs path '%s'", target)
	}
	frsize := uint64(sfs.Frsize)
	if frsize == 0 {
		frsize = uint64(sfs.Bsize)
	}
	capacity := sfs.Blocks * frsize
	available := sfs.Bfree * frsize
	stats := domain.PoolStats{Capacity: capacity, Available: available, Allocation: capacity - available}
	ti := targetInfo{fsType: uint32(sfs.Type)}
	var st unix.Stat_t
	if err := unix.Stat(target, &st); err == nil {
		stats.TargetPerms = &domain.Perms{Mode: int64(st.Mode & 0o7777), Owner: int64(st.Uid), Group: int64(st.Gid)}
		ti.dev, ti.ino, ti.statOK = st.Dev, st.Ino, true
	}
	return stats, ti, nil
}

// RefreshPool lists the volumes in the pool's target directory with their
// figures, and measures the filesystem. Entries are inspected in parallel:
// each costs an open, an fstat and one small read, and a pool of thousands of
// images is exactly what makes libvirt's serial refresh slow.
//
// On a local filesystem, and unless FullRefresh is set, the first refresh
// also starts an inotify watch on the directory and keeps what it found;
// later ones re-read only the entries that changed since (watch.go), with the
// same result as a full refresh.
func (v *FileVolumes) RefreshPool(ctx context.Context, def *domain.PoolDef) (domain.PoolStats, []*domain.VolDef, error) {
	if !v.FullRefresh {
		if stats, vols, handled, err := v.refreshCached(ctx, def); handled {
			return stats, vols, err
		}
	}
	return v.refreshFull(ctx, def)
}

// refreshFull reads every entry of the target.
func (v *FileVolumes) refreshFull(ctx context.Context, def *domain.PoolDef) (domain.PoolStats, []*domain.VolDef, error) {
	target := def.Target.Path
	dirents, err := listTarget(target)
	if err != nil {
		return domain.PoolStats{}, nil, err
	}
	vols, err := v.scan(ctx, def.Name, target, dirents)
	if err != nil {
		return domain.PoolStats{}, nil, err
	}
	stats, err := PoolStats(target)
	if err != nil {
		return domain.PoolStats{}, nil, err
	}
	return stats, vols, nil
}

// listTarget reads the target directory, in the order the filesystem gives.
func listTarget(target string) ([]fs.DirEntry, error) {
	d, err := os.Open(target)
	if err != nil {
		return nil, utilErr(err, "cannot open directory '%s'", target)
	}
	dirents, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return nil, utilErr(err, "Unable to read directory '%s'", target)
	}
	return dirents, nil
}

func (v *FileVolumes) workers(n int) int {
	w := v.Workers
	if w <= 0 {
		// Inspecting is mostly system calls that block a thread in the kernel
		// (cold metadata on disk or NFS), so a few more than the cores pays.
		w = 4 * runtime.GOMAXPROCS(0)
	}
	return max(1, min(w, n))
}

// entry is one directory entry as a refresh saw it.
type entry struct {
	name   string
	typ    fs.FileMode // the directory entry's type bits
	wanted bool
	vol    *domain.VolDef // nil: left out of the pool
	// recheck marks an entry whose volume can change without an event on the
	// pool directory: a symlink (its target lives elsewhere), a subdirectory
	// (its times follow its content), a device, a file with other hard links,
	// one that vanished while read.
	recheck bool
	// backingPath, when not empty, is a local backing file whose identity
	// backingID must still hold for vol to be reused.
	backingPath string
	backingID   fileID
}

// entriesOf turns a directory listing into entries, filtering as libvirt.
func (v *FileVolumes) entriesOf(pool string, dirents []fs.DirEntry) []entry {
	ents := make([]entry, len(dirents))
	for i, d := range dirents {
		ents[i] = entry{name: d.Name(), typ: d.Type() & fs.ModeType, wanted: v.wanted(pool, d)}
	}
	return ents
}

// scan inspects entries with a bounded set of workers and returns the volumes
// in directory order.
func (v *FileVolumes) scan(ctx context.Context, pool, target string, dirents []fs.DirEntry) ([]*domain.VolDef, error) {
	ents := v.entriesOf(pool, dirents)
	if err := v.inspectEntries(ctx, target, ents, wantedIndexes(ents)); err != nil {
		return nil, err
	}
	vols := make([]*domain.VolDef, 0, len(ents))
	for _, e := range ents {
		if e.vol != nil {
			vols = append(vols, e.vol)
		}
	}
	return vols, nil
}

func wantedIndexes(ents []entry) []int {
	idx := make([]int, 0, len(ents))
	for i, e := range ents {
		if e.wanted {
			idx = append(idx, i)
		}
	}
	return idx
}

// inspectEntries (re)inspects ents[i] for every i in idx, in parallel, and
// stops at the first error.
func (v *FileVolumes) inspectEntries(ctx context.Context, target string, ents []entry, idx []int) error {
	if len(idx) == 0 {
		return nil
	}
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
		failed   atomic.Bool
	)
	work := func() {
		defer wg.Done()
		scratch := make([]byte, imgformat.HeaderSize)
		for !failed.Load() {
			k := int(next.Add(1)) - 1
			if k >= len(idx) {
				return
			}
			if k%64 == 0 && ctx.Err() != nil {
				errOnce.Do(func() { firstErr = ctx.Err() })
				failed.Store(true)
				return
			}
			e := &ents[idx[k]]
			vol := &domain.VolDef{Name: e.name}
			var pr probe
			err := inspectProbe(volPath(target, e.name), vol, scratch, &pr)
			e.vol, e.backingPath, e.backingID = nil, pr.backingPath, pr.backingID
			e.recheck = e.typ != 0 || pr.mode != unix.S_IFREG || pr.nlink != 1
			if errors.Is(err, errSkip) {
				e.recheck = true
				continue
			}
			if err != nil {
				errOnce.Do(func() { firstErr = err })
				failed.Store(true)
				return
			}
			e.vol = vol
		}
	}
	n := v.workers(len(idx))
	if n == 1 && len(idx) > 0 {
		// One worker, inline: an incremental refresh usually has one or two
		// files to read and no use for a goroutine.
		n = 0
		wg.Add(1)
		work()
	}
	wg.Add(n)
	for range n {
		go work()
	}
	wg.Wait()
	return firstErr
}

// wanted filters on the directory entry type alone, so that FIFOs and sockets
// are never opened, and drops names with control characters as libvirt does.
func (v *FileVolumes) wanted(pool string, e fs.DirEntry) bool {
	switch e.Type() & fs.ModeType {
	case fs.ModeNamedPipe, fs.ModeSocket, fs.ModeCharDevice | fs.ModeDevice:
		return false
	}
	if hasControlChars(e.Name()) {
		if v.Log != nil {
			v.Log.WithField("pool", pool).Warnf("dir: ignoring file with a control character in its name: %q", e.Name())
		}
		return false
	}
	return true
}

// hasControlChars is libvirt's virStringHasControlChars: bytes 0x01-0x1F
// other than tab, newline and carriage return.
func hasControlChars(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
			return true
		}
	}
	return false
}
