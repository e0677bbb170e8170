package disklab_test

import (
	"strings"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/lab"
	"github.com/virtstoraged-go/virtstoraged/internal/labe2e/labkit"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// TestDiskPoolMissingDevice: a device that is not there, with libvirt's texts.
func TestDiskPoolMissingDevice(t *testing.T) {
	lab.Require(t)
	d := labkit.StartDaemon(t)
	xml := labkit.DiskPoolXML(t, "dskmissing", "/dev/vdz", "dos")
	testkit.VirshErr(t, d, []string{"invalid argument: device path '/dev/vdz' doesn't exist"}, "pool-create", xml)
	testkit.VirshErr(t, d, []string{"Storage pool probe failed: Failed to create filesystem probe for device /dev/vdz"}, "pool-create", xml, "--build")
	if out, _, _ := d.Virsh("pool-list", "--all", "--name"); out != "\n" && out != "" {
		t.Errorf("a failed pool-create left a pool: %q", out)
	}
}

// TestDiskPoolDeviceInUse: a partition mounted, and one held by an active
// VG (device-mapper): neither a new label nor pool-delete's zeroing may
// reach the device, and its label stays.
func TestDiskPoolDeviceInUse(t *testing.T) {
	lab.Require(t)
	d := labkit.StartDaemon(t)
	for _, holder := range []string{"mount", "lvm"} {
		t.Run(holder, func(t *testing.T) {
			dev := lab.Disk(t)
			part := "/dev/" + labkit.PartName(dev, 1)
			xml := labkit.DiskPoolXML(t, "dskuse", dev, "gpt")
			testkit.VirshOK(t, d, "pool-create", xml, "--build")
			testkit.VirshOK(t, d, "vol-create-as", "dskuse", labkit.PartName(dev, 1), "32M")
			switch holder {
			case "mount":
				lab.Run(t, "mkfs.ext4", "-q", part)
				mnt := t.TempDir()
				lab.Run(t, "mount", part, mnt)
				t.Cleanup(func() { lab.Try("umount", mnt) })
			case "lvm":
				vg := "dskuse_vg"
				lab.Run(t, "vgcreate", "-q", vg, part)
				lab.Run(t, "lvcreate", "-q", "--yes", "-L", "8M", "-n", "lv", vg)
				t.Cleanup(func() {
					lab.Try("vgremove", "-f", vg)
					lab.Try("pvremove", "-ff", "-y", part)
				})
			}
			inUse := []string{"device '" + dev + "' is in use"}
			testkit.VirshOK(t, d, "pool-destroy", "dskuse")
			testkit.VirshErr(t, d, inUse, "pool-create", xml, "--build", "--overwrite")
			testkit.VirshOK(t, d, "pool-define", xml)
			testkit.VirshErr(t, d, inUse, "pool-delete", "dskuse")
			if got := labkit.LabelType(t, dev); got != "gpt" {
				t.Errorf("the label of a device in use became %q", got)
			}
			// The pool still starts and lists the partition in use.
			testkit.VirshOK(t, d, "pool-start", "dskuse")
			if _, ok := testkit.VolList(t, d, "dskuse")[labkit.PartName(dev, 1)]; !ok {
				t.Errorf("the partition in use is not listed")
			}
			// Refused before parted runs: parted would remove a partition
			// held by device-mapper from the table and leave it in the
			// kernel.
			testkit.VirshErr(t, d, []string{"device '" + part + "' is in use"}, "vol-delete", "--pool", "dskuse", labkit.PartName(dev, 1))
			if _, _, ok := labkit.SysfsPartition(t, dev, labkit.PartName(dev, 1)); !ok {
				t.Errorf("the partition in use is gone from the kernel")
			}
			if out := lab.Run(t, "parted", "-m", "-s", dev, "unit", "s", "print"); !strings.Contains(out, "\n1:") {
				t.Errorf("the partition in use is gone from the table:\n%s", out)
			}
			testkit.VirshOK(t, d, "pool-destroy", "dskuse")
			testkit.VirshOK(t, d, "pool-undefine", "dskuse")
		})
	}
}
