package fs_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/adapters/fs"
	"github.com/virtstoraged-go/virtstoraged/adapters/osexec"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// loopDevice attaches a fresh 64 MiB image to a loop device and detaches it
// at cleanup. Only a non-root run, or missing tools, skip: as root (how CI
// runs) a loop device that cannot be attached fails the test, or a broken
// runner would pass by skipping everything.
func loopDevice(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loop devices, mkfs and mount need root (CI runs as root): skipping the real fs pool test")
	}
	for _, tool := range []string{"losetup", "mkfs.ext4", "blkid", "mount", "umount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: skipping the real fs pool test", tool)
		}
	}
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 64<<20); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "-f", "--show", img).CombinedOutput()
	if err != nil {
		t.Fatalf("cannot attach a loop device as root (%v: %s)", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v: %s", dev, err, out)
		}
	})
	return dev
}

func TestRealLoopPool(t *testing.T) {
	dev := loopDevice(t)
	target := filepath.Join(t.TempDir(), "pool")
	// Registered after the loop device, so it runs first: never leave a mount
	// behind, whatever failed.
	t.Cleanup(func() {
		var st, parent unix.Stat_t
		if unix.Stat(target, &st) == nil && unix.Stat(filepath.Dir(target), &parent) == nil && st.Dev != parent.Dev {
			_ = unix.Unmount(target, unix.MNT_DETACH)
		}
	})
	log := testkit.QuietLog()
	b := fs.New(osexec.New(log), "", log)
	def := fsPool(dev, "ext4", target)
	ctx := context.Background()

	if err := b.ValidatePool(def); err != nil {
		t.Fatal(err)
	}
	// Nothing on the device yet: NO_OVERWRITE probes, then formats.
	if err := b.BuildPool(ctx, def, domain.PoolBuildNoOverwrite); err != nil {
		t.Fatalf("build --no-overwrite on an empty device: %v", err)
	}
	wantErrText(t, b.BuildPool(ctx, def, domain.PoolBuildNoOverwrite), domain.KindStoragePoolBuilt,
		"Storage pool already built: Device '"+dev+"' already formatted using 'ext4'")
	if err := b.BuildPool(ctx, def, domain.PoolBuildOverwrite); err != nil {
		t.Fatalf("build --overwrite: %v", err)
	}

	if active, err := b.CheckPool(ctx, def); err != nil || active {
		t.Fatalf("CheckPool before start = %v, %v", active, err)
	}
	if err := b.StartPool(ctx, def); err != nil {
		t.Fatalf("start: %v", err)
	}
	if active, err := b.CheckPool(ctx, def); err != nil || !active {
		t.Fatalf("CheckPool after start = %v, %v", active, err)
	}
	// Starting a mounted pool is a no-op, not a second mount.
	if err := b.StartPool(ctx, def); err != nil {
		t.Fatalf("second start: %v", err)
	}

	vol := &domain.VolDef{Name: "v1.img", Capacity: 1 << 20, HasCapacity: true, Target: domain.VolTarget{Perms: domain.UnsetPerms()}}
	if err := b.PrepareVol(def, vol); err != nil {
		t.Fatal(err)
	}
	if err := b.BuildVol(ctx, def, vol, 0); err != nil {
		t.Fatalf("create volume: %v", err)
	}
	stats, vols, err := b.RefreshPool(ctx, def)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	names := map[string]bool{}
	for _, v := range vols {
		names[v.Name] = true
	}
	if !names["v1.img"] || !names["lost+found"] || len(vols) != 2 {
		t.Errorf("volumes after create = %v", names)
	}
	// The figures are the loop filesystem's, not the host's.
	if stats.Capacity == 0 || stats.Capacity > 64<<20 {
		t.Errorf("capacity = %d, want the 64 MiB filesystem's", stats.Capacity)
	}
	if err := b.DeleteVol(ctx, def, vol, 0); err != nil {
		t.Fatal(err)
	}
	if _, vols, err = b.RefreshPool(ctx, def); err != nil || len(vols) != 1 {
		t.Fatalf("refresh after delete = %d vols, %v", len(vols), err)
	}

	if err := b.StopPool(ctx, def); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if active, err := b.CheckPool(ctx, def); err != nil || active {
		t.Fatalf("CheckPool after stop = %v, %v", active, err)
	}
	if err := b.StopPool(ctx, def); err != nil {
		t.Fatalf("second stop: %v", err)
	}

	// Unmounted behind our back: refresh says so instead of listing the
	// empty directory underneath.
	if err := b.StartPool(ctx, def); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("umount", target).CombinedOutput(); err != nil {
		t.Fatalf("umount: %v: %s", err, out)
	}
	_, _, err = b.RefreshPool(ctx, def)
	wantErrText(t, err, domain.KindOperationInvalid, "Requested operation is not valid: storage pool 'fs' is not mounted on '"+target+
		"': the filesystem was unmounted behind our back")

	if err := b.DeletePool(ctx, def, 0); err != nil {
		t.Fatalf("delete: %v", err)
	}
}
