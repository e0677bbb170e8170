package lvmlab_test

import (
	"encoding/xml"
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/lab"
	"github.com/virtstoraged-go/virtstoraged/internal/labe2e/labkit"
)

// thinPoolUse is what LVM says of a thin pool: its data size and the bytes
// of it in use (data_percent of it, as our pool reports).
func thinPoolUse(t *testing.T, vg, tp string) (size, used uint64) {
	t.Helper()
	for _, r := range labkit.LVM(t, "lvs", "-o", "lv_name,lv_size,data_percent", vg) {
		if r[0] != tp {
			continue
		}
		size, err := strconv.ParseUint(r[1], 10, 64)
		if err != nil {
			t.Fatalf("lvs: size %q", r[1])
		}
		pct, err := strconv.ParseFloat(r[2], 64)
		if err != nil {
			t.Fatalf("lvs: data_percent %q", r[2])
		}
		return size, uint64(float64(size) * pct / 100)
	}
	t.Fatalf("lvs: no thin pool %s/%s", vg, tp)
	return 0, 0
}

// thinPoolXML is what the test reads of a thin pool's live XML.
type thinPoolXML struct {
	Capacity    uint64 `xml:"capacity"`
	Allocation  uint64 `xml:"allocation"`
	Provisioned uint64 `xml:"http://virtstoraged-go.org/schemas/storagepool/thin/1.0 provisioned"`
}

// TestLogicalThinPool runs the thin-pool extension (docs/logical-thin.md) on
// real LVM thin provisioning, through go-libvirt: three 1 GiB volumes on a
// 1 GiB disk (overcommit, shown as provisioned above capacity); writes
// charge the pool's allocation as LVM measures it, deletes give it back; the
// pool's delete removes the thin pool, not the VG.
func TestLogicalThinPool(t *testing.T) {
	lab.Require(t)
	disk := lab.Disk(t)
	d := labkit.StartDaemon(t)
	l := labkit.DialGoLibvirt(t, d)
	const vg, tp = "labthin", "tp"
	t.Cleanup(func() { lab.Try("vgremove", "-f", vg) })

	pool, err := l.StoragePoolDefineXML(fmt.Sprintf(`<pool type='logical'><name>thin</name>
  <source><name>%s/%s</name><device path='%s'/></source></pool>`, vg, tp, disk), 0)
	if err != nil {
		t.Fatalf("StoragePoolDefineXML: %v", err)
	}
	if err := l.StoragePoolBuild(pool, 0); err != nil {
		t.Fatalf("StoragePoolBuild: %v", err)
	}
	if err := l.StoragePoolCreate(pool, 0); err != nil {
		t.Fatalf("StoragePoolCreate: %v", err)
	}
	size, _ := thinPoolUse(t, vg, tp)
	_, capacity, _, _, err := l.StoragePoolGetInfo(pool)
	if err != nil || capacity != size {
		t.Fatalf("StoragePoolGetInfo: capacity %d, %v; LVM's thin pool has %d", capacity, err, size)
	}

	const gib = 1 << 30
	var vols []string
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("tv%d", i)
		if _, err := l.StorageVolCreateXML(pool, fmt.Sprintf("<volume><name>%s</name><capacity unit='G'>1</capacity></volume>", name), 0); err != nil {
			t.Fatalf("StorageVolCreateXML %s (overcommitted %d of %d bytes): %v", name, i*gib, size, err)
		}
		vols = append(vols, name)
	}
	poolXML := func() thinPoolXML {
		t.Helper()
		s, err := l.StoragePoolGetXMLDesc(pool, 0)
		if err != nil {
			t.Fatalf("StoragePoolGetXMLDesc: %v", err)
		}
		var x thinPoolXML
		if err := xml.Unmarshal([]byte(s), &x); err != nil {
			t.Fatalf("pool XML: %v\n%s", err, s)
		}
		return x
	}
	if x := poolXML(); x.Provisioned != 3*gib || x.Provisioned <= x.Capacity {
		t.Errorf("pool XML: provisioned %d, capacity %d; want 3 GiB provisioned, above capacity", x.Provisioned, x.Capacity)
	}

	// Write 32 MiB into tv1: the pool's allocation is what LVM says is used.
	tv1, err := l.StorageVolLookupByName(pool, "tv1")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.Open(labkit.Patterned(t, 32*labkit.MiB, 4))
	if err != nil {
		t.Fatal(err)
	}
	defer data.Close()
	if err := l.StorageVolUpload(tv1, data, 0, 32*labkit.MiB, 0); err != nil {
		t.Fatalf("StorageVolUpload: %v", err)
	}
	if err := l.StoragePoolRefresh(pool, 0); err != nil {
		t.Fatalf("StoragePoolRefresh: %v", err)
	}
	// LVM reports use as a percentage with two decimals: a figure derived
	// from it is within a ten-thousandth of the size, plus a 64 KiB chunk,
	// of what was written.
	near := func(got, want, of uint64) bool {
		tol := of/10000 + 64<<10
		return got+tol >= want && got <= want+tol
	}
	_, used := thinPoolUse(t, vg, tp)
	_, _, alloc, avail, err := l.StoragePoolGetInfo(pool)
	if err != nil || alloc != used || avail != size-used || !near(used, 32*labkit.MiB, size) {
		t.Errorf("after writing 32 MiB: pool allocation %d available %d (%v); LVM says %d of %d used", alloc, avail, err, used, size)
	}
	_, volCap, volAlloc, err := l.StorageVolGetInfo(tv1)
	if err != nil || volCap != gib || !near(volAlloc, 32*labkit.MiB, gib) {
		t.Errorf("StorageVolGetInfo tv1 = capacity %d allocation %d (%v); want 1 GiB and the 32 MiB written", volCap, volAlloc, err)
	}

	// Deleting the written volume gives its space back.
	if err := l.StorageVolDelete(tv1, 0); err != nil {
		t.Fatalf("StorageVolDelete: %v", err)
	}
	if x := poolXML(); x.Provisioned != 2*gib {
		t.Errorf("after the delete, provisioned %d, want 2 GiB", x.Provisioned)
	}
	if err := l.StoragePoolRefresh(pool, 0); err != nil {
		t.Fatalf("StoragePoolRefresh: %v", err)
	}
	_, used = thinPoolUse(t, vg, tp)
	if _, _, alloc, _, _ := l.StoragePoolGetInfo(pool); alloc != used || used >= 32*labkit.MiB {
		t.Errorf("after deleting tv1: allocation %d, LVM says %d used; want below the 32 MiB written", alloc, used)
	}

	if err := l.StoragePoolDestroy(pool); err != nil {
		t.Fatalf("StoragePoolDestroy: %v", err)
	}
	if err := l.StoragePoolDelete(pool, 0); err != nil {
		t.Fatalf("StoragePoolDelete: %v", err)
	}
	rows := labkit.LVM(t, "lvs", "-o", "lv_name", vg)
	if len(rows) != 0 {
		t.Errorf("after the pool's delete, %s still has LVs %v", vg, rows)
	}
	if len(labkit.LVM(t, "vgs", "-o", "vg_name", vg)) != 1 {
		t.Errorf("the pool's delete removed VG %s, which the thin pool only lives in", vg)
	}
	if err := l.StoragePoolUndefine(pool); err != nil {
		t.Fatalf("StoragePoolUndefine: %v", err)
	}
}
