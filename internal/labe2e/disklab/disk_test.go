package disklab_test

import (
	"strconv"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/lab"
	"github.com/virtstoraged-go/virtstoraged/internal/labe2e/labkit"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// TestDiskPoolOnLoopDevice runs a disk pool's life on a loop device with
// partition scanning (partitions loopNp1...), where libvirt 9.0 cannot
// remove a partition and we can, with every partition checked against the
// kernel (virtio disks: the differential test and the conformance suite).
func TestDiskPoolOnLoopDevice(t *testing.T) {
	lab.Require(t)
	d := labkit.StartDaemon(t)
	diskLife(t, d, labkit.PartitionedLoop(t, diskSize))
}

// diskLife is a dos pool and then a gpt pool on dev through our daemon:
// labels written and probed, primary, extended and logical partitions made,
// checked against the kernel and removed, data through a partition, wipe,
// and the label cleared by pool-delete.
func diskLife(t *testing.T, d *testkit.Daemon, dev string) {
	p := func(n int) string { return labkit.PartName(dev, n) }
	dos := labkit.DiskPoolXML(t, "dsk", dev, "dos")
	testkit.VirshOK(t, d, "pool-define", dos)
	testkit.VirshErr(t, d, []string{"Device '" + dev + "' is unrecognized, requires build"}, "pool-start", "dsk")
	testkit.VirshOK(t, d, "pool-build", "dsk")
	if got := labkit.LabelType(t, dev); got != "dos" {
		t.Fatalf("after pool-build the label is %q, want dos", got)
	}
	testkit.VirshErr(t, d, []string{"Storage pool already built: Device '" + dev + "' already formatted using 'dos'"}, "pool-build", "dsk", "--no-overwrite")
	testkit.VirshOK(t, d, "pool-start", "dsk")
	cyl := labkit.CylinderBytes(t, dev)

	for _, c := range []struct {
		n      int
		size   string
		format string
	}{{1, "16M", "none"}, {2, "96M", "extended"}, {3, "8M", "linux-swap"}, {4, "8M", "fat32"}, {5, "16M", "none"}, {6, "8M", "none"}, {7, "8M", "none"}} {
		args := []string{"vol-create-as", "dsk", p(c.n), c.size}
		if c.format != "none" {
			args = append(args, "--format", c.format)
		}
		testkit.VirshOK(t, d, args...)
		labkit.CheckPartition(t, d, "dsk", dev, p(c.n), c.format, cyl)
	}
	testkit.VirshErr(t, d, []string{"no large enough free extent"}, "vol-create-as", "dsk", p(8), "200M")
	testkit.VirshErr(t, d, []string{"extended partition already exists"}, "vol-create-as", "dsk", p(8), "1M", "--format", "extended")
	testkit.VirshErr(t, d, []string{"invalid partition name 'wrong', expected '" + p(8) + "'"}, "vol-create-as", "dsk", "wrong", "1M")
	if _, _, ok := labkit.SysfsPartition(t, dev, p(8)); ok {
		t.Errorf("%s left behind by a refused create", p(8))
	}
	if n := len(testkit.VolList(t, d, "dsk")); n != 7 {
		t.Errorf("vol-list has %d volumes, want 7", n)
	}
	labkit.CheckDiskPoolFigures(t, d, "dsk", diskSize)

	// Data through a logical partition and a primary one, and a wipe.
	data := labkit.Patterned(t, 8*labkit.MiB, 3)
	want := labkit.Sum(t, data, -1)
	for _, part := range []string{p(6), p(3)} {
		testkit.VirshOK(t, d, "vol-upload", "--pool", "dsk", part, data)
		back := t.TempDir() + "/back"
		testkit.VirshOK(t, d, "vol-download", "--pool", "dsk", part, back, "--length", strconv.Itoa(8*labkit.MiB))
		if got := labkit.Sum(t, back, -1); got != want {
			t.Errorf("%s: downloaded %s, uploaded %s", part, got, want)
		}
		if got := labkit.Sum(t, "/dev/"+part, 8*labkit.MiB); got != want {
			t.Errorf("/dev/%s holds %s, uploaded %s", part, got, want)
		}
	}
	testkit.VirshOK(t, d, "vol-wipe", "--pool", "dsk", p(3))
	_, size, _ := labkit.SysfsPartition(t, dev, p(3))
	if off, b := labkit.FirstOther(t, "/dev/"+p(3), int64(size), 0); off >= 0 {
		t.Errorf("after vol-wipe /dev/%s has %#x at %d", p(3), b, off)
	}
	testkit.VirshErr(t, d, []string{"cannot wipe extended partition '/dev/" + p(2) + "'"}, "vol-wipe", "--pool", "dsk", p(2))

	// Removing the first logical partition renumbers the ones after it,
	// whose data moves with them (p6 becomes p5, p7 p6).
	testkit.VirshOK(t, d, "vol-delete", "--pool", "dsk", p(5))
	if _, _, ok := labkit.SysfsPartition(t, dev, p(7)); ok {
		t.Errorf("%s still exists after the logical partition before it went", p(7))
	}
	if got := labkit.Sum(t, "/dev/"+p(5), 8*labkit.MiB); got != want {
		t.Errorf("the renumbered %s does not hold %s's data", p(5), p(6))
	}
	rows := testkit.VolList(t, d, "dsk")
	if _, ok := rows[p(7)]; ok || len(rows) != 6 {
		t.Errorf("vol-list after removing a logical partition: %v", rows)
	}
	// A primary partition (libvirt 9.0 cannot on a loop device); its space
	// is free again and the next partition takes it.
	testkit.VirshOK(t, d, "vol-delete", "--pool", "dsk", p(1))
	if _, _, ok := labkit.SysfsPartition(t, dev, p(1)); ok {
		t.Errorf("%s still exists after vol-delete", p(1))
	}
	labkit.CheckDiskPoolFigures(t, d, "dsk", diskSize)
	testkit.VirshOK(t, d, "vol-create-as", "dsk", p(1), "8M")
	labkit.CheckPartition(t, d, "dsk", dev, p(1), "none", cyl)
	testkit.VirshOK(t, d, "pool-refresh", "dsk")
	labkit.CheckDiskPoolFigures(t, d, "dsk", diskSize)
	testkit.VirshOK(t, d, "pool-destroy", "dsk")
	// Two pools on one device are refused (libvirt's source conflict).
	testkit.VirshErr(t, d, []string{"Storage source conflict with pool: 'dsk'"}, "pool-define", labkit.DiskPoolXML(t, "dskg", dev, "gpt"))
	testkit.VirshOK(t, d, "pool-undefine", "dsk")

	// A gpt pool over the dos label: refused but with --overwrite.
	gpt := labkit.DiskPoolXML(t, "dskg", dev, "gpt")
	testkit.VirshOK(t, d, "pool-define", gpt)
	testkit.VirshErr(t, d, []string{"Format of device '" + dev + "' does not match the expected format 'gpt'"}, "pool-start", "dskg")
	testkit.VirshErr(t, d, []string{"Storage pool already built: Format of device '" + dev + "' does not match the expected format 'gpt', forced overwrite is necessary"}, "pool-build", "dskg")
	testkit.VirshErr(t, d, []string{"Storage pool already built"}, "pool-build", "dskg", "--no-overwrite")
	if got := labkit.LabelType(t, dev); got != "dos" {
		t.Fatalf("a refused build changed the label to %q", got)
	}
	testkit.VirshOK(t, d, "pool-build", "dskg", "--overwrite")
	if got := labkit.LabelType(t, dev); got != "gpt" {
		t.Fatalf("after pool-build --overwrite the label is %q, want gpt", got)
	}
	testkit.VirshOK(t, d, "pool-start", "dskg")
	for n := 1; n <= 4; n++ {
		testkit.VirshOK(t, d, "vol-create-as", "dskg", p(n), strconv.Itoa(4*n)+"M")
		labkit.CheckPartition(t, d, "dskg", dev, p(n), "none", 0)
	}
	testkit.VirshOK(t, d, "vol-delete", "--pool", "dskg", p(2))
	testkit.VirshOK(t, d, "vol-create-as", "dskg", p(2), "2M")
	labkit.CheckPartition(t, d, "dskg", dev, p(2), "none", 0)
	testkit.VirshOK(t, d, "vol-upload", "--pool", "dskg", p(4), data)
	if got := labkit.Sum(t, "/dev/"+p(4), 8*labkit.MiB); got != want {
		t.Errorf("/dev/%s holds %s, uploaded %s", p(4), got, want)
	}
	labkit.CheckDiskPoolFigures(t, d, "dskg", diskSize)

	// After a restart the running pool is found by its label.
	d.Restart(t)
	if info := testkit.VirshInfo(t, d, "pool-info", "dskg"); info["State"] != "running" {
		t.Errorf("after a restart the pool is %q", info["State"])
	}
	if n := len(testkit.VolList(t, d, "dskg")); n != 4 {
		t.Errorf("after a restart vol-list has %d volumes, want 4", n)
	}
	testkit.VirshOK(t, d, "pool-destroy", "dskg")
	testkit.VirshOK(t, d, "pool-delete", "dskg")
	if got := labkit.LabelType(t, dev); got != "" {
		t.Errorf("pool-delete left a %s label", got)
	}
	if off, _ := labkit.FirstOther(t, dev, 1<<20, 0); off >= 0 {
		t.Errorf("pool-delete left bytes in the device's first MiB (at %d)", off)
	}
	testkit.VirshErr(t, d, []string{"Device '" + dev + "' is unrecognized, requires build"}, "pool-start", "dskg")
	testkit.VirshOK(t, d, "pool-undefine", "dskg")
}
