package lvmlab_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/lab"
	"github.com/virtstoraged-go/virtstoraged/internal/labe2e/labkit"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// checkLedger checks that what the daemon says of a logical pool is what
// LVM says is on disk: the same LVs, and the allocation LVM counts, before
// and after a refresh.
func checkLedger(t *testing.T, d *testkit.Daemon, pool, vg, when string) {
	t.Helper()
	for _, refresh := range []bool{false, true} {
		if refresh {
			testkit.VirshOK(t, d, "pool-refresh", pool)
		}
		var lvs []string
		for _, r := range labkit.LVM(t, "lvs", "-o", "lv_name", vg) {
			lvs = append(lvs, r[0])
		}
		var vols []string
		for name := range testkit.VolList(t, d, pool) {
			vols = append(vols, name)
		}
		slices.Sort(lvs)
		slices.Sort(vols)
		if !slices.Equal(lvs, vols) {
			t.Errorf("%s (refreshed: %v): vol-list %q, LVM has %q", when, refresh, vols, lvs)
		}
		r := labkit.LVM(t, "vgs", "-o", "vg_size,vg_free", vg)[0]
		size, _ := strconv.ParseUint(r[0], 10, 64)
		free, _ := strconv.ParseUint(r[1], 10, 64)
		info := testkit.VirshInfo(t, d, "pool-info", "--bytes", pool)
		if info["Allocation"] != strconv.FormatUint(size-free, 10) || info["Available"] != r[1] {
			t.Errorf("%s (refreshed: %v): pool-info allocation %s available %s; LVM: %d used, %s free",
				when, refresh, info["Allocation"], info["Available"], size-free, r[1])
		}
	}
}

// heal makes the device work again and takes the write errors the kernel
// still holds for the LVs on it: writes it could not write back while the
// device failed are errors nobody has seen yet, and Linux reports such an
// error to the next fdatasync of the LV, whoever opened it when (errseq).
// The failed operations' owners would take them; the test does, so that the
// next operation starts clean.
func heal(t *testing.T, disk *lab.FaultyDisk, lvs ...string) {
	t.Helper()
	disk.Heal(t)
	for _, lv := range lvs {
		lab.Try("sync", "--data", lv)
	}
}

// TestLogicalFaults puts a PV on a device-mapper device whose table the test
// changes, so that an upload, a wipe and a clone into an LV meet I/O errors
// mid-way, and an upload meets a device that hangs and then fails: each
// fails with a clear error, the pool and its ledger stay what LVM has on
// disk (a failed clone leaves no LV), and another pool answers while the
// upload hangs.
func TestLogicalFaults(t *testing.T) {
	lab.Require(t)
	disk := lab.NewFaultyDisk(t, "labfault")
	d := labkit.StartDaemon(t)
	const vg = "fvg"
	t.Cleanup(func() { lab.Try("vgremove", "-f", vg) })
	testkit.VirshOK(t, d, "pool-define", labkit.WriteTemp(t, "fvg.xml", fmt.Sprintf(`<pool type='logical'><name>fvg</name>
  <source><device path='%s'/><name>%s</name><format type='lvm2'/></source><target><path>/dev/%s</path></target></pool>`, disk.Path, vg, vg)))
	testkit.VirshOK(t, d, "pool-build", "fvg")
	testkit.VirshOK(t, d, "pool-start", "fvg")
	other := t.TempDir()
	testkit.VirshOK(t, d, "pool-create-as", "other", "dir", "--target", other)
	testkit.VirshOK(t, d, "vol-create-as", "other", "o.img", "1M")

	// LVs start after the PV's metadata area (pe_start); lv1 takes the
	// first two 4 MiB extents, a clone of it the next two.
	peStart, err := strconv.ParseInt(labkit.LVM(t, "pvs", "-o", "pe_start", disk.Path)[0][0], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	testkit.VirshOK(t, d, "vol-create-as", "fvg", "lv1", "8M")
	data := labkit.Patterned(t, 8*labkit.MiB, 9)
	testkit.VirshOK(t, d, "vol-upload", "--pool", "fvg", "lv1", data)

	// Errors from lv1's second half on: upload and wipe fail.
	disk.ErrorFrom(t, peStart+4*labkit.MiB)
	errOut := testkit.VirshErr(t, d, []string{"Input/output error"}, "vol-upload", "--pool", "fvg", "lv1", data)
	t.Logf("upload over a failing device: %s", errOut)
	checkLedger(t, d, "fvg", vg, "after the failed upload")
	errOut = testkit.VirshErr(t, d, []string{"Input/output error", "/dev/fvg/lv1"}, "vol-wipe", "--pool", "fvg", "lv1")
	t.Logf("wipe over a failing device: %s", errOut)
	checkLedger(t, d, "fvg", vg, "after the failed wipe")

	// Errors from the clone's second half on: the clone fails and its LV
	// is removed.
	heal(t, disk, "/dev/fvg/lv1")
	testkit.VirshOK(t, d, "vol-upload", "--pool", "fvg", "lv1", data)
	disk.ErrorFrom(t, peStart+12*labkit.MiB)
	errOut = testkit.VirshErr(t, d, []string{"Input/output error"}, "vol-clone", "--pool", "fvg", "lv1", "lv2")
	t.Logf("clone onto a failing device: %s", errOut)
	checkLedger(t, d, "fvg", vg, "after the failed clone")
	if labkit.LVSize(t, vg, "lv2") != -1 {
		t.Error("the failed clone left its LV")
	}

	// A device that hangs: the upload waits, the other pool answers, and
	// when the device comes back failing the upload fails.
	heal(t, disk, "/dev/fvg/lv1")
	disk.Suspend(t)
	upload := labkit.VirshAsync(d, "vol-upload", "--pool", "fvg", "lv1", data)
	testkit.VirshOK(t, d, "vol-list", "other")
	testkit.VirshOK(t, d, "vol-info", "--pool", "other", "o.img")
	testkit.VirshOK(t, d, "vol-upload", "--pool", "other", "o.img", labkit.Patterned(t, labkit.MiB, 10))
	testkit.VirshOK(t, d, "pool-list", "--all")
	if r, finished := labkit.Done(upload); finished {
		t.Errorf("the upload into the suspended device finished (rc=%d, %s) while it could not write", r.Code, r.ErrOut)
	}
	disk.ErrorFrom(t, 0)
	r := <-upload
	if r.Code == 0 || !strings.Contains(r.ErrOut, "Input/output error") {
		t.Errorf("upload into a device that hung and then failed: rc=%d, stderr %q; want an I/O error", r.Code, r.ErrOut)
	}
	heal(t, disk, "/dev/fvg/lv1")
	checkLedger(t, d, "fvg", vg, "after the hung upload")

	// Healed, everything works again.
	testkit.VirshOK(t, d, "vol-upload", "--pool", "fvg", "lv1", data)
	testkit.VirshOK(t, d, "vol-clone", "--pool", "fvg", "lv1", "lv2")
	back := filepath.Join(t.TempDir(), "back")
	testkit.VirshOK(t, d, "vol-download", "--pool", "fvg", "lv2", back)
	if labkit.Sum(t, back, -1) != labkit.Sum(t, data, -1) {
		t.Error("after the device healed, a clone does not hold its source's data")
	}
	testkit.VirshOK(t, d, "pool-destroy", "fvg")
	testkit.VirshOK(t, d, "pool-delete", "fvg")
	testkit.VirshOK(t, d, "pool-undefine", "fvg")
}
