package faults_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/adapters/dir"
	"github.com/virtstoraged-go/virtstoraged/adapters/osexec"
	"github.com/virtstoraged-go/virtstoraged/domain"
)

// fullRig is a running dir pool on its own 16 MiB tmpfs, where running out
// of space is a real ENOSPC; filler takes space behind the service's back,
// so that its ledger still believes there is room and the backend is the
// one to hit the wall.
type fullRig struct {
	*dirRig
	mnt    string
	filler string
}

func newFullRig(t *testing.T) *fullRig {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("faults: disk-full tests mount a tmpfs and need root (CI runs as root)")
	}
	mnt := t.TempDir()
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=16m"); err != nil {
		t.Skipf("faults: cannot mount a tmpfs (%v): no disk-full test here", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(mnt, unix.MNT_DETACH) })
	path := filepath.Join(mnt, "pool")
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	r := newRig(t, dir.New(osexec.New(quietLog()), quietLog()))
	dr := &dirRig{rig: r, path: path}
	dr.pool = dr.define(fmt.Sprintf(`<pool type='dir'><name>full</name><target><path>%s</path></target></pool>`, path))
	dr.start(dr.pool)
	return &fullRig{dirRig: dr, mnt: mnt, filler: filepath.Join(mnt, "filler")}
}

// fill leaves about leave bytes free on the tmpfs, written outside the pool.
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
	if n := free - leave; n > 0 {
		if _, err := f.Write(make([]byte, n)); err != nil {
			fr.t.Fatal(err)
		}
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
	fr := newFullRig(t)
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
}

// TestDiskFullClone clones a volume when there is no room for the copy.
func TestDiskFullClone(t *testing.T) {
	fr := newFullRig(t)
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
}

// TestDiskFullResize grows a volume with --allocate beyond the free space:
// the file must be back at its old size.
func TestDiskFullResize(t *testing.T) {
	fr := newFullRig(t)
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
}

// TestDiskFullUpload uploads more data than fits into a sparse volume: the
// stream must fail, and a refresh must then account for what was written.
func TestDiskFullUpload(t *testing.T) {
	fr := newFullRig(t)
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
}

func containsAny(s string, subs ...string) bool {
	return slices.ContainsFunc(subs, func(sub string) bool { return strings.Contains(s, sub) })
}

// TestDiskFullNativeQcow2 creates a qcow2 volume (written in process, without
// qemu-img) on a filesystem with no room left: the create must fail and
// leave no partial image.
func TestDiskFullNativeQcow2(t *testing.T) {
	fr := newFullRig(t)
	fr.refresh(fr.pool)
	fr.fill(0)
	_, err := fr.svc.VolCreateXML(fr.ctx, fr.pool, `<volume><name>q.qcow2</name><capacity unit='GiB'>1</capacity><target><format type='qcow2'/></target></volume>`, 0)
	wantErrMentions(t, err, "q.qcow2")
	fr.wantNoFile("q.qcow2")
	fr.checkAccounting()
}
