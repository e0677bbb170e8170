package faults_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/adapters/dir"
	"github.com/virtstoraged-go/virtstoraged/adapters/fs"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/faults"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// errDiskWrite is the injected state-store failure (a full or read-only /etc
// or /run).
var errDiskWrite = errors.New("statefile: injected write failure: no space left on device")

// flakyStore passes every call to the real store except the writes switched
// off, which fail with errDiskWrite and change nothing.
type flakyStore struct {
	ports.StateStore
	mu   sync.Mutex
	fail map[string]bool // "SaveConfig", "DeleteConfig", "SetAutostart", "SaveStatus"
}

func (f *flakyStore) failing(op string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fail[op]
}

func (f *flakyStore) set(op string, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[op] = on
}

func (f *flakyStore) SaveConfig(name, xml string) error {
	if f.failing("SaveConfig") {
		return errDiskWrite
	}
	return f.StateStore.SaveConfig(name, xml)
}

func (f *flakyStore) DeleteConfig(name string) error {
	if f.failing("DeleteConfig") {
		return errDiskWrite
	}
	return f.StateStore.DeleteConfig(name)
}

func (f *flakyStore) SetAutostart(name string, on bool) error {
	if f.failing("SetAutostart") {
		return errDiskWrite
	}
	return f.StateStore.SetAutostart(name, on)
}

func (f *flakyStore) SaveStatus(name, xml string) error {
	if f.failing("SaveStatus") {
		return errDiskWrite
	}
	return f.StateStore.SaveStatus(name, xml)
}

func newFlakyDirRig(t *testing.T) (*rig, *flakyStore, string) {
	t.Helper()
	fl := &flakyStore{fail: map[string]bool{}}
	r := newRigWith(t, dir.New(nil, testkit.QuietLog()), func(s ports.StateStore) ports.StateStore {
		fl.StateStore = s
		return fl
	})
	path := filepath.Join(t.TempDir(), "p")
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	return r, fl, path
}

func (r *rig) poolNames() []string {
	r.t.Helper()
	hs, err := r.svc.ListAllPools(r.ctx, 0)
	if err != nil {
		r.t.Fatal(err)
	}
	names := []string{}
	for _, h := range hs {
		names = append(names, h.Name)
	}
	slices.Sort(names)
	return names
}

// TestStateWriteFailures fails each write of the state files and checks that
// the service's answer matches the files: a define whose config could not be
// written defines nothing, an undefine whose config could not be removed
// undefines nothing, an autostart flag whose link could not be changed stays
// as it was, and a start whose status file could not be written leaves the
// pool inactive.
func TestStateWriteFailures(t *testing.T) {
	t.Run("define", func(t *testing.T) {
		r, fl, path := newFlakyDirRig(t)
		fl.set("SaveConfig", true)
		_, err := r.svc.PoolDefineXML(r.ctx, fmt.Sprintf(`<pool type='dir'><name>p</name><target><path>%s</path></target></pool>`, path), 0)
		if !errors.Is(err, errDiskWrite) {
			t.Fatalf("define with an unwritable config: %v", err)
		}
		if got := r.poolNames(); len(got) != 0 {
			t.Errorf("pools after the failed define: %v", got)
		}
		if got := listDir(t, r.etc); len(got) != 0 {
			t.Errorf("config dir after the failed define: %v", got)
		}
	})
	t.Run("redefine", func(t *testing.T) {
		r, fl, path := newFlakyDirRig(t)
		h := r.define(fmt.Sprintf(`<pool type='dir'><name>p</name><target><path>%s</path></target></pool>`, path))
		before, err := r.svc.PoolGetXMLDesc(r.ctx, h, 0)
		if err != nil {
			t.Fatal(err)
		}
		fl.set("SaveConfig", true)
		_, err = r.svc.PoolDefineXML(r.ctx, fmt.Sprintf(`<pool type='dir'><name>p</name><uuid>%s</uuid><target><path>%s/other</path></target></pool>`, uuidString(h.UUID), path), 0)
		if !errors.Is(err, errDiskWrite) {
			t.Fatalf("redefine with an unwritable config: %v", err)
		}
		if after, _ := r.svc.PoolGetXMLDesc(r.ctx, h, 0); after != before {
			t.Errorf("the failed redefine changed the pool:\n%s\nwas:\n%s", after, before)
		}
	})
	t.Run("undefine", func(t *testing.T) {
		r, fl, path := newFlakyDirRig(t)
		h := r.define(fmt.Sprintf(`<pool type='dir'><name>p</name><target><path>%s</path></target></pool>`, path))
		fl.set("DeleteConfig", true)
		if err := r.svc.PoolUndefine(r.ctx, h); !errors.Is(err, errDiskWrite) {
			t.Fatalf("undefine with an unremovable config: %v", err)
		}
		if got := r.poolNames(); !slices.Equal(got, []string{"p"}) {
			t.Errorf("pools after the failed undefine: %v", got)
		}
		if ok, err := r.svc.PoolIsPersistent(r.ctx, h); err != nil || !ok {
			t.Errorf("persistent after the failed undefine = %v, %v", ok, err)
		}
	})
	t.Run("autostart", func(t *testing.T) {
		r, fl, path := newFlakyDirRig(t)
		h := r.define(fmt.Sprintf(`<pool type='dir'><name>p</name><target><path>%s</path></target></pool>`, path))
		fl.set("SetAutostart", true)
		if err := r.svc.PoolSetAutostart(r.ctx, h, true); !errors.Is(err, errDiskWrite) {
			t.Fatalf("autostart with an unwritable link: %v", err)
		}
		if on, _ := r.svc.PoolGetAutostart(r.ctx, h); on {
			t.Error("autostart reported on although its link could not be made")
		}
		if got := listDir(t, filepath.Join(r.etc, "autostart")); len(got) != 0 {
			t.Errorf("autostart dir: %v", got)
		}
	})
	t.Run("start", func(t *testing.T) {
		r, fl, path := newFlakyDirRig(t)
		h := r.define(fmt.Sprintf(`<pool type='dir'><name>p</name><target><path>%s</path></target></pool>`, path))
		fl.set("SaveStatus", true)
		if err := r.svc.PoolCreate(r.ctx, h, 0); !errors.Is(err, errDiskWrite) {
			t.Fatalf("start with an unwritable status file: %v", err)
		}
		if r.active(h) {
			t.Error("pool active although its status file could not be written")
		}
		if r.hasStatus("p") {
			t.Error("status file present")
		}
		fl.set("SaveStatus", false)
		r.start(h)
	})
}

// TestFSStartStatusWriteFailsUnmounts fails the status write of an fs pool
// start, after its mount: the mount must be undone.
func TestFSStartStatusWriteFailsUnmounts(t *testing.T) {
	tools := newFSTools(t)
	inj := faults.NewInjector(tools)
	fl := &flakyStore{fail: map[string]bool{"SaveStatus": true}}
	r := newRigWith(t, fs.New(inj, tools.path, testkit.QuietLog()), func(s ports.StateStore) ports.StateStore {
		fl.StateStore = s
		return fl
	})
	dirPath := t.TempDir()
	dev, mnt := filepath.Join(dirPath, "disk"), filepath.Join(dirPath, "mnt")
	makeFile(t, dev, 1<<20)
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	h := r.define(fmt.Sprintf(`<pool type='fs'><name>fs1</name><source><device path='%s'/><format type='ext4'/></source><target><path>%s</path></target></pool>`, dev, mnt))
	if err := r.svc.PoolCreate(r.ctx, h, 0); !errors.Is(err, errDiskWrite) {
		t.Fatalf("start with an unwritable status file: %v", err)
	}
	if got := programs(inj.RunLog()); !slices.Equal(got, []string{"mount", "umount"}) {
		t.Errorf("ran %v, want the mount undone", got)
	}
	if m := tools.mounted(); len(m) != 0 {
		t.Errorf("still mounted: %v", m)
	}
	if r.active(h) {
		t.Error("pool active")
	}
}

func uuidString(u domain.UUID) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}
