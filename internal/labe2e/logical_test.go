package labe2e_test

import (
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/internal/lab"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

const mib = 1 << 20

// lvm runs an LVM reporting command and returns its rows split on '|'.
func lvm(t *testing.T, args ...string) [][]string {
	t.Helper()
	args = append(args, "--noheadings", "--separator", "|", "--units", "b", "--nosuffix")
	var rows [][]string
	for _, line := range strings.Split(lab.Run(t, args[0], args[1:]...), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			rows = append(rows, strings.Split(line, "|"))
		}
	}
	return rows
}

// lvSize is an LV's size in bytes, or -1 when LVM does not know the LV.
func lvSize(t *testing.T, vg, lv string) int64 {
	t.Helper()
	for _, r := range lvm(t, "lvs", "-o", "lv_name,lv_size", vg) {
		if r[0] == lv {
			n, err := strconv.ParseInt(r[1], 10, 64)
			if err != nil {
				t.Fatalf("lvs: size %q", r[1])
			}
			return n
		}
	}
	return -1
}

// isBlockDevice reports whether path is (a link to) a block device node.
func isBlockDevice(path string) bool {
	var st unix.Stat_t
	return unix.Stat(path, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFBLK
}

// volXML is what the tests read from vol-dumpxml.
type volXML struct {
	Name     string `xml:"name"`
	Key      string `xml:"key"`
	Capacity uint64 `xml:"capacity"`
	Alloc    uint64 `xml:"allocation"`
	Physical *struct {
		Value uint64 `xml:",chardata"`
	} `xml:"physical"`
	Target  volTargetXML  `xml:"target"`
	Backing *volTargetXML `xml:"backingStore"`
}

type volTargetXML struct {
	Path  string `xml:"path"`
	Perms *struct {
		Mode  string `xml:"mode"`
		Owner string `xml:"owner"`
		Group string `xml:"group"`
	} `xml:"permissions"`
	Timestamps *struct {
		Atime string `xml:"atime"`
		Mtime string `xml:"mtime"`
		Ctime string `xml:"ctime"`
	} `xml:"timestamps"`
}

func dumpVol(t *testing.T, d testkit.Virsher, pool, vol string) volXML {
	t.Helper()
	out := testkit.VirshOK(t, d, "vol-dumpxml", "--pool", pool, vol)
	var v volXML
	if err := xml.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("vol-dumpxml %s: %v\n%s", vol, err, out)
	}
	return v
}

// checkNodeFacts checks what libvirt reads from a volume's device node
// (virStorageBackendUpdateVolTargetInfo): its owner, group and mode, and its
// times, against a stat of the node; what is checks a backing store.
func checkNodeFacts(t *testing.T, what string, tg *volTargetXML) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(tg.Path, &st); err != nil {
		t.Fatalf("%s: stat %s: %v", what, tg.Path, err)
	}
	if tg.Perms == nil {
		t.Errorf("%s %s: no <permissions>", what, tg.Path)
	} else {
		want := [3]string{fmt.Sprintf("0%o", st.Mode&0o777), strconv.Itoa(int(st.Uid)), strconv.Itoa(int(st.Gid))}
		if got := [3]string{tg.Perms.Mode, tg.Perms.Owner, tg.Perms.Group}; got != want {
			t.Errorf("%s %s: permissions (mode, owner, group) %q, the node has %q", what, tg.Path, got, want)
		}
	}
	if tg.Timestamps == nil {
		t.Errorf("%s %s: no <timestamps>", what, tg.Path)
	} else if sec, _, _ := strings.Cut(tg.Timestamps.Mtime, "."); sec != strconv.FormatInt(st.Mtim.Sec, 10) {
		t.Errorf("%s %s: mtime %s, the node's is %d", what, tg.Path, tg.Timestamps.Mtime, st.Mtim.Sec)
	}
}

// TestLogicalPool takes a logical pool through its life on two fresh disks
// with real LVM and device-mapper, as a user would with virsh: the VG is
// built, started, measured; LVs are created, written, read, wiped, resized,
// cloned and snapshotted, with their data checked on the device node; an LV
// made behind the daemon's back shows up on refresh; and the pool is torn
// down until LVM no longer knows it.
func TestLogicalPool(t *testing.T) {
	lab.Require(t)
	devA, devB := lab.Disk(t), lab.Disk(t)
	d := startDaemon(t)
	const vg = "labvg"
	dev := func(lv string) string { return "/dev/" + vg + "/" + lv }

	out := testkit.VirshOK(t, d, "find-storage-pool-sources", "logical")
	if strings.Contains(out, vg) {
		t.Fatalf("find-storage-pool-sources lists %s before any build:\n%s", vg, out)
	}
	poolXML := writeTemp(t, "lvp.xml", fmt.Sprintf(`<pool type='logical'>
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
	for _, r := range lvm(t, "pvs", "-o", "pv_name,vg_name") {
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
	vgRow := lvm(t, "vgs", "-o", "vg_size,vg_free", vg)[0]
	info := testkit.VirshInfo(t, d, "pool-info", "--bytes", "lvp")
	if info["State"] != "running" || info["Capacity"] != vgRow[0] || info["Available"] != vgRow[1] {
		t.Errorf("pool-info: state %q capacity %q available %q; vgs says size %s free %s",
			info["State"], info["Capacity"], info["Available"], vgRow[0], vgRow[1])
	}

	// A linear LV, written and read back through the daemon and checked on
	// the device itself.
	testkit.VirshOK(t, d, "vol-create-as", "lvp", "lv1", "8M")
	if got := lvSize(t, vg, "lv1"); got != 8*mib || !isBlockDevice(dev("lv1")) {
		t.Fatalf("after vol-create-as: lvs size %d, %s a block device: %v; want 8 MiB and a node", got, dev("lv1"), isBlockDevice(dev("lv1")))
	}
	vi := testkit.VirshInfo(t, d, "vol-info", "--bytes", "--pool", "lvp", "lv1")
	if vi["Type"] != "block" || vi["Capacity"] != "8388608 bytes" || vi["Allocation"] != "8388608 bytes" {
		t.Errorf("vol-info lv1 = %v; want a block volume of 8 MiB", vi)
	}
	data := patterned(t, 8*mib, 1)
	testkit.VirshOK(t, d, "vol-upload", "--pool", "lvp", "lv1", data)
	if sum(t, dev("lv1"), 8*mib) != sum(t, data, -1) {
		t.Fatal("after vol-upload the LV does not hold the uploaded data")
	}
	back := filepath.Join(t.TempDir(), "back")
	testkit.VirshOK(t, d, "vol-download", "--pool", "lvp", "lv1", back)
	if sum(t, back, -1) != sum(t, data, -1) {
		t.Error("vol-download does not give back what was uploaded")
	}
	part := patterned(t, mib, 2)
	testkit.VirshOK(t, d, "vol-upload", "--pool", "lvp", "--offset", strconv.Itoa(3*mib), "--length", strconv.Itoa(mib), "lv1", part)
	if sum(t, dev("lv1"), 3*mib) != sum(t, data, 3*mib) {
		t.Error("an upload at 3 MiB changed what is before it")
	}
	testkit.VirshOK(t, d, "vol-download", "--pool", "lvp", "--offset", strconv.Itoa(3*mib), "--length", strconv.Itoa(mib), "lv1", back)
	if sum(t, back, -1) != sum(t, part, -1) {
		t.Error("a download of the uploaded MiB at 3 MiB differs from it")
	}

	// The XML shows what libvirt reads from the device node.
	x := dumpVol(t, d, "lvp", "lv1")
	if x.Capacity != 8*mib || x.Physical == nil || x.Physical.Value != 8*mib {
		t.Errorf("vol-dumpxml lv1: capacity %d, physical %v; want 8 MiB both", x.Capacity, x.Physical)
	}
	checkNodeFacts(t, "vol-dumpxml lv1", &x.Target)

	// Clone LV -> LV (virsh sends the source's XML, key included).
	testkit.VirshOK(t, d, "vol-clone", "--pool", "lvp", "lv1", "lv2")
	if sum(t, dev("lv2"), 8*mib) != sum(t, dev("lv1"), 8*mib) {
		t.Error("vol-clone lv1 lv2: the clone's data differs")
	}
	if k1, k2 := dumpVol(t, d, "lvp", "lv1").Key, dumpVol(t, d, "lvp", "lv2").Key; k1 == k2 || k2 == "" {
		t.Errorf("keys of lv1 and its clone: %q and %q; want two LV UUIDs", k1, k2)
	}

	// Snapshot of lv1: same data at creation; its backing store is lv1,
	// described from lv1's node.
	testkit.VirshOK(t, d, "vol-create-as", "lvp", "snap1", "4M", "--backing-vol", dev("lv1"))
	if sum(t, dev("snap1"), 8*mib) != sum(t, dev("lv1"), 8*mib) {
		t.Error("snapshot snap1 does not read as lv1 did")
	}
	s := dumpVol(t, d, "lvp", "snap1")
	if s.Backing == nil || s.Backing.Path != dev("lv1") {
		t.Errorf("vol-dumpxml snap1: backing store %+v; want %s", s.Backing, dev("lv1"))
	} else {
		checkNodeFacts(t, "vol-dumpxml snap1's backing store", s.Backing)
	}
	if s.Capacity != 8*mib {
		t.Errorf("vol-dumpxml snap1: capacity %d, want its origin's 8 MiB", s.Capacity)
	}
	testkit.VirshOK(t, d, "vol-delete", "--pool", "lvp", "snap1")

	// Wipes: zeroes, then a scrub algorithm whose last pass is a known
	// byte (bsi: nine passes ending with 0x7f).
	testkit.VirshOK(t, d, "vol-wipe", "--pool", "lvp", "lv2")
	if off, b := firstOther(t, dev("lv2"), 8*mib, 0); off >= 0 {
		t.Errorf("vol-wipe lv2 left %#x at %d", b, off)
	}
	testkit.VirshOK(t, d, "vol-wipe", "--pool", "lvp", "--algorithm", "bsi", "lv2")
	wiped, err := os.ReadFile(dev("lv2"))
	if err != nil {
		t.Fatal(err)
	}
	// scrub marks what it wiped with a signature at the start.
	const scrubSignature = "\x01\x02\x03SCRUBBED!\x00"
	if !strings.HasPrefix(string(wiped), scrubSignature) || strings.Trim(string(wiped[len(scrubSignature):]), "\x7f") != "" || len(wiped) != 8*mib {
		t.Errorf("vol-wipe --algorithm bsi lv2 left %q..., want scrub's signature and then 0x7f everywhere", wiped[:32])
	}

	// Resize: grow keeps the data; a shrink needs --shrink.
	before := sum(t, dev("lv1"), 8*mib)
	testkit.VirshOK(t, d, "vol-resize", "--pool", "lvp", "lv1", "16M")
	if got := lvSize(t, vg, "lv1"); got != 16*mib {
		t.Errorf("after vol-resize 16M: lvs size %d", got)
	}
	if vi := testkit.VirshInfo(t, d, "vol-info", "--bytes", "--pool", "lvp", "lv1"); vi["Capacity"] != "16777216 bytes" {
		t.Errorf("vol-info after the grow: %v", vi)
	}
	if sum(t, dev("lv1"), 8*mib) != before {
		t.Error("growing lv1 changed its first 8 MiB")
	}
	testkit.VirshErr(t, d, []string{"Can't shrink capacity below current capacity unless shrink flag explicitly specified"},
		"vol-resize", "--pool", "lvp", "lv1", "8M")
	testkit.VirshOK(t, d, "vol-resize", "--pool", "lvp", "--shrink", "lv1", "8M")
	if got := lvSize(t, vg, "lv1"); got != 8*mib || sum(t, dev("lv1"), 8*mib) != before {
		t.Errorf("after vol-resize --shrink 8M: lvs size %d (want 8 MiB), data kept: %v", got, sum(t, dev("lv1"), 8*mib) == before)
	}

	// Clone file -> LV, raw and qcow2 (qemu-img convert), from a dir pool.
	dir := t.TempDir()
	testkit.VirshOK(t, d, "pool-create-as", "files", "dir", "--target", dir)
	raw := patterned(t, 8*mib, 3)
	testkit.VirshOK(t, d, "vol-create-as", "files", "f.raw", "8M", "--format", "raw")
	testkit.VirshOK(t, d, "vol-upload", "--pool", "files", "f.raw", raw)
	lab.Run(t, "qemu-img", "convert", "-O", "qcow2", raw, filepath.Join(dir, "f.qcow2"))
	testkit.VirshOK(t, d, "pool-refresh", "files")
	newVol := writeTemp(t, "nv.xml", "<volume><name>fromraw</name><capacity unit='M'>8</capacity></volume>")
	testkit.VirshOK(t, d, "vol-create-from", "lvp", newVol, "--inputpool", "files", "f.raw")
	newVol = writeTemp(t, "nv.xml", "<volume><name>fromqcow2</name><capacity unit='M'>8</capacity></volume>")
	testkit.VirshOK(t, d, "vol-create-from", "lvp", newVol, "--inputpool", "files", "f.qcow2")
	for _, lv := range []string{"fromraw", "fromqcow2"} {
		if sum(t, dev(lv), 8*mib) != sum(t, raw, -1) {
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
	if lvSize(t, vg, "outside") != -1 {
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
	if isBlockDevice(dev("lv1")) {
		t.Error("after pool-destroy /dev/labvg/lv1 is still there")
	}
	testkit.VirshOK(t, d, "pool-delete", "lvp")
	for _, r := range lvm(t, "pvs", "-o", "pv_name,vg_name") {
		if r[0] == devA || r[0] == devB {
			t.Errorf("after pool-delete, pvs still lists %v", r)
		}
	}
	if _, err := os.Stat("/dev/" + vg); err == nil {
		t.Error("after pool-delete /dev/labvg exists")
	}
	testkit.VirshOK(t, d, "pool-undefine", "lvp")
}
