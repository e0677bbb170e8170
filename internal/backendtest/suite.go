package backendtest

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/domain"
)

// RunConformanceTests runs the suite against the backend newHarness makes,
// with a fresh harness for each test. Tests run one after the other: the
// storage tools (LVM, mount) serialise on the host anyway.
func RunConformanceTests(t *testing.T, newHarness HarnessMaker) {
	t.Helper()
	tests := []struct {
		name string
		run  func(*env)
	}{
		{"Identity", testIdentity},
		{"Lifecycle", testLifecycle},
		{"DeleteWithVolumes", testDeleteWithVolumes},
		{"OutsideChanges", testOutsideChanges},
		{"CreateVolume", testCreateVolume},
		{"DeleteVolume", testDeleteVolume},
		{"ResizeVolume", testResizeVolume},
		{"Accounting", testAccounting},
		{"Streams", testStreams},
		{"Wipe", testWipe},
		{"Clone", testClone},
		{"Concurrency", testConcurrency},
		{"Cancellation", testCancellation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			h, err := newHarness(ctx, t)
			if err != nil {
				t.Fatalf("making the harness: %v", err)
			}
			tt.run(&env{t: t, ctx: ctx, h: h, b: h.Backend(), caps: h.Capabilities()})
		})
	}
}

// testIdentity: the type served, ValidatePool's idempotence (the service
// validates at define and again when it reads a config back), and source
// discovery's refusal of flags it does not know, before it reads the spec.
func testIdentity(e *env) {
	if got := e.b.Type(); got != e.caps.Type {
		e.t.Errorf("Type() = %v, want %v", got, e.caps.Type)
	}
	def := e.newPool("ident")
	again := def.Clone()
	if err := e.b.ValidatePool(again); err != nil {
		e.t.Fatalf("ValidatePool of a validated pool = %v", err)
	}
	if !reflect.DeepEqual(def, again) {
		e.t.Errorf("ValidatePool is not idempotent:\n%+v\nthen\n%+v", def, again)
	}
	_, err := e.b.FindPoolSources(e.ctx, nil, unknownFlag)
	if e.caps.FindSources {
		e.wantError(err, "FindPoolSources with an unknown flag", domain.KindInvalidArg)
	} else {
		e.wantError(err, "FindPoolSources of a type without discovery", domain.KindNoSupport)
	}
}

// testLifecycle: build, start, stop and delete, each in the right and the
// wrong state, and what CheckPool says at every step.
func testLifecycle(e *env) {
	c := e.caps
	def := e.newPool("life")
	if c.Build {
		e.wantCheck(def, false, "before build")
		e.wantError(e.b.StartPool(e.ctx, def), "StartPool of a pool never built")
		e.wantCheck(def, false, "after a failed start")
		_, _, err := e.b.RefreshPool(e.ctx, def)
		e.wantError(err, "RefreshPool of a pool never built")
		e.wantError(e.b.BuildPool(e.ctx, def, unknownFlag), "BuildPool with an unknown flag", domain.KindInvalidArg)
		e.wantError(e.b.BuildPool(e.ctx, def, domain.PoolBuildOverwrite|domain.PoolBuildNoOverwrite),
			"BuildPool with both overwrite flags", domain.KindInvalidArg)
	} else if err := e.b.BuildPool(e.ctx, def, unknownFlag); err != nil {
		e.t.Errorf("BuildPool of a type without a build step = %v, want nothing done", err)
	}
	if err := e.b.BuildPool(e.ctx, def, c.BuildFlags); err != nil {
		e.t.Fatalf("BuildPool = %v", err)
	}
	e.wantCheck(def, c.Presence == PresentWhenBuilt, "after build")
	for i := range 2 {
		if err := e.b.StartPool(e.ctx, def); err != nil {
			e.t.Fatalf("StartPool (call %d) = %v", i+1, err)
		}
	}
	e.wantCheck(def, c.Presence != PresentNever, "after start")
	e.refresh(def)
	for i := range 2 {
		if err := e.b.StopPool(e.ctx, def); err != nil {
			e.t.Fatalf("StopPool (call %d) = %v", i+1, err)
		}
	}
	e.wantCheck(def, c.Presence == PresentWhenBuilt, "after stop")
	if !c.Delete {
		e.wantError(e.b.DeletePool(e.ctx, def, 0), "DeletePool of a type that cannot delete", domain.KindNoSupport)
		return
	}
	e.wantError(e.b.DeletePool(e.ctx, def, unknownFlag), "DeletePool with an unknown flag", domain.KindInvalidArg)
	if err := e.b.DeletePool(e.ctx, def, 0); err != nil {
		e.t.Fatalf("DeletePool = %v", err)
	}
	e.wantCheck(def, false, "after delete")
	e.wantError(e.b.StartPool(e.ctx, def), "StartPool of a deleted pool")
	_, _, err := e.b.RefreshPool(e.ctx, def)
	e.wantError(err, "RefreshPool of a deleted pool")
}

// testDeleteWithVolumes: DeletePool of a stopped pool whose storage holds a
// volume takes the volume with it, or is refused and leaves it there.
func testDeleteWithVolumes(e *env) {
	if !e.caps.Delete {
		e.t.Skip("declared by the harness: the type cannot delete pools")
	}
	if !e.caps.DeleteNonEmpty && e.caps.Presence != PresentWhenBuilt {
		e.t.Skip("declared by the harness: DeletePool removes only the mount point, which a stopped pool leaves empty")
	}
	def := e.started("delfull")
	vol := e.someVolume(def, "kept", false)
	if err := e.b.StopPool(e.ctx, def); err != nil {
		e.t.Fatalf("StopPool = %v", err)
	}
	err := e.b.DeletePool(e.ctx, def, 0)
	if e.caps.DeleteNonEmpty {
		if err != nil {
			e.t.Fatalf("DeletePool of a pool with a volume = %v", err)
		}
		e.wantCheck(def, false, "after delete")
		return
	}
	e.wantError(err, "DeletePool of a pool with a volume")
	if err := e.b.StartPool(e.ctx, def); err != nil {
		e.t.Fatalf("StartPool after a refused delete = %v", err)
	}
	e.wantListed(def, vol.Name, true, "after a refused delete")
}

// testOutsideChanges: a refresh lists what is on the system, volumes made
// and removed behind the backend's back included.
func testOutsideChanges(e *env) {
	def := e.started("outside")
	_, before := e.refresh(def)
	size := e.caps.volumeSize()
	name, err := e.h.AddVolume(e.ctx, def, "outside1", size)
	if err != nil {
		e.t.Fatalf("harness: adding a volume: %v", err)
	}
	if before[name] != nil {
		e.t.Fatalf("RefreshPool listed %q before it was made", name)
	}
	v := e.wantListed(def, name, true, "after a volume was made outside")
	e.wantCapacity("a volume made outside", v.Capacity, size)
	if !e.caps.onDemand() && v.Allocation != v.Capacity {
		e.t.Errorf("a volume made outside: allocation %d, want its capacity %d", v.Allocation, v.Capacity)
	}
	rv := e.reread(def, v)
	if rv.Key != v.Key || rv.Capacity != v.Capacity || rv.Target.Path != v.Target.Path {
		e.t.Errorf("RefreshVol gives key %q, capacity %d, path %q; the pool listed %q, %d, %q",
			rv.Key, rv.Capacity, rv.Target.Path, v.Key, v.Capacity, v.Target.Path)
	}
	if err := e.h.RemoveVolume(e.ctx, def, name); err != nil {
		e.t.Fatalf("harness: removing a volume: %v", err)
	}
	e.wantListed(def, name, false, "after a volume was removed outside")
	e.wantError(e.b.RefreshVol(e.ctx, def, v.Clone()), "RefreshVol of a volume removed outside",
		domain.KindNoStorageVol, domain.KindSystem)
	if e.caps.has(DeleteVol) {
		if err := e.b.DeleteVol(e.ctx, def, v.Clone(), 0); err != nil {
			e.wantError(err, "DeleteVol of a volume removed outside", domain.KindNoStorageVol)
		}
	}
}

// testCreateVolume: PrepareVol touches nothing; BuildVol makes a volume
// with its capacity, the type's allocation and a key of its own; a name
// taken on the system is refused without harm.
func testCreateVolume(e *env) {
	def := e.started("create")
	size := e.caps.volumeSize()
	if !e.caps.has(CreateVol) {
		vol := e.volDef(def, "new1", size, 0)
		err := e.b.PrepareVol(def, vol)
		if err == nil {
			err = e.b.BuildVol(e.ctx, def, vol, 0)
		}
		e.wantError(err, "creating a volume in a type that cannot", domain.KindNoSupport)
		return
	}
	vol := e.volDef(def, "vol1", size, e.caps.lightAllocation(size))
	if err := e.b.PrepareVol(def, vol); err != nil {
		e.t.Fatalf("PrepareVol = %v", err)
	}
	if vol.Target.Path == "" {
		e.t.Errorf("PrepareVol left the path empty: %+v", vol)
	}
	if got, want := vol.Target.Format, e.b.DefaultVolFormat(); got != want {
		e.t.Errorf("PrepareVol of a volume without a format gives %q, want the default %q", got, want)
	}
	e.wantListed(def, e.volName(def, "vol1"), false, "after PrepareVol alone")
	if err := e.b.BuildVol(e.ctx, def, vol, 0); err != nil {
		e.t.Fatalf("BuildVol = %v", err)
	}
	if err := e.b.RefreshVol(e.ctx, def, vol); err != nil {
		e.t.Fatalf("RefreshVol after BuildVol = %v", err)
	}
	e.wantCapacity("a new volume", vol.Capacity, size)
	switch e.caps.Allocation {
	case Sparse, Thin:
		if vol.Allocation >= vol.Capacity {
			e.t.Errorf("a volume made with no allocation allocates %d of its %d bytes", vol.Allocation, vol.Capacity)
		}
	case Thick:
		if vol.Allocation != vol.Capacity {
			e.t.Errorf("a thick volume allocates %d of its %d bytes", vol.Allocation, vol.Capacity)
		}
	}
	listed := e.wantListed(def, e.volName(def, "vol1"), true, "after BuildVol")
	if listed.Key == "" || listed.Key != vol.Key || listed.Target.Path != vol.Target.Path || listed.Capacity != vol.Capacity {
		e.t.Errorf("RefreshPool lists key %q, path %q, capacity %d; RefreshVol gave %q, %q, %d",
			listed.Key, listed.Target.Path, listed.Capacity, vol.Key, vol.Target.Path, vol.Capacity)
	}

	full := e.create(def, "vol2", size, size)
	if e.caps.Allocation != Thin && full.Allocation < full.Capacity {
		e.t.Errorf("a volume made fully allocated allocates %d of its %d bytes", full.Allocation, full.Capacity)
	}
	if full.Key == vol.Key {
		e.t.Errorf("two volumes share the key %q", vol.Key)
	}

	// The service checks its own list first, but the system may hold a
	// volume of that name it has not seen yet.
	dup := e.volDef(def, "vol1", 2*size, e.caps.lightAllocation(2*size))
	err := e.b.PrepareVol(def, dup)
	if err == nil {
		err = e.b.BuildVol(e.ctx, def, dup, 0)
	}
	e.wantError(err, "creating a volume whose name is taken on the system")
	if got := e.reread(def, vol); got.Capacity != vol.Capacity || got.Key != vol.Key {
		e.t.Errorf("the volume already there changed: capacity %d, key %q; was %d, %q", got.Capacity, got.Key, vol.Capacity, vol.Key)
	}
}

// testDeleteVolume: DeleteVol refuses unknown flags and removes the volume.
func testDeleteVolume(e *env) {
	def := e.started("delete")
	vol := e.someVolume(def, "del1", false)
	if !e.caps.has(DeleteVol) {
		e.wantError(e.b.DeleteVol(e.ctx, def, vol, 0), "DeleteVol in a type that cannot", domain.KindNoSupport)
		e.wantListed(def, vol.Name, true, "after a refused DeleteVol")
		return
	}
	e.wantError(e.b.DeleteVol(e.ctx, def, vol, unknownFlag), "DeleteVol with an unknown flag", domain.KindInvalidArg)
	e.wantListed(def, vol.Name, true, "after a refused DeleteVol")
	if err := e.b.DeleteVol(e.ctx, def, vol, 0); err != nil {
		e.t.Fatalf("DeleteVol = %v", err)
	}
	e.wantListed(def, vol.Name, false, "after DeleteVol")
	e.wantError(e.b.RefreshVol(e.ctx, def, vol.Clone()), "RefreshVol of a deleted volume",
		domain.KindNoStorageVol, domain.KindSystem)
}

// testResizeVolume: growing keeps the data, ALLOCATE allocates, SHRINK
// shrinks, and an allocation the pool cannot hold changes nothing.
func testResizeVolume(e *env) {
	def := e.started("resize")
	vol := e.someVolume(def, "rs1", false)
	size := e.caps.volumeSize()
	if !e.caps.has(ResizeVol) {
		e.wantError(e.b.ResizeVol(e.ctx, def, vol, 2*size, 0), "ResizeVol in a type that cannot", domain.KindNoSupport)
		return
	}
	var data []byte
	if e.caps.NoData == "" {
		data = pattern(64<<10, 1)
		e.upload(def, vol, 0, data)
	}
	if err := e.b.ResizeVol(e.ctx, def, vol, 2*size, 0); err != nil {
		e.t.Fatalf("ResizeVol to %d = %v", 2*size, err)
	}
	vol = e.reread(def, vol)
	e.wantCapacity("after growing", vol.Capacity, 2*size)
	if data != nil {
		if got := e.download(def, vol, 0, uint64(len(data)), 0); !bytes.Equal(got, data) {
			e.t.Errorf("data after growing: %s", firstDiff(got, data))
		}
	}
	if e.caps.Allocation == Thin {
		e.wantError(e.b.ResizeVol(e.ctx, def, vol, 3*size, domain.VolResizeAllocate), "ResizeVol with ALLOCATE of a thin type", domain.KindInvalidArg)
		if got := e.reread(def, vol); got.Capacity != vol.Capacity {
			e.t.Errorf("a refused ResizeVol changed the capacity from %d to %d", vol.Capacity, got.Capacity)
		}
	} else {
		if err := e.b.ResizeVol(e.ctx, def, vol, 3*size, domain.VolResizeAllocate); err != nil {
			e.t.Fatalf("ResizeVol to %d with ALLOCATE = %v", 3*size, err)
		}
		vol = e.reread(def, vol)
		e.wantCapacity("after growing with ALLOCATE", vol.Capacity, 3*size)
		if vol.Allocation < vol.Capacity {
			e.t.Errorf("after growing with ALLOCATE: allocation %d of %d bytes", vol.Allocation, vol.Capacity)
		}
	}
	if e.caps.has(ShrinkVol) {
		if err := e.b.ResizeVol(e.ctx, def, vol, size, domain.VolResizeShrink); err != nil {
			e.t.Fatalf("ResizeVol to %d with SHRINK = %v", size, err)
		}
		vol = e.reread(def, vol)
		e.wantCapacity("after shrinking", vol.Capacity, size)
	}
	if e.caps.Isolated {
		stats, _ := e.refresh(def)
		huge := e.caps.roundUp(stats.Capacity + size)
		e.wantError(e.b.ResizeVol(e.ctx, def, vol, huge, domain.VolResizeAllocate),
			"ResizeVol with ALLOCATE past what the pool holds")
		if got := e.reread(def, vol); got.Capacity != vol.Capacity {
			e.t.Errorf("a failed ResizeVol changed the capacity from %d to %d", vol.Capacity, got.Capacity)
		}
	}
}

// testAccounting: in a pool of its own, a fully allocated volume moves the
// pool's figures by its size, and a volume larger than the pool cannot be
// made and leaves nothing behind.
func testAccounting(e *env) {
	if !e.caps.Isolated {
		e.t.Skip("declared by the harness: the pool shares its storage (Capabilities.Isolated is false)")
	}
	if !e.caps.has(CreateVol) {
		e.t.Skip("declared by the harness: the type creates no volumes")
	}
	def := e.started("account")
	size := e.caps.volumeSize()
	before, _ := e.refresh(def)
	vol := e.create(def, "full", size, size)
	after, _ := e.refresh(def)
	if after.Allocation < before.Allocation+vol.Capacity || after.Available+vol.Capacity > before.Available {
		e.t.Errorf("a volume allocating %d bytes moved the pool from allocation %d, available %d to %d, %d",
			vol.Capacity, before.Allocation, before.Available, after.Allocation, after.Available)
	}
	huge := e.caps.roundUp(after.Capacity + size)
	big := e.volDef(def, "huge", huge, huge)
	err := e.b.PrepareVol(def, big)
	if err == nil {
		err = e.b.BuildVol(e.ctx, def, big, 0)
	}
	e.wantError(err, "creating a volume larger than the pool")
	e.wantListed(def, e.volName(def, "huge"), false, "after a create that ran out of space")
}

// testStreams: downloads return the volume's bytes, sparse or not; uploads
// write at their offset, keep what an aborted upload wrote, and never write
// past the volume's end.
func testStreams(e *env) {
	def := e.started("streams")
	vol := e.someVolume(def, "st1", false)
	for _, op := range []struct {
		op   Ops
		name string
		call func() error
	}{
		{UploadVol, "UploadVol", func() error { _, err := e.b.UploadVol(e.ctx, def, vol, 0, 0, 0); return err }},
		{DownloadVol, "DownloadVol", func() error { _, err := e.b.DownloadVol(e.ctx, def, vol, 0, 0, 0); return err }},
	} {
		if !e.caps.has(op.op) {
			e.wantError(op.call(), op.name+" in a type that cannot", domain.KindNoSupport)
		}
	}
	if !e.caps.has(UploadVol | DownloadVol) {
		e.t.Skip("declared by the harness: the type streams in one direction only")
	}
	e.needData()
	if got := e.download(def, vol, 0, 0, 0); uint64(len(got)) != vol.Capacity {
		e.t.Errorf("download of a whole volume: %d bytes, want its capacity %d", len(got), vol.Capacity)
	}
	data, off := pattern(64<<10, 2), uint64(1<<20)
	e.upload(def, vol, off, data)
	if got := e.download(def, vol, off, uint64(len(data)), 0); !bytes.Equal(got, data) {
		e.t.Errorf("download of what was uploaded: %s", firstDiff(got, data))
	}
	whole := e.download(def, vol, 0, 0, 0)
	if uint64(len(whole)) != vol.Capacity || !bytes.Equal(whole[off:off+uint64(len(data))], data) {
		e.t.Errorf("download of the whole volume after the upload: %d bytes, want %d with the upload at %d", len(whole), vol.Capacity, off)
	}
	if sparse := e.download(def, vol, 0, 0, domain.StreamSparse); !bytes.Equal(sparse, whole) {
		e.t.Errorf("sparse download differs from the plain one: %s", firstDiff(sparse, whole))
	}
	for _, flags := range []uint32{0, domain.StreamSparse} {
		if sections, ok := e.downloadSections(def, vol, flags); ok && !bytes.Equal(sections, whole) {
			e.t.Errorf("download by sections (flags %#x) differs from the plain one: %s", flags, firstDiff(sections, whole))
		}
	}
	if e.caps.onDemand() {
		if got := e.reread(def, vol); got.Allocation < uint64(len(data)) {
			e.t.Errorf("allocation after writing %d bytes: %d", len(data), got.Allocation)
		}
	}

	// An aborted upload keeps what it wrote, as in libvirt.
	kept, koff := pattern(4096, 3), uint64(3<<20)
	w, err := e.b.UploadVol(e.ctx, def, vol, koff, 0, 0)
	if err != nil {
		e.t.Fatalf("UploadVol = %v", err)
	}
	if _, err := w.Write(kept); err != nil {
		e.t.Fatalf("Write = %v", err)
	}
	w.Abort()
	if got := e.download(def, vol, koff, uint64(len(kept)), 0); !bytes.Equal(got, kept) {
		e.t.Errorf("what an aborted upload wrote: %s", firstDiff(got, kept))
	}

	// Nothing goes past the end, nor past the length asked.
	e.wantError(e.overlongUpload(def, vol, vol.Capacity-16, 0), "an upload past the volume's end")
	if got := e.reread(def, vol); got.Capacity != vol.Capacity {
		e.t.Errorf("an upload past the end changed the capacity from %d to %d", vol.Capacity, got.Capacity)
	}
	e.wantError(e.overlongUpload(def, vol, 0, 16), "an upload past the length asked")

	// Downloads stop at the end: an offset there gives nothing, a length
	// past it the bytes up to it.
	if got := e.download(def, vol, vol.Capacity, 0, 0); len(got) != 0 {
		e.t.Errorf("download from the volume's end: %d bytes, want none", len(got))
	}
	if got := e.download(def, vol, vol.Capacity-16, 64, 0); len(got) != 16 {
		e.t.Errorf("download of 64 bytes 16 before the end: %d bytes, want 16", len(got))
	}
}

// overlongUpload opens an upload at off for length bytes and writes 32
// bytes, 16 more than there is room for.
func (e *env) overlongUpload(def *domain.PoolDef, vol *domain.VolDef, off, length uint64) error {
	e.t.Helper()
	w, err := e.b.UploadVol(e.ctx, def, vol, off, length, 0)
	if err != nil {
		e.t.Fatalf("UploadVol(%d, %d) = %v", off, length, err)
	}
	if _, err = w.Write(pattern(32, 4)); err != nil {
		w.Abort()
		return err
	}
	return w.Finish(e.ctx)
}

// testWipe: the algorithm and flag checks, then a zero wipe, and a trim
// where the type has it.
func testWipe(e *env) {
	def := e.started("wipe")
	vol := e.someVolume(def, "wp1", false)
	if !e.caps.has(WipeVol) {
		e.wantError(e.b.WipeVol(e.ctx, def, vol, domain.WipeZero, 0), "WipeVol in a type that cannot", domain.KindNoSupport)
		return
	}
	e.wantError(e.b.WipeVol(e.ctx, def, vol, domain.WipeZero, unknownFlag), "WipeVol with an unknown flag", domain.KindInvalidArg)
	if !e.caps.has(TrimVol) {
		e.wantError(e.b.WipeVol(e.ctx, def, vol, domain.WipeTrim, 0), "WipeVol with the trim algorithm", domain.KindArgumentUnsupported)
	}
	e.needData()
	if e.caps.has(UploadVol) {
		e.upload(def, vol, 1<<20, pattern(64<<10, 5))
	}
	if err := e.b.WipeVol(e.ctx, def, vol, domain.WipeZero, 0); err != nil {
		e.t.Fatalf("WipeVol = %v", err)
	}
	got := e.reread(def, vol)
	if got.Capacity != vol.Capacity {
		e.t.Errorf("a wipe changed the capacity from %d to %d", vol.Capacity, got.Capacity)
	}
	if e.caps.has(DownloadVol) {
		if data := e.download(def, vol, 0, 0, 0); uint64(len(data)) != vol.Capacity || !allZero(data) {
			e.t.Errorf("after a zero wipe the volume (%d bytes) is not all zeros", len(data))
		}
	}
	if !e.caps.has(TrimVol) {
		return
	}
	if e.caps.has(UploadVol) {
		e.upload(def, vol, 1<<20, pattern(64<<10, 9))
	}
	if err := e.b.WipeVol(e.ctx, def, vol, domain.WipeTrim, 0); err != nil {
		e.t.Fatalf("WipeVol with the trim algorithm = %v", err)
	}
	if e.caps.has(DownloadVol) {
		if data := e.download(def, vol, 0, 0, 0); uint64(len(data)) != vol.Capacity || !allZero(data) {
			e.t.Errorf("after a trim the volume (%d bytes) is not all zeros", len(data))
		}
	}
}

// testClone: BuildVolFrom copies the data, into a volume as large as its
// source or larger.
func testClone(e *env) {
	def := e.started("clone")
	size := e.caps.volumeSize()
	if !e.caps.has(CloneVol) {
		src := e.someVolume(def, "src", false)
		dst := e.volDef(def, "dst", size, 0)
		err := e.b.PrepareVol(def, dst)
		if err == nil {
			err = e.b.BuildVolFrom(e.ctx, def, dst, def, src, 0)
		}
		e.wantError(err, "cloning in a type that cannot", domain.KindNoSupport)
		return
	}
	e.needData()
	src := e.someVolume(def, "src", false)
	if e.caps.has(UploadVol) {
		e.upload(def, src, 1<<20, pattern(64<<10, 6))
	}
	want := e.download(def, src, 0, 0, 0)
	for _, c := range []struct {
		name     string
		capacity uint64
	}{{"same", src.Capacity}, {"larger", 2 * src.Capacity}} {
		dst := e.volDef(def, "dst-"+c.name, c.capacity, e.caps.lightAllocation(c.capacity))
		if err := e.b.PrepareVol(def, dst); err != nil {
			e.t.Fatalf("PrepareVol(%s) = %v", dst.Name, err)
		}
		if err := e.b.BuildVolFrom(e.ctx, def, dst, def, src, 0); err != nil {
			e.t.Fatalf("BuildVolFrom(%s) = %v", dst.Name, err)
		}
		dst = e.reread(def, dst)
		e.wantCapacity("a clone "+c.name, dst.Capacity, c.capacity)
		if got := e.download(def, dst, 0, uint64(len(want)), 0); !bytes.Equal(got, want) {
			e.t.Errorf("the %s clone's data: %s", c.name, firstDiff(got, want))
		}
	}
}

// testConcurrency: volumes made while the pool is refreshed, as the service
// allows (it holds no lock across a backend call); run with -race.
func testConcurrency(e *env) {
	if !e.caps.has(CreateVol) {
		e.t.Skip("declared by the harness: the type creates no volumes")
	}
	def := e.started("jobs")
	size := e.caps.volumeSize()
	const n = 4
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	createJob := func(i int) {
		vol := e.volDef(def, fmt.Sprintf("job%d", i), size, e.caps.lightAllocation(size))
		err := e.b.PrepareVol(def, vol)
		if err == nil {
			err = e.b.BuildVol(e.ctx, def, vol, 0)
		}
		if err == nil {
			err = e.b.RefreshVol(e.ctx, def, vol)
		}
		if err != nil {
			errs <- fmt.Errorf("creating %s: %w", vol.Name, err)
		}
	}
	if _, named := e.h.(VolumeNamer); named {
		// The system names each volume in the order they are made (disk:
		// the next partition number), so the creates take turns; the
		// refreshes still run alongside them.
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				createJob(i)
			}
		}()
	} else {
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				createJob(i)
			}()
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range n {
			if _, _, err := e.b.RefreshPool(e.ctx, def); err != nil {
				errs <- fmt.Errorf("RefreshPool during the creates: %w", err)
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		e.t.Error(err)
	}
	_, vols := e.refresh(def)
	for i := range n {
		if vols[e.volName(def, fmt.Sprintf("job%d", i))] == nil {
			e.t.Errorf("job%d is not listed after the concurrent creates", i)
		}
	}
}

// testCancellation: a cancelled context ends long calls with its error and
// leaves nothing half made; short calls may complete instead.
func testCancellation(e *env) {
	def := e.started("cancel")
	cctx := cancelledContext(e.ctx)
	if err := e.b.StopPool(e.ctx, def); err != nil {
		e.t.Fatalf("StopPool = %v", err)
	}
	if err := e.b.StartPool(cctx, def); err != nil {
		e.wantCancelled(err, "StartPool")
		if e.caps.Presence == PresentWhenStarted {
			e.wantCheck(def, false, "after a cancelled start")
		}
		if err := e.b.StartPool(e.ctx, def); err != nil {
			e.t.Fatalf("StartPool after a cancelled one = %v", err)
		}
	}
	size := e.caps.volumeSize()
	if e.caps.has(CreateVol) {
		vol := e.volDef(def, "cancelled", size, size)
		if err := e.b.PrepareVol(def, vol); err != nil {
			e.t.Fatalf("PrepareVol = %v", err)
		}
		if err := e.b.BuildVol(cctx, def, vol, 0); err != nil {
			e.wantCancelled(err, "BuildVol")
			e.wantListed(def, vol.Name, false, "after a cancelled BuildVol")
		}
	}
	e.needData()
	if e.caps.has(WipeVol) {
		// Fully allocated, so that the wipe has to write it all.
		vol := e.someVolume(def, "wipe", true)
		if e.caps.has(UploadVol) {
			e.upload(def, vol, 0, pattern(4096, 7))
		}
		e.wantCancelled(e.b.WipeVol(cctx, def, vol, domain.WipeZero, 0), "WipeVol")
	}
	if e.caps.has(CloneVol) {
		src := e.someVolume(def, "src", false)
		if e.caps.has(UploadVol) {
			e.upload(def, src, 1<<20, pattern(64<<10, 8))
		}
		dst := e.volDef(def, "dst", size, e.caps.lightAllocation(size))
		if err := e.b.PrepareVol(def, dst); err != nil {
			e.t.Fatalf("PrepareVol = %v", err)
		}
		e.wantCancelled(e.b.BuildVolFrom(cctx, def, dst, def, src, 0), "BuildVolFrom")
		e.wantListed(def, dst.Name, false, "after a cancelled BuildVolFrom")
	}
}
