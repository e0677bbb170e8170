package service_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/domain/service"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// poolState is what a client sees of a pool, for comparing before and after
// a reload.
type poolState struct {
	found, active, persistent, autostart bool
	livePath, inactivePath               string
}

func stateOf(t *testing.T, f *fixture, name string) poolState {
	t.Helper()
	ctx := context.Background()
	h, err := f.svc.PoolLookupByName(ctx, name)
	if err != nil {
		return poolState{}
	}
	st := poolState{found: true}
	st.active, _ = f.svc.PoolIsActive(ctx, h)
	st.persistent, _ = f.svc.PoolIsPersistent(ctx, h)
	st.autostart, _ = f.svc.PoolGetAutostart(ctx, h)
	live, err := f.svc.PoolGetXMLDesc(ctx, h, 0)
	must(t, err)
	inactive, err := f.svc.PoolGetXMLDesc(ctx, h, domain.PoolXMLInactive)
	must(t, err)
	ld, _, _ := testkit.DecodePool(live)
	id, _, _ := testkit.DecodePool(inactive)
	st.livePath, st.inactivePath = ld.Target.Path, id.Target.Path
	return st
}

// TestReload follows libvirtd 9.0's SIGHUP (storageStateReload) through what
// a user does to /etc/libvirt/storage behind the daemon's back.
func TestReload(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, gib)
	s := f.svc

	running := f.startedPool(t, "running", 1)
	_, err := s.VolCreateXML(ctx, running, rawVol("v", mib), 0)
	must(t, err)
	f.startedPool(t, "transient-src", 2) // its storage, for a transient pool
	must(t, s.PoolDestroy(ctx, mustLookup(t, s, "transient-src")))
	must(t, s.PoolUndefine(ctx, mustLookup(t, s, "transient-src")))
	trDef := dirDef("transient-src", 2)
	_, err = s.PoolCreateXML(ctx, testkit.PoolXML(trDef), 0)
	must(t, err)
	_, err = s.PoolDefineXML(ctx, testkit.PoolXML(dirDef("idle", 3)), 0)
	must(t, err)
	_, err = s.PoolDefineXML(ctx, testkit.PoolXML(dirDef("removed", 4)), 0)
	must(t, err)
	unlinked, err := s.PoolDefineXML(ctx, testkit.PoolXML(dirDef("unlinked", 5)), 0)
	must(t, err)
	must(t, s.PoolSetAutostart(ctx, unlinked, true))
	stopped := f.startedPool(t, "stopped-auto", 6)
	must(t, s.PoolSetAutostart(ctx, stopped, true))
	must(t, s.PoolDestroy(ctx, stopped))
	must(t, f.backend.BuildPool(ctx, dirDef("new-auto", 8), 0))
	f.sink.Reset()

	// What the user changes on disk.
	moved := func(name string, u byte) string {
		d := dirDef(name, u)
		d.Target.Path += "-moved"
		return testkit.PoolXML(d)
	}
	must(t, f.store.SaveConfig("running", moved("running", 1)))
	must(t, f.store.SaveConfig("idle", moved("idle", 3)))
	must(t, f.store.SaveConfig("transient-src", testkit.PoolXML(trDef)))
	must(t, f.store.DeleteConfig("removed"))
	must(t, f.store.SetAutostart("unlinked", false))
	must(t, f.store.SaveConfig("new", testkit.PoolXML(dirDef("new", 7))))
	must(t, f.store.SaveConfig("new-auto", testkit.PoolXML(dirDef("new-auto", 8))))
	must(t, f.store.SetAutostart("new-auto", true))
	must(t, f.store.SaveConfig("broken", "{not a pool"))
	must(t, f.store.SaveConfig("misnamed", testkit.PoolXML(dirDef("othername", 9))))
	must(t, f.store.SaveConfig("clash-name", testkit.PoolXML(dirDef("idle", 10))))
	clash := dirDef("clash-source", 11)
	clash.Target.Path = "/srv/running"
	must(t, f.store.SaveConfig("clash-source", testkit.PoolXML(clash)))
	uuidClash := dirDef("uuid-clash", 3) // idle's uuid under another name
	uuidClash.Target.Path = "/srv/uuid-clash"
	must(t, f.store.SaveConfig("uuid-clash", testkit.PoolXML(uuidClash)))

	must(t, s.Reload(ctx))

	tests := []struct {
		name     string
		givePool string
		want     poolState
	}{
		{name: "running pool keeps its live definition, the config waits", givePool: "running",
			want: poolState{found: true, active: true, persistent: true, livePath: "/srv/running", inactivePath: "/srv/running-moved"}},
		{name: "inactive pool takes the config", givePool: "idle",
			want: poolState{found: true, persistent: true, livePath: "/srv/idle-moved", inactivePath: "/srv/idle-moved"}},
		{name: "transient pool becomes persistent", givePool: "transient-src",
			want: poolState{found: true, active: true, persistent: true, livePath: "/srv/transient-src", inactivePath: "/srv/transient-src"}},
		{name: "removed config keeps the pool", givePool: "removed",
			want: poolState{found: true, persistent: true, livePath: "/srv/removed", inactivePath: "/srv/removed"}},
		{name: "removed autostart link", givePool: "unlinked",
			want: poolState{found: true, persistent: true, livePath: "/srv/unlinked", inactivePath: "/srv/unlinked"}},
		{name: "new config defines an inactive pool", givePool: "new",
			want: poolState{found: true, persistent: true, livePath: "/srv/new", inactivePath: "/srv/new"}},
		{name: "new config with autostart link starts", givePool: "new-auto",
			want: poolState{found: true, active: true, persistent: true, autostart: true, livePath: "/srv/new-auto", inactivePath: "/srv/new-auto"}},
		{name: "autostart pool stopped by hand starts again", givePool: "stopped-auto",
			want: poolState{found: true, active: true, persistent: true, autostart: true, livePath: "/srv/stopped-auto", inactivePath: "/srv/stopped-auto"}},
		{name: "unreadable config", givePool: "broken"},
		{name: "file name differs from pool name", givePool: "othername"},
		{name: "source used by another pool", givePool: "clash-source"},
		{name: "uuid of another pool", givePool: "uuid-clash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := stateOf(t, f, tt.givePool); got != tt.want {
				t.Errorf("after reload: %+v\nwant %+v", got, tt.want)
			}
		})
	}

	// The running pool's volume survived; a config of the idle pool's name
	// under another uuid did not replace it (checked above by its path).
	_, err = s.VolLookupByName(ctx, running, "v")
	must(t, err)
	// Defining by file sends no event, starting does.
	equalSlice(t, "events", f.sink.Events(), []string{"new-auto:Started", "stopped-auto:Started"})

	// The pending config takes over when the running pool stops.
	must(t, s.PoolDestroy(ctx, running))
	if got := stateOf(t, f, "running"); got.livePath != "/srv/running-moved" {
		t.Errorf("after destroy the running pool has %q, want the reloaded config's path", got.livePath)
	}
	// A second reload changes nothing more.
	before := map[string]poolState{}
	for _, n := range []string{"running", "idle", "transient-src", "removed", "new", "new-auto"} {
		before[n] = stateOf(t, f, n)
	}
	must(t, s.Reload(ctx))
	for n, st := range before {
		if got := stateOf(t, f, n); got != st {
			t.Errorf("%s changed on a second reload: %+v, was %+v", n, got, st)
		}
	}
}

func mustLookup(t *testing.T, s interface {
	PoolLookupByName(context.Context, string) (domain.PoolHandle, error)
}, name string) domain.PoolHandle {
	t.Helper()
	h, err := s.PoolLookupByName(context.Background(), name)
	must(t, err)
	return h
}

// hookStore runs a hook after the configs were read, once it is set.
type hookStore struct {
	*testkit.MemoryStore
	mu    sync.Mutex
	after func()
}

func (h *hookStore) LoadConfigs() ([]ports.StoredPool, error) {
	out, err := h.MemoryStore.LoadConfigs()
	h.mu.Lock()
	after := h.after
	h.after = nil
	h.mu.Unlock()
	if after != nil {
		after()
	}
	return out, err
}

// A reload that read the files must not put back in memory what was on disk
// before a client's define or autostart change that came in meanwhile: memory
// and disk agree once both are done. The hook lets the client's changes run
// between the reload's read and its apply, as far as the service lets them.
func TestReloadRacingConfigChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	mem := testkit.NewMemoryStore()
	store := &hookStore{MemoryStore: mem}
	f := &fixture{backend: testkit.NewMemoryBackend(gib), store: mem, sink: &testkit.RecordingSink{}}
	svc, err := service.New(service.Config{}, []ports.PoolBackend{f.backend}, testkit.FakeCodec{}, store, f.sink, testLog())
	must(t, err)
	must(t, svc.Start(ctx))
	f.svc = svc
	h, err := svc.PoolDefineXML(ctx, testkit.PoolXML(dirDef("p", 1)), 0)
	must(t, err)

	changed := make(chan error, 1)
	hook := func() {
		go func() {
			d := dirDef("p", 1)
			d.Target.Path = "/srv/changed"
			_, err := svc.PoolDefineXML(ctx, testkit.PoolXML(d), 0)
			if err == nil {
				err = svc.PoolSetAutostart(ctx, h, true)
			}
			changed <- err
		}()
		// The client must wait for the reload to finish; should it not, give
		// it the time to finish first, which is when the reload would undo
		// it. The bound only makes a broken service fail more surely: a
		// correct one passes whatever the timing.
		select {
		case err := <-changed:
			changed <- err
		case <-time.After(200 * time.Millisecond):
		}
	}
	store.mu.Lock()
	store.after = hook
	store.mu.Unlock()
	must(t, svc.Reload(ctx))
	must(t, <-changed)

	st := stateOf(t, f, "p")
	equal(t, "path in memory", st.livePath, "/srv/changed")
	equal(t, "autostart in memory", st.autostart, true)
}
