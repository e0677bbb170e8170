package dir

import (
	"context"
	"encoding/binary"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/domain"
)

// The incremental refresh. libvirt re-reads every file of a pool on every
// refresh; here the first refresh of a pool on a local filesystem keeps what
// it read and sets an inotify watch on the directory, and later refreshes
// re-read only the names inotify reported, the entries it cannot follow
// (entry.recheck) and the images whose backing file changed. One inotify
// instance serves all the pools of a FileVolumes; its queue is drained by a
// reader goroutine (so that it does not overflow between refreshes) and by
// each refresh before it reads anything (so that a change made before the
// refresh began is always seen: the kernel queues an event after the change
// it reports is visible).
//
// What inotify never reports, and a full refresh would show: the access time
// moved by other readers, writes through a shared mmap or through a hard
// link made later in another directory, changes on another host, and
// allocation a filesystem changes on its own (XFS trims its speculative
// preallocation). cacheMaxAge bounds how long those can go unseen.

// watchMask is what the watch asks for. IN_UNMOUNT, IN_IGNORED and
// IN_Q_OVERFLOW come without asking. IN_EXCL_UNLINK spares the events of
// files deleted while still open (a VM's image), which no longer have a name
// in the pool.
const watchMask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MODIFY | unix.IN_CLOSE_WRITE |
	unix.IN_MOVED_FROM | unix.IN_MOVED_TO | unix.IN_ATTRIB | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF |
	unix.IN_ONLYDIR | unix.IN_EXCL_UNLINK

// relistMask are the events after which the directory must be listed again.
const relistMask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO

// goneMask are the events after which the watch no longer follows the
// target: the directory was removed, moved away or unmounted.
const goneMask = unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_UNMOUNT | unix.IN_IGNORED

// cacheMaxAge is how long a pool's cache is trusted before a full scan.
const cacheMaxAge = 10 * time.Minute

// drainInterval spaces the reader's passes: a running VM raises an event
// per write, and waking once per write would cost more than the refresh
// saves, while the kernel's queue (16384 events by default) holds far more
// than one interval's worth. Refreshes drain the queue themselves.
const drainInterval = 100 * time.Millisecond

// maxDirty bounds the names remembered between two refreshes: past it a full
// scan is as cheap, and a process making and removing names by the million
// cannot grow the daemon.
const maxDirty = 1 << 16

// localFS are the filesystems where every change to a file goes through this
// kernel's VFS (magic numbers of statfs(2)): inotify sees every change, and
// reading a cached page never waits for anyone else. Network and cluster
// filesystems (NFS, CIFS, Ceph, GFS2, FUSE and so GlusterFS) change under us
// without events, so their pools are always read in full, and their downloads
// are never sent from the page cache by sendfile (onLocalFS).
var localFS = map[uint32]bool{
	0xEF53:     true, // ext2, ext3, ext4
	0x58465342: true, // xfs
	0x9123683E: true, // btrfs
	0x01021994: true, // tmpfs
	0x858458F6: true, // ramfs
	0xF2F52010: true, // f2fs
	0x2FC12FC1: true, // zfs
	0xCA451A4E: true, // bcachefs
	0x3153464A: true, // jfs
	0x52654973: true, // reiserfs
	0x3434:     true, // nilfs2
	0x4D44:     true, // vfat
	0x2011BAB0: true, // exfat
	0x794C7630: true, // overlayfs (changes made under its layers directly are not seen)
}

// watchSet returns v's incremental refresh state, made on first use (with
// create) so that every way of building a FileVolumes gets it.
func (v *FileVolumes) watchSet(create bool) *watchSet {
	v.watchMu.Lock()
	defer v.watchMu.Unlock()
	if v.watches == nil && create {
		v.watches = &watchSet{log: v.Log, fd: -1, pools: map[string]*poolCache{}, byWD: map[int32][]*poolCache{}}
	}
	return v.watches
}

// ForgetPool drops a pool's incremental refresh state: its inotify watch and
// what its last refresh read. StopPool and DeletePool call it; the next
// refresh reads every file. Once no pool is watched the inotify descriptor is
// closed before ForgetPool returns.
func (v *FileVolumes) ForgetPool(def *domain.PoolDef) {
	if ws := v.watchSet(false); ws != nil {
		ws.forget(def.Name)
	}
}

// watchSet is the incremental refresh state of one FileVolumes.
type watchSet struct {
	log *logrus.Entry // may be nil

	mu     sync.Mutex
	file   *os.File // the inotify instance; nil when closed
	fd     int
	stop   chan struct{} // closed to stop file's reader
	done   chan struct{} // closed when file's reader has closed it
	buf    []byte
	pools  map[string]*poolCache // by pool name
	byWD   map[int32][]*poolCache
	counts refreshCounts
}

// refreshCounts say what refreshes did, for tests and debug logs.
type refreshCounts struct {
	full, incremental, inspected, relists int
}

// poolCache is one pool's state.
type poolCache struct {
	name string

	// refreshMu serializes the pool's refreshes and guards the fields up to
	// the next blank line.
	refreshMu sync.Mutex
	target    string
	dev, ino  uint64
	filled    time.Time
	entries   []entry // the last refresh's listing, in directory order
	index     map[string]int

	// Under watchSet.mu.
	wd     int32 // -1: no watch
	valid  bool  // false: the next refresh must read everything
	relist bool
	dirty  map[string]struct{}
}

// refreshCached is RefreshPool through the cache; handled is false when the
// pool must be refreshed in full without it (a filesystem inotify cannot
// follow, or a target that cannot be measured, whose error the full refresh
// reports as it always did).
func (v *FileVolumes) refreshCached(ctx context.Context, def *domain.PoolDef) (domain.PoolStats, []*domain.VolDef, bool, error) {
	target := def.Target.Path
	stats, ti, err := measure(target)
	if err != nil || !ti.statOK || !localFS[ti.fsType] {
		v.ForgetPool(def)
		return domain.PoolStats{}, nil, false, nil
	}
	ws := v.watchSet(true)
	pc := ws.pool(def.Name)
	pc.refreshMu.Lock()
	defer pc.refreshMu.Unlock()

	ws.mu.Lock()
	ws.drainLocked()
	valid, relist, dirty := pc.valid, pc.relist, pc.dirty
	pc.relist, pc.dirty = false, nil
	ws.mu.Unlock()

	var vols []*domain.VolDef
	if !valid || pc.entries == nil || pc.target != target || pc.dev != ti.dev || pc.ino != ti.ino || time.Since(pc.filled) > cacheMaxAge {
		vols, err = ws.fill(ctx, v, def, pc, ti)
	} else {
		vols, err = ws.update(ctx, v, def, pc, relist, dirty)
	}
	if err != nil {
		return domain.PoolStats{}, nil, true, err
	}
	return stats, vols, true, nil
}

// fill reads the whole target into the cache, the watch set first so that
// whatever changes during the scan is marked for the next refresh.
func (ws *watchSet) fill(ctx context.Context, v *FileVolumes, def *domain.PoolDef, pc *poolCache, ti targetInfo) ([]*domain.VolDef, error) {
	target := def.Target.Path
	pc.entries, pc.index = nil, nil
	armed := ws.arm(pc, target)
	dirents, err := listTarget(target)
	var ents []entry
	if err == nil {
		ents = v.entriesOf(def.Name, dirents)
		err = v.inspectEntries(ctx, target, ents, wantedIndexes(ents))
	}
	ws.mu.Lock()
	ws.counts.full++
	ws.counts.inspected += len(ents)
	if err != nil || !armed {
		pc.valid, pc.dirty = false, nil
	}
	ws.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if !armed {
		return volsOf(ents), nil
	}
	pc.target, pc.dev, pc.ino, pc.filled = target, ti.dev, ti.ino, time.Now()
	pc.entries, pc.index = ents, indexOf(ents)
	return cloneVols(ents), nil
}

// update brings the cache up to date with what the watch reported.
func (ws *watchSet) update(ctx context.Context, v *FileVolumes, def *domain.PoolDef, pc *poolCache, relist bool, dirty map[string]struct{}) ([]*domain.VolDef, error) {
	target := def.Target.Path
	if !relist {
		for name := range dirty {
			if _, ok := pc.index[name]; !ok {
				// A name never listed, without a create event: list again
				// rather than trust the cache.
				relist = true
				break
			}
		}
	}
	ents, index := pc.entries, pc.index
	var fresh []bool
	if relist {
		dirents, err := listTarget(target)
		if err != nil {
			ws.invalidate(pc)
			return nil, err
		}
		ents, index, fresh = make([]entry, len(dirents)), make(map[string]int, len(dirents)), make([]bool, len(dirents))
		for i, d := range dirents {
			name, typ := d.Name(), d.Type()&os.ModeType
			index[name] = i
			if j, ok := pc.index[name]; ok && pc.entries[j].typ == typ {
				ents[i] = pc.entries[j]
				continue
			}
			ents[i] = entry{name: name, typ: typ, wanted: v.wanted(def.Name, d)}
			fresh[i] = true
		}
	}
	var idx []int
	var backing map[string]fileID
	for i := range ents {
		e := &ents[i]
		if !e.wanted {
			continue
		}
		_, isDirty := dirty[e.name]
		reread := isDirty || e.recheck || (fresh != nil && fresh[i])
		if !reread && e.backingPath != "" {
			if backing == nil {
				backing = map[string]fileID{}
			}
			id, ok := backing[e.backingPath]
			if !ok {
				id = statID(e.backingPath)
				backing[e.backingPath] = id
			}
			reread = id != e.backingID
		}
		if reread {
			idx = append(idx, i)
		}
	}
	err := v.inspectEntries(ctx, target, ents, idx)
	ws.mu.Lock()
	ws.counts.incremental++
	ws.counts.inspected += len(idx)
	if relist {
		ws.counts.relists++
	}
	ws.mu.Unlock()
	if err != nil {
		ws.invalidate(pc)
		pc.entries, pc.index = nil, nil
		return nil, err
	}
	pc.entries, pc.index = ents, index
	return cloneVols(ents), nil
}

func indexOf(ents []entry) map[string]int {
	index := make(map[string]int, len(ents))
	for i, e := range ents {
		index[e.name] = i
	}
	return index
}

func volsOf(ents []entry) []*domain.VolDef {
	vols := make([]*domain.VolDef, 0, len(ents))
	for _, e := range ents {
		if e.vol != nil {
			vols = append(vols, e.vol)
		}
	}
	return vols
}

// cloneVols copies the cached volumes for the caller, which keeps and
// changes them (RefreshVol fills them in place). The copies share two
// allocations: ten thousand separate ones would cost as much as the rest of
// an incremental refresh.
func cloneVols(ents []entry) []*domain.VolDef {
	n := 0
	for _, e := range ents {
		if e.vol != nil {
			n++
		}
	}
	vols := make([]*domain.VolDef, 0, n)
	defs := make([]domain.VolDef, n)
	times := make([]domain.Timestamps, n)
	for _, e := range ents {
		if e.vol == nil {
			continue
		}
		k := len(vols)
		defs[k] = *e.vol
		if b := e.vol.Backing; b != nil {
			bc := *b
			if b.Timestamps != nil {
				ts := *b.Timestamps
				bc.Timestamps = &ts
			}
			defs[k].Backing = &bc
		}
		defs[k].Extents = slices.Clone(e.vol.Extents)
		if ts := e.vol.Target.Timestamps; ts != nil {
			times[k] = *ts
			defs[k].Target.Timestamps = &times[k]
		}
		vols = append(vols, &defs[k])
	}
	return vols
}

func (ws *watchSet) debugf(pool string, err error, format string, args ...any) {
	if ws.log != nil {
		ws.log.WithField("pool", pool).WithError(err).Debugf(format, args...)
	}
}

func (ws *watchSet) pool(name string) *poolCache {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	pc := ws.pools[name]
	if pc == nil {
		pc = &poolCache{name: name, wd: -1}
		ws.pools[name] = pc
	}
	return pc
}

// arm watches target for pc, opening the inotify instance if needed, and
// marks pc valid. It reports false when no watch could be set (the pool is
// then refreshed in full).
func (ws *watchSet) arm(pc *poolCache, target string) bool {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.pools[pc.name] != pc {
		return false // forgotten meanwhile
	}
	if ws.file == nil {
		fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
		if err != nil {
			ws.debugf(pc.name, err, "dir: no inotify instance, refreshing in full")
			return false
		}
		ws.file, ws.fd = os.NewFile(uintptr(fd), "inotify"), fd
		ws.stop, ws.done = make(chan struct{}), make(chan struct{})
		if ws.buf == nil {
			ws.buf = make([]byte, 64<<10)
		}
		go ws.read(ws.file, ws.stop, ws.done)
	}
	wd, err := unix.InotifyAddWatch(ws.fd, target, watchMask)
	if err != nil {
		ws.unwatchLocked(pc)
		ws.debugf(pc.name, err, "dir: cannot watch '%s', refreshing in full", target)
		return false
	}
	if w := int32(wd); pc.wd != w {
		ws.unwatchLocked(pc)
		pc.wd = w
		ws.byWD[w] = append(ws.byWD[w], pc)
	}
	pc.valid, pc.relist, pc.dirty = true, false, nil
	return true
}

// unwatchLocked detaches pc from its watch, removed once no pool uses it
// (two pools over one directory share a watch descriptor).
func (ws *watchSet) unwatchLocked(pc *poolCache) {
	if pc.wd < 0 {
		return
	}
	list := ws.byWD[pc.wd]
	for i, p := range list {
		if p == pc {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(ws.byWD, pc.wd)
		if ws.file != nil {
			_, _ = unix.InotifyRmWatch(ws.fd, uint32(pc.wd))
		}
	} else {
		ws.byWD[pc.wd] = list
	}
	pc.wd = -1
}

func (ws *watchSet) invalidate(pc *poolCache) {
	ws.mu.Lock()
	pc.valid, pc.dirty = false, nil
	ws.mu.Unlock()
}

func (ws *watchSet) forget(name string) {
	ws.mu.Lock()
	pc := ws.pools[name]
	if pc == nil {
		ws.mu.Unlock()
		return
	}
	delete(ws.pools, name)
	ws.unwatchLocked(pc)
	pc.valid, pc.dirty = false, nil
	var done chan struct{}
	if len(ws.pools) == 0 && ws.file != nil {
		done = ws.done
		ws.detachLocked()
	}
	ws.mu.Unlock()
	if done != nil {
		<-done
	}
}

// detachLocked stops using the inotify instance; its reader closes it.
func (ws *watchSet) detachLocked() {
	close(ws.stop)
	// Wakes the reader if it waits for events.
	_ = ws.file.SetReadDeadline(time.Now())
	ws.file, ws.fd = nil, -1
	clear(ws.byWD)
	for _, pc := range ws.pools {
		pc.wd, pc.valid, pc.dirty = -1, false, nil
	}
}

// read moves events into the pools' dirty sets until stopped, at most once
// per drainInterval, then closes file.
func (ws *watchSet) read(file *os.File, stop, done chan struct{}) {
	defer close(done)
	defer file.Close()
	rc, err := file.SyscallConn()
	if err != nil {
		<-stop
		return
	}
	timer := time.NewTimer(drainInterval)
	defer timer.Stop()
	for {
		err := rc.Read(func(uintptr) bool {
			ws.mu.Lock()
			defer ws.mu.Unlock()
			if ws.file != file {
				return true
			}
			// Nothing read: wait until the descriptor is readable.
			return ws.drainLocked()
		})
		if err != nil {
			return
		}
		timer.Reset(drainInterval)
		select {
		case <-stop:
			return
		case <-timer.C:
		}
	}
}

// drainLocked reads every queued event and reports whether there was any
// (or an error, after which every cache is dropped).
func (ws *watchSet) drainLocked() bool {
	if ws.file == nil {
		return true
	}
	got := false
	for ws.file != nil { // an event may close the instance
		n, err := unix.Read(ws.fd, ws.buf)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return got
		case err != nil:
			if ws.log != nil {
				ws.log.WithError(err).Warn("dir: reading inotify events, dropping the refresh caches")
			}
			ws.applyLocked(-1, unix.IN_Q_OVERFLOW, "")
			return true
		case n <= 0:
			return got
		}
		got = true
		ws.parseLocked(ws.buf[:n])
	}
	return true
}

// parseLocked applies a buffer of struct inotify_event.
func (ws *watchSet) parseLocked(b []byte) {
	for len(b) >= unix.SizeofInotifyEvent {
		wd := int32(binary.NativeEndian.Uint32(b[0:]))
		mask := binary.NativeEndian.Uint32(b[4:])
		n := int(binary.NativeEndian.Uint32(b[12:]))
		b = b[unix.SizeofInotifyEvent:]
		if n > len(b) {
			return
		}
		name := b[:n]
		for i, c := range name {
			if c == 0 {
				name = name[:i]
				break
			}
		}
		ws.applyLocked(wd, mask, string(name))
		b = b[n:]
	}
}

// applyLocked marks what one event says changed.
func (ws *watchSet) applyLocked(wd int32, mask uint32, name string) {
	if mask&unix.IN_Q_OVERFLOW != 0 {
		for _, pc := range ws.pools {
			pc.valid, pc.dirty = false, nil
		}
		return
	}
	pcs := ws.byWD[wd]
	if mask&goneMask != 0 {
		for _, pc := range pcs {
			pc.valid, pc.dirty = false, nil
			if mask&unix.IN_IGNORED != 0 {
				pc.wd = -1
				if pc.refreshMu.TryLock() {
					// An unmounted fs pool's cache would otherwise stay
					// until the pool is forgotten.
					pc.entries, pc.index = nil, nil
					pc.refreshMu.Unlock()
				}
			}
		}
		if mask&unix.IN_IGNORED != 0 {
			delete(ws.byWD, wd)
			if len(ws.byWD) == 0 && ws.file != nil {
				ws.detachLocked()
			}
		}
		return
	}
	if name == "" {
		return // the directory itself: its figures are measured anew each time
	}
	for _, pc := range pcs {
		if !pc.valid {
			continue
		}
		if mask&relistMask != 0 {
			pc.relist = true
		}
		if pc.dirty == nil {
			pc.dirty = map[string]struct{}{}
		}
		pc.dirty[name] = struct{}{}
		if len(pc.dirty) > maxDirty {
			pc.valid, pc.dirty = false, nil
		}
	}
}
