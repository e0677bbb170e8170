package backende2e_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// TestSCSIPoolFakeHost drives a scsi pool through virsh on a fake sysfs
// tree whose SCSI host 7 has two disk LUNs backed by real loop devices
// (their "block" entries name the loop devices), a tape and a LUN without
// a block device: the host is scanned at start and refresh, the disks are
// the volumes (unit:B:T:L, /dev paths, keyed by their path as scsi_id finds
// no serial on a loop device), and data goes through their devices. The
// storage lab runs the same on a scsi_debug host.
func TestSCSIPoolFakeHost(t *testing.T) {
	requireRoot(t)
	requireTools(t, "virsh", "losetup")
	sysfs := t.TempDir()
	a, b := loopDevice(t, 8<<20), loopDevice(t, 16<<20)
	testkit.AddFakeSCSIHost(t, sysfs, testkit.FakeSCSIHost{Host: 7, PCI: "0000:00:1f.2", UniqueID: 1, LUNs: []testkit.FakeLUN{
		{Bus: 0, Target: 0, Unit: 1, Type: 0, Block: filepath.Base(a)},
		{Bus: 0, Target: 0, Unit: 2, Type: 1, Block: "st0"},
		{Bus: 0, Target: 1, Unit: 0, Type: 0, Block: filepath.Base(b), OldStyle: true},
		{Bus: 0, Target: 2, Unit: 0, Type: 0},
	}})
	d := startDaemon(t, testkit.DaemonOptions{Args: []string{"--sysfs-root", sysfs}})

	virshOK(t, d, "pool-define-as", "sp", "scsi", "--adapter-name", "host7", "--target", "/dev")
	virshOK(t, d, "pool-start", "sp")
	if scan, _ := os.ReadFile(filepath.Join(sysfs, "class", "scsi_host", "host7", "scan")); string(scan) != "- - -\x00" {
		t.Errorf("the host was not scanned: scan file holds %q", scan)
	}
	rows := volList(t, d, "sp")
	want := map[string]volRow{
		"unit:0:0:1": {Name: "unit:0:0:1", Path: a, Type: "block", Capacity: "8.00 MiB", Allocation: "8.00 MiB"},
		"unit:0:1:0": {Name: "unit:0:1:0", Path: b, Type: "block", Capacity: "16.00 MiB", Allocation: "16.00 MiB"},
	}
	if fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Errorf("vol-list --details = %v, want %v", rows, want)
	}
	pi := info(t, d, "pool-info", "sp")
	if pi["Capacity"] != "24.00 MiB" || pi["Allocation"] != "24.00 MiB" || pi["Available"] != "0.00 B" {
		t.Errorf("pool-info = %v, want capacity = allocation = 24 MiB, nothing available", pi)
	}
	if out := virshOK(t, d, "vol-dumpxml", "unit:0:0:1", "--pool", "sp"); !strings.Contains(out, "<key>"+a+"</key>") {
		t.Errorf("vol-dumpxml: want the path as key (no SCSI serial on a loop device):\n%s", out)
	}

	// Data goes through the LUN's device.
	data := make([]byte, 64<<10)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	in, out := filepath.Join(t.TempDir(), "in"), filepath.Join(t.TempDir(), "out")
	if err := os.WriteFile(in, data, 0o600); err != nil {
		t.Fatal(err)
	}
	virshOK(t, d, "vol-upload", "unit:0:1:0", in, "--pool", "sp")
	virshOK(t, d, "vol-download", "unit:0:1:0", out, "--pool", "sp", "--length", fmt.Sprint(len(data)))
	if got, _ := os.ReadFile(out); !bytes.Equal(got, data) {
		t.Error("downloaded data differs from the upload")
	}
	virshOK(t, d, "vol-wipe", "unit:0:1:0", "--pool", "sp")

	virshErr(t, d, []string{"storage pool does not support volume creation"}, "vol-create-as", "sp", "x", "1M")
	virshErr(t, d, []string{"storage pool does not support vol deletion"}, "vol-delete", "unit:0:0:1", "--pool", "sp")

	// The daemon finds the running pool again after a restart: its host exists.
	d.Restart(t)
	if s := poolState(t, d, "sp"); s != "running" {
		t.Errorf("after a restart the pool is %q, want running", s)
	}
	virshOK(t, d, "pool-destroy", "sp")
	virshErr(t, d, []string{"pool does not support pool deletion"}, "pool-delete", "sp")
	virshOK(t, d, "pool-undefine", "sp")

	// The same host by its parent PCI address and unique_id.
	xml := filepath.Join(t.TempDir(), "pa.xml")
	if err := os.WriteFile(xml, []byte("<pool type='scsi'><name>spa</name><source><adapter type='scsi_host'><parentaddr unique_id='1'>"+
		"<address domain='0x0000' bus='0x00' slot='0x1f' function='0x2'/></parentaddr></adapter></source><target><path>/dev</path></target></pool>"), 0o644); err != nil {
		t.Fatal(err)
	}
	virshOK(t, d, "pool-create", xml)
	if rows := volList(t, d, "spa"); len(rows) != 2 {
		t.Errorf("by parentaddr: %v", rows)
	}
	virshOK(t, d, "pool-destroy", "spa")
}

// TestSCSIPoolBadInput covers a host that does not exist, a parent address
// no host has, and a vHBA on a host without NPIV HBAs: libvirt's texts
// (seen on libvirtd 9.0 here).
func TestSCSIPoolBadInput(t *testing.T) {
	sysfs := t.TempDir()
	d := startDaemon(t, testkit.DaemonOptions{Args: []string{"--sysfs-root", sysfs}})
	virshErr(t, d, []string{"Could not open '" + sysfs + "/class/scsi_host/host7/scan' to trigger host scan: No such file or directory"},
		"pool-create-as", "sp", "scsi", "--adapter-name", "host7", "--target", "/dev/disk/by-path")
	for _, tt := range []struct {
		adapter, want string
	}{
		{"<adapter type='scsi_host'><parentaddr unique_id='1'><address domain='0x0000' bus='0x00' slot='0x1f' function='0x2'/></parentaddr></adapter>",
			"XML error: Failed to find scsi_host using PCI '0000:00:1f.2' and unique_id='1'"},
		{"<adapter type='fc_host' parent='scsi_host5' managed='yes' wwnn='20000000c9831b4b' wwpn='10000000c9831b4b'/>",
			"XML error: parent 'scsi_host5' specified for vHBA does not exist"},
		{"<adapter type='fc_host' wwnn='20000000c9831b4b' wwpn='10000000c9831b4b'/>",
			"XML error: 'parent' for vHBA not specified, and cannot find one on this host"},
	} {
		xml := filepath.Join(t.TempDir(), "p.xml")
		if err := os.WriteFile(xml, []byte("<pool type='scsi'><name>sp</name><source>"+tt.adapter+"</source><target><path>/dev/disk/by-path</path></target></pool>"), 0o644); err != nil {
			t.Fatal(err)
		}
		virshErr(t, d, []string{tt.want}, "pool-create", xml)
		// Defined, the pool keeps its adapter as given.
		virshOK(t, d, "pool-define", xml)
		if out := virshOK(t, d, "pool-dumpxml", "sp"); !strings.Contains(out, strings.SplitN(tt.adapter, ">", 2)[0]) {
			t.Errorf("pool-dumpxml lost the adapter %s:\n%s", tt.adapter, out)
		}
		virshOK(t, d, "pool-undefine", "sp")
	}
}
