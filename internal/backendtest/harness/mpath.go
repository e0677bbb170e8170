package harness

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/adapters/mpath"
	"github.com/virtstoraged-go/virtstoraged/adapters/osexec"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/backendtest"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// Maps makes and removes multipath maps behind the backend's back.
type Maps interface {
	// Add makes a map called name of size bytes and returns its dm-N
	// name, which the pool lists it under.
	Add(name string, size uint64) (string, error)
	// Remove removes the map listed as dm.
	Remove(dm string) error
}

// MpathEnv is where mpath pools look for their maps.
type MpathEnv struct {
	// Sysfs is the sysfs tree the backend reads ("/sys" in the lab).
	Sysfs string
	Maps  Maps
	// CheckDir stands for the legacy /dev/mpath that CheckPool looks for;
	// "" keeps the backend's.
	CheckDir string
	// NoData says why the maps' data cannot be reached, if it cannot.
	NoData string
}

// Mpath is the harness of the mpath backend over the environment newEnv
// gives: FakeMultipath on the host. The backend reports a pool active only
// where the legacy /dev/mpath exists, which no current system has.
func Mpath(newEnv func(t *testing.T) (MpathEnv, error)) backendtest.HarnessMaker {
	return withEnv(newEnv, func(t *testing.T, env MpathEnv) backendtest.Harness {
		log := testkit.QuietLog()
		b := mpath.New(osexec.New(log), env.Sysfs, log)
		if env.CheckDir != "" {
			b.CheckDir = env.CheckDir
		}
		return &mpathHarness{env: env, b: b}
	})
}

type mpathHarness struct {
	env MpathEnv
	b   *mpath.Backend
}

func (h *mpathHarness) Backend() ports.PoolBackend { return h.b }

func (h *mpathHarness) Capabilities() backendtest.Capabilities {
	return backendtest.Capabilities{
		Type: domain.PoolMpath, Presence: backendtest.PresentNever,
		Ops:        backendtest.WipeVol | backendtest.UploadVol | backendtest.DownloadVol,
		Allocation: backendtest.Fixed, Isolated: true, NoData: h.env.NoData,
	}
}

func (h *mpathHarness) MakePool(ctx context.Context, name string) (*domain.PoolDef, error) {
	return &domain.PoolDef{Type: domain.PoolMpath, Name: name, Target: domain.PoolTarget{Perms: domain.UnsetPerms()}}, nil
}

func (h *mpathHarness) AddVolume(ctx context.Context, pool *domain.PoolDef, name string, size uint64) (string, error) {
	return h.env.Maps.Add(name, size)
}

func (h *mpathHarness) RemoveVolume(ctx context.Context, pool *domain.PoolDef, name string) error {
	return h.env.Maps.Remove(name)
}

// FakeMultipath is the host's mpath environment: a fake sysfs tree
// (testkit.NewFakeSysfs) whose maps the harness writes and removes. No
// device stands behind them.
func FakeMultipath(t *testing.T) (MpathEnv, error) {
	root := testkit.NewFakeSysfs(t)
	return MpathEnv{Sysfs: root, Maps: &fakeMaps{root: root, next: 10},
		CheckDir: filepath.Join(t.TempDir(), "no-legacy-mpath"),
		NoData:   "the fake sysfs has no device behind its maps"}, nil
}

type fakeMaps struct {
	root string
	mu   sync.Mutex
	next int
}

func (f *fakeMaps) Add(name string, size uint64) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	dm := "dm-" + strconv.Itoa(f.next)
	f.next++
	dir := filepath.Join(f.root, "block", dm)
	if err := os.MkdirAll(filepath.Join(dir, "dm"), 0o755); err != nil {
		return "", err
	}
	for file, content := range map[string]string{
		"size": strconv.FormatUint(size/512, 10), "dm/name": name, "dm/uuid": "mpath-3600" + name,
	} {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(content+"\n"), 0o644); err != nil {
			return "", err
		}
	}
	return dm, nil
}

func (f *fakeMaps) Remove(dm string) error {
	return os.RemoveAll(filepath.Join(f.root, "block", dm))
}
