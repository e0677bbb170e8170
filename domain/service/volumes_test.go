package service_test

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

func TestVolumeLifecycleAndLedger(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, 100*mib)
	s := f.svc
	h := f.startedPool(t, "p1", 1)

	vh, err := s.VolCreateXML(ctx, h, rawVol("v1", 10*mib), 0)
	must(t, err)
	equal(t, "vol handle", vh, domain.VolHandle{Pool: "p1", Name: "v1", Key: "/srv/p1/v1"})
	info, _ := s.PoolGetInfo(ctx, h)
	equal(t, "pool allocation", info.Allocation, uint64(10*mib))
	equal(t, "pool available", info.Available, uint64(90*mib))

	_, err = s.VolCreateXML(ctx, h, rawVol("v1", mib), 0)
	wantErr(t, err, "storage volume 'v1' exists already", domain.KindStorageVolExist)
	_, err = s.VolCreateXML(ctx, h, rawVol("big", 95*mib), 0)
	wantErr(t, err, "operation failed: Not enough space left in storage pool 'p1' for volume 'big' (needs 99614720 bytes, 94371840 available)", domain.KindOperationFailed)
	for _, c := range f.backend.Calls() {
		if c == "BuildVol p1/big" {
			t.Fatal("BuildVol ran for a volume that failed admission")
		}
	}
	// A qcow2 reserves only its metadata, so it fits.
	q := testkit.VolXML(&domain.VolDef{Name: "q", Capacity: 95 * mib, Target: domain.VolTarget{Format: "qcow2"}})
	_, err = s.VolCreateXML(ctx, h, q, 0)
	must(t, err)
	_, err = s.VolCreateXML(ctx, h, rawVol("a/b", mib), 0)
	wantErr(t, err, "Requested operation is not valid: volume name 'a/b' cannot contain '/'", domain.KindOperationInvalid)
	_, err = s.VolCreateXML(ctx, h, rawVol("r", mib), domain.VolCreateReflink)
	wantErr(t, err, "unsupported flags (0x2) in function storageVolCreateXML", domain.KindInvalidArg)

	// Clone.
	_, err = s.VolCreateXMLFrom(ctx, h, rawVol("v1", 0), vh, 0)
	wantErr(t, err, "internal error: storage volume name 'v1' already in use.", domain.KindInternal)
	ch, err := s.VolCreateXMLFrom(ctx, h, testkit.VolXML(&domain.VolDef{Name: "c1"}), vh, 0)
	must(t, err)
	vi, err := s.VolGetInfo(ctx, ch, 0)
	must(t, err)
	equal(t, "clone capacity from source", vi.Capacity, uint64(10*mib))

	info, _ = s.PoolGetInfo(ctx, h)
	equal(t, "pool allocation after clone", info.Allocation, uint64(20*mib+196608))

	// Lookups.
	got, err := s.VolLookupByKey(ctx, "/srv/p1/v1")
	must(t, err)
	equal(t, "by key", got, vh)
	got, err = s.VolLookupByPath(ctx, "/srv//p1/v1")
	must(t, err)
	equal(t, "by path", got, vh)
	_, err = s.VolLookupByPath(ctx, "/srv/p1/nope")
	wantErr(t, err, "Storage volume not found: no storage vol with matching path '/srv/p1/nope'", domain.KindNoStorageVol)
	_, err = s.VolLookupByKey(ctx, "nope")
	wantErr(t, err, "Storage volume not found: no storage vol with matching key nope", domain.KindNoStorageVol)
	_, err = s.VolLookupByName(ctx, h, "nope")
	wantErr(t, err, "Storage volume not found: no storage vol with matching name 'nope'", domain.KindNoStorageVol)
	ph, err := s.PoolLookupByVolume(ctx, vh)
	must(t, err)
	equal(t, "pool by volume", ph, h)
	path, err := s.VolGetPath(ctx, vh)
	must(t, err)
	equal(t, "path", path, "/srv/p1/v1")
	names, _ := s.PoolListVolumes(ctx, h, 10)
	equalSlice(t, "volumes", names, []string{"v1", "q", "c1"})
	n, _ := s.PoolNumOfVolumes(ctx, h)
	equal(t, "num volumes", n, 3)
	all, err := s.PoolListAllVolumes(ctx, h, 0)
	must(t, err)
	equal(t, "all volumes", len(all), 3)

	// Delete gives the allocation back.
	must(t, s.VolDelete(ctx, ch, 0))
	info, _ = s.PoolGetInfo(ctx, h)
	equal(t, "pool allocation after delete", info.Allocation, uint64(10*mib+196608))
	wantErr(t, s.VolDelete(ctx, ch, 0), "Storage volume not found: no storage vol with matching name 'c1'", domain.KindNoStorageVol)
	wantErr(t, s.VolDelete(ctx, vh, 1), "unsupported flags (0x1) in function virStorageBackendVolDeleteLocal", domain.KindInvalidArg)

	// The XML is re-read from the backend.
	x, err := s.VolGetXMLDesc(ctx, vh, 0)
	must(t, err)
	d, _ := testkit.DecodeVol(x)
	equal(t, "xml capacity", d.Capacity, uint64(10*mib))
	_, err = s.VolGetXMLDesc(ctx, vh, 1)
	wantErr(t, err, "unsupported flags (0x1) in function storageVolGetXMLDesc", domain.KindInvalidArg)
}

func TestVolResize(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name      string
		giveCap   uint64
		giveFlags uint32
		wantCap   uint64
		wantAlloc uint64
		wantPool  uint64 // pool allocation afterwards
		wantErr   string
		wantKind  domain.Kind
	}{
		{name: "grow", giveCap: 20 * mib, wantCap: 20 * mib, wantAlloc: 2 * mib, wantPool: 2 * mib},
		{name: "grow allocate", giveCap: 20 * mib, giveFlags: domain.VolResizeAllocate, wantCap: 20 * mib, wantAlloc: 20 * mib, wantPool: 20 * mib},
		{name: "delta allocate", giveCap: 5 * mib, giveFlags: domain.VolResizeAllocate | domain.VolResizeDelta, wantCap: 15 * mib, wantAlloc: 15 * mib, wantPool: 15 * mib},
		{name: "allocate too much", giveCap: 200 * mib, giveFlags: domain.VolResizeAllocate,
			wantErr: "operation failed: Not enough space left in storage pool", wantKind: domain.KindOperationFailed},
		{name: "shrink without flag", giveCap: 5 * mib,
			wantErr: "invalid argument: Can't shrink capacity below current capacity unless shrink flag explicitly specified", wantKind: domain.KindInvalidArg},
		{name: "shrink", giveCap: 5 * mib, giveFlags: domain.VolResizeShrink, wantCap: 5 * mib, wantAlloc: 2 * mib, wantPool: 2 * mib},
		{name: "shrink below allocation", giveCap: mib, giveFlags: domain.VolResizeShrink,
			wantErr: "invalid argument: can't shrink capacity below existing allocation", wantKind: domain.KindInvalidArg},
		{name: "bad flag", giveCap: 5 * mib, giveFlags: 8,
			wantErr: "unsupported flags (0x8) in function storageVolResize", wantKind: domain.KindInvalidArg},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, 100*mib)
			h := f.startedPool(t, "p1", 1)
			vol := &domain.VolDef{Name: "v", Capacity: 10 * mib, Allocation: 2 * mib, HasAllocation: true, Target: domain.VolTarget{Format: "raw"}}
			vh, err := f.svc.VolCreateXML(ctx, h, testkit.VolXML(vol), 0)
			must(t, err)
			err = f.svc.VolResize(ctx, vh, tt.giveCap, tt.giveFlags)
			if tt.wantErr != "" {
				wantErr(t, err, tt.wantErr, tt.wantKind)
				// The volume is released after a refusal.
				must(t, f.svc.VolResize(ctx, vh, 11*mib, 0))
				return
			}
			must(t, err)
			vi, err := f.svc.VolGetInfo(ctx, vh, 0)
			must(t, err)
			equal(t, "capacity", vi.Capacity, tt.wantCap)
			equal(t, "allocation", vi.Allocation, tt.wantAlloc)
			pi, _ := f.svc.PoolGetInfo(ctx, h)
			equal(t, "pool allocation", pi.Allocation, tt.wantPool)
		})
	}
}

func TestVolWipeInfoAndStreams(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, 100*mib)
	s := f.svc
	h := f.startedPool(t, "p1", 1)
	// As large as the upload below: no backend writes past a volume's end.
	vh, err := s.VolCreateXML(ctx, h, rawVol("v", 8192), 0)
	must(t, err)

	wantErr(t, s.VolWipe(ctx, vh, 10, 0), "invalid argument: wiping algorithm 10 not supported", domain.KindInvalidArg)
	wantErr(t, s.VolWipe(ctx, vh, 0, 1), "unsupported flags (0x1) in function storageVolWipePattern", domain.KindInvalidArg)
	must(t, s.VolWipe(ctx, vh, domain.WipeZero, 0))
	_, err = s.VolGetInfo(ctx, vh, 2)
	wantErr(t, err, "unsupported flags (0x2) in function storageVolGetInfoFlags", domain.KindInvalidArg)

	f.sink.Reset()
	w, err := s.VolUpload(ctx, vh, 0, 0, 0)
	must(t, err)
	// The volume is busy while the upload runs.
	wantErr(t, s.VolDelete(ctx, vh, 0), "Requested operation is not valid: volume 'v' is still in use.", domain.KindOperationInvalid)
	_, err = s.VolDownload(ctx, vh, 0, 0, 0)
	wantErr(t, err, "Requested operation is not valid: volume 'v' is still in use.", domain.KindOperationInvalid)
	_, err = w.Write(make([]byte, 8192))
	must(t, err)
	must(t, w.Finish(ctx))
	equalSlice(t, "events", f.sink.Events(), []string{"p1:refresh"})
	vi, err := s.VolGetInfo(ctx, vh, domain.VolGetPhysical)
	must(t, err)
	equal(t, "physical after upload", vi.Allocation, uint64(8192))

	_, err = s.VolUpload(ctx, vh, 1<<40, 0, 0)
	wantErr(t, err, "invalid argument: offset 1099511627776 is beyond the end of volume 'v' (8192 bytes)", domain.KindInvalidArg)
	_, err = s.VolUpload(ctx, vh, 10, ^uint64(0), 0)
	wantErr(t, err, "invalid argument: offset 10 + length 18446744073709551615 overflows", domain.KindInvalidArg)
	_, err = s.VolUpload(ctx, vh, 0, 0, 2)
	wantErr(t, err, "unsupported flags (0x2) in function storageVolUpload", domain.KindInvalidArg)

	// An aborted upload releases the volume too.
	w, err = s.VolUpload(ctx, vh, 0, 0, domain.StreamSparse)
	must(t, err)
	w.Abort()

	// Downloads share the volume; a clone may read it at the same time.
	r1, err := s.VolDownload(ctx, vh, 0, 100, 0)
	must(t, err)
	r2, err := s.VolDownload(ctx, vh, 0, 0, 0)
	must(t, err)
	wantErr(t, s.VolWipe(ctx, vh, 0, 0), "Requested operation is not valid: volume 'v' is still in use.", domain.KindOperationInvalid)
	_, err = s.VolCreateXMLFrom(ctx, h, testkit.VolXML(&domain.VolDef{Name: "copy"}), vh, 0)
	must(t, err)
	total := 0
	buf := make([]byte, 64)
	for {
		n, _, err := r1.Next(buf)
		if errors.Is(err, io.EOF) {
			break
		}
		must(t, err)
		total += n
	}
	equal(t, "downloaded", total, 100)
	must(t, r1.Close())
	must(t, r2.Close())
	must(t, s.VolDelete(ctx, vh, 0))
}
