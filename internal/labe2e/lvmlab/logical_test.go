package lvmlab_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/lab"
	"github.com/virtstoraged-go/virtstoraged/internal/labe2e/labkit"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// TestLogicalPool takes a logical pool through its life on two fresh disks
// with real LVM and device-mapper, as a user would with virsh: the VG is
// built, started, measured; LVs are created, written, read, wiped, resized,
// cloned and snapshotted, with their data checked on the device node; an LV
// made behind the daemon's back shows up on refresh; and the pool is torn
// down until LVM no longer knows it.
func TestLogicalPool(t *testing.T) {
	lab.Require(t)
	devA, devB := lab.Disk(t), lab.Disk(t)
	d := labkit.StartDaemon(t)
	const vg = "labvg"
	dev := func(lv string) string { return "/dev/" + vg + "/" + lv }

	out := testkit.VirshOK(t, d, "find-storage-pool-sources", "logical")
	if strings.Contains(out, vg) {
		t.Fatalf("find-storage-pool-sources lists %s before any build:\n%s", vg, out)
	}
	poolXML := labkit.WriteTemp(t, "lvp.xml", fmt.Sprintf(`<pool type='logical'>
  <name>lvp</name>
  <source>
    <device path='%s'/>
    <device path='%s'/>
    <name>%s</name>
    <format type='lvm2'/>
  </source>
  <target><path>/dev/%s</path></target>
</pool>`, devA, devB, vg, vg))
	testkit.VirshOK(t, d, "pool-define", poolXML)
	testkit.VirshOK(t, d, "pool-build", "lvp")
	t.Cleanup(func() {
		// A failed test leaves no VG for the next one to trip on.
		lab.Try("vgremove", "-f", vg)
	})
	pvs := map[string]string{}
	for _, r := range labkit.LVM(t, "pvs", "-o", "pv_name,vg_name") {
		pvs[r[0]] = r[1]
	}
	if pvs[devA] != vg || pvs[devB] != vg {
		t.Fatalf("after pool-build, pvs shows %v; want %s and %s in %s", pvs, devA, devB, vg)
	}
	found := testkit.VirshOK(t, d, "find-storage-pool-sources", "logical")
	for _, want := range []string{"<name>" + vg + "</name>", "<device path='" + devA + "'/>", "<device path='" + devB + "'/>", "<format type='lvm2'/>"} {
		if !strings.Contains(found, want) {
			t.Errorf("find-storage-pool-sources logical lacks %s:\n%s", want, found)
		}
	}

	testkit.VirshOK(t, d, "pool-start", "lvp")
	vgRow := labkit.LVM(t, "vgs", "-o", "vg_size,vg_free", vg)[0]
	info := testkit.VirshInfo(t, d, "pool-info", "--bytes", "lvp")
	if info["State"] != "running" || info["Capacity"] != vgRow[0] || info["Available"] != vgRow[1] {
		t.Errorf("pool-info: state %q capacity %q available %q; vgs says size %s free %s",
			info["State"], info["Capacity"], info["Available"], vgRow[0], vgRow[1])
	}

	// A linear LV, written and read back through the daemon and checked on
	// the device itself.
	testkit.VirshOK(t, d, "vol-create-as", "lvp", "lv1", "8M")
	if got := labkit.LVSize(t, vg, "lv1"); got != 8*labkit.MiB || !labkit.IsBlockDevice(dev("lv1")) {
		t.Fatalf("after vol-create-as: lvs size %d, %s a block device: %v; want 8 MiB and a node", got, dev("lv1"), labkit.IsBlockDevice(dev("lv1")))
	}
	vi := testkit.VirshInfo(t, d, "vol-info", "--bytes", "--pool", "lvp", "lv1")
	if vi["Type"] != "block" || vi["Capacity"] != "8388608 bytes" || vi["Allocation"] != "8388608 bytes" {
		t.Errorf("vol-info lv1 = %v; want a block volume of 8 MiB", vi)
	}
	data := labkit.Patterned(t, 8*labkit.MiB, 1)
	testkit.VirshOK(t, d, "vol-upload", "--pool", "lvp", "lv1", data)
	if labkit.Sum(t, dev("lv1"), 8*labkit.MiB) != labkit.Sum(t, data, -1) {
		t.Fatal("after vol-upload the LV does not hold the uploaded data")
	}
	back := filepath.Join(t.TempDir(), "back")
	testkit.VirshOK(t, d, "vol-download", "--pool", "lvp", "lv1", back)
	if labkit.Sum(t, back, -1) != labkit.Sum(t, data, -1) {
		t.Error("vol-download does not give back what was uploaded")
	}
	part := labkit.Patterned(t, labkit.MiB, 2)
	testkit.VirshOK(t, d, "vol-upload", "--pool", "lvp", "--offset", strconv.Itoa(3*labkit.MiB), "--length", strconv.Itoa(labkit.MiB), "lv1", part)
	if labkit.Sum(t, dev("lv1"), 3*labkit.MiB) != labkit.Sum(t, data, 3*labkit.MiB) {
		t.Error("an upload at 3 MiB changed what is before it")
	}
	testkit.VirshOK(t, d, "vol-download", "--pool", "lvp", "--offset", strconv.Itoa(3*labkit.MiB), "--length", strconv.Itoa(labkit.MiB), "lv1", back)
	if labkit.Sum(t, back, -1) != labkit.Sum(t, part, -1) {
		t.Error("a download of the uploaded MiB at 3 MiB differs from it")
	}

	// The XML shows what libvirt reads from the device node.
	x := labkit.DumpVol(t, d, "lvp", "lv1")
	if x.Capacity != 8*labkit.MiB || x.Physical == nil || x.Physical.Value != 8*labkit.MiB {
		t.Errorf("vol-dumpxml lv1: capacity %d, physical %v; want 8 MiB both", x.Capacity, x.Physical)
	}
	labkit.CheckNodeFacts(t, "vol-dumpxml lv1", &x.Target)

	// Clone LV -> LV (virsh sends the source's XML, key included).
	testkit.VirshOK(t, d, "vol-clone", "--pool", "lvp", "lv1", "lv2")
	if labkit.Sum(t, dev("lv2"), 8*labkit.MiB) != labkit.Sum(t, dev("lv1"), 8*labkit.MiB) {
		t.Error("vol-clone lv1 lv2: the clone's data differs")
	}
	if k1, k2 := labkit.DumpVol(t, d, "lvp", "lv1").Key, labkit.DumpVol(t, d, "lvp", "lv2").Key; k1 == k2 || k2 == "" {
		t.Errorf("keys of lv1 and its clone: %q and %q; want two LV UUIDs", k1, k2)
	}

	// Snapshot of lv1: same data at creation; its backing store is lv1,
	// described from lv1's node.
	testkit.VirshOK(t, d, "vol-create-as", "lvp", "snap1", "4M", "--backing-vol", dev("lv1"))
	if labkit.Sum(t, dev("snap1"), 8*labkit.MiB) != labkit.Sum(t, dev("lv1"), 8*labkit.MiB) {
		t.Error("snapshot snap1 does not read as lv1 did")
	}
	s := labkit.DumpVol(t, d, "lvp", "snap1")
	if s.Backing == nil || s.Backing.Path != dev("lv1") {
		t.Errorf("vol-dumpxml snap1: backing store %+v; want %s", s.Backing, dev("lv1"))
	} else {
		labkit.CheckNodeFacts(t, "vol-dumpxml snap1's backing store", s.Backing)
	}
	if s.Capacity != 8*labkit.MiB {
		t.Errorf("vol-dumpxml snap1: capacity %d, want its origin's 8 MiB", s.Capacity)
	}
	testkit.VirshOK(t, d, "vol-delete", "--pool", "lvp", "snap1")

	// Wipes: zeroes, then a scrub algorithm whose last pass is a known
	// byte (bsi: nine passes ending with 0x7f).
	testkit.VirshOK(t, d, "vol-wipe", "--pool", "lvp", "lv2")
	if off, b := labkit.FirstOther(t, dev("lv2"), 8*labkit.MiB, 0); off >= 0 {
		t.Errorf("vol-wipe lv2 left %#x at %d", b, off)
	}
	testkit.VirshOK(t, d, "vol-wipe", "--pool", "lvp", "--algorithm", "bsi", "lv2")
	wiped, err := os.ReadFile(dev("lv2"))
	if err != nil {
		t.Fatal(err)
	}
	// scrub marks what it wiped with a signature at the start.
	const scrubSignature = "\x01\x02\x03SCRUBBED!\x00"
	if !strings.HasPrefix(string(wiped), scrubSignature) || strings.Trim(string(wiped[len(scrubSignature):]), "\x7f") != "" || len(wiped) != 8*labkit.MiB {
		t.Errorf("vol-wipe --algorithm bsi lv2 left %q..., want scrub's signature and then 0x7f everywhere", wiped[:32])
	}

	// Resize: grow keeps the data; a shrink needs --shrink.
	before := labkit.Sum(t, dev("lv1"), 8*labkit.MiB)
	testkit.VirshOK(t, d, "vol-resize", "--pool", "lvp", "lv1", "16M")
	if got := labkit.LVSize(t, vg, "lv1"); got != 16*labkit.MiB {
		t.Errorf("after vol-resize 16M: lvs size %d", got)
	}
	if vi := testkit.VirshInfo(t, d, "vol-info", "--bytes", "--pool", "lvp", "lv1"); vi["Capacity"] != "16777216 bytes" {
		t.Errorf("vol-info after the grow: %v", vi)
	}
	if labkit.Sum(t, dev("lv1"), 8*labkit.MiB) != before {
		t.Error("growing lv1 changed its first 8 MiB")
	}
	testkit.VirshErr(t, d, []string{"Can't shrink capacity below current capacity unless shrink flag explicitly specified"},
		"vol-resize", "--pool", "lvp", "lv1", "8M")
	testkit.VirshOK(t, d, "vol-resize", "--pool", "lvp", "--shrink", "lv1", "8M")
	if got := labkit.LVSize(t, vg, "lv1"); got != 8*labkit.MiB || labkit.Sum(t, dev("lv1"), 8*labkit.MiB) != before {
		t.Errorf("after vol-resize --shrink 8M: lvs size %d (want 8 MiB), data kept: %v", got, labkit.Sum(t, dev("lv1"), 8*labkit.MiB) == before)
	}

	// Clone file -> LV, raw and qcow2 (qemu-img convert), from a dir pool.
	dir := t.TempDir()
	testkit.VirshOK(t, d, "pool-create-as", "files", "dir", "--target", dir)
	raw := labkit.Patterned(t, 8*labkit.MiB, 3)
	testkit.VirshOK(t, d, "vol-create-as", "files", "f.raw", "8M", "--format", "raw")
	testkit.VirshOK(t, d, "vol-upload", "--pool", "files", "f.raw", raw)
	lab.Run(t, "qemu-img", "convert", "-O", "qcow2", raw, filepath.Join(dir, "f.qcow2"))
	testkit.VirshOK(t, d, "pool-refresh", "files")
	newVol := labkit.WriteTemp(t, "nv.xml", "<volume><name>fromraw</name><capacity unit='M'>8</capacity></volume>")
	testkit.VirshOK(t, d, "vol-create-from", "lvp", newVol, "--inputpool", "files", "f.raw")
	newVol = labkit.WriteTemp(t, "nv.xml", "<volume><name>fromqcow2</name><capacity unit='M'>8</capacity></volume>")
	testkit.VirshOK(t, d, "vol-create-from", "lvp", newVol, "--inputpool", "files", "f.qcow2")
	for _, lv := range []string{"fromraw", "fromqcow2"} {
		if labkit.Sum(t, dev(lv), 8*labkit.MiB) != labkit.Sum(t, raw, -1) {
			t.Errorf("vol-create-from into %s: the LV does not hold the file's data", lv)
		}
	}
	testkit.VirshOK(t, d, "pool-destroy", "files")

	// An LV made behind the daemon's back appears on refresh.
	lab.Run(t, "lvcreate", "--yes", "-L", "8M", "-n", "outside", vg)
	if _, ok := testkit.VolList(t, d, "lvp")["outside"]; ok {
		t.Log("the pool listed the LV before any refresh")
	}
	testkit.VirshOK(t, d, "pool-refresh", "lvp")
	row, ok := testkit.VolList(t, d, "lvp")["outside"]
	if !ok || row.Path != dev("outside") {
		t.Errorf("after pool-refresh, vol-list row of the LV made behind the daemon: %+v, %v", row, ok)
	}
	testkit.VirshOK(t, d, "vol-delete", "--pool", "lvp", "outside")
	if labkit.LVSize(t, vg, "outside") != -1 {
		t.Error("vol-delete outside: LVM still has the LV")
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range testkit.VolList(t, d, "lvp") {
			if !yield(n) {
				return
			}
		}
	})
	if want := []string{"fromqcow2", "fromraw", "lv1", "lv2"}; !slices.Equal(names, want) {
		t.Errorf("vol-list: %q, want %q", names, want)
	}

	// Tear down: stop deactivates, delete removes the VG and the PV labels.
	testkit.VirshOK(t, d, "pool-destroy", "lvp")
	if labkit.IsBlockDevice(dev("lv1")) {
		t.Error("after pool-destroy /dev/labvg/lv1 is still there")
	}
	testkit.VirshOK(t, d, "pool-delete", "lvp")
	for _, r := range labkit.LVM(t, "pvs", "-o", "pv_name,vg_name") {
		if r[0] == devA || r[0] == devB {
			t.Errorf("after pool-delete, pvs still lists %v", r)
		}
	}
	if _, err := os.Stat("/dev/" + vg); err == nil {
		t.Error("after pool-delete /dev/labvg exists")
	}
	testkit.VirshOK(t, d, "pool-undefine", "lvp")
}
