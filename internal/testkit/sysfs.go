package testkit

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// FakeDM is one device-mapper device of a fake sysfs tree.
type FakeDM struct {
	Minor   int    // the N of dm-N
	Name    string // dm/name, the /dev/mapper name
	UUID    string // dm/uuid; multipath maps start with "mpath-"
	Sectors uint64 // size, in 512-byte sectors
	// NoDM leaves out the dm/ directory (a half-registered device).
	NoDM bool
}

// NewFakeSysfs builds a temporary sysfs tree holding SYSFS/block/dm-N for
// each device (dm/name, dm/uuid, size), plus a loop0 entry that is no
// device-mapper device, and returns its root.
func NewFakeSysfs(t testing.TB, devs ...FakeDM) string {
	t.Helper()
	root := t.TempDir()
	write := func(path, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(root, "block", "loop0", "size"), "131072\n")
	for _, d := range devs {
		dir := filepath.Join(root, "block", "dm-"+strconv.Itoa(d.Minor))
		write(filepath.Join(dir, "size"), strconv.FormatUint(d.Sectors, 10)+"\n")
		if d.NoDM {
			continue
		}
		write(filepath.Join(dir, "dm", "name"), d.Name+"\n")
		write(filepath.Join(dir, "dm", "uuid"), d.UUID+"\n")
	}
	return root
}

// FakeLUN is one logical unit of a fake SCSI host.
type FakeLUN struct {
	Bus, Target, Unit uint32
	// Type is the SCSI peripheral type: 0 disk, 5 CD-ROM, 1 tape, ...
	Type int
	// Block is the LUN's block device name under /dev ("" for none).
	Block string
	// OldStyle names the link "block:NAME", as kernels before 2.6.25 did.
	OldStyle bool
}

// FakeSCSIHost is a SCSI host of a fake sysfs tree: SYSFS/class/scsi_host/hostN,
// a link into the PCI device PCI (0000:00:1f.2) with its unique_id and a
// writable scan file, and its LUNs under SYSFS/bus/scsi/devices.
type FakeSCSIHost struct {
	Host     uint32
	PCI      string
	UniqueID uint32
	LUNs     []FakeLUN
}

// AddFakeSCSIHost adds h to the fake sysfs tree at root.
func AddFakeSCSIHost(t testing.TB, root string, h FakeSCSIHost) {
	t.Helper()
	host := "host" + strconv.FormatUint(uint64(h.Host), 10)
	dev := filepath.Join(root, "devices", "pci0000:00", h.PCI, host, "scsi_host", host)
	writeFake(t, filepath.Join(dev, "unique_id"), strconv.FormatUint(uint64(h.UniqueID), 10)+"\n")
	writeFake(t, filepath.Join(dev, "scan"), "")
	class := filepath.Join(root, "class", "scsi_host")
	if err := os.MkdirAll(class, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(dev, filepath.Join(class, host)); err != nil {
		t.Fatal(err)
	}
	for _, l := range h.LUNs {
		name := fmt.Sprintf("%d:%d:%d:%d", h.Host, l.Bus, l.Target, l.Unit)
		dir := filepath.Join(root, "bus", "scsi", "devices", name)
		writeFake(t, filepath.Join(dir, "type"), strconv.Itoa(l.Type)+"\n")
		switch {
		case l.Block == "":
		case l.OldStyle:
			writeFake(t, filepath.Join(dir, "block:"+l.Block, "dev"), "8:0\n")
		default:
			writeFake(t, filepath.Join(dir, "block", l.Block, "dev"), "8:0\n")
		}
	}
}

// AddFakeISCSISession adds SYSFS/class/iscsi_session/sessionSID, whose device
// holds the target of SCSI host host.
func AddFakeISCSISession(t testing.TB, root, sid string, host uint32) {
	t.Helper()
	dir := filepath.Join(root, "class", "iscsi_session", "session"+sid, "device", fmt.Sprintf("target%d:0:0", host))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func writeFake(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
