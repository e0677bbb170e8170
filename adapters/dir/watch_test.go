package dir

import (
	"encoding/binary"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// RefreshCounts says what the incremental refreshes of a FileVolumes did
// (tests only).
type RefreshCounts struct {
	Full, Incremental, Inspected, Relists int
}

// CountsOf returns v's refresh counts (tests only).
func CountsOf(v *FileVolumes) RefreshCounts {
	ws := v.watchSet(false)
	if ws == nil {
		return RefreshCounts{}
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	c := ws.counts
	return RefreshCounts{Full: c.full, Incremental: c.incremental, Inspected: c.inspected, Relists: c.relists}
}

// SimulateOverflow makes v act as if the kernel had reported IN_Q_OVERFLOW
// (tests only).
func SimulateOverflow(v *FileVolumes) {
	ws := v.watchSet(true)
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.applyLocked(-1, unix.IN_Q_OVERFLOW, "")
}

// AgeCache makes v's cache of pool look d older (tests only).
func AgeCache(v *FileVolumes, pool string, d time.Duration) {
	ws := v.watchSet(true)
	pc := ws.pool(pool)
	pc.refreshMu.Lock()
	defer pc.refreshMu.Unlock()
	pc.filled = pc.filled.Add(-d)
}

// inotifyEvent encodes one struct inotify_event with a padded name.
func inotifyEvent(wd int32, mask uint32, name string) []byte {
	n := 0
	if name != "" {
		n = (len(name) + 1 + 15) &^ 15
	}
	b := make([]byte, unix.SizeofInotifyEvent+n)
	binary.NativeEndian.PutUint32(b[0:], uint32(wd))
	binary.NativeEndian.PutUint32(b[4:], mask)
	binary.NativeEndian.PutUint32(b[12:], uint32(n))
	copy(b[unix.SizeofInotifyEvent:], name)
	return b
}

func TestApplyEvents(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		giveEvents [][]byte
		giveValid  bool
		wantValid  bool
		wantRelist bool
		wantDirty  []string
		wantWD     int32
	}{
		{
			name:       "modify marks the name",
			giveEvents: [][]byte{inotifyEvent(1, unix.IN_MODIFY, "a.img")},
			giveValid:  true, wantValid: true, wantDirty: []string{"a.img"}, wantWD: 1,
		},
		{
			name:       "attrib and close_write of two names",
			giveEvents: [][]byte{inotifyEvent(1, unix.IN_ATTRIB, "a"), inotifyEvent(1, unix.IN_CLOSE_WRITE, "b-with-a-long-name.qcow2")},
			giveValid:  true, wantValid: true, wantDirty: []string{"a", "b-with-a-long-name.qcow2"}, wantWD: 1,
		},
		{
			name:       "create asks for a listing",
			giveEvents: [][]byte{inotifyEvent(1, unix.IN_CREATE, "n")},
			giveValid:  true, wantValid: true, wantRelist: true, wantDirty: []string{"n"}, wantWD: 1,
		},
		{
			name:       "moved_from asks for a listing",
			giveEvents: [][]byte{inotifyEvent(1, unix.IN_MOVED_FROM, "old")},
			giveValid:  true, wantValid: true, wantRelist: true, wantDirty: []string{"old"}, wantWD: 1,
		},
		{
			name:       "another watch's event is ignored",
			giveEvents: [][]byte{inotifyEvent(2, unix.IN_MODIFY, "a")},
			giveValid:  true, wantValid: true, wantWD: 1,
		},
		{
			name:       "event on the directory itself",
			giveEvents: [][]byte{inotifyEvent(1, unix.IN_ATTRIB|unix.IN_ISDIR, "")},
			giveValid:  true, wantValid: true, wantWD: 1,
		},
		{
			name:       "overflow drops the cache",
			giveEvents: [][]byte{inotifyEvent(1, unix.IN_MODIFY, "a"), inotifyEvent(-1, unix.IN_Q_OVERFLOW, "")},
			giveValid:  true, wantValid: false, wantWD: 1,
		},
		{
			name:       "directory deleted",
			giveEvents: [][]byte{inotifyEvent(1, unix.IN_DELETE_SELF, "")},
			giveValid:  true, wantValid: false, wantWD: 1,
		},
		{
			name:       "unmounted then ignored: the watch is gone",
			giveEvents: [][]byte{inotifyEvent(1, unix.IN_UNMOUNT, ""), inotifyEvent(1, unix.IN_IGNORED, "")},
			giveValid:  true, wantValid: false, wantWD: -1,
		},
		{
			name:       "an invalid cache collects nothing",
			giveEvents: [][]byte{inotifyEvent(1, unix.IN_CREATE, "n")},
			giveValid:  false, wantValid: false, wantWD: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pc := &poolCache{name: "p", wd: 1, valid: tt.giveValid, entries: []entry{{name: "a"}}}
			ws := &watchSet{fd: -1, pools: map[string]*poolCache{"p": pc}, byWD: map[int32][]*poolCache{1: {pc}}}
			var buf []byte
			for _, ev := range tt.giveEvents {
				buf = append(buf, ev...)
			}
			ws.mu.Lock()
			ws.parseLocked(buf)
			ws.mu.Unlock()
			if pc.valid != tt.wantValid || pc.relist != tt.wantRelist || pc.wd != tt.wantWD {
				t.Errorf("valid, relist, wd = %v, %v, %d; want %v, %v, %d", pc.valid, pc.relist, pc.wd, tt.wantValid, tt.wantRelist, tt.wantWD)
			}
			if len(pc.dirty) != len(tt.wantDirty) {
				t.Errorf("dirty = %v, want %v", pc.dirty, tt.wantDirty)
			}
			for _, n := range tt.wantDirty {
				if _, ok := pc.dirty[n]; !ok {
					t.Errorf("dirty = %v, want %v", pc.dirty, tt.wantDirty)
				}
			}
			if tt.wantWD < 0 && pc.entries != nil {
				t.Errorf("cache kept after the watch went away")
			}
		})
	}
}

func TestDirtyBound(t *testing.T) {
	t.Parallel()
	pc := &poolCache{name: "p", wd: 1, valid: true}
	ws := &watchSet{fd: -1, pools: map[string]*poolCache{"p": pc}, byWD: map[int32][]*poolCache{1: {pc}}}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for i := range maxDirty + 1 {
		ws.applyLocked(1, unix.IN_CREATE, "f"+strconv.Itoa(i))
	}
	if pc.valid || pc.dirty != nil {
		t.Errorf("after %d dirty names: valid %v, %d names kept; want the cache dropped", maxDirty+1, pc.valid, len(pc.dirty))
	}
}
