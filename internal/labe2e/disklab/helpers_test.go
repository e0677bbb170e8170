package disklab_test

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
	"github.com/virtstoraged-go/virtstoraged/internal/labe2e/labkit"
)

// loopDevice attaches a loop device with partition scanning (losetup -P)
// over a fresh sparse file of size bytes, detached when the test ends.
func loopDevice(t *testing.T, size int64) string {
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

// partName is the name libvirt gives partition n of dev (vdb -> vdb1,
// loop0 -> loop0p1).
func partName(dev string, n int) string {
	base := filepath.Base(dev)
	if c := base[len(base)-1]; c >= '0' && c <= '9' {
		return fmt.Sprintf("%sp%d", base, n)
	}
	return fmt.Sprintf("%s%d", base, n)
}

// poolXML writes a disk pool on dev with label format and target /dev.
func poolXML(t *testing.T, name, dev, format string) string {
	t.Helper()
	return labkit.WriteTemp(t, name+".xml", fmt.Sprintf(
		"<pool type='disk'><name>%s</name><source><device path='%s'/><format type='%s'/></source><target><path>/dev</path></target></pool>\n",
		name, dev, format))
}

// sysfsPart is what the kernel says of a partition: its start and size in
// bytes, and whether it exists.
func sysfsPart(t *testing.T, dev, part string) (start, size uint64, ok bool) {
	t.Helper()
	dir := filepath.Join("/sys/class/block", filepath.Base(dev), part)
	read := func(name string) uint64 {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%s: %v", part, err)
		}
		n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			t.Fatalf("%s/%s: %v", part, name, err)
		}
		return n * 512
	}
	if _, err := os.Stat(dir); err != nil {
		return 0, 0, false
	}
	return read("start"), read("size"), true
}

// cylinderBytes is the size of a cylinder of dev as libparted sees it,
// which libvirt aligns dos partitions to.
func cylinderBytes(t *testing.T, dev string) uint64 {
	t.Helper()
	g, err := disk.ParseGeometry([]byte(lab.Run(t, "parted", "-m", "-s", dev, "unit", "chs", "print")))
	if err != nil {
		t.Fatal(err)
	}
	return g.CylinderBytes()
}

// labelType is blkid's low-level probe of dev's partition table type, "" for
// none.
func labelType(t *testing.T, dev string) string {
	t.Helper()
	out, _ := lab.Try("blkid", "-p", "-o", "export", dev)
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, "PTTYPE="); ok {
			return v
		}
	}
	return ""
}
