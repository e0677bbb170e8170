package backende2e_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// TestMain puts the sbin directories on PATH: the storage tools live there,
// and both the tool checks and the daemon (which inherits this environment)
// must find them even when `go test` runs with a user's PATH.
func TestMain(m *testing.M) {
	if cmd := os.Getenv(lvmShimEnv); cmd != "" {
		// Run by an LVM wrapper: this process is an LVM command, not a test.
		os.Exit(lvmShimMain(cmd, os.Args[1:]))
	}
	path := os.Getenv("PATH")
	for _, d := range []string{"/usr/sbin", "/sbin"} {
		if !strings.Contains(":"+path+":", ":"+d+":") {
			path += ":" + d
		}
	}
	os.Setenv("PATH", path)
	os.Exit(m.Run())
}

// requireRoot skips a test that needs root for loop devices, mkfs, mount or
// LVM.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("backende2e: needs root (loop devices, mkfs, mount, LVM): skipping")
	}
}

// requireTools skips unless every program is installed.
func requireTools(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Skipf("backende2e: %s not installed (apt-get install libvirt-clients lvm2 e2fsprogs util-linux nfs-common): skipping", n)
		}
	}
}

// run runs a host command (not through the daemon) and returns its combined
// output and error.
func run(name string, args ...string) (string, error) {
	c := exec.Command(name, args...)
	c.Env = append(os.Environ(), "LC_ALL=C", "LVM_SUPPRESS_FD_WARNINGS=1")
	out, err := c.CombinedOutput()
	return string(out), err
}

// loopDevice attaches a fresh sparse image of size bytes to a free loop
// device, detached when the test ends (after any cleanup registered later,
// such as an unmount or a vgremove). Callers have passed requireRoot, and as
// root (how CI runs) a loop device that cannot be attached fails the test:
// skipping would let a broken runner pass.
func loopDevice(t *testing.T, size int64) string {
	t.Helper()
	return attachLoop(t, size)
}

// partitionedLoopDevice is loopDevice with partition scanning (losetup -P),
// so that partitions written to it get device nodes (loop3p1, ...).
func partitionedLoopDevice(t *testing.T, size int64) string {
	t.Helper()
	return attachLoop(t, size, "-P")
}

func attachLoop(t *testing.T, size int64, opts ...string) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out, err := run("losetup", append(append([]string{"-f", "--show"}, opts...), img)...)
	if err != nil {
		t.Fatalf("backende2e: cannot attach a loop device as root (%v: %s)", err, out)
	}
	dev := strings.TrimSpace(out)
	t.Cleanup(func() {
		// A device still busy (a mount left behind) needs a moment after
		// the umount cleanup; losetup -d then succeeds.
		for i := 0; ; i++ {
			out, err := run("losetup", "-d", dev)
			if err == nil {
				return
			}
			if i == 20 {
				t.Errorf("losetup -d %s: %v: %s", dev, err, out)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	return dev
}

// mount is one line of /proc/self/mountinfo.
type mount struct {
	Source, Target, FSType string
}

// mountOn returns what is mounted on target, if anything (the last mount
// wins, as it is the visible one).
func mountOn(t *testing.T, target string) (mount, bool) {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var found mount
	ok := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pre, post, cut := strings.Cut(sc.Text(), " - ")
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if !cut || len(fields) < 5 || len(tail) < 2 {
			continue
		}
		if fields[4] == target {
			found, ok = mount{Source: tail[1], Target: fields[4], FSType: tail[0]}, true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return found, ok
}

// startDaemon skips without virsh and starts a daemon.
func startDaemon(t *testing.T, opts testkit.DaemonOptions) *testkit.Daemon {
	t.Helper()
	requireTools(t, "virsh")
	return testkit.StartDaemon(t, opts)
}

// virshOK runs virsh, fails the test at once unless it exits 0, and returns
// stdout.
func virshOK(t *testing.T, d *testkit.Daemon, args ...string) string {
	t.Helper()
	return testkit.VirshOK(t, d, args...)
}

// virshErr runs virsh and checks that it fails with every want in stderr.
// It returns stderr.
func virshErr(t *testing.T, d *testkit.Daemon, wants []string, args ...string) string {
	t.Helper()
	return testkit.VirshErr(t, d, wants, args...)
}

// volRow is one row of `virsh vol-list --details`.
type volRow = testkit.VolRow

// volList runs `vol-list POOL --details` and parses its table, keyed by
// volume name.
func volList(t *testing.T, d *testkit.Daemon, pool string) map[string]volRow {
	t.Helper()
	return testkit.VolList(t, d, pool)
}

// info parses `virsh pool-info` or `vol-info` output into its fields.
func info(t *testing.T, d *testkit.Daemon, args ...string) map[string]string {
	t.Helper()
	return testkit.VirshInfo(t, d, args...)
}

// poolState is the State field of pool-info.
func poolState(t *testing.T, d *testkit.Daemon, pool string) string {
	t.Helper()
	return info(t, d, "pool-info", pool)["State"]
}
