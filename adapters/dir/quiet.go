package dir

import (
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/domain"
)

// Volume info and XML re-read the volume each time, as libvirt does: open,
// stat, read and parse the header. For a file that has not changed since it
// was last read, a stat says as much, and the header need not be read again.
//
// "Not changed" is judged by the file's identity: device, inode, size, mtime
// and ctime. Filesystem times tick coarsely (ext4 by the jiffy), so a write
// in the same tick as the read would leave them equal; a file's header is
// therefore only remembered when its ctime was already quietAge old when
// it was read. Every change after that moves the ctime past the remembered
// one.

// quietAge is how long a file must have been left alone before its header is
// trusted to stay as read while its times stay the same: many ticks of the
// filesystem's clock. The local filesystems named here keep nanosecond times
// from the kernel's coarse clock (a tick of 1 to 10 ms); others, such as FAT
// with its 2-second times, get a wide margin.
func quietAge(path string) time.Duration {
	var fs unix.Statfs_t
	if unix.Statfs(path, &fs) == nil {
		switch fs.Type {
		case unix.EXT4_SUPER_MAGIC, unix.XFS_SUPER_MAGIC, unix.BTRFS_SUPER_MAGIC, unix.TMPFS_MAGIC:
			return quietAgeMin
		}
	}
	return 5 * time.Second
}

// quietAgeMin is the quiet age on the filesystems with fine times.
const quietAgeMin = 200 * time.Millisecond

// quietLimit bounds the remembered files; past it the memory starts afresh.
const quietLimit = 100_000

type quietID struct {
	dev, ino     uint64
	size         int64
	mtime, ctime unix.Timespec
}

func quietIDOf(st *unix.Stat_t) quietID {
	return quietID{dev: st.Dev, ino: st.Ino, size: st.Size, mtime: st.Mtim, ctime: st.Ctim}
}

// quietFiles remembers the files last read while quiet, by path; the zero
// value is empty and ready. Each FileVolumes has its own, so that two
// backends never trust each other's reads.
type quietFiles struct {
	files sync.Map // path -> quietID read while quiet
	count atomic.Int64
}

// remember records what vol was just read from when the file was quiet.
func (q *quietFiles) remember(path string, st *unix.Stat_t, now time.Time) {
	// The cheap test first: a file changed within the shortest age is not
	// quiet on any filesystem, and needs no statfs to say so.
	if age := now.Sub(time.Unix(st.Ctim.Unix())); age < quietAgeMin || age < quietAge(path) {
		q.files.Delete(path)
		return
	}
	if _, loaded := q.files.Swap(path, quietIDOf(st)); !loaded && q.count.Add(1) > quietLimit {
		q.files.Clear()
		q.count.Store(0)
	}
}

func (q *quietFiles) forget(path string) { q.files.Delete(path) }

// refresh brings vol up to date from a stat alone when the file is the one
// last read while quiet and vol was filled from that read. It reports false
// when the file must be read again.
func (q *quietFiles) refresh(vol *domain.VolDef) bool {
	path := vol.Target.Path
	if vol.Type != domain.VolFile || vol.Backing != nil || vol.Target.Timestamps == nil {
		// A backing file is described too, and it may change on its own.
		return false
	}
	known, ok := q.files.Load(path)
	if !ok {
		return false
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return false
	}
	id := quietIDOf(&st)
	ts := vol.Target.Timestamps
	if known.(quietID) != id || !ts.Mtime.Equal(time.Unix(st.Mtim.Unix())) ||
		!ts.Ctime.Equal(time.Unix(st.Ctim.Unix())) || vol.Physical != uint64(st.Size) {
		return false
	}
	// What a stat tells, taken afresh; the header's fields stay as read.
	vol.Allocation = uint64(st.Blocks) * 512
	vol.Target.Perms = domain.Perms{Mode: int64(st.Mode & 0o777), Owner: int64(st.Uid), Group: int64(st.Gid)}
	vol.Target.Timestamps = statTimes(&st)
	return true
}
