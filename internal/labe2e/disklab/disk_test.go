package disklab_test

import (
	"encoding/xml"
	"strconv"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/lab"
	"github.com/virtstoraged-go/virtstoraged/internal/labe2e/labkit"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// TestDiskPoolOnVirtioDisk runs a disk pool's life on a virtio disk
// (/dev/vdX, partitions vdX1...).
func TestDiskPoolOnVirtioDisk(t *testing.T) {
	lab.Require(t)
	d := labkit.StartDaemon(t)
	diskLife(t, d, lab.Disk(t))
}

// TestDiskPoolOnLoopDevice runs the same on a loop device with partition
// scanning (partitions loopNp1...), where libvirt 9.0 cannot remove a
// partition and we can.
func TestDiskPoolOnLoopDevice(t *testing.T) {
	lab.Require(t)
	d := labkit.StartDaemon(t)
	diskLife(t, d, loopDevice(t, diskSize))
}

// partXML is what the tests read from a partition's vol-dumpxml.
type partXML struct {
	Name   string `xml:"name"`
	Key    string `xml:"key"`
	Source struct {
		Device struct {
			Path   string `xml:"path,attr"`
			Extent []struct {
				Start uint64 `xml:"start,attr"`
				End   uint64 `xml:"end,attr"`
			} `xml:"extent"`
		} `xml:"device"`
	} `xml:"source"`
	Capacity uint64 `xml:"capacity"`
	Alloc    uint64 `xml:"allocation"`
	Target   struct {
		Path   string `xml:"path"`
		Format struct {
			Type string `xml:"type,attr"`
		} `xml:"format"`
	} `xml:"target"`
}

func dumpPart(t *testing.T, d testkit.Virsher, pool, vol string) partXML {
	t.Helper()
	out := testkit.VirshOK(t, d, "vol-dumpxml", "--pool", pool, vol)
	var p partXML
	if err := xml.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("vol-dumpxml %s: %v\n%s", vol, err, out)
	}
	return p
}

// poolFree is the sum of the pool's free extents in pool-dumpxml.
func poolFree(t *testing.T, d testkit.Virsher, pool string) uint64 {
	t.Helper()
	var p struct {
		Source struct {
			Device struct {
				Free []struct {
					Start uint64 `xml:"start,attr"`
					End   uint64 `xml:"end,attr"`
				} `xml:"freeExtent"`
			} `xml:"device"`
		} `xml:"source"`
	}
	out := testkit.VirshOK(t, d, "pool-dumpxml", pool)
	if err := xml.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("pool-dumpxml: %v\n%s", err, out)
	}
	var sum uint64
	for _, f := range p.Source.Device.Free {
		sum += f.End - f.Start
	}
	return sum
}

// checkPartition checks a partition volume against the kernel: its name,
// key and path, its extent, capacity and allocation, its format, and for
// dos labels that its end is on a cylinder boundary as libvirt aligns it.
func checkPartition(t *testing.T, d testkit.Virsher, pool, dev, part, format string, cyl uint64) {
	t.Helper()
	start, size, ok := sysfsPart(t, dev, part)
	if !ok {
		t.Fatalf("the kernel has no %s", part)
	}
	p := dumpPart(t, d, pool, part)
	if p.Name != part || p.Key != "/dev/"+part || p.Target.Path != "/dev/"+part || p.Source.Device.Path != dev {
		t.Errorf("%s: name %q key %q path %q device %q", part, p.Name, p.Key, p.Target.Path, p.Source.Device.Path)
	}
	if len(p.Source.Device.Extent) != 1 || p.Source.Device.Extent[0].Start != start {
		t.Errorf("%s: extents %+v, the kernel's start is %d", part, p.Source.Device.Extent, start)
	}
	if format == "extended" {
		// Its node is the 1 KiB the kernel gives an extended partition;
		// libvirt shows the extent.
		if e := p.Source.Device.Extent; len(e) == 1 && p.Capacity != e[0].End-e[0].Start {
			t.Errorf("%s: capacity %d, extent %+v", part, p.Capacity, e)
		}
	} else if p.Capacity != size || p.Alloc != size {
		t.Errorf("%s: capacity %d allocation %d, the kernel's size is %d", part, p.Capacity, p.Alloc, size)
	}
	if p.Target.Format.Type != format {
		t.Errorf("%s: format %q, want %q", part, p.Target.Format.Type, format)
	}
	if cyl != 0 && format != "extended" && (start+size)%cyl != 0 {
		t.Errorf("%s: ends at %d, not on a cylinder boundary (%d bytes)", part, start+size, cyl)
	}
}

// checkPoolFigures checks pool-info against the pool's free extents and
// the device.
func checkPoolFigures(t *testing.T, d testkit.Virsher, pool string) {
	t.Helper()
	info := testkit.VirshInfo(t, d, "pool-info", "--bytes", pool)
	free := poolFree(t, d, pool)
	if info["Available"] != strconv.FormatUint(free, 10) {
		t.Errorf("pool-info Available %s, the free extents sum to %d", info["Available"], free)
	}
	c, _ := strconv.ParseUint(info["Capacity"], 10, 64)
	a, _ := strconv.ParseUint(info["Allocation"], 10, 64)
	if c > diskSize || a+free > c {
		t.Errorf("pool-info capacity %d allocation %d available %d on a %d-byte device", c, a, free, diskSize)
	}
}

// diskLife is a dos pool and then a gpt pool on dev through our daemon:
// labels written and probed, primary, extended and logical partitions made,
// checked against the kernel and removed, data through a partition, wipe,
// and the label cleared by pool-delete.
func diskLife(t *testing.T, d *testkit.Daemon, dev string) {
	p := func(n int) string { return partName(dev, n) }
	dos := poolXML(t, "dsk", dev, "dos")
	testkit.VirshOK(t, d, "pool-define", dos)
	testkit.VirshErr(t, d, []string{"Device '" + dev + "' is unrecognized, requires build"}, "pool-start", "dsk")
	testkit.VirshOK(t, d, "pool-build", "dsk")
	if got := labelType(t, dev); got != "dos" {
		t.Fatalf("after pool-build the label is %q, want dos", got)
	}
	testkit.VirshErr(t, d, []string{"Storage pool already built: Device '" + dev + "' already formatted using 'dos'"}, "pool-build", "dsk", "--no-overwrite")
	testkit.VirshOK(t, d, "pool-start", "dsk")
	cyl := cylinderBytes(t, dev)

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
		checkPartition(t, d, "dsk", dev, p(c.n), c.format, cyl)
	}
	testkit.VirshErr(t, d, []string{"no large enough free extent"}, "vol-create-as", "dsk", p(8), "200M")
	testkit.VirshErr(t, d, []string{"extended partition already exists"}, "vol-create-as", "dsk", p(8), "1M", "--format", "extended")
	testkit.VirshErr(t, d, []string{"invalid partition name 'wrong', expected '" + p(8) + "'"}, "vol-create-as", "dsk", "wrong", "1M")
	if _, _, ok := sysfsPart(t, dev, p(8)); ok {
		t.Errorf("%s left behind by a refused create", p(8))
	}
	if n := len(testkit.VolList(t, d, "dsk")); n != 7 {
		t.Errorf("vol-list has %d volumes, want 7", n)
	}
	checkPoolFigures(t, d, "dsk")

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
	_, size, _ := sysfsPart(t, dev, p(3))
	if off, b := labkit.FirstOther(t, "/dev/"+p(3), int64(size), 0); off >= 0 {
		t.Errorf("after vol-wipe /dev/%s has %#x at %d", p(3), b, off)
	}
	testkit.VirshErr(t, d, []string{"cannot wipe extended partition '/dev/" + p(2) + "'"}, "vol-wipe", "--pool", "dsk", p(2))

	// Removing the first logical partition renumbers the ones after it,
	// whose data moves with them (p6 becomes p5, p7 p6).
	testkit.VirshOK(t, d, "vol-delete", "--pool", "dsk", p(5))
	if _, _, ok := sysfsPart(t, dev, p(7)); ok {
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
	if _, _, ok := sysfsPart(t, dev, p(1)); ok {
		t.Errorf("%s still exists after vol-delete", p(1))
	}
	checkPoolFigures(t, d, "dsk")
	testkit.VirshOK(t, d, "vol-create-as", "dsk", p(1), "8M")
	checkPartition(t, d, "dsk", dev, p(1), "none", cyl)
	testkit.VirshOK(t, d, "pool-refresh", "dsk")
	checkPoolFigures(t, d, "dsk")
	testkit.VirshOK(t, d, "pool-destroy", "dsk")

	// A gpt pool over the dos label: refused but with --overwrite.
	gpt := poolXML(t, "dskg", dev, "gpt")
	testkit.VirshOK(t, d, "pool-define", gpt)
	testkit.VirshErr(t, d, []string{"Format of device '" + dev + "' does not match the expected format 'gpt'"}, "pool-start", "dskg")
	testkit.VirshErr(t, d, []string{"Storage pool already built: Format of device '" + dev + "' does not match the expected format 'gpt', forced overwrite is necessary"}, "pool-build", "dskg")
	testkit.VirshErr(t, d, []string{"Storage pool already built"}, "pool-build", "dskg", "--no-overwrite")
	if got := labelType(t, dev); got != "dos" {
		t.Fatalf("a refused build changed the label to %q", got)
	}
	testkit.VirshOK(t, d, "pool-build", "dskg", "--overwrite")
	if got := labelType(t, dev); got != "gpt" {
		t.Fatalf("after pool-build --overwrite the label is %q, want gpt", got)
	}
	testkit.VirshOK(t, d, "pool-start", "dskg")
	for n := 1; n <= 4; n++ {
		testkit.VirshOK(t, d, "vol-create-as", "dskg", p(n), strconv.Itoa(4*n)+"M")
		checkPartition(t, d, "dskg", dev, p(n), "none", 0)
	}
	testkit.VirshOK(t, d, "vol-delete", "--pool", "dskg", p(2))
	testkit.VirshOK(t, d, "vol-create-as", "dskg", p(2), "2M")
	checkPartition(t, d, "dskg", dev, p(2), "none", 0)
	testkit.VirshOK(t, d, "vol-upload", "--pool", "dskg", p(4), data)
	if got := labkit.Sum(t, "/dev/"+p(4), 8*labkit.MiB); got != want {
		t.Errorf("/dev/%s holds %s, uploaded %s", p(4), got, want)
	}
	checkPoolFigures(t, d, "dskg")

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
	if got := labelType(t, dev); got != "" {
		t.Errorf("pool-delete left a %s label", got)
	}
	if off, _ := labkit.FirstOther(t, dev, 1<<20, 0); off >= 0 {
		t.Errorf("pool-delete left bytes in the device's first MiB (at %d)", off)
	}
	testkit.VirshErr(t, d, []string{"Device '" + dev + "' is unrecognized, requires build"}, "pool-start", "dskg")
	for _, pool := range []string{"dsk", "dskg"} {
		testkit.VirshOK(t, d, "pool-undefine", pool)
	}
}
