package faults_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/adapters/dir"
	"github.com/virtstoraged-go/virtstoraged/adapters/osexec"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// smallFS names the filesystems the disk-full tests run out of space on: a
// 16 MiB tmpfs, and a 16 MiB ext4 on a loop device, whose delayed allocation
// and journal make ENOSPC come at other moments than on tmpfs.
var smallFS = []string{"tmpfs", "ext4-loop"}

// mountSmallFS mounts a 16 MiB filesystem of kind on mnt until the test ends,
// or skips the test where that cannot be done.
func mountSmallFS(t *testing.T, kind, mnt string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("faults: disk-full tests mount a filesystem and need root (CI runs as root)")
	}
	switch kind {
	case "tmpfs":
		if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=16m"); err != nil {
			t.Skipf("faults: cannot mount a tmpfs (%v): no disk-full test here", err)
		}
	case "ext4-loop":
		mkfs := testkit.RequireTool(t, "mkfs.ext4")
		img := filepath.Join(t.TempDir(), "fs.img")
		makeFile(t, img, 16<<20)
		// No blocks reserved for root: the daemon runs as root, and the test
		// wants the space it measures to be the space there is.
		if out, err := exec.Command(mkfs, "-q", "-F", "-m", "0", img).CombinedOutput(); err != nil {
			t.Fatalf("mkfs.ext4: %v: %s", err, out)
		}
		if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
			t.Skipf("faults: cannot loop-mount an ext4 image (%v: %s): no disk-full test here", err, out)
		}
	default:
		t.Fatalf("unknown filesystem kind %q", kind)
	}
	// A lazy unmount: a failed test may leave a file open. mount -o loop
	// frees the loop device with the last reference.
	t.Cleanup(func() { _ = unix.Unmount(mnt, unix.MNT_DETACH) })
}

// fullRig is a running dir pool on its own small filesystem, where running
// out of space is a real ENOSPC; filler takes space behind the service's
// back, so that its ledger still believes there is room and the backend is
// the one to hit the wall.
type fullRig struct {
	*dirRig
	mnt    string
	filler string
}

func newFullRig(t *testing.T, kind string) *fullRig {
	t.Helper()
	mnt := t.TempDir()
	mountSmallFS(t, kind, mnt)
	path := filepath.Join(mnt, "pool")
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	r := newRig(t, dir.New(osexec.New(testkit.QuietLog()), testkit.QuietLog()))
	dr := &dirRig{rig: r, path: path}
	dr.pool = dr.define(fmt.Sprintf(`<pool type='dir'><name>full</name><target><path>%s</path></target></pool>`, path))
	dr.start(dr.pool)
	return &fullRig{dirRig: dr, mnt: mnt, filler: filepath.Join(mnt, "filler")}
}

// onEachFS runs test on a fresh rig on each kind of small filesystem.
func onEachFS(t *testing.T, test func(t *testing.T, fr *fullRig)) {
	for _, kind := range smallFS {
		t.Run(kind, func(t *testing.T) { test(t, newFullRig(t, kind)) })
	}
}

// fill leaves about leave bytes free on the filesystem, written outside the
// pool. It writes in chunks and stops at ENOSPC: on ext4 the metadata of the
// filler itself takes some of the free space statfs reported.
func (fr *fullRig) fill(leave int64) {
	fr.t.Helper()
	var sfs unix.Statfs_t
	if err := unix.Statfs(fr.mnt, &sfs); err != nil {
		fr.t.Fatal(err)
	}
	free := int64(sfs.Bavail) * sfs.Bsize
	f, err := os.OpenFile(fr.filler, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		fr.t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for n := free - leave; n > 0; n -= int64(len(chunk)) {
		if _, err := f.Write(chunk[:min(n, int64(len(chunk)))]); err != nil {
			if errors.Is(err, unix.ENOSPC) {
				break
			}
			fr.t.Fatal(err)
		}
	}
	// Delayed allocation must not hand the space back to a later create.
	if err := f.Sync(); err != nil && !errors.Is(err, unix.ENOSPC) {
		fr.t.Fatal(err)
	}
}

func rawXML(name string, capMiB, allocMiB int) string {
	return fmt.Sprintf(`<volume><name>%s</name><capacity unit='MiB'>%d</capacity><allocation unit='MiB'>%d</allocation><target><format type='raw'/></target></volume>`, name, capMiB, allocMiB)
}

// checkAccounting refreshes and checks that pool-info is statvfs of the
// filesystem and the volumes are the files of the pool directory.
func (fr *fullRig) checkAccounting() {
	t := fr.t
	t.Helper()
	fr.checkDirConsistent()
	var sfs unix.Statfs_t
	if err := unix.Statfs(fr.path, &sfs); err != nil {
		t.Fatal(err)
	}
	bs := uint64(sfs.Frsize)
	want := domain.PoolInfo{State: domain.PoolRunning, Capacity: sfs.Blocks * bs, Available: sfs.Bfree * bs, Allocation: (sfs.Blocks - sfs.Bfree) * bs}
	if got := fr.info(fr.pool); got != want {
		t.Errorf("pool-info after refresh = %+v, statvfs says %+v", got, want)
	}
}

func (fr *fullRig) wantNoFile(name string) {
	fr.t.Helper()
	if _, err := os.Stat(filepath.Join(fr.path, name)); !errors.Is(err, os.ErrNotExist) {
		fr.t.Errorf("partial file %s left behind (stat: %v)", name, err)
	}
}

// TestDiskFullCreate creates fully allocated volumes that do not fit: once
// when the ledger knows (admission refuses) and once when it does not (the
// fallocate fails with ENOSPC).
func TestDiskFullCreate(t *testing.T) {
	onEachFS(t, func(t *testing.T, fr *fullRig) {
		_, err := fr.svc.VolCreateXML(fr.ctx, fr.pool, rawXML("big.img", 32, 32), 0)
		if err == nil {
			t.Fatal("a 32 MiB volume was created on a 16 MiB filesystem")
		}
		fr.wantNoFile("big.img")
		fr.refresh(fr.pool)
		fr.fill(4 << 20)
		_, err = fr.svc.VolCreateXML(fr.ctx, fr.pool, rawXML("big.img", 8, 8), 0)
		wantErrMentions(t, err, "big.img")
		t.Logf("create with a stale ledger: %v", err)
		fr.wantNoFile("big.img")
		fr.checkAccounting()
	})
}

// TestDiskFullClone clones a volume when there is no room for the copy.
func TestDiskFullClone(t *testing.T) {
	onEachFS(t, func(t *testing.T, fr *fullRig) {
		if _, err := fr.svc.VolCreateXML(fr.ctx, fr.pool, rawXML("src.img", 6, 6), 0); err != nil {
			t.Fatal(err)
		}
		fr.refresh(fr.pool)
		fr.fill(2 << 20)
		src := fr.vol(fr.pool, "src.img")
		_, err := fr.svc.VolCreateXMLFrom(fr.ctx, fr.pool, rawXML("copy.img", 6, 6), src, 0)
		wantErrMentions(t, err, "copy.img")
		fr.wantNoFile("copy.img")
		fr.checkAccounting()
	})
}

// TestDiskFullResize grows a volume with --allocate beyond the free space:
// the file must be back at its old size.
func TestDiskFullResize(t *testing.T) {
	onEachFS(t, func(t *testing.T, fr *fullRig) {
		if _, err := fr.svc.VolCreateXML(fr.ctx, fr.pool, rawXML("r.img", 1, 1), 0); err != nil {
			t.Fatal(err)
		}
		fr.refresh(fr.pool)
		fr.fill(2 << 20)
		err := fr.svc.VolResize(fr.ctx, fr.vol(fr.pool, "r.img"), 12<<20, domain.VolResizeAllocate)
		if err == nil {
			t.Fatal("resize --allocate beyond the free space succeeded")
		}
		st, serr := os.Stat(filepath.Join(fr.path, "r.img"))
		if serr != nil {
			t.Fatal(serr)
		}
		if st.Size() != 1<<20 {
			t.Errorf("size after the failed resize = %d, want %d", st.Size(), 1<<20)
		}
		info, ierr := fr.svc.VolGetInfo(fr.ctx, fr.vol(fr.pool, "r.img"), 0)
		if ierr != nil {
			t.Fatal(ierr)
		}
		if info.Capacity != 1<<20 {
			t.Errorf("vol-info capacity after the failed resize = %d, want %d", info.Capacity, 1<<20)
		}
		fr.checkAccounting()
	})
}

// TestDiskFullUpload uploads more data than fits into a sparse volume: the
// stream must fail, and a refresh must then account for what was written.
func TestDiskFullUpload(t *testing.T) {
	onEachFS(t, func(t *testing.T, fr *fullRig) {
		if _, err := fr.svc.VolCreateXML(fr.ctx, fr.pool, rawXML("up.img", 32, 0), 0); err != nil {
			t.Fatal(err)
		}
		fr.refresh(fr.pool)
		w, err := fr.svc.VolUpload(fr.ctx, fr.vol(fr.pool, "up.img"), 0, 24<<20, 0)
		if err != nil {
			t.Fatal(err)
		}
		chunk := make([]byte, 1<<20)
		for i := range chunk {
			chunk[i] = byte(i*7 + 1)
		}
		var werr error
		for written := 0; written < 24<<20 && werr == nil; written += len(chunk) {
			_, werr = w.Write(chunk)
		}
		if werr == nil {
			werr = w.Finish(context.Background())
		} else {
			w.Abort()
		}
		if werr == nil {
			t.Fatal("uploading 24 MiB into a 16 MiB filesystem succeeded")
		}
		if !errors.Is(werr, unix.ENOSPC) && !containsAny(werr.Error(), "No space left", "space") {
			t.Errorf("upload error %q does not say the disk is full", werr)
		}
		fr.checkAccounting()
		if got := fr.vols(fr.pool); !slices.Equal(got, []string{"up.img"}) {
			t.Errorf("vol-list = %v", got)
		}
	})
}

func containsAny(s string, subs ...string) bool {
	return slices.ContainsFunc(subs, func(sub string) bool { return strings.Contains(s, sub) })
}

// TestDiskFullNativeQcow2 creates a qcow2 volume (written in process, without
// qemu-img) on a filesystem with no room left: the create must fail and
// leave no partial image.
func TestDiskFullNativeQcow2(t *testing.T) {
	onEachFS(t, func(t *testing.T, fr *fullRig) {
		fr.refresh(fr.pool)
		fr.fill(0)
		_, err := fr.svc.VolCreateXML(fr.ctx, fr.pool, `<volume><name>q.qcow2</name><capacity unit='GiB'>1</capacity><target><format type='qcow2'/></target></volume>`, 0)
		wantErrMentions(t, err, "q.qcow2")
		fr.wantNoFile("q.qcow2")
		fr.checkAccounting()
	})
}
