package backende2e_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// TestFSPool walks an fs pool on a loop device through its whole life with
// virsh: a real mkfs, a real mount, file volumes, a stream round trip, an
// unmount behind the daemon's back, and the refusal to format a formatted
// device without --overwrite.
func TestFSPool(t *testing.T) {
	requireRoot(t)
	requireTools(t, "virsh", "losetup", "mkfs.ext4", "mount", "umount", "blkid", "qemu-img", "cmp")
	d := startDaemon(t, testkit.DaemonOptions{})
	dev := loopDevice(t, 128<<20)
	target := filepath.Join(d.Root, "mnt")
	unmountAtCleanup(t, target)

	virshOK(t, d, "pool-define-as", "fsp", "fs", "--source-dev", dev, "--target", target, "--source-format", "ext4")
	virshOK(t, d, "pool-build", "fsp", "--overwrite")
	if out, err := run("blkid", "-p", "-o", "value", "-s", "TYPE", dev); err != nil || strings.TrimSpace(out) != "ext4" {
		t.Fatalf("after pool-build --overwrite, blkid %s = %q (%v), want ext4", dev, out, err)
	}
	if st, err := os.Stat(target); err != nil || !st.IsDir() {
		t.Fatalf("pool-build did not create the target %s: %v", target, err)
	}

	virshOK(t, d, "pool-start", "fsp")
	m, ok := mountOn(t, target)
	if !ok || m.Source != dev || m.FSType != "ext4" {
		t.Fatalf("after pool-start, mount on %s = %+v (mounted %v), want %s of type ext4", target, m, ok, dev)
	}
	if got := poolState(t, d, "fsp"); got != "running" {
		t.Errorf("pool-info fsp: State %q, want running", got)
	}
	// libvirt's figures: f_frsize*f_blocks, and f_bfree (not f_bavail)
	// as available, root's reserved blocks included.
	var st unix.Statfs_t
	if err := unix.Statfs(target, &st); err != nil {
		t.Fatal(err)
	}
	xmlOut := virshOK(t, d, "pool-dumpxml", "fsp")
	for _, want := range []string{
		fmt.Sprintf("<capacity unit='bytes'>%d</capacity>", uint64(st.Frsize)*st.Blocks),
		fmt.Sprintf("<available unit='bytes'>%d</available>", uint64(st.Frsize)*st.Bfree),
		"<device path='" + dev + "'/>",
		"<format type='ext4'/>",
	} {
		if !strings.Contains(xmlOut, want) {
			t.Errorf("pool-dumpxml fsp lacks %s:\n%s", want, xmlOut)
		}
	}

	virshOK(t, d, "vol-create-as", "fsp", "a.raw", "4M", "--format", "raw")
	virshOK(t, d, "vol-create-as", "fsp", "b.qcow2", "10M", "--format", "qcow2")
	rows := volList(t, d, "fsp")
	for _, tc := range []struct {
		name     string
		wantType string
		wantCap  string
	}{
		{name: "a.raw", wantType: "file", wantCap: "4.00 MiB"},
		{name: "b.qcow2", wantType: "file", wantCap: "10.00 MiB"},
		// mkfs.ext4 makes it, and libvirt lists it as a dir volume.
		{name: "lost+found", wantType: "dir", wantCap: "0.00 B"},
	} {
		r, ok := rows[tc.name]
		wantPath := filepath.Join(target, tc.name)
		if !ok || r.Path != wantPath || r.Type != tc.wantType || r.Capacity != tc.wantCap {
			t.Errorf("vol-list --details row %q = %+v (present %v), want path %s type %s capacity %s", tc.name, r, ok, wantPath, tc.wantType, tc.wantCap)
		}
	}
	if len(rows) != 3 {
		t.Errorf("vol-list --details: %d volumes %v, want a.raw, b.qcow2, lost+found", len(rows), rows)
	}
	if out := virshOK(t, d, "vol-dumpxml", "b.qcow2", "--pool", "fsp"); !strings.Contains(out, "<format type='qcow2'/>") {
		t.Errorf("vol-dumpxml b.qcow2 lacks <format type='qcow2'/>:\n%s", out)
	}
	if out, err := run("qemu-img", "info", filepath.Join(target, "b.qcow2")); err != nil || !strings.Contains(out, "file format: qcow2") {
		t.Errorf("qemu-img info on the mounted filesystem: %v\n%s", err, out)
	}

	// The stream round trip goes through the mounted filesystem.
	work := t.TempDir()
	data := make([]byte, 4<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	up, down := filepath.Join(work, "up"), filepath.Join(work, "down")
	if err := os.WriteFile(up, data, 0o600); err != nil {
		t.Fatal(err)
	}
	virshOK(t, d, "vol-upload", "a.raw", up, "--pool", "fsp")
	virshOK(t, d, "vol-download", "a.raw", down, "--pool", "fsp")
	if out, err := run("cmp", up, down); err != nil {
		t.Errorf("vol-upload/vol-download round trip differs: %v %s", err, out)
	}
	if onDisk, err := os.ReadFile(filepath.Join(target, "a.raw")); err != nil || !bytes.Equal(onDisk, data) {
		t.Errorf("a.raw on the mounted filesystem does not hold the uploaded data (%v)", err)
	}

	virshOK(t, d, "vol-delete", "b.qcow2", "--pool", "fsp")
	if _, err := os.Stat(filepath.Join(target, "b.qcow2")); !os.IsNotExist(err) {
		t.Errorf("vol-delete b.qcow2 left the file: %v", err)
	}
	virshOK(t, d, "pool-refresh", "fsp")
	rows = volList(t, d, "fsp")
	if _, ok := rows["b.qcow2"]; ok || len(rows) != 2 {
		t.Errorf("after vol-delete and pool-refresh: %v, want a.raw and lost+found", rows)
	}

	// Behind the daemon's back: libvirt would list the directory under the
	// mount point as if it were the pool; we refuse and deactivate it.
	if out, err := run("umount", target); err != nil {
		t.Fatalf("umount %s: %v: %s", target, err, out)
	}
	virshErr(t, d, []string{"error: Failed to refresh pool fsp", "unmounted behind our back"}, "pool-refresh", "fsp")
	if got := poolState(t, d, "fsp"); got != "inactive" {
		t.Errorf("after a failed refresh, pool-info fsp: State %q, want inactive", got)
	}

	virshOK(t, d, "pool-start", "fsp")
	if _, ok := mountOn(t, target); !ok {
		t.Fatalf("pool-start after the unmount did not mount %s again", target)
	}
	if rows = volList(t, d, "fsp"); rows["a.raw"].Capacity != "4.00 MiB" {
		t.Errorf("after remount, a.raw = %+v, want capacity 4.00 MiB", rows["a.raw"])
	}
	virshOK(t, d, "pool-destroy", "fsp")
	if m, ok := mountOn(t, target); ok {
		t.Errorf("pool-destroy left %+v mounted", m)
	}

	virshErr(t, d, []string{
		"error: Failed to build pool fsp",
		"error: Storage pool already built: Device '" + dev + "' already formatted using 'ext4'",
	}, "pool-build", "fsp", "--no-overwrite")

	virshOK(t, d, "pool-delete", "fsp")
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Errorf("pool-delete left the target %s: %v", target, err)
	}
	virshOK(t, d, "pool-undefine", "fsp")
	if _, err := os.Stat(filepath.Join(d.StorageDir(), "fsp.xml")); !os.IsNotExist(err) {
		t.Errorf("pool-undefine left the config file: %v", err)
	}
	if out := virshOK(t, d, "pool-list", "--all", "--name"); strings.TrimSpace(out) != "" {
		t.Errorf("pool-list --all after undefine: %q, want none", out)
	}
}

// unmountAtCleanup unmounts whatever a failed test left on target, before the
// loop device is detached and the daemon's root removed.
func unmountAtCleanup(t *testing.T, target string) {
	t.Helper()
	t.Cleanup(func() {
		for i := 0; i < 5; i++ {
			if _, ok := mountOn(t, target); !ok {
				return
			}
			if out, err := run("umount", target); err != nil {
				t.Logf("cleanup: umount %s: %v: %s", target, err, out)
			}
		}
	})
}

// TestFSPoolBusyAndRestart checks what outlives a request: a busy filesystem
// keeps the pool running when pool-destroy cannot unmount it, a mounted pool
// is active again after a daemon restart, and one unmounted while the daemon
// was down comes back inactive. Its filesystem comes from pool-start --build
// --no-overwrite on a blank device, which must run mkfs.
func TestFSPoolBusyAndRestart(t *testing.T) {
	requireRoot(t)
	requireTools(t, "virsh", "losetup", "mkfs.ext4", "mount", "umount", "blkid", "sleep")
	d := startDaemon(t, testkit.DaemonOptions{})
	dev := loopDevice(t, 64<<20)
	target := filepath.Join(d.Root, "mnt")
	unmountAtCleanup(t, target)

	virshOK(t, d, "pool-define-as", "fsb", "fs", "--source-dev", dev, "--target", target, "--source-format", "ext4")
	virshOK(t, d, "pool-start", "fsb", "--build", "--no-overwrite")
	if m, ok := mountOn(t, target); !ok || m.Source != dev || m.FSType != "ext4" {
		t.Fatalf("pool-start --build --no-overwrite on a blank device: mount %+v (mounted %v), want %s as ext4", m, ok, dev)
	}
	virshOK(t, d, "vol-create-as", "fsb", "held.raw", "1M")

	// A process holding a file open keeps the filesystem busy.
	held, err := os.Open(filepath.Join(target, "held.raw"))
	if err != nil {
		t.Fatal(err)
	}
	sleeper := exec.Command("sleep", "60")
	sleeper.Stdin = held
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	held.Close()
	stopSleeper := func() {
		if sleeper.Process != nil {
			_ = sleeper.Process.Kill()
			_ = sleeper.Wait()
			sleeper.Process = nil
		}
	}
	t.Cleanup(stopSleeper)
	virshErr(t, d, []string{"error: Failed to destroy pool fsb", "umount " + target, "target is busy"}, "pool-destroy", "fsb")
	if got := poolState(t, d, "fsb"); got != "running" {
		t.Errorf("after a failed pool-destroy, State %q, want running", got)
	}
	if _, ok := mountOn(t, target); !ok {
		t.Errorf("a failed pool-destroy unmounted %s", target)
	}
	stopSleeper()

	d.Restart(t)
	if got := poolState(t, d, "fsb"); got != "running" {
		t.Errorf("mounted pool after a daemon restart: State %q, want running", got)
	}
	if rows := volList(t, d, "fsb"); rows["held.raw"].Capacity != "1.00 MiB" {
		t.Errorf("after a restart, vol-list = %v, want held.raw of 1.00 MiB", rows)
	}

	d.Stop(t)
	if out, err := run("umount", target); err != nil {
		t.Fatalf("umount %s while the daemon is down: %v: %s", target, err, out)
	}
	d.Start(t)
	if got := poolState(t, d, "fsb"); got != "inactive" {
		t.Errorf("pool unmounted while the daemon was down: State %q, want inactive", got)
	}
	if _, err := os.Stat(filepath.Join(d.StatusDir(), "fsb.xml")); !os.IsNotExist(err) {
		t.Errorf("the status file of the inactive pool is still there: %v", err)
	}

	virshOK(t, d, "pool-start", "fsb")
	if rows := volList(t, d, "fsb"); rows["held.raw"].Type != "file" {
		t.Errorf("after pool-start, vol-list = %v, want held.raw", rows)
	}
	virshOK(t, d, "pool-destroy", "fsb")
	if _, ok := mountOn(t, target); ok {
		t.Errorf("pool-destroy left %s mounted", target)
	}
	virshOK(t, d, "pool-undefine", "fsb")
}

// TestFSPoolMountOptions defines an fs pool from XML with <fs:mount_opts>:
// the options follow libvirt's nodev,nosuid,noexec on the real mount, so a
// read-only pool lists its files and refuses new ones with libvirt's text.
func TestFSPoolMountOptions(t *testing.T) {
	requireRoot(t)
	requireTools(t, "virsh", "losetup", "mkfs.ext4", "mount", "umount", "blkid")
	d := startDaemon(t, testkit.DaemonOptions{})
	dev := loopDevice(t, 32<<20)
	target := filepath.Join(d.Root, "ro")
	unmountAtCleanup(t, target)
	poolXML := fmt.Sprintf(`<pool type='fs' xmlns:fs='http://libvirt.org/schemas/storagepool/fs/1.0'>
  <name>fsro</name>
  <source><device path='%s'/><format type='ext4'/></source>
  <target><path>%s</path></target>
  <fs:mount_opts><fs:option name='ro'/><fs:option name='noatime'/></fs:mount_opts>
</pool>
`, dev, target)
	xmlPath := filepath.Join(t.TempDir(), "fsro.xml")
	if err := os.WriteFile(xmlPath, []byte(poolXML), 0o644); err != nil {
		t.Fatal(err)
	}
	virshOK(t, d, "pool-define", xmlPath)
	if out := virshOK(t, d, "pool-dumpxml", "fsro"); !strings.Contains(out, "<fs:option name='ro'/>") {
		t.Errorf("pool-dumpxml fsro lost the mount options:\n%s", out)
	}
	virshOK(t, d, "pool-start", "fsro", "--build", "--overwrite")
	m, ok := mountOn(t, target)
	if !ok || m.Source != dev {
		t.Fatalf("pool-start fsro: mount %+v (mounted %v), want %s", m, ok, dev)
	}
	opts := mountOptions(t, target)
	for _, o := range []string{"ro", "nodev", "nosuid", "noexec", "noatime"} {
		if !slices.Contains(opts, o) {
			t.Errorf("mount options of %s = %v, lack %s", target, opts, o)
		}
	}
	if rows := volList(t, d, "fsro"); rows["lost+found"].Type != "dir" {
		t.Errorf("vol-list fsro = %v, want lost+found", rows)
	}
	virshErr(t, d, []string{"error: Failed to create vol x", "Failed to create file '" + filepath.Join(target, "x") + "': Read-only file system"},
		"vol-create-as", "fsro", "x", "1M")
	virshOK(t, d, "pool-destroy", "fsro")
	virshOK(t, d, "pool-undefine", "fsro")
}

// mountOptions returns the per-mount options of what is mounted on target.
func mountOptions(t *testing.T, target string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var opts []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 5 && f[4] == target {
			opts = strings.Split(f[5], ",")
		}
	}
	return opts
}
