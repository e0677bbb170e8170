package nfsmpathlab_test

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/internal/lab"
	"github.com/virtstoraged-go/virtstoraged/internal/labe2e/labkit"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// mapBound bounds how long multipathd takes to build a map for new paths:
// a uevent, a path check, a device-mapper table load and udev's rules,
// seconds under emulation.
const mapBound = 2 * time.Minute

// TestMpathPool lists real multipath maps: scsi_debug's one logical unit
// behind two SCSI hosts (two paths, one map), and later an iSCSI LUN served
// and logged in to inside the guest. The map's volume has its capacity and
// what libvirt reads from its node; with a path offline it still lists and
// its data still reads, through the other path; a map that appears later
// shows after a refresh.
func TestMpathPool(t *testing.T) {
	lab.Require(t)
	paths := lab.ScsiDebug(t, 2, 16)
	lab.StartMultipathd(t)
	lab.WaitFor(t, "multipathd building the scsi_debug map", mapBound, func() bool { return len(lab.MultipathMaps()) == 1 })
	var first, firstDM string
	for name, dm := range lab.MultipathMaps() {
		first, firstDM = name, dm
	}
	lab.Run(t, "udevadm", "settle")
	d := labkit.StartDaemon(t)

	testkit.VirshOK(t, d, "pool-define-as", "mp", "mpath", "--target", "/dev/mapper")
	testkit.VirshOK(t, d, "pool-start", "mp")
	rows := testkit.VolList(t, d, "mp")
	row, ok := rows[firstDM]
	if len(rows) != 1 || !ok || row.Path != "/dev/mapper/"+first || row.Type != "block" || row.Capacity != "16.00 MiB" {
		t.Fatalf("vol-list mp = %+v; want %s at /dev/mapper/%s, a 16 MiB block volume", rows, firstDM, first)
	}
	if info := testkit.VirshInfo(t, d, "pool-info", "--bytes", "mp"); info["Capacity"] != strconv.Itoa(16*labkit.MiB) {
		t.Errorf("pool-info mp: capacity %q, want the map's 16 MiB", info["Capacity"])
	}
	x := labkit.DumpVol(t, d, "mp", firstDM)
	if x.Capacity != 16*labkit.MiB || x.Physical == nil || x.Physical.Value != 16*labkit.MiB {
		t.Errorf("vol-dumpxml %s: capacity %d, physical %v; want 16 MiB both", firstDM, x.Capacity, x.Physical)
	}
	labkit.CheckNodeFacts(t, "vol-dumpxml "+firstDM, &x.Target)

	// One path offline: the map stays, and its data reads through the
	// other path.
	data := labkit.Patterned(t, 16*labkit.MiB, 5)
	testkit.VirshOK(t, d, "vol-upload", "--pool", "mp", firstDM, data)
	state := filepath.Join("/sys/class/scsi_device", paths[0], "device/state")
	// The kernel takes a state only with its newline.
	if err := os.WriteFile(state, []byte("offline\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.WriteFile(state, []byte("running\n"), 0o644) })
	testkit.VirshOK(t, d, "pool-refresh", "mp")
	if rows := testkit.VolList(t, d, "mp"); rows[firstDM].Capacity != "16.00 MiB" {
		t.Errorf("with path %s offline, vol-list mp = %+v; want %s still there", paths[0], rows, firstDM)
	}
	back := filepath.Join(t.TempDir(), "back")
	testkit.VirshOK(t, d, "vol-download", "--pool", "mp", firstDM, back)
	if labkit.Sum(t, back, -1) != labkit.Sum(t, data, -1) {
		t.Errorf("with path %s offline, the map's data read back differs from what was written", paths[0])
	}

	// A map that appears later (an iSCSI LUN) shows after a refresh.
	const iqn = "iqn.2024-01.org.virtstoraged.lab:mpath"
	lab.ISCSITarget(t, 1, iqn, 24)
	lab.ISCSILogin(t, iqn)
	lab.WaitFor(t, "multipathd building the iSCSI LUN's map", mapBound, func() bool { return len(lab.MultipathMaps()) == 2 })
	lab.Run(t, "udevadm", "settle")
	var second, secondDM string
	for name, dm := range lab.MultipathMaps() {
		if name != first {
			second, secondDM = name, dm
		}
	}
	testkit.VirshOK(t, d, "pool-refresh", "mp")
	rows = testkit.VolList(t, d, "mp")
	if row := rows[secondDM]; len(rows) != 2 || row.Path != "/dev/mapper/"+second || row.Capacity != "24.00 MiB" {
		t.Errorf("after the iSCSI LUN's map appeared and a refresh, vol-list mp = %+v; want %s at /dev/mapper/%s, 24 MiB", rows, secondDM, second)
	}
	if info := testkit.VirshInfo(t, d, "pool-info", "--bytes", "mp"); info["Capacity"] != strconv.Itoa(40*labkit.MiB) {
		t.Errorf("pool-info mp: capacity %q, want both maps' 40 MiB", info["Capacity"])
	}
	testkit.VirshOK(t, d, "pool-destroy", "mp")
	testkit.VirshOK(t, d, "pool-undefine", "mp")
}
