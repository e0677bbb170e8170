package backende2e_test

import (
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// lvmCommands are the LVM commands the logical backend runs.
var lvmCommands = []string{"pvcreate", "pvremove", "vgcreate", "vgremove", "vgchange", "vgscan", "lvcreate", "lvremove", "lvchange", "lvresize", "lvs", "vgs", "pvs"}

// useLVMWrappers prepares a test that drives real LVM through the daemon:
// root and the tools, and the wrappers first in PATH. The daemon inherits
// that PATH, so its LVM commands resolve to the wrappers; so do the test's
// own checks. It returns the wrappers' directory.
func useLVMWrappers(t *testing.T) string {
	t.Helper()
	requireRoot(t)
	requireTools(t, "virsh", "losetup", "blkid", "lvm")
	wrappers := lvmWrappers(t)
	t.Setenv("PATH", wrappers+":"+os.Getenv("PATH"))
	t.Setenv("LVM_SUPPRESS_FD_WARNINGS", "1")
	return wrappers
}

// lvmWrappers writes, for each LVM command, a script that runs it with
// --driverloaded n when the command accepts that option: without
// device-mapper in the kernel (containers, CI), LVM then changes metadata
// only instead of failing on activation. lvcreate and lvremove run this test
// binary as the shim of lvmmeta_test.go, which passes them to LVM the same
// way except for the thin, snapshot and sparse LVs LVM cannot make without
// device-mapper.
func lvmWrappers(t *testing.T) string {
	t.Helper()
	lvm, err := exec.LookPath("lvm")
	if err != nil {
		t.Skip("backende2e: lvm2 not installed (apt-get install lvm2): skipping")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, c := range lvmCommands {
		if lvmShimCommands[c] {
			script := fmt.Sprintf("#!/bin/sh\n%s=%s exec %s \"$@\"\n", lvmShimEnv, c, self)
			if err := os.WriteFile(filepath.Join(dir, c), []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		extra := ""
		if help, _ := run(lvm, c, "--help"); strings.Contains(help, "--driverloaded") {
			extra = " --driverloaded n"
		} else {
			t.Logf("lvm %s does not list --driverloaded: its wrapper runs it plainly", c)
		}
		script := fmt.Sprintf("#!/bin/sh\nexec %s %s%s \"$@\"\n", lvm, c, extra)
		if err := os.WriteFile(filepath.Join(dir, c), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// lvmReport runs an LVM reporting command through the wrappers and returns
// its rows, each split on '|'.
func lvmReport(t *testing.T, wrappers string, args ...string) [][]string {
	t.Helper()
	args = append(args, "--noheadings", "--separator", "|")
	out, err := run(filepath.Join(wrappers, args[0]), args[1:]...)
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	var rows [][]string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "WARNING") || strings.Contains(line, "leaked on") {
			continue
		}
		rows = append(rows, strings.Split(line, "|"))
	}
	return rows
}

// pvsOf returns the PVs LVM knows among devs, with their VG ("" for none).
func pvsOf(t *testing.T, wrappers string, devs ...string) map[string]string {
	t.Helper()
	got := map[string]string{}
	for _, r := range lvmReport(t, wrappers, "pvs", "-o", "pv_name,vg_name") {
		if len(r) == 2 && slices.Contains(devs, r[0]) {
			got[r[0]] = r[1]
		}
	}
	return got
}

// vgExists reports whether LVM knows the VG.
func vgExists(t *testing.T, wrappers, vg string) bool {
	t.Helper()
	for _, r := range lvmReport(t, wrappers, "vgs", "-o", "vg_name") {
		if len(r) > 0 && r[0] == vg {
			return true
		}
	}
	return false
}

// lvNames lists the LVs of a VG.
func lvNames(t *testing.T, wrappers, vg string) []string {
	t.Helper()
	var names []string
	for _, r := range lvmReport(t, wrappers, "lvs", "-o", "lv_name", vg) {
		names = append(names, r[0])
	}
	return names
}

// sources is `virsh find-storage-pool-sources-as` output.
type sources struct {
	Sources []struct {
		Name    string `xml:"name"`
		Devices []struct {
			Path string `xml:"path,attr"`
		} `xml:"device"`
		Format struct {
			Type string `xml:"type,attr"`
		} `xml:"format"`
	} `xml:"source"`
}

// TestLogicalPool builds a VG over two loop devices through virsh and runs a
// volume through it. The kernel may have no device-mapper, so the daemon runs
// LVM through wrappers that pass --driverloaded n: PVs, VGs and LVs then
// change in metadata only, which is all pool-build, lvcreate and lvremove
// need.
func TestLogicalPool(t *testing.T) {
	wrappers := useLVMWrappers(t)
	devA, devB := loopDevice(t, 64<<20), loopDevice(t, 64<<20)
	vg := fmt.Sprintf("vse2e%d", os.Getpid())
	t.Cleanup(func() {
		// Registered after the loop devices, so it runs before they are
		// detached; harmless when the test already removed everything.
		_, _ = run(filepath.Join(wrappers, "vgremove"), "-f", vg)
		_, _ = run(filepath.Join(wrappers, "pvremove"), "-ff", "-y", devA, devB)
	})
	d := startDaemon(t, testkit.DaemonOptions{})

	poolXML := fmt.Sprintf(`<pool type='logical'>
  <name>lvp</name>
  <source>
    <device path='%s'/>
    <device path='%s'/>
    <name>%s</name>
    <format type='lvm2'/>
  </source>
  <target><path>/dev/%s</path></target>
</pool>
`, devA, devB, vg, vg)
	xmlPath := filepath.Join(t.TempDir(), "lvp.xml")
	if err := os.WriteFile(xmlPath, []byte(poolXML), 0o644); err != nil {
		t.Fatal(err)
	}
	virshOK(t, d, "pool-define", xmlPath)
	virshOK(t, d, "pool-build", "lvp")
	if got := pvsOf(t, wrappers, devA, devB); got[devA] != vg || got[devB] != vg {
		t.Fatalf("after pool-build, pvs shows %v, want %s and %s in %s", got, devA, devB, vg)
	}

	var found sources
	out := virshOK(t, d, "find-storage-pool-sources-as", "logical")
	if err := xml.Unmarshal([]byte(out), &found); err != nil {
		t.Fatalf("find-storage-pool-sources-as logical: %v\n%s", err, out)
	}
	listed := false
	for _, s := range found.Sources {
		if s.Name != vg {
			continue
		}
		listed = true
		var paths []string
		for _, dv := range s.Devices {
			paths = append(paths, dv.Path)
		}
		slices.Sort(paths)
		want := []string{devA, devB}
		slices.Sort(want)
		if !slices.Equal(paths, want) || s.Format.Type != "lvm2" {
			t.Errorf("find-storage-pool-sources-as: %s on %v format %q, want %v format lvm2", vg, paths, s.Format.Type, want)
		}
	}
	if !listed {
		t.Errorf("find-storage-pool-sources-as logical does not list %s:\n%s", vg, out)
	}

	if _, errOut, code := d.Virsh("pool-start", "lvp"); code != 0 {
		// vgchange -aly needs device-mapper unless the wrapper disables
		// activation; nothing below can run without an active pool.
		t.Fatalf("pool-start lvp: rc=%d: %s", code, errOut)
	}
	pi := info(t, d, "pool-info", "lvp")
	if pi["State"] != "running" || pi["Capacity"] == "" || pi["Capacity"] != pi["Available"] {
		t.Errorf("pool-info of the fresh pool: %v, want running with all of its capacity available", pi)
	}
	if rows := volList(t, d, "lvp"); len(rows) != 0 {
		t.Errorf("vol-list of the fresh pool: %v, want none", rows)
	}

	virshOK(t, d, "vol-create-as", "lvp", "lv1", "8M")
	if got := lvNames(t, wrappers, vg); !slices.Equal(got, []string{"lv1"}) {
		t.Errorf("after vol-create-as, lvs %s = %v, want [lv1]", vg, got)
	}
	rows := volList(t, d, "lvp")
	want := volRow{Name: "lv1", Path: "/dev/" + vg + "/lv1", Type: "block", Capacity: "8.00 MiB", Allocation: "8.00 MiB"}
	if len(rows) != 1 || rows["lv1"] != want {
		t.Errorf("vol-list --details = %v, want only %+v", rows, want)
	}
	vi := info(t, d, "vol-info", "lv1", "--pool", "lvp")
	if vi["Name"] != "lv1" || vi["Type"] != "block" || vi["Capacity"] != "8.00 MiB" {
		t.Errorf("vol-info lv1 = %v, want block, 8.00 MiB", vi)
	}
	if pi = info(t, d, "pool-info", "lvp"); pi["Allocation"] != "8.00 MiB" {
		t.Errorf("pool-info after vol-create-as: Allocation %q, want 8.00 MiB", pi["Allocation"])
	}

	virshErr(t, d, []string{"error: Failed to create vol lv1", "error: storage volume 'lv1' exists already"}, "vol-create-as", "lvp", "lv1", "8M")
	virshErr(t, d, []string{"error: this function is not supported by the connection driver: volume capacity required for this storage pool"}, "vol-create-as", "lvp", "lv0", "0")
	// A second pool over the same VG would fight the first for its LVs.
	virshErr(t, d, []string{"error: Failed to define pool lvq", "error: operation failed: Storage source conflict with pool: 'lvp'"},
		"pool-define-as", "lvq", "logical", "--source-name", vg, "--target", "/dev/"+vg)

	// The VG exists, so the pool is active again after a restart.
	d.Restart(t)
	if got := poolState(t, d, "lvp"); got != "running" {
		t.Errorf("after a daemon restart, State %q, want running", got)
	}
	if rows := volList(t, d, "lvp"); rows["lv1"] != want {
		t.Errorf("after a daemon restart, vol-list = %v, want %+v", rows, want)
	}

	// LVs made and removed behind the daemon's back show after a refresh.
	lvcreate := filepath.Join(wrappers, "lvcreate")
	if out, err := run(lvcreate, "--name", "outside", "-L", "4M", vg, "--yes"); err != nil {
		t.Fatalf("lvcreate outside the daemon: %v\n%s", err, out)
	}
	virshOK(t, d, "pool-refresh", "lvp")
	if rows := volList(t, d, "lvp"); rows["outside"].Capacity != "4.00 MiB" || len(rows) != 2 {
		t.Errorf("after an outside lvcreate and pool-refresh, vol-list = %v, want lv1 and outside (4.00 MiB)", rows)
	}
	if out, err := run(filepath.Join(wrappers, "lvremove"), "-f", vg+"/outside"); err != nil {
		t.Fatalf("lvremove outside the daemon: %v\n%s", err, out)
	}
	virshOK(t, d, "pool-refresh", "lvp")
	if rows := volList(t, d, "lvp"); len(rows) != 1 || rows["lv1"] != want {
		t.Errorf("after an outside lvremove and pool-refresh, vol-list = %v, want only lv1", rows)
	}

	// vol-resize runs lvresize: growing is free, shrinking needs --shrink.
	virshOK(t, d, "vol-resize", "lv1", "16M", "--pool", "lvp")
	if got := lvsOf(t, wrappers, vg)["lv1"].Size; got != 16<<20 {
		t.Errorf("after vol-resize lv1 16M, lvs size %d, want %d", got, 16<<20)
	}
	if vi := info(t, d, "vol-info", "lv1", "--pool", "lvp"); vi["Capacity"] != "16.00 MiB" || vi["Allocation"] != "16.00 MiB" {
		t.Errorf("vol-info after growing lv1: %v, want 16.00 MiB of capacity and allocation", vi)
	}
	// Shrinking needs --shrink (lvresize --force then); without it the LV
	// stays as it was.
	virshErr(t, d, []string{"error: Failed to change size of volume 'lv1' to 12M",
		"error: invalid argument: Can't shrink capacity below current capacity unless shrink flag explicitly specified"},
		"vol-resize", "lv1", "12M", "--pool", "lvp")
	if got := lvsOf(t, wrappers, vg)["lv1"].Size; got != 16<<20 {
		t.Errorf("a refused vol-resize changed lv1 to %d bytes, want %d", got, 16<<20)
	}
	virshOK(t, d, "vol-resize", "lv1", "12M", "--pool", "lvp", "--shrink")
	if got := lvsOf(t, wrappers, vg)["lv1"].Size; got != 12<<20 {
		t.Errorf("after vol-resize lv1 12M --shrink, lvs size %d, want %d", got, 12<<20)
	}
	if vi := info(t, d, "vol-info", "lv1", "--pool", "lvp"); vi["Capacity"] != "12.00 MiB" || vi["Allocation"] != "12.00 MiB" {
		t.Errorf("vol-info after shrinking lv1: %v, want 12.00 MiB of capacity and allocation", vi)
	}
	if pi = info(t, d, "pool-info", "lvp"); pi["Allocation"] != "12.00 MiB" {
		t.Errorf("pool-info after the resizes: Allocation %q, want 12.00 MiB", pi["Allocation"])
	}
	// Back to 16 MiB: the snapshot below is sized after lv1.
	virshOK(t, d, "vol-resize", "lv1", "16M", "--pool", "lvp")

	// Sparse (allocation below capacity) and snapshot volumes are LVM
	// snapshots, which LVM creates only with device-mapper: the lvcreate
	// shim writes their metadata (lvmmeta_test.go); the COW extents, the
	// listing and the removal are real LVM.
	virshOK(t, d, "vol-create-as", "lvp", "sp1", "16M", "--allocation", "4M")
	if r := lvsOf(t, wrappers, vg)["sp1"]; r.Size != 4<<20 {
		t.Errorf("after vol-create-as sp1 16M --allocation 4M, lvs sp1 = %+v, want a 4 MiB COW area", r)
	}
	// The 16 MiB capacity is read from the active device, as libvirt does
	// (adapters/logical TestRefreshTakesCapacityFromTheDevice). Without
	// device-mapper there is none, and lvs, which without -a omits the hidden
	// virtual origin, sizes only the COW area: only the allocation is checked.
	vi = info(t, d, "vol-info", "sp1", "--pool", "lvp")
	if vi["Type"] != "block" || vi["Allocation"] != "4.00 MiB" {
		t.Errorf("vol-info sp1 = %v, want a block volume with 4.00 MiB allocated", vi)
	}
	virshErr(t, d, []string{"error: this function is not supported by the connection driver: logical volume '/dev/" + vg + "/sp1' is sparse, volume wipe not supported"},
		"vol-wipe", "sp1", "--pool", "lvp")

	virshOK(t, d, "vol-create-as", "lvp", "snap1", "8M", "--backing-vol", "lv1", "--backing-vol-format", "raw")
	if r := lvsOf(t, wrappers, vg)["snap1"]; r.Size != 8<<20 {
		t.Errorf("after vol-create-as snap1 --backing-vol lv1, lvs snap1 = %+v, want an 8 MiB COW area", r)
	}
	if origins := lvmReport(t, wrappers, "lvs", "-o", "lv_name,origin", vg+"/snap1"); len(origins) != 1 || origins[0][1] != "lv1" {
		t.Errorf("lvs origin of snap1 = %v, want lv1", origins)
	}
	var snap struct {
		Capacity   uint64 `xml:"capacity"`
		Allocation uint64 `xml:"allocation"`
		Backing    string `xml:"backingStore>path"`
	}
	out = virshOK(t, d, "vol-dumpxml", "snap1", "--pool", "lvp")
	if err := xml.Unmarshal([]byte(out), &snap); err != nil {
		t.Fatalf("vol-dumpxml snap1: %v\n%s", err, out)
	}
	if snap.Capacity != 16<<20 || snap.Allocation != 8<<20 || snap.Backing != "/dev/"+vg+"/lv1" {
		t.Errorf("vol-dumpxml snap1: capacity %d allocation %d backing %q, want %d (lv1's size), %d, /dev/%s/lv1\n%s",
			snap.Capacity, snap.Allocation, snap.Backing, 16<<20, 8<<20, vg, out)
	}
	virshErr(t, d, []string{"error: Operation not supported: cannot resize snapshot logical volume '/dev/" + vg + "/snap1'"},
		"vol-resize", "snap1", "16M", "--pool", "lvp")
	for _, v := range []string{"snap1", "sp1"} {
		virshOK(t, d, "vol-delete", v, "--pool", "lvp")
	}
	if got := lvNames(t, wrappers, vg); !slices.Equal(got, []string{"lv1"}) {
		t.Errorf("after deleting the snapshot and the sparse volume, lvs %s = %v, want [lv1]", vg, got)
	}

	virshOK(t, d, "vol-delete", "lv1", "--pool", "lvp")
	if got := lvNames(t, wrappers, vg); len(got) != 0 {
		t.Errorf("after vol-delete, lvs %s = %v, want none", vg, got)
	}
	if rows := volList(t, d, "lvp"); len(rows) != 0 {
		t.Errorf("vol-list after vol-delete: %v, want none", rows)
	}

	virshOK(t, d, "pool-destroy", "lvp")
	if got := poolState(t, d, "lvp"); got != "inactive" {
		t.Errorf("after pool-destroy, State %q, want inactive", got)
	}
	// The devices carry PV labels now: libvirt refuses to build over them.
	virshErr(t, d, []string{
		"error: Failed to build pool lvp",
		"error: Storage pool already built: Device '" + devA + "' already formatted using 'LVM2_member'",
	}, "pool-build", "lvp", "--no-overwrite")

	virshOK(t, d, "pool-delete", "lvp")
	if vgExists(t, wrappers, vg) {
		t.Errorf("pool-delete left the VG %s", vg)
	}
	if got := pvsOf(t, wrappers, devA, devB); len(got) != 0 {
		t.Errorf("pool-delete left PV labels: %v", got)
	}
	virshOK(t, d, "pool-undefine", "lvp")

	// Without its VG the pool cannot start, with libvirt's text.
	virshOK(t, d, "pool-define", xmlPath)
	virshErr(t, d, []string{"error: Failed to start pool lvp", "error: unsupported configuration: cannot find logical volume group name '" + vg + "'"}, "pool-start", "lvp")
	virshOK(t, d, "pool-undefine", "lvp")
}
