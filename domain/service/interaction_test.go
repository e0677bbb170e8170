package service_test

import (
	"context"
	"errors"
	"testing"

	"go.uber.org/mock/gomock"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/domain/service"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/ports"
	"github.com/virtstoraged-go/virtstoraged/ports/mocks"
)

func mockService(t *testing.T, b *mocks.MockPoolBackend, codec ports.XMLCodec, store *testkit.MemoryStore, sink *testkit.RecordingSink) *service.Service {
	t.Helper()
	b.EXPECT().Type().Return(domain.PoolDir).AnyTimes()
	svc, err := service.New(service.Config{}, []ports.PoolBackend{b}, codec, store, sink, testLog())
	must(t, err)
	must(t, svc.Start(context.Background()))
	return svc
}

func TestDefineSavesInactiveFormat(t *testing.T) {
	t.Parallel()
	ctrl := gomock.NewController(t)
	b := mocks.NewMockPoolBackend(ctrl)
	codec := mocks.NewMockXMLCodec(ctrl)
	store := testkit.NewMemoryStore()
	def := dirDef("p1", 1)
	gomock.InOrder(
		codec.EXPECT().ValidatePool(gomock.Any(), "<pool/>").Return(nil),
		codec.EXPECT().ParsePool("<pool/>", uint32(1)).Return(def, nil),
		b.EXPECT().ValidatePool(def).Return(nil),
		codec.EXPECT().FormatPool(def, nil).Return("<pool>config</pool>", nil),
	)
	s := mockService(t, b, codec, store, &testkit.RecordingSink{})
	_, err := s.PoolDefineXML(context.Background(), "<pool/>", domain.PoolDefineValidate)
	must(t, err)
	cfg, _ := store.Config("p1")
	equal(t, "saved config", cfg, "<pool>config</pool>")
}

// With the VALIDATE flags the schema check comes first, as in libvirt's
// virXMLParse, and a refusal stops the call before anything is parsed or
// touched; a volume is validated only once its pool is found active.
func TestValidateBeforeParse(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ctrl := gomock.NewController(t)
	b := mocks.NewMockPoolBackend(ctrl)
	codec := mocks.NewMockXMLCodec(ctrl)
	refused := &domain.Error{Kind: domain.KindXMLInvalidSchema, Domain: domain.FromXML, Detail: "refused"}
	s := mockService(t, b, codec, testkit.NewMemoryStore(), &testkit.RecordingSink{})

	codec.EXPECT().ValidatePool(gomock.Any(), "<pool/>").Return(refused)
	_, err := s.PoolDefineXML(ctx, "<pool/>", domain.PoolDefineValidate)
	wantErr(t, err, "refused", domain.KindXMLInvalidSchema)

	// Without the flag the schema is not consulted.
	def := dirDef("p1", 1)
	codec.EXPECT().ParsePool("<pool/>", uint32(0)).Return(def, nil)
	b.EXPECT().ValidatePool(def).Return(nil)
	codec.EXPECT().FormatPool(def, nil).Return("<pool>config</pool>", nil)
	h, err := s.PoolDefineXML(ctx, "<pool/>", 0)
	must(t, err)

	_, err = s.VolCreateXML(ctx, h, "<volume/>", domain.VolCreateValidate)
	wantErr(t, err, "Requested operation is not valid: storage pool 'p1' is not active", domain.KindOperationInvalid)

	codec.EXPECT().FormatPoolStatus(gomock.Any(), gomock.Any()).Return("<poolstate/>", nil).AnyTimes()
	b.EXPECT().StartPool(gomock.Any(), gomock.Any()).Return(nil)
	b.EXPECT().RefreshPool(gomock.Any(), gomock.Any()).Return(domain.PoolStats{}, nil, nil)
	must(t, s.PoolCreate(ctx, h, 0))
	codec.EXPECT().ValidateVol(gomock.Any(), "<volume/>").Return(refused).Times(2)
	_, err = s.VolCreateXML(ctx, h, "<volume/>", domain.VolCreateValidate)
	wantErr(t, err, "refused", domain.KindXMLInvalidSchema)
	_, err = s.VolCreateXMLFrom(ctx, h, "<volume/>", domain.VolHandle{Pool: "p1", Name: "src"}, domain.VolCreateValidate)
	wantErr(t, err, "refused", domain.KindXMLInvalidSchema)
}

// A volume whose document validates is created, without the VALIDATE bit
// reaching the backend (which, as libvirt's, knows no such flag).
func TestValidatedVolBuildsWithoutTheFlag(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ctrl := gomock.NewController(t)
	b := mocks.NewMockPoolBackend(ctrl)
	s := mockService(t, b, testkit.FakeCodec{}, testkit.NewMemoryStore(), &testkit.RecordingSink{})
	b.EXPECT().ValidatePool(gomock.Any()).Return(nil)
	h, err := s.PoolDefineXML(ctx, testkit.PoolXML(dirDef("p1", 1)), 0)
	must(t, err)
	b.EXPECT().StartPool(gomock.Any(), gomock.Any()).Return(nil)
	b.EXPECT().RefreshPool(gomock.Any(), gomock.Any()).Return(domain.PoolStats{Capacity: 10 * mib, Available: 10 * mib}, nil, nil)
	must(t, s.PoolCreate(ctx, h, 0))

	gomock.InOrder(
		b.EXPECT().PrepareVol(gomock.Any(), gomock.Any()).Return(nil),
		b.EXPECT().BuildVol(gomock.Any(), gomock.Any(), gomock.Any(), domain.VolCreatePreallocMetadata).Return(nil),
		b.EXPECT().RefreshVol(gomock.Any(), gomock.Any(), gomock.Any()).Return(nil),
	)
	_, err = s.VolCreateXML(ctx, h, rawVol("v", mib), domain.VolCreateValidate|domain.VolCreatePreallocMetadata)
	must(t, err)
}

func TestAdmissionFailureNeverBuilds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ctrl := gomock.NewController(t)
	b := mocks.NewMockPoolBackend(ctrl)
	s := mockService(t, b, testkit.FakeCodec{}, testkit.NewMemoryStore(), &testkit.RecordingSink{})

	b.EXPECT().ValidatePool(gomock.Any()).Return(nil)
	h, err := s.PoolDefineXML(ctx, testkit.PoolXML(dirDef("p1", 1)), 0)
	must(t, err)
	gomock.InOrder(
		b.EXPECT().StartPool(gomock.Any(), gomock.Any()).Return(nil),
		b.EXPECT().RefreshPool(gomock.Any(), gomock.Any()).Return(domain.PoolStats{Capacity: 10 * mib, Available: 10 * mib}, nil, nil),
	)
	must(t, s.PoolCreate(ctx, h, 0))

	// PrepareVol runs (it touches nothing); BuildVol must not.
	b.EXPECT().PrepareVol(gomock.Any(), gomock.Any()).Return(nil)
	_, err = s.VolCreateXML(ctx, h, rawVol("big", 11*mib), 0)
	wantErr(t, err, "operation failed: Not enough space left in storage pool 'p1' for volume 'big' (needs 11534336 bytes, 10485760 available)", domain.KindOperationFailed)

	// A failed build releases the reservation and forgets the volume.
	gomock.InOrder(
		b.EXPECT().PrepareVol(gomock.Any(), gomock.Any()).Return(nil),
		b.EXPECT().BuildVol(gomock.Any(), gomock.Any(), gomock.Any(), uint32(0)).Return(errors.New("disk on fire")),
	)
	_, err = s.VolCreateXML(ctx, h, rawVol("v", 10*mib), 0)
	if err == nil || err.Error() != "disk on fire" {
		t.Fatalf("error = %v, want the backend's", err)
	}
	_, err = s.VolLookupByName(ctx, h, "v")
	wantErr(t, err, "Storage volume not found: no storage vol with matching name 'v'", domain.KindNoStorageVol)

	// A refresh failure after the build deletes the half-made volume.
	gomock.InOrder(
		b.EXPECT().PrepareVol(gomock.Any(), gomock.Any()).Return(nil),
		b.EXPECT().BuildVol(gomock.Any(), gomock.Any(), gomock.Any(), uint32(0)).Return(nil),
		b.EXPECT().RefreshVol(gomock.Any(), gomock.Any(), gomock.Any()).Return(errors.New("cannot stat")),
		b.EXPECT().DeleteVol(gomock.Any(), gomock.Any(), gomock.Any(), uint32(0)).Return(nil),
	)
	_, err = s.VolCreateXML(ctx, h, rawVol("v", 10*mib), 0)
	if err == nil || err.Error() != "cannot stat" {
		t.Fatalf("error = %v, want the refresh error", err)
	}
	info, _ := s.PoolGetInfo(ctx, h)
	equal(t, "available untouched", info.Available, uint64(10*mib))

	b.EXPECT().StopPool(gomock.Any(), gomock.Any()).Return(nil)
	must(t, s.PoolDestroy(ctx, h))
}

func TestRefreshFailureCallsStopPool(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ctrl := gomock.NewController(t)
	b := mocks.NewMockPoolBackend(ctrl)
	store := testkit.NewMemoryStore()
	sink := &testkit.RecordingSink{}
	s := mockService(t, b, testkit.FakeCodec{}, store, sink)
	b.EXPECT().ValidatePool(gomock.Any()).Return(nil)
	h, err := s.PoolDefineXML(ctx, testkit.PoolXML(dirDef("p1", 1)), 0)
	must(t, err)
	b.EXPECT().StartPool(gomock.Any(), gomock.Any()).Return(nil)
	b.EXPECT().RefreshPool(gomock.Any(), gomock.Any()).Return(domain.PoolStats{}, nil, nil)
	must(t, s.PoolCreate(ctx, h, 0))

	gomock.InOrder(
		b.EXPECT().RefreshPool(gomock.Any(), gomock.Any()).Return(domain.PoolStats{}, nil, domain.SystemError(2, nil, "cannot open directory '/srv/p1'")),
		b.EXPECT().StopPool(gomock.Any(), gomock.Any()).Return(nil),
	)
	wantErr(t, s.PoolRefresh(ctx, h, 0), "cannot open directory '/srv/p1'", domain.KindSystem)
	if _, ok := store.Status("p1"); ok {
		t.Fatal("status kept after failed refresh")
	}
	equalSlice(t, "events", sink.Events(), []string{"p1:Defined", "p1:Started", "p1:Stopped"})

	// A destroy whose StopPool fails leaves the pool running.
	b.EXPECT().StartPool(gomock.Any(), gomock.Any()).Return(nil)
	b.EXPECT().RefreshPool(gomock.Any(), gomock.Any()).Return(domain.PoolStats{}, nil, nil)
	must(t, s.PoolCreate(ctx, h, 0))
	b.EXPECT().StopPool(gomock.Any(), gomock.Any()).Return(errors.New("umount: target is busy"))
	if err := s.PoolDestroy(ctx, h); err == nil {
		t.Fatal("destroy succeeded although StopPool failed")
	}
	active, _ := s.PoolIsActive(ctx, h)
	equal(t, "active after failed stop", active, true)
	_, err = s.PoolListVolumes(ctx, h, -1)
	must(t, err)
}

func TestStartAutostartsInactivePools(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ctrl := gomock.NewController(t)
	b := mocks.NewMockPoolBackend(ctrl)
	store := testkit.NewMemoryStore()
	must(t, store.SaveConfig("a", testkit.PoolXML(dirDef("a", 1))))
	must(t, store.SetAutostart("a", true))
	must(t, store.SaveConfig("b", testkit.PoolXML(dirDef("b", 2))))
	must(t, store.SaveStatus("b", testkit.PoolXML(dirDef("b", 2))))
	sink := &testkit.RecordingSink{}

	vols := []*domain.VolDef{{Name: "x", Key: "/srv/a/x", Capacity: 5, Allocation: 5}}
	b.EXPECT().CheckPool(gomock.Any(), gomock.Any()).Return(false, nil).Times(2)
	gomock.InOrder(
		b.EXPECT().StartPool(gomock.Any(), gomock.Any()).Return(nil),
		b.EXPECT().RefreshPool(gomock.Any(), gomock.Any()).Return(domain.PoolStats{Capacity: 100, Allocation: 5, Available: 95}, vols, nil),
	)
	s := mockService(t, b, testkit.FakeCodec{}, store, sink)
	h, err := s.PoolLookupByName(ctx, "a")
	must(t, err)
	info, _ := s.PoolGetInfo(ctx, h)
	equal(t, "autostarted", info, domain.PoolInfo{State: domain.PoolRunning, Capacity: 100, Allocation: 5, Available: 95})
	equalSlice(t, "events", sink.Events(), []string{"a:Started"})
	// b was running before but is not any more: its status file goes.
	_, ok := store.Status("b")
	equal(t, "stale status", ok, false)
	_, ok = store.Status("a")
	equal(t, "status of autostarted pool", ok, true)
}

func TestOperationsDuringStartAnswerStartingUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ctrl := gomock.NewController(t)
	b := mocks.NewMockPoolBackend(ctrl)
	s := mockService(t, b, testkit.FakeCodec{}, testkit.NewMemoryStore(), &testkit.RecordingSink{})
	b.EXPECT().ValidatePool(gomock.Any()).Return(nil)
	h, err := s.PoolDefineXML(ctx, testkit.PoolXML(dirDef("p1", 1)), 0)
	must(t, err)

	building := make(chan struct{})
	release := make(chan struct{})
	gomock.InOrder(
		b.EXPECT().BuildPool(gomock.Any(), gomock.Any(), domain.PoolBuildNoOverwrite).DoAndReturn(
			func(ctx context.Context, def *domain.PoolDef, flags uint32) error {
				close(building)
				<-release
				return nil
			}),
		b.EXPECT().StartPool(gomock.Any(), gomock.Any()).Return(nil),
		b.EXPECT().RefreshPool(gomock.Any(), gomock.Any()).Return(domain.PoolStats{}, nil, nil),
	)
	startErr := make(chan error, 1)
	go func() {
		startErr <- s.PoolCreate(ctx, h, domain.PoolCreateWithBuild|domain.PoolCreateWithBuildNoOverwrite)
	}()
	<-building
	const want = "Requested operation is not valid: storage pool 'p1' is starting up"
	within(t, "calls during start", func() {
		wantErr(t, s.PoolCreate(ctx, h, 0), want, domain.KindOperationInvalid)
		wantErr(t, s.PoolDestroy(ctx, h), want, domain.KindOperationInvalid)
		wantErr(t, s.PoolUndefine(ctx, h), want, domain.KindOperationInvalid)
		wantErr(t, s.PoolDelete(ctx, h, 0), want, domain.KindOperationInvalid)
		wantErr(t, s.PoolRefresh(ctx, h, 0), want, domain.KindOperationInvalid)
		_, err := s.VolCreateXML(ctx, h, rawVol("v", 1), 0)
		wantErr(t, err, want, domain.KindOperationInvalid)
		info, err := s.PoolGetInfo(ctx, h)
		must(t, err)
		equal(t, "state while starting", info.State, domain.PoolInactive)
	})
	close(release)
	must(t, <-startErr)
	active, _ := s.PoolIsActive(ctx, h)
	equal(t, "active", active, true)
}

func TestFindPoolSources(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ctrl := gomock.NewController(t)
	b := mocks.NewMockPoolBackend(ctrl)
	s := mockService(t, b, testkit.FakeCodec{}, testkit.NewMemoryStore(), &testkit.RecordingSink{})
	found := []domain.PoolSource{{Name: "vg0", Devices: []domain.SourceDevice{{Path: "/dev/sdb"}}}}
	b.EXPECT().FindPoolSources(gomock.Any(), &domain.PoolSource{Hosts: []domain.SourceHost{{Name: "h"}}}, uint32(0)).Return(found, nil)
	got, err := s.FindPoolSources(ctx, "dir", `{"Hosts":[{"Name":"h"}]}`, 0)
	must(t, err)
	equal(t, "sources", got, `[{"Hosts":null,"Devices":[{"Path":"/dev/sdb","PartSeparator":"","FreeExtents":null}],"Dir":"","Adapter":null,"Name":"vg0","Initiator":"","Format":"","ProtocolVer":"","Vendor":"","Product":"","Auth":null}]`)
	// Flags are the backend's to refuse, before any source spec is read.
	b.EXPECT().FindPoolSources(gomock.Any(), nil, uint32(1)).Return(nil, domain.ErrUnsupportedFlags(1, "backendFind"))
	_, err = s.FindPoolSources(ctx, "dir", "not json", 1)
	wantErr(t, err, "unsupported flags (0x1) in function backendFind", domain.KindInvalidArg)
	b.EXPECT().FindPoolSources(gomock.Any(), gomock.Any(), uint32(0)).Return(nil, domain.Errorf(domain.KindNoSupport, "nope"))
	_, err = s.FindPoolSources(ctx, "dir", "", 0)
	wantErr(t, err, "this function is not supported by the connection driver: pool type 'dir' does not support source discovery", domain.KindNoSupport)
	caps, err := s.Capabilities(ctx)
	must(t, err)
	equal(t, "capabilities", caps, "caps:dir")
}

// TestCreateDropsTheClientsKey: the key a client puts in a volume's XML is
// not the new volume's (the backend makes the key), so it can neither
// collide with another volume's nor reach the backend. virsh vol-clone sends
// the source volume's XML, key included, under a new name: a backend that
// learns the key only after building (logical: the LV UUID) refused every
// clone with "volume key '...' is already in use". libvirt drops the key
// likewise (storageVolCreateXML, storageVolCreateXMLFrom).
func TestCreateDropsTheClientsKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ctrl := gomock.NewController(t)
	b := mocks.NewMockPoolBackend(ctrl)
	codec := mocks.NewMockXMLCodec(ctrl)
	def := dirDef("p1", 1)
	codec.EXPECT().ParsePool(gomock.Any(), gomock.Any()).Return(def, nil)
	codec.EXPECT().FormatPool(gomock.Any(), gomock.Any()).Return("<pool/>", nil).AnyTimes()
	codec.EXPECT().FormatPoolStatus(gomock.Any(), gomock.Any()).Return("<pool/>", nil).AnyTimes()
	b.EXPECT().ValidatePool(gomock.Any()).Return(nil)
	s := mockService(t, b, codec, testkit.NewMemoryStore(), &testkit.RecordingSink{})
	h, err := s.PoolDefineXML(ctx, "<pool/>", 0)
	must(t, err)
	existing := &domain.VolDef{Name: "lv1", Key: "uuid-1", Type: domain.VolBlock, Capacity: mib, HasCapacity: true}
	b.EXPECT().StartPool(gomock.Any(), gomock.Any()).Return(nil)
	b.EXPECT().RefreshPool(gomock.Any(), gomock.Any()).Return(domain.PoolStats{Capacity: 10 * mib, Available: 9 * mib}, []*domain.VolDef{existing}, nil)
	must(t, s.PoolCreate(ctx, h, 0))
	src, err := s.VolLookupByName(ctx, h, "lv1")
	must(t, err)

	parsed := func(name string) *domain.VolDef {
		return &domain.VolDef{Name: name, Key: "uuid-1", Type: domain.VolBlock, Capacity: mib, HasCapacity: true}
	}
	noKey := func(_ context.Context, _ *domain.PoolDef, vol *domain.VolDef) error {
		if vol.Key != "" {
			t.Errorf("the backend got the client's key %q", vol.Key)
		}
		return nil
	}
	made := func(key string) func(context.Context, *domain.PoolDef, *domain.VolDef) error {
		return func(_ context.Context, _ *domain.PoolDef, vol *domain.VolDef) error {
			vol.Key = key
			return nil
		}
	}
	gomock.InOrder(
		codec.EXPECT().ParseVol("<volume>lv2</volume>", gomock.Any(), uint32(0)).Return(parsed("lv2"), nil),
		b.EXPECT().PrepareVol(gomock.Any(), gomock.Any()).DoAndReturn(func(p *domain.PoolDef, v *domain.VolDef) error { return noKey(ctx, p, v) }),
		b.EXPECT().BuildVolFrom(gomock.Any(), gomock.Any(), gomock.Any(), gomock.Any(), gomock.Any(), uint32(0)).Return(nil),
		b.EXPECT().RefreshVol(gomock.Any(), gomock.Any(), gomock.Any()).DoAndReturn(made("uuid-2")),
	)
	clone, err := s.VolCreateXMLFrom(ctx, h, "<volume>lv2</volume>", src, 0)
	must(t, err)
	equal(t, "clone's key", clone.Key, "uuid-2")

	gomock.InOrder(
		codec.EXPECT().ParseVol("<volume>lv3</volume>", gomock.Any(), uint32(0)).Return(parsed("lv3"), nil),
		b.EXPECT().PrepareVol(gomock.Any(), gomock.Any()).DoAndReturn(func(p *domain.PoolDef, v *domain.VolDef) error { return noKey(ctx, p, v) }),
		b.EXPECT().BuildVol(gomock.Any(), gomock.Any(), gomock.Any(), uint32(0)).Return(nil),
		b.EXPECT().RefreshVol(gomock.Any(), gomock.Any(), gomock.Any()).DoAndReturn(made("uuid-3")),
	)
	created, err := s.VolCreateXML(ctx, h, "<volume>lv3</volume>", 0)
	must(t, err)
	equal(t, "new volume's key", created.Key, "uuid-3")
}
