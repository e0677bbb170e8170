package backende2e_test

import (
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// thinNS is the namespace of the thin pool extension (docs/logical-thin.md).
const thinNS = "http://virtstoraged-go.org/schemas/storagepool/thin/1.0"

// livePool is what the thin pool test reads of `virsh pool-dumpxml`.
type livePool struct {
	Capacity    uint64 `xml:"capacity"`
	Allocation  uint64 `xml:"allocation"`
	Available   uint64 `xml:"available"`
	Provisioned *struct {
		Unit  string `xml:"unit,attr"`
		Bytes uint64 `xml:",chardata"`
	} `xml:"http://virtstoraged-go.org/schemas/storagepool/thin/1.0 provisioned"`
}

func dumpPool(t *testing.T, d *testkit.Daemon, pool string) livePool {
	t.Helper()
	out := virshOK(t, d, "pool-dumpxml", pool)
	var p livePool
	if err := xml.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("pool-dumpxml %s: %v\n%s", pool, err, out)
	}
	return p
}

// lvRow is one LV of `lvs -o lv_name,lv_size,segtype,pool_lv,data_percent`.
type lvRow struct {
	Size                   uint64
	SegType, Pool, DataPct string
}

// lvsOf lists a VG's visible LVs with their size in bytes.
func lvsOf(t *testing.T, wrappers, vg string) map[string]lvRow {
	t.Helper()
	got := map[string]lvRow{}
	for _, r := range lvmReport(t, wrappers, "lvs", "--units", "b", "--nosuffix", "-o", "lv_name,lv_size,segtype,pool_lv,data_percent", vg) {
		if len(r) != 5 {
			t.Fatalf("lvs %s: malformed row %q", vg, r)
		}
		size, err := strconv.ParseUint(r[1], 10, 64)
		if err != nil {
			t.Fatalf("lvs %s: size %q: %v", vg, r[1], err)
		}
		got[r[0]] = lvRow{Size: size, SegType: r[2], Pool: r[3], DataPct: r[4]}
	}
	return got
}

// TestLogicalThinPool runs the thin pool extension (source name VG/THINPOOL)
// through virsh on a loop device. LVM cannot create thin pools or thin LVs
// without device-mapper, so those two steps (and a thin LV's removal) go
// through the metadata shim of lvmmeta_test.go; the VG, the pool's data and
// metadata extents, every listing and the thin pool's removal are real LVM.
// For the same reason lvs knows no data%: what the pool and its volumes use
// reads 0, and the test checks exactly that.
func TestLogicalThinPool(t *testing.T) {
	wrappers := useLVMWrappers(t)
	dev := loopDevice(t, 64<<20)
	vg := fmt.Sprintf("vse2ethin%d", os.Getpid())
	t.Cleanup(func() {
		_, _ = run(filepath.Join(wrappers, "vgremove"), "-f", vg)
		_, _ = run(filepath.Join(wrappers, "pvremove"), "-ff", "-y", dev)
	})
	d := startDaemon(t, testkit.DaemonOptions{})

	poolXML := fmt.Sprintf(`<pool type='logical'>
  <name>lvt</name>
  <source>
    <device path='%s'/>
    <name>%s/tp</name>
    <format type='lvm2'/>
  </source>
</pool>
`, dev, vg)
	xmlPath := filepath.Join(t.TempDir(), "lvt.xml")
	if err := os.WriteFile(xmlPath, []byte(poolXML), 0o644); err != nil {
		t.Fatal(err)
	}
	virshOK(t, d, "pool-define", xmlPath)
	virshOK(t, d, "pool-build", "lvt")
	lvs := lvsOf(t, wrappers, vg)
	tp, ok := lvs["tp"]
	if !ok || tp.SegType != "thin-pool" || len(lvs) != 1 {
		t.Fatalf("after pool-build, lvs %s = %v, want only the thin pool tp", vg, lvs)
	}
	// The thin pool takes what its 4 MiB metadata LV leaves of the VG.
	vgRows := lvmReport(t, wrappers, "vgs", "--units", "b", "--nosuffix", "-o", "vg_size,vg_free", vg)
	if len(vgRows) != 1 || vgRows[0][1] != "0" {
		t.Errorf("after pool-build, vgs %s = %v, want no free space left", vg, vgRows)
	} else if size, _ := strconv.ParseUint(vgRows[0][0], 10, 64); tp.Size != size-4<<20 {
		t.Errorf("thin pool data is %d bytes, want the VG's %d less the 4 MiB metadata LV", tp.Size, size)
	}

	virshOK(t, d, "pool-start", "lvt")
	p := dumpPool(t, d, "lvt")
	if p.Capacity != tp.Size || p.Allocation != 0 || p.Available != tp.Size {
		t.Errorf("fresh thin pool: capacity %d allocation %d available %d, want %d, 0, %d (the thin pool's data LV)", p.Capacity, p.Allocation, p.Available, tp.Size, tp.Size)
	}
	if p.Provisioned == nil || p.Provisioned.Bytes != 0 || p.Provisioned.Unit != "bytes" {
		t.Errorf("fresh thin pool: thin:provisioned %+v, want 0 bytes", p.Provisioned)
	}

	// Together 300 MiB, over five times the pool: thin volumes overcommit.
	virshOK(t, d, "vol-create-as", "lvt", "th1", "100M")
	virshOK(t, d, "vol-create-as", "lvt", "th2", "200M")
	lvs = lvsOf(t, wrappers, vg)
	for name, size := range map[string]uint64{"th1": 100 << 20, "th2": 200 << 20} {
		if r := lvs[name]; r.SegType != "thin" || r.Pool != "tp" || r.Size != size {
			t.Errorf("lvs %s/%s = %+v, want a thin LV of pool tp, %d bytes", vg, name, r, size)
		}
	}
	p = dumpPool(t, d, "lvt")
	if p.Provisioned == nil || p.Provisioned.Bytes != 300<<20 {
		t.Errorf("after two thin volumes, thin:provisioned %+v, want %d", p.Provisioned, 300<<20)
	}
	if p.Capacity != tp.Size || p.Allocation != 0 {
		t.Errorf("after two thin volumes: capacity %d allocation %d, want the thin pool's %d and 0 (no data%% without device-mapper)", p.Capacity, p.Allocation, tp.Size)
	}
	rows := volList(t, d, "lvt")
	want := volRow{Name: "th1", Path: "/dev/" + vg + "/th1", Type: "block", Capacity: "100.00 MiB", Allocation: "0.00 B"}
	if len(rows) != 2 || rows["th1"] != want || rows["th2"].Capacity != "200.00 MiB" {
		t.Errorf("vol-list --details = %v, want th1 %+v and th2 of 200.00 MiB", rows, want)
	}
	// A thin volume has no backing store.
	virshErr(t, d, []string{"error: unsupported configuration: backing store not supported for thin volumes of pool 'lvt'"},
		"vol-create-as", "lvt", "th3", "8M", "--backing-vol", "/dev/"+vg+"/th1", "--backing-vol-format", "raw")

	virshOK(t, d, "vol-delete", "th1", "--pool", "lvt")
	lvs = lvsOf(t, wrappers, vg)
	if _, ok := lvs["th1"]; ok || lvs["th2"].Size != 200<<20 {
		t.Errorf("after vol-delete th1, lvs %s = %v, want tp and th2", vg, lvs)
	}
	if p = dumpPool(t, d, "lvt"); p.Provisioned == nil || p.Provisioned.Bytes != 200<<20 {
		t.Errorf("after vol-delete th1, thin:provisioned %+v, want %d", p.Provisioned, 200<<20)
	}
	// The figure holds across a refresh, which re-reads lvs.
	virshOK(t, d, "pool-refresh", "lvt")
	if p = dumpPool(t, d, "lvt"); p.Provisioned == nil || p.Provisioned.Bytes != 200<<20 || p.Capacity != tp.Size {
		t.Errorf("after pool-refresh, capacity %d thin:provisioned %+v, want %d and %d", p.Capacity, p.Provisioned, tp.Size, 200<<20)
	}

	virshOK(t, d, "pool-destroy", "lvt")
	virshOK(t, d, "pool-delete", "lvt")
	// Deleting a thin pool removes the thin pool LV (and its thin LVs), not
	// the VG, which may hold other LVs.
	if got := lvNames(t, wrappers, vg); len(got) != 0 {
		t.Errorf("after pool-delete, lvs %s = %v, want none", vg, got)
	}
	if !vgExists(t, wrappers, vg) {
		t.Errorf("pool-delete of a thin pool removed the VG %s", vg)
	}
	virshOK(t, d, "pool-undefine", "lvt")
}
