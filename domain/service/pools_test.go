package service_test

import (
	"context"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

func TestPoolLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, 10*gib)
	s := f.svc

	h, err := s.PoolDefineXML(ctx, testkit.PoolXML(dirDef("p1", 1)), 0)
	must(t, err)
	equal(t, "handle", h, domain.PoolHandle{Name: "p1", UUID: uuidOf(1)})
	if _, ok := f.store.Config("p1"); !ok {
		t.Fatal("config not saved")
	}
	active, _ := s.PoolIsActive(ctx, h)
	persistent, _ := s.PoolIsPersistent(ctx, h)
	equal(t, "active", active, false)
	equal(t, "persistent", persistent, true)

	wantErr(t, s.PoolCreate(ctx, h, 0), "cannot open directory '/srv/p1': No such file or directory", domain.KindSystem)
	must(t, s.PoolBuild(ctx, h, 0))
	must(t, s.PoolCreate(ctx, h, 0))
	if _, ok := f.store.Status("p1"); !ok {
		t.Fatal("status not saved at start")
	}
	info, err := s.PoolGetInfo(ctx, h)
	must(t, err)
	equal(t, "info", info, domain.PoolInfo{State: domain.PoolRunning, Capacity: 10 * gib, Available: 10 * gib})

	live, err := s.PoolGetXMLDesc(ctx, h, 0)
	must(t, err)
	_, stats, _ := testkit.DecodePool(live)
	if stats == nil || stats.Capacity != 10*gib {
		t.Fatalf("live XML lacks the figures: %s", live)
	}
	// Without a pending definition libvirt 9.0 formats the live pool for
	// --inactive as well (measured against libvirtd).
	inactive, err := s.PoolGetXMLDesc(ctx, h, domain.PoolXMLInactive)
	must(t, err)
	if inactive != live {
		t.Fatalf("inactive XML of a running pool without pending changes differs from the live one:\n%s\n%s", inactive, live)
	}

	must(t, s.PoolRefresh(ctx, h, 0))
	must(t, s.PoolSetAutostart(ctx, h, true))
	auto, _ := s.PoolGetAutostart(ctx, h)
	equal(t, "autostart", auto, true)
	equal(t, "autostart link", f.store.Autostart("p1"), true)

	must(t, s.PoolDestroy(ctx, h))
	if _, ok := f.store.Status("p1"); ok {
		t.Fatal("status kept after destroy")
	}
	info, _ = s.PoolGetInfo(ctx, h)
	equal(t, "state", info.State, domain.PoolInactive)
	must(t, s.PoolDelete(ctx, h, 0))
	equal(t, "storage exists", f.backend.Exists("p1"), false)
	must(t, s.PoolUndefine(ctx, h))
	if _, ok := f.store.Config("p1"); ok {
		t.Fatal("config kept after undefine")
	}
	equal(t, "autostart link", f.store.Autostart("p1"), false)
	_, err = s.PoolLookupByName(ctx, "p1")
	wantErr(t, err, "Storage pool not found: no storage pool with matching name 'p1'", domain.KindNoStoragePool)

	equalSlice(t, "events", f.sink.Events(), []string{
		"p1:Defined", "p1:Created", "p1:Started", "p1:refresh", "p1:Stopped", "p1:Deleted", "p1:Undefined",
	})
}

func TestPoolErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	unknown := domain.PoolHandle{Name: "p1", UUID: uuidOf(99)}
	tests := []struct {
		name     string
		give     func(f *fixture, h domain.PoolHandle) error
		wantErr  string
		wantKind domain.Kind
	}{
		{name: "start active", give: func(f *fixture, h domain.PoolHandle) error { return f.svc.PoolCreate(ctx, h, 0) },
			wantErr: "Requested operation is not valid: storage pool 'p1' is already active", wantKind: domain.KindOperationInvalid},
		{name: "build active", give: func(f *fixture, h domain.PoolHandle) error { return f.svc.PoolBuild(ctx, h, 0) },
			wantErr: "Requested operation is not valid: storage pool 'p1' is already active", wantKind: domain.KindOperationInvalid},
		// The pool's state comes before the flags, which are the backend's.
		{name: "build active with both overwrite flags", give: func(f *fixture, h domain.PoolHandle) error {
			return f.svc.PoolBuild(ctx, h, domain.PoolBuildOverwrite|domain.PoolBuildNoOverwrite)
		}, wantErr: "Requested operation is not valid: storage pool 'p1' is already active", wantKind: domain.KindOperationInvalid},
		{name: "start bad flags", give: func(f *fixture, h domain.PoolHandle) error { return f.svc.PoolCreate(ctx, h, 8) },
			wantErr: "unsupported flags (0x8) in function storagePoolCreate", wantKind: domain.KindInvalidArg},
		{name: "undefine active", give: func(f *fixture, h domain.PoolHandle) error { return f.svc.PoolUndefine(ctx, h) },
			wantErr: "Requested operation is not valid: storage pool 'p1' is still active", wantKind: domain.KindOperationInvalid},
		{name: "delete active", give: func(f *fixture, h domain.PoolHandle) error { return f.svc.PoolDelete(ctx, h, 0) },
			wantErr: "Requested operation is not valid: storage pool 'p1' is still active", wantKind: domain.KindOperationInvalid},
		{name: "refresh flags", give: func(f *fixture, h domain.PoolHandle) error { return f.svc.PoolRefresh(ctx, h, 1) },
			wantErr: "unsupported flags (0x1) in function storagePoolRefresh", wantKind: domain.KindInvalidArg},
		// A handle names its pool: libvirt adds the name to the UUID.
		{name: "unknown uuid", give: func(f *fixture, h domain.PoolHandle) error { return f.svc.PoolDestroy(ctx, unknown) },
			wantErr: "Storage pool not found: no storage pool with matching uuid 'ab000000-0000-0000-0000-000000000063' (" + unknown.Name + ")", wantKind: domain.KindNoStoragePool},
		{name: "lookup of an unknown uuid", give: func(f *fixture, h domain.PoolHandle) error {
			_, err := f.svc.PoolLookupByUUID(ctx, unknown.UUID)
			return err
		}, wantErr: "Storage pool not found: no storage pool with matching uuid 'ab000000-0000-0000-0000-000000000063'", wantKind: domain.KindNoStoragePool},
		{name: "wrong name right uuid", give: func(f *fixture, h domain.PoolHandle) error {
			_, err := f.svc.PoolGetInfo(ctx, domain.PoolHandle{Name: "bogus", UUID: h.UUID})
			return err
		}},
		{name: "destroy inactive", give: func(f *fixture, h domain.PoolHandle) error {
			must(t, f.svc.PoolDestroy(ctx, h))
			return f.svc.PoolDestroy(ctx, h)
		}, wantErr: "Requested operation is not valid: storage pool 'p1' is not active", wantKind: domain.KindOperationInvalid},
		{name: "vol ops on inactive", give: func(f *fixture, h domain.PoolHandle) error {
			must(t, f.svc.PoolDestroy(ctx, h))
			_, err := f.svc.VolCreateXML(ctx, h, rawVol("v", mib), 0)
			return err
		}, wantErr: "Requested operation is not valid: storage pool 'p1' is not active", wantKind: domain.KindOperationInvalid},
		{name: "define same name other uuid", give: func(f *fixture, h domain.PoolHandle) error {
			_, err := f.svc.PoolDefineXML(ctx, testkit.PoolXML(dirDef("p1", 7)), 0)
			return err
		}, wantErr: "operation failed: pool 'p1' already exists with uuid ab000000-0000-0000-0000-000000000001", wantKind: domain.KindOperationFailed},
		{name: "define same uuid other name", give: func(f *fixture, h domain.PoolHandle) error {
			_, err := f.svc.PoolDefineXML(ctx, testkit.PoolXML(dirDef("p2", 1)), 0)
			return err
		}, wantErr: "operation failed: pool 'p1' is already defined with uuid ab000000-0000-0000-0000-000000000001", wantKind: domain.KindOperationFailed},
		{name: "create same target", give: func(f *fixture, h domain.PoolHandle) error {
			d := dirDef("p2", 2)
			d.Target.Path = "/srv//p1/"
			_, err := f.svc.PoolCreateXML(ctx, testkit.PoolXML(d), 0)
			return err
		}, wantErr: "operation failed: Storage source conflict with pool: 'p1'", wantKind: domain.KindOperationFailed},
		{name: "create over active", give: func(f *fixture, h domain.PoolHandle) error {
			_, err := f.svc.PoolCreateXML(ctx, testkit.PoolXML(dirDef("p1", 1)), 0)
			return err
		}, wantErr: "Requested operation is not valid: storage pool 'p1' is already active", wantKind: domain.KindOperationInvalid},
		{name: "missing backend", give: func(f *fixture, h domain.PoolHandle) error {
			d := dirDef("r", 3)
			d.Type = domain.PoolRBD
			_, err := f.svc.PoolDefineXML(ctx, testkit.PoolXML(d), 0)
			return err
		}, wantErr: "internal error: missing backend for pool type 9 (rbd)", wantKind: domain.KindInternal},
		{name: "bad name", give: func(f *fixture, h domain.PoolHandle) error {
			_, err := f.svc.PoolDefineXML(ctx, testkit.PoolXML(dirDef("a/b", 3)), 0)
			return err
		}, wantErr: "XML error: name a/b cannot contain '/'", wantKind: domain.KindXMLError},
		{name: "define flags", give: func(f *fixture, h domain.PoolHandle) error {
			_, err := f.svc.PoolDefineXML(ctx, testkit.PoolXML(dirDef("x", 3)), 2)
			return err
		}, wantErr: "unsupported flags (0x2) in function storagePoolDefineXML", wantKind: domain.KindInvalidArg},
		{name: "find sources unknown type", give: func(f *fixture, h domain.PoolHandle) error {
			_, err := f.svc.FindPoolSources(ctx, "bogus", "", 0)
			return err
		}, wantErr: "internal error: unknown storage pool type bogus", wantKind: domain.KindInternal},
		{name: "find sources dir", give: func(f *fixture, h domain.PoolHandle) error {
			_, err := f.svc.FindPoolSources(ctx, "dir", "", 0)
			return err
		}, wantErr: "this function is not supported by the connection driver: pool type 'dir' does not support source discovery", wantKind: domain.KindNoSupport},
		{name: "find sources logical without backend", give: func(f *fixture, h domain.PoolHandle) error {
			_, err := f.svc.FindPoolSources(ctx, "logical", "", 0)
			return err
		}, wantErr: "this function is not supported by the connection driver: pool type 'logical' does not support source discovery", wantKind: domain.KindNoSupport},
		{name: "list all bad flags", give: func(f *fixture, h domain.PoolHandle) error {
			_, err := f.svc.ListAllPools(ctx, 0x40000002)
			return err
		}, wantErr: "unsupported flags (0x40000000) in function storageConnectListAllStoragePools", wantKind: domain.KindInvalidArg},
		{name: "target path lookup", give: func(f *fixture, h domain.PoolHandle) error {
			got, err := f.svc.PoolLookupByTargetPath(ctx, "/srv//p1/")
			must(t, err)
			equal(t, "pool", got, h)
			_, err = f.svc.PoolLookupByTargetPath(ctx, "/nowhere")
			return err
		}, wantErr: "Storage pool not found: no storage pool with matching target path '/nowhere'", wantKind: domain.KindNoStoragePool},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, gib)
			h := f.startedPool(t, "p1", 1)
			err := tt.give(f, h)
			if tt.wantErr == "" {
				must(t, err)
				return
			}
			wantErr(t, err, tt.wantErr, tt.wantKind)
		})
	}
}

func TestTransientPool(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, gib)
	s := f.svc

	h, err := s.PoolCreateXML(ctx, testkit.PoolXML(dirDef("t1", 5)), domain.PoolCreateWithBuild)
	must(t, err)
	persistent, _ := s.PoolIsPersistent(ctx, h)
	equal(t, "persistent", persistent, false)
	wantErr(t, s.PoolSetAutostart(ctx, h, true), "internal error: pool has no config file", domain.KindInternal)
	wantErr(t, s.PoolUndefine(ctx, h), "Requested operation is not valid: storage pool 't1' is still active", domain.KindOperationInvalid)
	if _, ok := f.store.Config("t1"); ok {
		t.Fatal("transient pool has a config")
	}
	must(t, s.PoolDestroy(ctx, h))
	_, err = s.PoolLookupByUUID(ctx, h.UUID)
	wantErr(t, err, "Storage pool not found: no storage pool with matching uuid 'ab000000-0000-0000-0000-000000000005'", domain.KindNoStoragePool)
	equalSlice(t, "events", f.sink.Events(), []string{"t1:Started", "t1:Stopped"})

	// A failed transient create leaves nothing behind.
	_, err = s.PoolCreateXML(ctx, testkit.PoolXML(dirDef("t2", 6)), 0)
	wantErr(t, err, "cannot open directory '/srv/t2': No such file or directory", domain.KindSystem)
	_, err = s.PoolLookupByName(ctx, "t2")
	wantErr(t, err, "Storage pool not found: no storage pool with matching name 't2'", domain.KindNoStoragePool)
	if _, ok := f.store.Status("t2"); ok {
		t.Fatal("failed create left a status file")
	}
}

func TestRedefineRunningPoolIsPending(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, gib)
	h := f.startedPool(t, "p1", 1)
	d := dirDef("p1", 1)
	d.Target.Perms.Mode = 0o755
	_, err := f.svc.PoolDefineXML(ctx, testkit.PoolXML(d), 0)
	must(t, err)

	live, _ := f.svc.PoolGetXMLDesc(ctx, h, 0)
	inactive, _ := f.svc.PoolGetXMLDesc(ctx, h, domain.PoolXMLInactive)
	ld, _, _ := testkit.DecodePool(live)
	id, _, _ := testkit.DecodePool(inactive)
	equal(t, "live mode", ld.Target.Perms.Mode, 0)
	equal(t, "pending mode", id.Target.Perms.Mode, 0o755)

	must(t, f.svc.PoolDestroy(ctx, h))
	live, _ = f.svc.PoolGetXMLDesc(ctx, h, 0)
	ld, _, _ = testkit.DecodePool(live)
	equal(t, "mode after stop", ld.Target.Perms.Mode, 0o755)
}

func TestListPools(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, gib)
	s := f.svc
	a := f.startedPool(t, "a", 1)
	must(t, s.PoolSetAutostart(ctx, a, true))
	_, err := s.PoolDefineXML(ctx, testkit.PoolXML(dirDef("b", 2)), 0)
	must(t, err)
	_, err = s.PoolCreateXML(ctx, testkit.PoolXML(dirDef("c", 3)), domain.PoolCreateWithBuild)
	must(t, err)

	tests := []struct {
		name      string
		giveFlags uint32
		want      []string
	}{
		{name: "all", giveFlags: 0, want: []string{"a", "b", "c"}},
		{name: "active", giveFlags: domain.ListPoolsActive, want: []string{"a", "c"}},
		{name: "inactive", giveFlags: domain.ListPoolsInactive, want: []string{"b"}},
		{name: "transient", giveFlags: domain.ListPoolsTransient, want: []string{"c"}},
		{name: "autostart", giveFlags: domain.ListPoolsAutostart, want: []string{"a"}},
		{name: "no autostart persistent", giveFlags: domain.ListPoolsNoAutostart | domain.ListPoolsPersistent, want: []string{"b"}},
		{name: "type fs", giveFlags: domain.PoolFS.ListFlag(), want: []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs, err := s.ListAllPools(ctx, tt.giveFlags)
			must(t, err)
			names := []string{}
			for _, h := range hs {
				names = append(names, h.Name)
			}
			equalSlice(t, "pools", names, tt.want)
		})
	}
	n, _ := s.NumOfPools(ctx, true)
	equal(t, "active count", n, 2)
	names, _ := s.ListPoolNames(ctx, true, 1)
	equalSlice(t, "maxnames 1", names, []string{"a"})
	names, _ = s.ListPoolNames(ctx, false, 10)
	equalSlice(t, "defined", names, []string{"b"})

	caps, err := s.PoolCapabilities(ctx, 0)
	must(t, err)
	equal(t, "pool caps", caps, "poolcaps:dir")
	_, err = s.PoolCapabilities(ctx, 1)
	wantErr(t, err, "unsupported flags (0x1) in function storageConnectGetStoragePoolCapabilities", domain.KindInvalidArg)
}

func TestRefreshFailureStopsPool(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, gib)
	s := f.svc
	h := f.startedPool(t, "p1", 1)
	th, err := s.PoolCreateXML(ctx, testkit.PoolXML(dirDef("t1", 2)), domain.PoolCreateWithBuild)
	must(t, err)
	f.sink.Reset()

	f.backend.Vanish("p1")
	f.backend.Vanish("t1")
	wantErr(t, s.PoolRefresh(ctx, h, 0), "cannot open directory '/srv/p1': No such file or directory", domain.KindSystem)
	active, err := s.PoolIsActive(ctx, h)
	must(t, err)
	equal(t, "active after failed refresh", active, false)
	if _, ok := f.store.Status("p1"); ok {
		t.Fatal("status kept after failed refresh")
	}
	wantErr(t, s.PoolRefresh(ctx, th, 0), "cannot open directory '/srv/t1': No such file or directory", domain.KindSystem)
	_, err = s.PoolLookupByName(ctx, "t1")
	wantErr(t, err, "Storage pool not found: no storage pool with matching name 't1'", domain.KindNoStoragePool)
	equalSlice(t, "events", f.sink.Events(), []string{"p1:Stopped", "t1:Stopped"})
}

func TestDefineGeneratesUUID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, gib)
	d := dirDef("p", 0)
	d.UUID = domain.UUID{}
	h, err := f.svc.PoolDefineXML(ctx, testkit.PoolXML(d), 0)
	must(t, err)
	if h.UUID.IsZero() || h.UUID[6]>>4 != 4 {
		t.Fatalf("generated uuid %s is not a random v4 uuid", h.UUID)
	}
	// Redefining without the uuid gets a new one, which libvirt refuses.
	_, err = f.svc.PoolDefineXML(ctx, testkit.PoolXML(d), 0)
	if domain.KindOf(err) != domain.KindOperationFailed {
		t.Fatalf("redefine without uuid: %v", err)
	}
}
