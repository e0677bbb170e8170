package service_test

import (
	"context"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

func TestRestartRestoresPools(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, gib)
	s := f.svc

	// running, autostart, redefined while running (pending definition)
	run := f.startedPool(t, "run", 1)
	must(t, s.PoolSetAutostart(ctx, run, true))
	_, err := s.VolCreateXML(ctx, run, rawVol("v", mib), 0)
	must(t, err)
	pending := dirDef("run", 1)
	pending.Target.Perms.Mode = 0o700
	_, err = s.PoolDefineXML(ctx, testkit.PoolXML(pending), 0)
	must(t, err)
	// destroyed, but its directory exists: comes back active, like libvirt's dir
	stopped := f.startedPool(t, "stopped", 2)
	must(t, s.PoolDestroy(ctx, stopped))
	// autostart pool whose storage was never built: autostart fails
	never, err := s.PoolDefineXML(ctx, testkit.PoolXML(dirDef("never", 3)), 0)
	must(t, err)
	must(t, s.PoolSetAutostart(ctx, never, true))
	// autostart pool that is built but stopped
	auto := f.startedPool(t, "auto", 4)
	must(t, s.PoolSetAutostart(ctx, auto, true))
	must(t, s.PoolDestroy(ctx, auto))
	// transient pools: one survives, one lost its storage
	_, err = s.PoolCreateXML(ctx, testkit.PoolXML(dirDef("tr", 5)), domain.PoolCreateWithBuild)
	must(t, err)
	_, err = s.PoolCreateXML(ctx, testkit.PoolXML(dirDef("gone", 6)), domain.PoolCreateWithBuild)
	must(t, err)
	f.backend.Vanish("gone")
	// persistent running pool whose storage vanished
	lost := f.startedPool(t, "lost", 7)
	f.backend.Vanish("lost")
	must(t, s.Shutdown(ctx))

	s = f.restart(t)

	tests := []struct {
		name           string
		givePool       string
		wantFound      bool
		wantActive     bool
		wantPersistent bool
		wantStatus     bool
	}{
		{name: "running pool", givePool: "run", wantFound: true, wantActive: true, wantPersistent: true, wantStatus: true},
		{name: "destroyed dir pool comes back", givePool: "stopped", wantFound: true, wantActive: true, wantPersistent: true, wantStatus: true},
		{name: "unbuilt autostart", givePool: "never", wantFound: true, wantPersistent: true},
		{name: "autostart", givePool: "auto", wantFound: true, wantActive: true, wantPersistent: true, wantStatus: true},
		{name: "transient", givePool: "tr", wantFound: true, wantActive: true, wantStatus: true},
		{name: "transient lost", givePool: "gone"},
		{name: "persistent lost", givePool: "lost", wantFound: true, wantPersistent: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := s.PoolLookupByName(ctx, tt.givePool)
			if !tt.wantFound {
				wantErr(t, err, "Storage pool not found: no storage pool with matching name '"+tt.givePool+"'", domain.KindNoStoragePool)
			} else {
				must(t, err)
				active, _ := s.PoolIsActive(ctx, h)
				persistent, _ := s.PoolIsPersistent(ctx, h)
				equal(t, "active", active, tt.wantActive)
				equal(t, "persistent", persistent, tt.wantPersistent)
			}
			_, ok := f.store.Status(tt.givePool)
			equal(t, "status file", ok, tt.wantStatus)
		})
	}
	_ = lost

	// The running pool kept its live definition and volumes; the config waits.
	live, _ := s.PoolGetXMLDesc(ctx, run, 0)
	inactive, _ := s.PoolGetXMLDesc(ctx, run, domain.PoolXMLInactive)
	ld, _, _ := testkit.DecodePool(live)
	id, _, _ := testkit.DecodePool(inactive)
	equal(t, "live mode", ld.Target.Perms.Mode, 0)
	equal(t, "pending mode", id.Target.Perms.Mode, 0o700)
	auto2, _ := s.PoolGetAutostart(ctx, run)
	equal(t, "autostart kept", auto2, true)
	_, err = s.VolLookupByName(ctx, run, "v")
	must(t, err)
	info, _ := s.PoolGetInfo(ctx, run)
	equal(t, "allocation rediscovered", info.Allocation, uint64(mib))
	// Pools found active on the system come back silently, as in libvirt; the
	// autostart of "never" failed, so nothing started.
	equalSlice(t, "events at start", f.sink.Events(), []string{})
}

func TestStartWithoutAutostart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := testkit.NewMemoryStore()
	must(t, store.SaveConfig("a", testkit.PoolXML(dirDef("a", 1))))
	must(t, store.SetAutostart("a", true))
	must(t, store.SaveConfig("mismatch", testkit.PoolXML(dirDef("other", 2))))
	must(t, store.SaveStatus("junk", "not json"))
	backend := testkit.NewMemoryBackend(gib)
	must(t, backend.BuildPool(ctx, dirDef("x", 9), 0))
	f := &fixture{backend: backend, store: store}
	_ = f.restart(t) // Config{} autostarts
	h, err := f.svc.PoolLookupByName(ctx, "a")
	must(t, err)
	active, _ := f.svc.PoolIsActive(ctx, h)
	equal(t, "autostarted pool without storage", active, false)
	_, err = f.svc.PoolLookupByName(ctx, "other")
	wantErr(t, err, "Storage pool not found: no storage pool with matching name 'other'", domain.KindNoStoragePool)
	_, ok := store.Status("junk")
	equal(t, "unreadable status file removed", ok, false)
}

func TestShutdownWaitsForStreams(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, gib)
	h := f.startedPool(t, "p1", 1)
	vh, err := f.svc.VolCreateXML(ctx, h, rawVol("v", mib), 0)
	must(t, err)
	r, err := f.svc.VolDownload(ctx, vh, 0, 0, 0)
	must(t, err)
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := f.svc.Shutdown(short); err == nil {
		t.Fatal("Shutdown returned while a download was open")
	}
	done := make(chan error, 1)
	go func() { done <- f.svc.Shutdown(ctx) }()
	must(t, r.Close())
	must(t, r.Close()) // a second Close must not count the job twice
	must(t, <-done)
}
