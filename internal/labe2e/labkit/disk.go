package labkit

// Disk pools: partitions as the kernel and virsh show them.

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/adapters/disk"
	"github.com/virtstoraged-go/virtstoraged/internal/lab"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// PartitionedLoop attaches a loop device with partition scanning (losetup -P)
// over a fresh sparse file of size bytes, detached when the test ends.
func PartitionedLoop(t *testing.T, size int64) string {
	t.Helper()
	lab.Modprobe(t, "loop")
	img := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	dev := strings.TrimSpace(lab.Run(t, "losetup", "-f", "--show", "-P", img))
	t.Cleanup(func() {
		// The kernel releases a device a moment after its last user.
		lab.WaitFor(t, "losetup -d "+dev, 10*time.Second, func() bool {
			_, err := lab.Try("losetup", "-d", dev)
			return err == nil
		})
	})
	return dev
}

// PartName is the name libvirt gives partition n of dev (vdb -> vdb1,
// loop0 -> loop0p1).
func PartName(dev string, n int) string {
	base := filepath.Base(dev)
	if c := base[len(base)-1]; c >= '0' && c <= '9' {
		return fmt.Sprintf("%sp%d", base, n)
	}
	return fmt.Sprintf("%s%d", base, n)
}

// DiskPoolXML writes a disk pool on dev with label format and target /dev.
func DiskPoolXML(t *testing.T, name, dev, format string) string {
	t.Helper()
	return WriteTemp(t, name+".xml", fmt.Sprintf(
		"<pool type='disk'><name>%s</name><source><device path='%s'/><format type='%s'/></source><target><path>/dev</path></target></pool>\n",
		name, dev, format))
}

// SysfsPartition is what the kernel says of a partition: its start and size in
// bytes, and whether it exists. udev re-reads a whole disk's table when a
// writer closes it (its inotify watch), which drops and re-adds every
// partition for a moment: the kernel is asked once udev has settled, and
// again after a read that such a re-read cut short.
func SysfsPartition(t *testing.T, dev, part string) (start, size uint64, ok bool) {
	t.Helper()
	dir := filepath.Join("/sys/class/block", filepath.Base(dev), part)
	read := func(name string) (uint64, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return 0, err
		}
		n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		return n * 512, err
	}
	for i := 0; ; i++ {
		lab.Try("udevadm", "settle", "--timeout=30")
		if _, err := os.Stat(dir); err != nil {
			return 0, 0, false
		}
		start, err1 := read("start")
		size, err2 := read("size")
		if err1 == nil && err2 == nil {
			return start, size, true
		}
		if i == 10 {
			t.Fatalf("%s: %v, %v", part, err1, err2)
		}
	}
}

// CylinderBytes is the size of a cylinder of dev as libparted sees it,
// which libvirt aligns dos partitions to.
func CylinderBytes(t *testing.T, dev string) uint64 {
	t.Helper()
	g, err := disk.ParseGeometry([]byte(lab.Run(t, "parted", "-m", "-s", dev, "unit", "chs", "print")))
	if err != nil {
		t.Fatal(err)
	}
	return g.CylinderBytes()
}

// LabelType is blkid's low-level probe of dev's partition table type, "" for
// none.
func LabelType(t *testing.T, dev string) string {
	t.Helper()
	out, _ := lab.Try("blkid", "-p", "-o", "export", dev)
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, "PTTYPE="); ok {
			return v
		}
	}
	return ""
}

// PartitionXML is what the tests read from a partition's vol-dumpxml.
type PartitionXML struct {
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

// DumpPartition runs vol-dumpxml on a disk pool's volume and parses it.
func DumpPartition(t *testing.T, d testkit.Virsher, pool, vol string) PartitionXML {
	t.Helper()
	return VirshXML[PartitionXML](t, d, "vol-dumpxml", "--pool", pool, vol)
}

// poolFreeXML is the part of a disk pool's pool-dumpxml that lists free space.
type poolFreeXML struct {
	Source struct {
		Device struct {
			Free []struct {
				Start uint64 `xml:"start,attr"`
				End   uint64 `xml:"end,attr"`
			} `xml:"freeExtent"`
		} `xml:"device"`
	} `xml:"source"`
}

// PoolFreeExtents is the sum of the pool's free extents in pool-dumpxml.
func PoolFreeExtents(t *testing.T, d testkit.Virsher, pool string) uint64 {
	t.Helper()
	p := VirshXML[poolFreeXML](t, d, "pool-dumpxml", pool)
	var sum uint64
	for _, f := range p.Source.Device.Free {
		sum += f.End - f.Start
	}
	return sum
}

// CheckPartition checks a partition volume against the kernel: its name,
// key and path, its extent, capacity and allocation, its format, and for
// dos labels that its end is on a cylinder boundary as libvirt aligns it.
func CheckPartition(t *testing.T, d testkit.Virsher, pool, dev, part, format string, cyl uint64) {
	t.Helper()
	start, size, ok := SysfsPartition(t, dev, part)
	if !ok {
		t.Fatalf("the kernel has no %s", part)
	}
	p := DumpPartition(t, d, pool, part)
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

// CheckDiskPoolFigures checks pool-info against the pool's free extents and
// the device.
func CheckDiskPoolFigures(t *testing.T, d testkit.Virsher, pool string, devSize uint64) {
	t.Helper()
	info := testkit.VirshInfo(t, d, "pool-info", "--bytes", pool)
	free := PoolFreeExtents(t, d, pool)
	if info["Available"] != strconv.FormatUint(free, 10) {
		t.Errorf("pool-info Available %s, the free extents sum to %d", info["Available"], free)
	}
	c, _ := strconv.ParseUint(info["Capacity"], 10, 64)
	a, _ := strconv.ParseUint(info["Allocation"], 10, 64)
	if c > devSize || a+free > c {
		t.Errorf("pool-info capacity %d allocation %d available %d on a %d-byte device", c, a, free, devSize)
	}
}
