package faults_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/adapters/statefile"
	"github.com/virtstoraged-go/virtstoraged/adapters/xmldef"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/domain/service"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// rig is the real service over one real backend, the real XML codec and real
// state files in a temp directory.
type rig struct {
	t      *testing.T
	ctx    context.Context
	svc    *service.Service
	etc    string // pool configs
	status string // runtime status files
}

func newRig(t *testing.T, backend ports.PoolBackend) *rig {
	t.Helper()
	return newRigWith(t, backend, nil)
}

// newRigWith is newRig with the state store wrapped by wrap (nil: as is).
func newRigWith(t *testing.T, backend ports.PoolBackend, wrap func(ports.StateStore) ports.StateStore) *rig {
	t.Helper()
	return newRigOver(t, []ports.PoolBackend{backend}, wrap)
}

// newRigOver is newRigWith over several backends, for operations that span
// pools of different types (a clone from a dir pool into a logical one).
func newRigOver(t *testing.T, backends []ports.PoolBackend, wrap func(ports.StateStore) ports.StateStore) *rig {
	t.Helper()
	root := t.TempDir()
	r := &rig{
		t:      t,
		ctx:    context.Background(),
		etc:    filepath.Join(root, "etc/libvirt/storage"),
		status: filepath.Join(root, "run/libvirt/storage"),
	}
	store, err := statefile.New(r.etc, filepath.Join(r.etc, "autostart"), r.status, testkit.QuietLog())
	if err != nil {
		t.Fatal(err)
	}
	var st ports.StateStore = store
	if wrap != nil {
		st = wrap(store)
	}
	r.svc, err = service.New(service.Config{NoAutostart: true}, backends, xmldef.New(), st, &testkit.RecordingSink{}, testkit.QuietLog())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.svc.Start(r.ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.svc.Shutdown(context.Background()) })
	return r
}

func (r *rig) define(xml string) domain.PoolHandle {
	r.t.Helper()
	h, err := r.svc.PoolDefineXML(r.ctx, xml, 0)
	if err != nil {
		r.t.Fatalf("pool-define: %v", err)
	}
	return h
}

func (r *rig) start(h domain.PoolHandle) {
	r.t.Helper()
	if err := r.svc.PoolCreate(r.ctx, h, 0); err != nil {
		r.t.Fatalf("pool-start %s: %v", h.Name, err)
	}
}

func (r *rig) active(h domain.PoolHandle) bool {
	r.t.Helper()
	ok, err := r.svc.PoolIsActive(r.ctx, h)
	if err != nil {
		r.t.Fatalf("pool-is-active %s: %v", h.Name, err)
	}
	return ok
}

func (r *rig) info(h domain.PoolHandle) domain.PoolInfo {
	r.t.Helper()
	info, err := r.svc.PoolGetInfo(r.ctx, h)
	if err != nil {
		r.t.Fatalf("pool-info %s: %v", h.Name, err)
	}
	return info
}

func (r *rig) refresh(h domain.PoolHandle) {
	r.t.Helper()
	if err := r.svc.PoolRefresh(r.ctx, h, 0); err != nil {
		r.t.Fatalf("pool-refresh %s: %v", h.Name, err)
	}
}

// vols lists the pool's volume names, sorted.
func (r *rig) vols(h domain.PoolHandle) []string {
	r.t.Helper()
	names, err := r.svc.PoolListVolumes(r.ctx, h, 1000)
	if err != nil {
		r.t.Fatalf("vol-list %s: %v", h.Name, err)
	}
	slices.Sort(names)
	if names == nil {
		names = []string{}
	}
	return names
}

func (r *rig) vol(h domain.PoolHandle, name string) domain.VolHandle {
	r.t.Helper()
	v, err := r.svc.VolLookupByName(r.ctx, h, name)
	if err != nil {
		r.t.Fatalf("vol-lookup %s/%s: %v", h.Name, name, err)
	}
	return v
}

// hasStatus reports whether the pool has a runtime status file.
func (r *rig) hasStatus(name string) bool {
	_, err := os.Stat(filepath.Join(r.status, name+".xml"))
	return err == nil
}

// checkNoTemps fails when a half-written state file is left over.
func (r *rig) checkNoTemps() {
	r.t.Helper()
	for _, d := range []string{r.etc, filepath.Join(r.etc, "autostart"), r.status} {
		for _, n := range listDir(r.t, d) {
			if strings.HasSuffix(n, ".tmp") {
				r.t.Errorf("temp file left in %s: %s", d, n)
			}
		}
	}
}

// listDir returns the sorted names in dir (none when it does not exist).
func listDir(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	names := []string{}
	for _, e := range ents {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names
}

// makeFile creates a zero-filled file of size bytes.
func makeFile(t testing.TB, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
}

// wantErrMentions fails unless err is set and its text names what failed.
func wantErrMentions(t testing.TB, err error, what string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want an error naming %q, got success", what)
	}
	if !strings.Contains(err.Error(), what) {
		t.Errorf("error %q does not name %q", err, what)
	}
}
