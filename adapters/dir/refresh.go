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

	"github.com/virtstoraged-go/virtstoraged/adapters/imgformat"
	"github.com/virtstoraged-go/virtstoraged/domain"
)

// PoolStats measures the filesystem holding target as libvirt does: available
// counts f_bfree (root-reserved blocks included), not f_bavail, so that our
// figures match libvirtd's.
func PoolStats(target string) (domain.PoolStats, error) {
	var sfs unix.Statfs_t
	if err := unix.Statfs(target, &sfs); err != nil {
		return domain.PoolStats{}, sysErr(err, "cannot statvfs path '%s'", target)
	}
	frsize := uint64(sfs.Frsize)
	if frsize == 0 {
		frsize = uint64(sfs.Bsize)
	}
	capacity := sfs.Blocks * frsize
	available := sfs.Bfree * frsize
	stats := domain.PoolStats{Capacity: capacity, Available: available, Allocation: capacity - available}
	var st unix.Stat_t
	if err := unix.Stat(target, &st); err == nil {
		stats.TargetPerms = &domain.Perms{Mode: int64(st.Mode & 0o7777), Owner: int64(st.Uid), Group: int64(st.Gid)}
	}
	return stats, nil
}

// RefreshPool lists the volumes in the pool's target directory with their
// figures, and measures the filesystem. Entries are inspected in parallel:
// each costs an open, an fstat and one small read, and a pool of thousands of
// images is exactly what makes libvirt's serial refresh slow.
func (v *FileVolumes) RefreshPool(ctx context.Context, def *domain.PoolDef) (domain.PoolStats, []*domain.VolDef, error) {
	target := def.Target.Path
	d, err := os.Open(target)
	if err != nil {
		return domain.PoolStats{}, nil, sysErr(err, "cannot open directory '%s'", target)
	}
	entries, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return domain.PoolStats{}, nil, sysErr(err, "failed to read directory '%s'", target)
	}
	vols, err := v.scan(ctx, def.Name, target, entries)
	if err != nil {
		return domain.PoolStats{}, nil, err
	}
	stats, err := PoolStats(target)
	if err != nil {
		return domain.PoolStats{}, nil, err
	}
	return stats, vols, nil
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

// scan inspects entries with a bounded set of workers and returns the volumes
// in directory order.
func (v *FileVolumes) scan(ctx context.Context, pool, target string, entries []fs.DirEntry) ([]*domain.VolDef, error) {
	results := make([]*domain.VolDef, len(entries))
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
			i := int(next.Add(1)) - 1
			if i >= len(entries) {
				return
			}
			if i%64 == 0 && ctx.Err() != nil {
				errOnce.Do(func() { firstErr = ctx.Err() })
				failed.Store(true)
				return
			}
			e := entries[i]
			if !v.wanted(pool, e) {
				continue
			}
			vol := &domain.VolDef{Name: e.Name()}
			err := inspect(volPath(target, e.Name()), vol, scratch)
			if errors.Is(err, errSkip) {
				continue
			}
			if err != nil {
				errOnce.Do(func() { firstErr = err })
				failed.Store(true)
				return
			}
			results[i] = vol
		}
	}
	n := v.workers(len(entries))
	wg.Add(n)
	for range n {
		go work()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	vols := results[:0]
	for _, vol := range results {
		if vol != nil {
			vols = append(vols, vol)
		}
	}
	return vols, nil
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
