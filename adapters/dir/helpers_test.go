package dir_test

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/adapters/dir"
	"github.com/virtstoraged-go/virtstoraged/adapters/osexec"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

var update = flag.Bool("update", false, "rewrite the golden .argv files in testdata")

// newPool returns a dir pool over a fresh temp directory.
func newPool(t testing.TB) *domain.PoolDef {
	t.Helper()
	return &domain.PoolDef{Type: domain.PoolDir, Name: "p", Target: domain.PoolTarget{Path: t.TempDir(), Perms: domain.UnsetPerms()}}
}

// realBackend runs real commands.
func realBackend() *dir.Backend { return dir.New(osexec.New(testkit.QuietLog()), testkit.QuietLog()) }

// fakeBackend runs commands through a scripted fake.
func fakeBackend(t testing.TB) (*dir.Backend, *testkit.FakeRunner) {
	f := testkit.NewFakeRunner(t)
	return dir.New(f, testkit.QuietLog()), f
}

func requireQemuImg(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img not found (install qemu-utils): skipping a test that needs it")
	}
}

// newVol builds a volume definition for the pool, already prepared.
func newVol(t testing.TB, b *dir.Backend, pool *domain.PoolDef, name, format string, capacity uint64, mod func(*domain.VolDef)) *domain.VolDef {
	t.Helper()
	vol := &domain.VolDef{Name: name, Capacity: capacity, HasCapacity: true, Target: domain.VolTarget{Format: format, Perms: domain.UnsetPerms()}}
	if mod != nil {
		mod(vol)
	}
	if err := b.PrepareVol(pool, vol); err != nil {
		t.Fatalf("PrepareVol(%s): %v", name, err)
	}
	return vol
}

// touchLastArg makes the file a tool would have created at its last path
// argument.
func touchLastArg(cmd ports.Command) error {
	for i := len(cmd.Args) - 1; i >= 0; i-- {
		if filepath.IsAbs(cmd.Args[i]) {
			return os.WriteFile(cmd.Args[i], []byte("QFI\xfb"), 0o644)
		}
	}
	return nil
}

// checkGolden compares argv (with the pool dir shown as
// /var/lib/libvirt/images) with testdata/name.argv.
func checkGolden(t *testing.T, name, poolDir string, argvs [][]string) {
	t.Helper()
	testkit.CheckGoldenArgv(t, name, argvs, *update, poolDir, "/var/lib/libvirt/images")
}

func wantErrText(t *testing.T, err error, wantKind domain.Kind, want string) {
	t.Helper()
	testkit.WantErrText(t, err, wantKind, want)
}

// smallPool returns a pool on a 16 MiB tmpfs, so that out-of-space paths can
// be tested without filling the machine's disk. It needs root (CI has it).
func smallPool(t testing.TB) *domain.PoolDef {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root: skipping an out-of-space test")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=16m,mode=0755"); err != nil {
		t.Skipf("cannot mount a tmpfs (%v): skipping an out-of-space test", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return &domain.PoolDef{Type: domain.PoolDir, Name: "small", Target: domain.PoolTarget{Path: dir, Perms: domain.UnsetPerms()}}
}
