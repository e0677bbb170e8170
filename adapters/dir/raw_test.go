package dir_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

func blocks(t testing.TB, path string) (size, allocated int64) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Size, st.Blocks * 512
}

// extents lists the data extents of a file with SEEK_DATA/SEEK_HOLE.
func extents(t testing.TB, path string) [][2]int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	var out [][2]int64
	for pos := int64(0); pos < st.Size(); {
		data, err := unix.Seek(int(f.Fd()), pos, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		hole, err := unix.Seek(int(f.Fd()), data, unix.SEEK_HOLE)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, [2]int64{data, hole})
		pos = hole
	}
	return out
}

func TestBuildRaw(t *testing.T) {
	t.Parallel()
	const mib = 1 << 20
	tests := []struct {
		name      string
		giveCap   uint64
		giveAlloc *uint64
		giveMode  int64
		wantAlloc int64
		wantMode  os.FileMode
	}{
		{name: "fully allocated by default", giveCap: 10 * mib, wantAlloc: 10 * mib, giveMode: -1, wantMode: 0o600},
		{name: "sparse", giveCap: 10 * mib, giveAlloc: new(uint64(0)), giveMode: -1, wantAlloc: 0, wantMode: 0o600},
		{name: "partial", giveCap: 10 * mib, giveAlloc: new(uint64(4 * mib)), giveMode: 0o640, wantAlloc: 4 * mib, wantMode: 0o640},
		{name: "zero capacity", giveCap: 0, giveMode: -1, wantAlloc: 0, wantMode: 0o600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, _ := fakeBackend(t)
			pool := newPool(t)
			vol := newVol(t, b, pool, "v.img", "", tt.giveCap, func(v *domain.VolDef) {
				v.Target.Perms.Mode = tt.giveMode
				if tt.giveAlloc != nil {
					v.HasAllocation, v.Allocation = true, *tt.giveAlloc
				}
			})
			if vol.Target.Format != "raw" || vol.Type != domain.VolFile || vol.Key != filepath.Join(pool.Target.Path, "v.img") || vol.Key != vol.Target.Path {
				t.Fatalf("prepared vol = %+v", vol)
			}
			if err := b.BuildVol(context.Background(), pool, vol, 0); err != nil {
				t.Fatal(err)
			}
			size, alloc := blocks(t, vol.Target.Path)
			if size != int64(tt.giveCap) {
				t.Errorf("size = %d, want %d", size, tt.giveCap)
			}
			if alloc != tt.wantAlloc {
				t.Errorf("allocated = %d, want %d", alloc, tt.wantAlloc)
			}
			st, _ := os.Stat(vol.Target.Path)
			if st.Mode().Perm() != tt.wantMode {
				t.Errorf("mode = %o, want %o", st.Mode().Perm(), tt.wantMode)
			}
			// Refresh reads the same figures back.
			got := &domain.VolDef{Name: vol.Name, Target: domain.VolTarget{Path: vol.Target.Path}}
			if err := b.RefreshVol(context.Background(), pool, got); err != nil {
				t.Fatal(err)
			}
			if got.Capacity != tt.giveCap || got.Allocation != uint64(tt.wantAlloc) || got.Physical != tt.giveCap || got.Target.Format != "raw" {
				t.Errorf("refreshed = cap %d alloc %d phys %d fmt %s", got.Capacity, got.Allocation, got.Physical, got.Target.Format)
			}
		})
	}
}

func TestBuildRawErrors(t *testing.T) {
	t.Parallel()
	b, _ := fakeBackend(t)
	pool := newPool(t)
	ctx := context.Background()

	vol := newVol(t, b, pool, "a", "raw", 1024, nil)
	wantErrText(t, b.BuildVol(ctx, pool, vol, domain.VolCreatePreallocMetadata), domain.KindConfigUnsupported,
		"unsupported configuration: metadata preallocation is not supported for raw volumes")

	vol.Backing = &domain.BackingStore{Path: "/etc/hostname"}
	wantErrText(t, b.BuildVol(ctx, pool, vol, 0), domain.KindNoSupport,
		"this function is not supported by the connection driver: backing storage not supported for raw volumes")
	vol.Backing = nil

	if err := b.BuildVol(ctx, pool, vol, 0); err != nil {
		t.Fatal(err)
	}
	again := &domain.VolDef{Name: "a", Capacity: 1, HasCapacity: true, Target: domain.VolTarget{Perms: domain.UnsetPerms()}}
	wantErrText(t, b.PrepareVol(pool, again), domain.KindOperationInvalid,
		"Requested operation is not valid: volume target path '"+vol.Target.Path+"' already exists")

	bad := &domain.VolDef{Name: "a/b"}
	wantErrText(t, b.PrepareVol(pool, bad), domain.KindOperationInvalid,
		"Requested operation is not valid: volume name 'a/b' cannot contain '/'")
	for _, name := range []string{".", ".."} {
		wantErrText(t, b.PrepareVol(pool, &domain.VolDef{Name: name}), domain.KindOperationInvalid,
			"Requested operation is not valid: volume target path '"+pool.Target.Path+"/"+name+"' already exists")
	}
	wantErrText(t, b.PrepareVol(pool, &domain.VolDef{Name: "x", Target: domain.VolTarget{Format: "bogus"}}), domain.KindConfigUnsupported,
		"unsupported configuration: unknown volume format type bogus")
}

func TestBuildRawNoSpace(t *testing.T) {
	t.Parallel()
	b, _ := fakeBackend(t)
	pool := smallPool(t)
	stats, _, err := b.RefreshPool(context.Background(), pool)
	if err != nil {
		t.Fatal(err)
	}
	huge := stats.Capacity * 2
	vol := newVol(t, b, pool, "big", "raw", huge, nil)
	err = b.BuildVol(context.Background(), pool, vol, 0)
	wantErrText(t, err, domain.KindSystem,
		"cannot allocate "+strconv.FormatUint(huge, 10)+" bytes in file '"+vol.Target.Path+"': No space left on device")
	var de *domain.Error
	if errors.As(err, &de) && de.Errno != int32(syscall.ENOSPC) {
		t.Errorf("errno = %d", de.Errno)
	}
	if _, err := os.Stat(vol.Target.Path); !os.IsNotExist(err) {
		t.Errorf("partial file left behind: %v", err)
	}
}

// writeSparse makes a file of size bytes with data at the given offsets.
func writeSparse(t testing.TB, path string, size int64, chunks map[int64][]byte) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for off, data := range chunks {
		if _, err := f.WriteAt(data, off); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCloneRawKeepsHoles(t *testing.T) {
	t.Parallel()
	b, _ := fakeBackend(t)
	pool := newPool(t)
	ctx := context.Background()
	srcPath := filepath.Join(pool.Target.Path, "src")
	a, c := bytes.Repeat([]byte{'a'}, 300000), bytes.Repeat([]byte{'c'}, 100000)
	writeSparse(t, srcPath, 20<<20, map[int64][]byte{0: a, 8 << 20: c})
	src := &domain.VolDef{Name: "src", Target: domain.VolTarget{Path: srcPath}}
	if err := b.RefreshVol(ctx, pool, src); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		giveCap   uint64
		giveAlloc uint64
		wantSize  int64
		wantFull  bool
	}{
		{name: "sparse clone", giveCap: 0, giveAlloc: 0, wantSize: 20 << 20},
		{name: "bigger capacity", giveCap: 30 << 20, giveAlloc: 0, wantSize: 30 << 20},
		{name: "allocated clone", giveCap: 0, giveAlloc: 20 << 20, wantSize: 20 << 20, wantFull: true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vol := newVol(t, b, pool, "clone"+strconv.Itoa(i), "raw", tt.giveCap, func(v *domain.VolDef) {
				v.HasAllocation, v.Allocation = true, tt.giveAlloc
			})
			if err := b.BuildVolFrom(ctx, pool, vol, pool, src, 0); err != nil {
				t.Fatal(err)
			}
			size, alloc := blocks(t, vol.Target.Path)
			if size != tt.wantSize {
				t.Errorf("size = %d, want %d", size, tt.wantSize)
			}
			got, err := os.ReadFile(vol.Target.Path)
			if err != nil {
				t.Fatal(err)
			}
			want := make([]byte, tt.wantSize)
			copy(want, a)
			copy(want[8<<20:], c)
			if !bytes.Equal(got, want) {
				t.Error("clone content differs from source")
			}
			if tt.wantFull {
				if alloc < 20<<20 {
					t.Errorf("allocated = %d, want the full 20 MiB", alloc)
				}
				return
			}
			if alloc > 1<<20 {
				t.Errorf("allocated = %d: holes were filled", alloc)
			}
			ext := extents(t, vol.Target.Path)
			if len(ext) != 2 || ext[0][0] != 0 || ext[1][0] > 8<<20 || ext[1][1] < 8<<20+100000 {
				t.Errorf("data extents = %v", ext)
			}
		})
	}
}

func TestCloneReflink(t *testing.T) {
	t.Parallel()
	b, _ := fakeBackend(t)
	pool := newPool(t)
	ctx := context.Background()
	srcPath := filepath.Join(pool.Target.Path, "src")
	writeSparse(t, srcPath, 1<<20, map[int64][]byte{0: []byte("hello")})
	src := &domain.VolDef{Name: "src", Target: domain.VolTarget{Path: srcPath}}
	if err := b.RefreshVol(ctx, pool, src); err != nil {
		t.Fatal(err)
	}
	vol := newVol(t, b, pool, "clone", "raw", 2<<20, nil)
	err := b.BuildVolFrom(ctx, pool, vol, pool, src, domain.VolCreateReflink)
	if err != nil {
		// ext4 and tmpfs cannot share extents: libvirt's error, and no file left.
		want := "failed to clone files from '" + srcPath + "': "
		if domain.KindOf(err) != domain.KindSystem || !strings.HasPrefix(err.Error(), want) {
			t.Fatalf("err = %v, want prefix %q", err, want)
		}
		if _, serr := os.Stat(vol.Target.Path); !os.IsNotExist(serr) {
			t.Errorf("failed clone left its file: %v", serr)
		}
		t.Skipf("filesystem has no reflink: %v", err)
	}
	got, _ := os.ReadFile(vol.Target.Path)
	if len(got) != 2<<20 || string(got[:5]) != "hello" {
		t.Errorf("reflinked clone has %d bytes starting %q", len(got), got[:5])
	}
}

func TestResizeRaw(t *testing.T) {
	t.Parallel()
	b, _ := fakeBackend(t)
	pool := newPool(t)
	ctx := context.Background()
	vol := newVol(t, b, pool, "r", "raw", 1<<20, func(v *domain.VolDef) { v.HasAllocation = true })
	if err := b.BuildVol(ctx, pool, vol, 0); err != nil {
		t.Fatal(err)
	}
	if err := b.ResizeVol(ctx, pool, vol, 4<<20, 0); err != nil {
		t.Fatal(err)
	}
	if size, alloc := blocks(t, vol.Target.Path); size != 4<<20 || alloc != 0 {
		t.Errorf("grown sparse: size %d alloc %d", size, alloc)
	}
	if err := b.ResizeVol(ctx, pool, vol, 8<<20, domain.VolResizeAllocate); err != nil {
		t.Fatal(err)
	}
	if size, alloc := blocks(t, vol.Target.Path); size != 8<<20 || alloc != 8<<20 {
		t.Errorf("grown with allocate: size %d alloc %d, want all 8 MiB allocated as libvirt does", size, alloc)
	}
	if err := b.ResizeVol(ctx, pool, vol, 2<<20, domain.VolResizeShrink); err != nil {
		t.Fatal(err)
	}
	if size, _ := blocks(t, vol.Target.Path); size != 2<<20 {
		t.Errorf("shrunk: size %d", size)
	}
	vol.Target.Format = "qcow2"
	wantErrText(t, b.ResizeVol(ctx, pool, vol, 8<<20, domain.VolResizeAllocate), domain.KindOperationUnsupported,
		"Operation not supported: preallocate is only supported for raw type volume")
}

func TestResizeRawNoSpaceGivesBack(t *testing.T) {
	t.Parallel()
	b, _ := fakeBackend(t)
	pool := smallPool(t)
	ctx := context.Background()
	stats, _, err := b.RefreshPool(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	vol := newVol(t, b, pool, "r", "raw", 1<<20, nil)
	if err := b.BuildVol(ctx, pool, vol, 0); err != nil {
		t.Fatal(err)
	}
	err = b.ResizeVol(ctx, pool, vol, stats.Capacity*2, domain.VolResizeAllocate)
	wantErrText(t, err, domain.KindSystem, "Failed to pre-allocate space for file '"+vol.Target.Path+"': No space left on device")
	if size, alloc := blocks(t, vol.Target.Path); size != 1<<20 || alloc > 2<<20 {
		t.Errorf("after failed allocate: size %d alloc %d, want the old file back", size, alloc)
	}
}

func TestWipe(t *testing.T) {
	t.Parallel()
	b, f := fakeBackend(t)
	pool := newPool(t)
	ctx := context.Background()

	full := newVol(t, b, pool, "full", "raw", 3<<20, nil)
	if err := b.BuildVol(ctx, pool, full, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full.Target.Path, bytes.Repeat([]byte{0xff}, 3<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := b.WipeVol(ctx, pool, full, domain.WipeZero, 0); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(full.Target.Path)
	if len(got) != 3<<20 || !bytes.Equal(got, make([]byte, 3<<20)) {
		t.Error("zero wipe left data behind")
	}
	if _, alloc := blocks(t, full.Target.Path); alloc < 3<<20 {
		t.Errorf("zero wipe of an allocated file punched it: alloc %d", alloc)
	}

	sparsePath := filepath.Join(pool.Target.Path, "sparse")
	writeSparse(t, sparsePath, 8<<20, map[int64][]byte{4 << 20: []byte("secret")})
	sparse := &domain.VolDef{Name: "sparse", Target: domain.VolTarget{Path: sparsePath}}
	if err := b.RefreshVol(ctx, pool, sparse); err != nil {
		t.Fatal(err)
	}
	if err := b.WipeVol(ctx, pool, sparse, domain.WipeZero, 0); err != nil {
		t.Fatal(err)
	}
	if size, alloc := blocks(t, sparsePath); size != 8<<20 || alloc != 0 {
		t.Errorf("sparse wipe: size %d alloc %d", size, alloc)
	}

	wantErrText(t, b.WipeVol(ctx, pool, full, domain.WipeTrim, 0), domain.KindArgumentUnsupported,
		"argument unsupported: 'trim' algorithm not supported")
	wantErrText(t, b.WipeVol(ctx, pool, full, domain.WipeZero, 1), domain.KindInvalidArg,
		"unsupported flags (0x1) in function virStorageBackendVolWipeLocal")

	f.Expect("scrub", "-f", "-p", "dod", full.Target.Path).Err = ports.ErrCommandNotFound
	wantErrText(t, b.WipeVol(ctx, pool, full, domain.WipeDOD, 0), domain.KindSystem,
		"Cannot find 'scrub' in path: No such file or directory")

	f.Expect("scrub", "-f", "-p", "random", full.Target.Path).Exit = 1
	err := b.WipeVol(ctx, pool, full, domain.WipeRandom, 0)
	if domain.KindOf(err) != domain.KindInternal || !strings.Contains(err.Error(), "unexpected exit status 1") {
		t.Errorf("scrub failure = %v", err)
	}

	d := newVol(t, b, pool, "d", "dir", 0, nil)
	if err := b.BuildVol(ctx, pool, d, 0); err != nil {
		t.Fatal(err)
	}
	wantErrText(t, b.WipeVol(ctx, pool, d, domain.WipeZero, 0), domain.KindSystem,
		"Failed to open storage volume with path '"+d.Target.Path+"': Is a directory")
	if err := b.DeleteVol(ctx, pool, d, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(d.Target.Path); !os.IsNotExist(err) {
		t.Errorf("dir volume still there: %v", err)
	}
}

func TestWipeRefusesImageFormats(t *testing.T) {
	t.Parallel()
	requireQemuImg(t)
	b := realBackend()
	pool := newPool(t)
	ctx := context.Background()
	vol := newVol(t, b, pool, "q.qcow2", "qcow2", 1<<20, nil)
	if err := b.BuildVol(ctx, pool, vol, 0); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(vol.Target.Path)
	// Even when the definition says raw, the header on disk decides.
	vol.Target.Format = "raw"
	wantErrText(t, b.WipeVol(ctx, pool, vol, domain.WipeZero, 0), domain.KindOperationUnsupported,
		"Operation not supported: wiping a qcow2 volume would destroy its format; delete and re-create the volume instead")
	after, _ := os.ReadFile(vol.Target.Path)
	if !bytes.Equal(before, after) {
		t.Error("refused wipe still changed the image")
	}
}

func TestDeleteVol(t *testing.T) {
	t.Parallel()
	b, _ := fakeBackend(t)
	pool := newPool(t)
	ctx := context.Background()
	vol := newVol(t, b, pool, "x", "raw", 10, nil)
	if err := b.BuildVol(ctx, pool, vol, 0); err != nil {
		t.Fatal(err)
	}
	wantErrText(t, b.DeleteVol(ctx, pool, vol, 2), domain.KindInvalidArg,
		"unsupported flags (0x2) in function virStorageBackendVolDeleteLocal")
	if err := b.DeleteVol(ctx, pool, vol, 0); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteVol(ctx, pool, vol, 0); err != nil {
		t.Errorf("deleting a vanished file: %v", err)
	}
}

func TestQcow2CreateReal(t *testing.T) {
	t.Parallel()
	requireQemuImg(t)
	b := realBackend()
	pool := newPool(t)
	ctx := context.Background()
	base := newVol(t, b, pool, "base.img", "raw", 1<<20, nil)
	if err := b.BuildVol(ctx, pool, base, 0); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		giveMod   func(*domain.VolDef)
		giveFlags uint32
		wantCap   uint64
		wantComp  string
		wantBack  string
	}{
		// libvirt shows no compat for version 2 (0.10) images.
		{name: "plain", wantCap: 1 << 30, wantComp: ""},
		{name: "v3 lazy", giveMod: func(v *domain.VolDef) { v.Target.Compat, v.Target.LazyRefcounts = "1.1", true }, wantCap: 1 << 30, wantComp: "1.1"},
		{name: "prealloc", giveFlags: domain.VolCreatePreallocMetadata, giveMod: func(v *domain.VolDef) {
			v.Capacity, v.HasAllocation = 8<<20, true
		}, wantCap: 8 << 20, wantComp: ""},
		{name: "backing", giveMod: func(v *domain.VolDef) {
			v.HasCapacity, v.Capacity = false, 0
			v.Backing = &domain.BackingStore{Path: base.Target.Path, Format: "raw"}
		}, wantCap: 1 << 20, wantComp: "", wantBack: base.Target.Path},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vol := newVol(t, b, pool, "q"+strconv.Itoa(i)+".qcow2", "qcow2", 1<<30, tt.giveMod)
			if err := b.BuildVol(ctx, pool, vol, tt.giveFlags); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("qemu-img", "check", vol.Target.Path).CombinedOutput(); err != nil {
				t.Fatalf("qemu-img check: %v\n%s", err, out)
			}
			got := &domain.VolDef{Name: vol.Name, Target: domain.VolTarget{Path: vol.Target.Path}}
			if err := b.RefreshVol(ctx, pool, got); err != nil {
				t.Fatal(err)
			}
			if got.Target.Format != "qcow2" || got.Capacity != tt.wantCap || got.Target.Compat != tt.wantComp {
				t.Errorf("refreshed: fmt %s cap %d compat %s", got.Target.Format, got.Capacity, got.Target.Compat)
			}
			if got.Target.Perms.Mode != 0o600 {
				t.Errorf("mode = %o", got.Target.Perms.Mode)
			}
			if tt.wantBack != "" && (got.Backing == nil || got.Backing.Path != tt.wantBack || got.Backing.Format != "raw") {
				t.Errorf("backing = %+v", got.Backing)
			}
		})
	}
	// A clone through qemu-img convert into raw keeps its source's size
	// when a larger one is asked, as in libvirt.
	src := &domain.VolDef{Name: "q0.qcow2", Target: domain.VolTarget{Path: filepath.Join(pool.Target.Path, "q0.qcow2")}}
	if err := b.RefreshVol(ctx, pool, src); err != nil {
		t.Fatal(err)
	}
	clone := newVol(t, b, pool, "clone.raw", "raw", 2<<30, nil)
	if err := b.BuildVolFrom(ctx, pool, clone, pool, src, 0); err != nil {
		t.Fatal(err)
	}
	if size, _ := blocks(t, clone.Target.Path); size != 1<<30 {
		t.Errorf("converted clone size %d, want the source's %d", size, 1<<30)
	}
	// A failing qemu-img leaves no file and reports the tool's stderr, the
	// tool named by its path as libvirt finds it.
	qemuPath, _ := exec.LookPath("qemu-img")
	bad := newVol(t, b, pool, "bad.qcow2", "qcow2", 1<<20, func(v *domain.VolDef) { v.Target.ClusterSize = 3 })
	err := b.BuildVol(ctx, pool, bad, 0)
	if domain.KindOf(err) != domain.KindInternal || !strings.Contains(err.Error(), "Child process ("+qemuPath+" create") {
		t.Errorf("err = %v", err)
	}
	if _, serr := os.Stat(bad.Target.Path); !os.IsNotExist(serr) {
		t.Errorf("failed create left a file: %v", serr)
	}
}

func TestWipeCancelled(t *testing.T) {
	t.Parallel()
	b, _ := fakeBackend(t)
	pool := newPool(t)
	path := filepath.Join(pool.Target.Path, "w")
	if err := os.WriteFile(path, bytes.Repeat([]byte{1}, 4<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	vol := fileVol(t, pool, "w")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.WipeVol(ctx, pool, vol, domain.WipeZero, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}
