package faults_test

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// TestDiskFullThroughVirsh runs out of space on a 16 MiB tmpfs and a 16 MiB
// loop-mounted ext4 through the real daemon and virsh: create, clone, resize
// --allocate and upload, each failing with a clear error, leaving no partial
// file, and pool-info and vol-list agreeing with statvfs and ls after a
// pool-refresh.
func TestDiskFullThroughVirsh(t *testing.T) {
	for _, kind := range smallFS {
		t.Run(kind, func(t *testing.T) { diskFullThroughVirsh(t, kind) })
	}
}

func diskFullThroughVirsh(t *testing.T, kind string) {
	if os.Geteuid() != 0 {
		t.Skip("faults: disk-full tests mount a filesystem and need root (CI runs as root)")
	}
	testkit.RequireTool(t, "virsh")
	d := testkit.StartDaemon(t, testkit.DaemonOptions{})
	mnt := filepath.Join(d.Root, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	// Its unmount is registered after StartDaemon's cleanup: it runs first,
	// before the root is removed.
	mountSmallFS(t, kind, mnt)
	pool := filepath.Join(mnt, "pool")
	virsh := func(args ...string) string {
		t.Helper()
		out, errOut, code := d.Virsh(args...)
		if code != 0 {
			t.Fatalf("virsh %s: exit %d: %s", strings.Join(args, " "), code, errOut)
		}
		return out
	}
	wantFail := func(what string, args ...string) {
		t.Helper()
		_, errOut, code := d.Virsh(args...)
		if code == 0 {
			t.Errorf("%s: virsh %s succeeded", what, strings.Join(args, " "))
			return
		}
		if !strings.Contains(errOut, "space") {
			t.Errorf("%s: error does not say what is short: %s", what, errOut)
		}
	}
	noFile := func(name string) {
		t.Helper()
		if _, err := os.Stat(filepath.Join(pool, name)); err == nil {
			t.Errorf("partial file %s left behind", name)
		}
	}
	checkAccounting := func() {
		t.Helper()
		virsh("pool-refresh", "full")
		var sfs unix.Statfs_t
		if err := unix.Statfs(pool, &sfs); err != nil {
			t.Fatal(err)
		}
		bs := uint64(sfs.Frsize)
		wantAlloc := (sfs.Blocks - sfs.Bfree) * bs
		out, _, _ := d.Virsh("pool-info", "--bytes", "full")
		if !strings.Contains(out, "Allocation:     "+strconv.FormatUint(wantAlloc, 10)) {
			t.Errorf("pool-info after refresh:\n%swant allocation %d (statvfs)", out, wantAlloc)
		}
		var vols []string
		for i, l := range strings.Split(virsh("vol-list", "full"), "\n") {
			if f := strings.Fields(l); i >= 2 && len(f) > 0 {
				vols = append(vols, f[0])
			}
		}
		slices.Sort(vols)
		if files := listDir(t, pool); !slices.Equal(vols, files) && !(len(vols) == 0 && len(files) == 0) {
			t.Errorf("vol-list = %v, files = %v", vols, files)
		}
	}

	virsh("pool-define-as", "full", "dir", "--target", pool)
	virsh("pool-build", "full")
	virsh("pool-start", "full")

	wantFail("create", "vol-create-as", "full", "big.img", "32M", "--allocation", "32M", "--format", "raw")
	noFile("big.img")
	checkAccounting()

	virsh("vol-create-as", "full", "src.img", "8M", "--allocation", "8M", "--format", "raw")
	virsh("vol-create-as", "full", "r.img", "1M", "--allocation", "1M", "--format", "raw")
	// The daemon's figures are fresh: its own admission check may answer
	// first, which is as good as the ENOSPC behind it.
	wantFail("clone", "vol-clone", "src.img", "copy.img", "--pool", "full")
	noFile("copy.img")
	wantFail("resize", "vol-resize", "r.img", "12M", "--allocate", "--pool", "full")
	if st, err := os.Stat(filepath.Join(pool, "r.img")); err != nil || st.Size() != 1<<20 {
		t.Errorf("r.img after the failed resize: %v, %v; want 1 MiB", st, err)
	}
	checkAccounting()

	virsh("vol-delete", "src.img", "--pool", "full")
	virsh("vol-create-as", "full", "up.img", "32M", "--allocation", "0", "--format", "raw")
	data := make([]byte, 24<<20)
	for i := range data {
		data[i] = byte(i%251 + 1)
	}
	src := filepath.Join(d.Root, "upload.bin")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	wantFail("upload", "vol-upload", "up.img", src, "--pool", "full")
	checkAccounting()
	if _, errOut, code := d.Virsh("vol-info", "up.img", "--pool", "full"); code != 0 {
		t.Errorf("vol-info of the volume whose upload failed: %s", errOut)
	}
}
