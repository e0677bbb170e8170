package backende2e_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// virshTarget is a daemon virsh can talk to: ours or libvirt's.
type virshTarget interface {
	Virsh(args ...string) (stdout, stderr string, code int)
}

// diskDeviceEnv names a whole disk the storage lab gives the disk tests
// (a virtio disk). Without it they use a loop device with partition
// scanning, which this host's kernel provides.
const diskDeviceEnv = "VIRTSTORAGED_TEST_DISK"

// diskDevice is the device a disk pool test works on: the lab's disk, or a
// fresh 200 MiB loop device (libvirt's geometry for such a device gives the
// cylinder sizes the figures below were checked with).
func diskDevice(t *testing.T) string {
	t.Helper()
	if dev := os.Getenv(diskDeviceEnv); dev != "" {
		return dev
	}
	return partitionedLoopDevice(t, 200<<20)
}

func requireDiskTools(t *testing.T) {
	t.Helper()
	requireRoot(t)
	requireTools(t, "virsh", "losetup", "parted", "blkid", "udevadm")
}

// diskPoolXML is a disk pool on dev with target /dev.
func diskPoolXML(t *testing.T, name, dev, format string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name+".xml")
	xml := fmt.Sprintf("<pool type='disk'><name>%s</name><source><device path='%s'/><format type='%s'/></source><target><path>/dev</path></target></pool>\n", name, dev, format)
	if err := os.WriteFile(p, []byte(xml), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// partName is the name libvirt gives partition n of dev (loop3 -> loop3p1,
// sdb -> sdb1).
func partName(dev string, n int) string {
	base := filepath.Base(dev)
	if c := base[len(base)-1]; c >= '0' && c <= '9' {
		return fmt.Sprintf("%sp%d", base, n)
	}
	return fmt.Sprintf("%s%d", base, n)
}

// diskStep is one virsh call of a disk pool scenario. Args may hold {P1}..{P9}
// (the device's partition names), {DEV} and {XML} (the pool file).
type diskStep struct {
	args []string
	// wantErr, when set, is a text the call's error must contain; otherwise
	// it must succeed.
	wantErr string
}

func expandDisk(args []string, dev, xml string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		for n := 1; n <= 9; n++ {
			a = strings.ReplaceAll(a, fmt.Sprintf("{P%d}", n), partName(dev, n))
		}
		a = strings.ReplaceAll(a, "{DEV}", dev)
		out[i] = strings.ReplaceAll(a, "{XML}", xml)
	}
	return out
}

var (
	uuidLine      = regexp.MustCompile(`(?m)^\s*(<uuid>[0-9a-f-]+</uuid>|UUID:\s+[0-9a-f-]+)\n`)
	timestampsXML = regexp.MustCompile(`(?s)\s*<timestamps>.*?</timestamps>`)
)

// normDisk makes two runs on different devices comparable: the device's name
// and the pool file become placeholders, UUIDs and times go.
func normDisk(s, dev, xml string) string {
	s = strings.ReplaceAll(s, xml, "{XML}")
	s = strings.ReplaceAll(s, filepath.Base(dev), "{DEV}")
	s = uuidLine.ReplaceAllString(s, "")
	return timestampsXML.ReplaceAllString(s, "")
}

// diskScenario is what both daemons must answer alike on a fresh 200 MiB
// device: a dos label, primary, swap, extended and logical partitions, the
// errors of a second extended partition, of an extent too large and of an
// extended partition wiped or any partition resized, refresh and restart,
// and the label probes of build and start. (Removing partitions is left out:
// libvirt 9.0 cannot on a loop device, see TestDiskPoolDeleteOnLoop.)
var diskScenario = append(append([]diskStep(nil), diskBuildUp...), diskTearDown...)

// diskBuildUp ends with the pool running and six partitions on its device.
var diskBuildUp = []diskStep{
	{args: []string{"pool-define", "{XML}"}},
	{args: []string{"pool-start", "dsk"}, wantErr: "Device '{DEV}' is unrecognized, requires build"},
	{args: []string{"pool-build", "dsk"}},
	{args: []string{"pool-build", "dsk", "--no-overwrite"}, wantErr: "Storage pool already built: Device '{DEV}' already formatted using 'dos'"},
	{args: []string{"pool-start", "dsk"}},
	{args: []string{"pool-dumpxml", "dsk"}},
	{args: []string{"vol-create-as", "dsk", "{P1}", "10M"}},
	{args: []string{"vol-create-as", "dsk", "{P2}", "20M", "--format", "linux-swap"}},
	{args: []string{"vol-create-as", "dsk", "{P3}", "60M", "--format", "extended"}},
	{args: []string{"vol-create-as", "dsk", "{P9}", "10M", "--format", "extended"}, wantErr: "internal error: extended partition already exists"},
	{args: []string{"vol-create-as", "dsk", "{P4}", "10M", "--format", "fat32"}},
	{args: []string{"vol-create-as", "dsk", "{P5}", "10M"}},
	{args: []string{"vol-create-as", "dsk", "{P6}", "20M"}},
	{args: []string{"vol-create-as", "dsk", "{P7}", "100M"}, wantErr: "internal error: no large enough free extent"},
	{args: []string{"vol-create-as", "dsk", "{P7}", "0"}, wantErr: "volume capacity required for this storage pool"},
	{args: []string{"vol-list", "dsk", "--details"}},
	{args: []string{"pool-dumpxml", "dsk"}},
	{args: []string{"pool-info", "--bytes", "dsk"}},
	{args: []string{"vol-dumpxml", "{P1}", "--pool", "dsk"}},
	{args: []string{"vol-dumpxml", "{P2}", "--pool", "dsk"}},
	{args: []string{"vol-dumpxml", "{P3}", "--pool", "dsk"}},
	{args: []string{"vol-dumpxml", "{P6}", "--pool", "dsk"}},
	{args: []string{"vol-info", "--bytes", "{P3}", "--pool", "dsk"}},
	{args: []string{"vol-wipe", "{P3}", "--pool", "dsk"}, wantErr: "cannot wipe extended partition '/dev/{P3}'"},
	{args: []string{"vol-wipe", "{P4}", "--pool", "dsk"}},
	{args: []string{"vol-resize", "{P4}", "20M", "--pool", "dsk"}, wantErr: "storage pool does not support changing of volume capacity"},
	{args: []string{"vol-create-as", "dsk", "{P4}", "1M"}, wantErr: "storage volume '{P4}' exists already"},
	{args: []string{"pool-refresh", "dsk"}},
	{args: []string{"vol-dumpxml", "{P2}", "--pool", "dsk"}},
	{args: []string{"pool-destroy", "dsk"}},
	{args: []string{"pool-start", "dsk"}},
	{args: []string{"vol-list", "dsk", "--details"}},
	{args: []string{"pool-dumpxml", "dsk"}},
}

var diskTearDown = []diskStep{
	{args: []string{"pool-destroy", "dsk"}},
	{args: []string{"pool-delete", "dsk"}},
	{args: []string{"pool-start", "dsk"}, wantErr: "Device '{DEV}' is unrecognized, requires build"},
	{args: []string{"pool-undefine", "dsk"}},
}

// runDiskStep runs one step and checks its outcome; it returns the
// normalised output.
func runDiskStep(t *testing.T, v virshTarget, who string, s diskStep, dev, xml string) string {
	t.Helper()
	args := expandDisk(s.args, dev, xml)
	out, errOut, code := v.Virsh(args...)
	want := expandDisk([]string{s.wantErr}, dev, xml)[0]
	switch {
	case s.wantErr == "" && code != 0:
		t.Fatalf("%s: virsh %s: rc=%d\n%s%s", who, strings.Join(args, " "), code, out, errOut)
	case s.wantErr != "" && (code == 0 || !strings.Contains(errOut, want)):
		t.Fatalf("%s: virsh %s: rc=%d, want an error with %q\n%s%s", who, strings.Join(args, " "), code, want, out, errOut)
	}
	return normDisk(fmt.Sprintf("rc=%d\n%s%s", code, out, errOut), dev, xml)
}

// diskGPTScenario is the same for a transient gpt pool built on start.
var diskGPTScenario = []diskStep{
	{args: []string{"pool-create", "{XML}", "--build"}},
	{args: []string{"vol-create-as", "dsk", "{P1}", "10M"}},
	{args: []string{"vol-create-as", "dsk", "{P2}", "20M", "--format", "linux-swap"}},
	{args: []string{"vol-create-as", "dsk", "{P3}", "30M"}},
	{args: []string{"vol-create-as", "dsk", "{P4}", "500M"}, wantErr: "internal error: no large enough free extent"},
	{args: []string{"vol-list", "dsk", "--details"}},
	{args: []string{"pool-dumpxml", "dsk"}},
	{args: []string{"vol-dumpxml", "{P2}", "--pool", "dsk"}},
	{args: []string{"pool-refresh", "dsk"}},
	{args: []string{"pool-info", "--bytes", "dsk"}},
	{args: []string{"vol-dumpxml", "{P2}", "--pool", "dsk"}},
	{args: []string{"pool-destroy", "dsk"}},
	{args: []string{"pool-create", "{XML}", "--build", "--no-overwrite"}, wantErr: "Storage pool already built: Device '{DEV}' already formatted using 'gpt'"},
}

// TestDiskPoolLikeLibvirt runs the disk scenarios against libvirtd 9.0 and
// against virtstoraged, each on its own fresh loop device of the same size,
// and compares every answer: the partitions made, their names, extents and
// figures, the pool's free extents and figures, and the error texts.
func TestDiskPoolLikeLibvirt(t *testing.T) {
	requireDiskTools(t)
	anchor := testkit.StartAnchor(t)
	t.Cleanup(func() { anchor.CleanupPools("dsk") })
	d := startDaemon(t, testkit.DaemonOptions{})
	for _, sc := range []struct {
		format string
		steps  []diskStep
	}{{"dos", diskScenario}, {"gpt", diskGPTScenario}} {
		t.Run(sc.format, func(t *testing.T) {
			theirs, ours := partitionedLoopDevice(t, 200<<20), partitionedLoopDevice(t, 200<<20)
			theirXML, ourXML := diskPoolXML(t, "dsk", theirs, sc.format), diskPoolXML(t, "dsk", ours, sc.format)
			for _, s := range sc.steps {
				want := runDiskStep(t, anchor, "libvirtd", s, theirs, theirXML)
				got := runDiskStep(t, d, "virtstoraged", s, ours, ourXML)
				if got != want {
					t.Errorf("virsh %s differs\n--- virtstoraged:\n%s\n--- libvirtd:\n%s", strings.Join(s.args, " "), got, want)
				}
			}
		})
	}
}

// TestDiskPoolOnDevice runs the scenario and what libvirt cannot do on a
// loop device against virtstoraged alone, on the lab's disk when there is
// one: removing primary and logical partitions (with the renumbering of the
// logical ones after), a wrong volume name (refused, and the partition it
// made removed again), upload and download through a partition, and the
// device nodes the kernel keeps.
func TestDiskPoolOnDevice(t *testing.T) {
	requireDiskTools(t)
	dev := diskDevice(t)
	d := startDaemon(t, testkit.DaemonOptions{})
	xml := diskPoolXML(t, "dsk", dev, "dos")
	if os.Getenv(diskDeviceEnv) != "" {
		// A lab disk may carry a label from an earlier run: delete it.
		virshOK(t, d, "pool-define", xml)
		virshOK(t, d, "pool-delete", "dsk")
		virshOK(t, d, "pool-undefine", "dsk")
	}
	for _, s := range diskBuildUp {
		runDiskStep(t, d, "virtstoraged", s, dev, xml)
	}
	p := func(n int) string { return partName(dev, n) }

	// A wrong name: parted made loop0p7, which is removed again.
	virshErr(t, d, []string{fmt.Sprintf("invalid partition name 'wrong', expected '%s'", p(7))}, "vol-create-as", "dsk", "wrong", "1M")
	if _, err := os.Stat("/dev/" + p(7)); err == nil {
		t.Errorf("/dev/%s left behind by a refused create", p(7))
	}

	// Upload and download through a logical partition.
	data := make([]byte, 1<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(t.TempDir(), "in")
	out := filepath.Join(t.TempDir(), "out")
	if err := os.WriteFile(in, data, 0o600); err != nil {
		t.Fatal(err)
	}
	virshOK(t, d, "vol-upload", p(6), in, "--pool", "dsk")
	virshOK(t, d, "vol-download", p(6), out, "--pool", "dsk", "--length", fmt.Sprint(len(data)))
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, len(data))
	f, err := os.Open("/dev/" + p(6))
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.ReadAt(raw, 0)
	f.Close()
	if err != nil || !bytes.Equal(got, data) || !bytes.Equal(raw, data) {
		t.Fatalf("upload/download through /dev/%s lost the data (read err %v)", p(6), err)
	}

	// Removing the first logical partition renumbers the second (p6 -> p5),
	// whose data moves with it.
	virshOK(t, d, "vol-delete", p(5), "--pool", "dsk")
	rows := volList(t, d, "dsk")
	if _, ok := rows[p(6)]; ok {
		t.Errorf("%s still listed after the logical partition before it was removed: %v", p(6), rows)
	}
	if r, ok := rows[p(5)]; !ok || r.Path != "/dev/"+p(5) {
		t.Errorf("the renumbered logical partition is not listed as %s: %v", p(5), rows)
	}
	virshOK(t, d, "vol-download", p(5), out, "--pool", "dsk", "--length", fmt.Sprint(len(data)))
	if got, _ := os.ReadFile(out); !bytes.Equal(got, data) {
		t.Error("the renumbered partition does not hold the uploaded data")
	}

	// A primary partition of a loop device: libvirt runs `parted rm p1`.
	virshOK(t, d, "vol-delete", p(1), "--pool", "dsk")
	if _, err := os.Stat("/dev/" + p(1)); err == nil {
		t.Errorf("/dev/%s still exists after vol-delete", p(1))
	}
	if _, ok := volList(t, d, "dsk")[p(1)]; ok {
		t.Errorf("%s still listed after vol-delete", p(1))
	}
	// Its space is free again, and a new partition takes it.
	virshOK(t, d, "vol-create-as", "dsk", p(1), "5M")

	// After a restart the running pool is found again by its label.
	d.Restart(t)
	if s := poolState(t, d, "dsk"); s != "running" {
		t.Errorf("after a restart the pool is %q, want running", s)
	}
	if _, ok := volList(t, d, "dsk")[p(1)]; !ok {
		t.Errorf("after a restart %s is not listed", p(1))
	}

	virshOK(t, d, "pool-destroy", "dsk")
	virshOK(t, d, "pool-delete", "dsk")
	if out, _ := run("blkid", "-p", "-o", "export", dev); strings.Contains(out, "PTTYPE") {
		t.Errorf("pool-delete left a label:\n%s", out)
	}
	virshOK(t, d, "pool-undefine", "dsk")
}

// TestDiskPoolDeleteOnLoop shows the loop-device failure of libvirt 9.0 that
// virtstoraged does not share: libvirt asks parted to remove partition "p1".
func TestDiskPoolDeleteOnLoop(t *testing.T) {
	requireDiskTools(t)
	anchor := testkit.StartAnchor(t)
	t.Cleanup(func() { anchor.CleanupPools("dsk") })
	dev := partitionedLoopDevice(t, 64<<20)
	xml := diskPoolXML(t, "dsk", dev, "gpt")
	for _, s := range []diskStep{
		{args: []string{"pool-create", "{XML}", "--build"}},
		{args: []string{"vol-create-as", "dsk", "{P1}", "10M"}},
		{args: []string{"vol-delete", "{P1}", "--pool", "dsk"}, wantErr: "Child process (parted {DEV} rm --script p1) unexpected exit status 1: Error: Partition doesn't exist."},
		{args: []string{"pool-destroy", "dsk"}},
	} {
		runDiskStep(t, anchor, "libvirtd", s, dev, xml)
	}
}

// TestDiskPoolBadInput covers a missing device, a device in use and a label
// of another format.
func TestDiskPoolBadInput(t *testing.T) {
	requireDiskTools(t)
	requireTools(t, "mkfs.ext4", "mount", "umount")
	d := startDaemon(t, testkit.DaemonOptions{})

	missing := diskPoolXML(t, "dskmissing", "/dev/nonexistent-disk", "dos")
	virshErr(t, d, []string{"invalid argument: device path '/dev/nonexistent-disk' doesn't exist"}, "pool-create", missing)
	virshErr(t, d, []string{"Storage pool probe failed: Failed to create filesystem probe for device /dev/nonexistent-disk"}, "pool-create", missing, "--build")

	// A gpt label on a dos pool, refused without --overwrite and then written over.
	dev := partitionedLoopDevice(t, 64<<20)
	if out, err := run("parted", "-s", dev, "mklabel", "gpt"); err != nil {
		t.Fatalf("parted: %v: %s", err, out)
	}
	xml := diskPoolXML(t, "dskother", dev, "dos")
	virshErr(t, d, []string{"Requested operation is not valid: Format of device '" + dev + "' does not match the expected format 'dos'"}, "pool-create", xml)
	virshErr(t, d, []string{"Storage pool already built: Format of device '" + dev + "' does not match the expected format 'dos', forced overwrite is necessary"}, "pool-create", xml, "--build")
	virshErr(t, d, []string{"Storage pool already built"}, "pool-create", xml, "--build", "--no-overwrite")
	virshOK(t, d, "pool-create", xml, "--build", "--overwrite")
	virshOK(t, d, "vol-create-as", "dskother", partName(dev, 1), "10M")

	// A mounted partition: the device is in use, and neither a new label
	// nor pool-delete's zeroing may reach it.
	if out, err := run("mkfs.ext4", "-q", "/dev/"+partName(dev, 1)); err != nil {
		t.Fatalf("mkfs: %v: %s", err, out)
	}
	mnt := t.TempDir()
	if out, err := run("mount", "/dev/"+partName(dev, 1), mnt); err != nil {
		t.Fatalf("mount: %v: %s", err, out)
	}
	t.Cleanup(func() { run("umount", mnt) })
	virshOK(t, d, "pool-destroy", "dskother")
	virshErr(t, d, []string{"device '" + dev + "' is in use"}, "pool-create", xml, "--build", "--overwrite")
	virshOK(t, d, "pool-define", xml)
	virshErr(t, d, []string{"device '" + dev + "' is in use"}, "pool-delete", "dskother")
	if out, _ := run("blkid", "-p", "-o", "export", dev); !strings.Contains(out, "PTTYPE=dos") {
		t.Errorf("the label of a device in use was touched:\n%s", out)
	}
	// Removing the mounted partition is refused before parted runs (which
	// would refuse it too, but remove one held by device-mapper from the
	// table and leave it in the kernel).
	virshOK(t, d, "pool-start", "dskother")
	virshErr(t, d, []string{"device '/dev/" + partName(dev, 1) + "' is in use"}, "vol-delete", partName(dev, 1), "--pool", "dskother")
	virshOK(t, d, "pool-destroy", "dskother")
	virshOK(t, d, "pool-undefine", "dskother")
}
