package lab

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// bootBound bounds a test guest that should power off by itself: a boot
// takes 8-15 s on a loaded 2-core machine, the scripts below a second.
const bootBound = 3 * time.Minute

// requireHost skips unless this host can boot the lab (fails under CI).
func requireHost(t *testing.T) Image {
	t.Helper()
	if reason := unavailable(); reason != "" {
		if ciRequiresLab() {
			t.Fatalf("%s; CI=true, so this is a failure", reason)
		}
		t.Skip(reason)
	}
	img, err := sharedImage()
	if err != nil {
		t.Fatal(err)
	}
	return img
}

var (
	imageOnce sync.Once
	image     Image
	imageErr  error
)

func sharedImage() (Image, error) {
	imageOnce.Do(func() { image, imageErr = PrepareImage(CacheDir()) })
	return image, imageErr
}

// syncBuffer is a bytes.Buffer Run can write to while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestMachineRuns boots a guest with two disks and checks what a lab test
// relies on: the script's output and exit status come back, the disks are
// fresh and named by serial, udev runs, the host's files are there
// read-only under a writable overlay, the network is loopback only.
func TestMachineRuns(t *testing.T) {
	img := requireHost(t)
	t.Parallel()
	m := &Machine{Image: img, Dir: t.TempDir(), Disks: []int64{64 << 20, 1 << 30}}
	ctx, cancel := context.WithTimeout(context.Background(), bootBound)
	defer cancel()
	script := `set -e
echo "kernel $(uname -r)"
echo "lab0 $(readlink -f /dev/disk/by-id/virtio-lab0) $(blockdev --getsize64 /dev/disk/by-id/virtio-lab0)"
echo "lab1 $(readlink -f /dev/disk/by-id/virtio-lab1) $(blockdev --getsize64 /dev/disk/by-id/virtio-lab1)"
echo "zeroes $(head -c 1048576 /dev/vda | tr -d '\0' | wc -c)"
pgrep -x systemd-udevd >/dev/null && echo "udevd running"
test -x /usr/bin/qemu-system-x86_64 && echo "host files"
touch /usr/lab-overlay-write && echo "root writable"
grep -q ' /lab 9p ' /proc/mounts && echo "lab share"
ls /sys/class/net | tr '\n' ' '; echo
exit 3
`
	var out syncBuffer
	code, err := m.Run(ctx, script, &out)
	if err != nil {
		t.Fatalf("Run: %v\noutput:\n%s", err, out.String())
	}
	if code != 3 {
		t.Errorf("exit status %d, want 3", code)
	}
	for _, want := range []string{
		"kernel " + img.Kernel.Version + "\n",
		"lab0 /dev/vda 67108864\n",
		"lab1 /dev/vdb 1073741824\n",
		"zeroes 0\n",
		"udevd running\n",
		"host files\n",
		"root writable\n",
		"lab share\n",
		"\nlo \n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestMachineCrash: a guest whose kernel panics mid-run is reported as such,
// with the panic in the console tail.
func TestMachineCrash(t *testing.T) {
	img := requireHost(t)
	t.Parallel()
	m := &Machine{Image: img, Dir: t.TempDir()}
	ctx, cancel := context.WithTimeout(context.Background(), bootBound)
	defer cancel()
	var out syncBuffer
	code, err := m.Run(ctx, "echo before the crash; echo c >/proc/sysrq-trigger; echo after", &out)
	var ge *GuestError
	if !errors.As(err, &ge) {
		t.Fatalf("Run = %d, %v; want a GuestError\noutput:\n%s", code, err, out.String())
	}
	if !strings.Contains(ge.Reason, "without the command's exit status") || !strings.Contains(ge.Console, "Kernel panic") {
		t.Errorf("GuestError %q lacks the crash or its panic:\n%s", ge.Reason, ge.Console)
	}
	if !strings.Contains(out.String(), "before the crash") || strings.Contains(out.String(), "after") {
		t.Errorf("output %q, want what the script wrote before the crash only", out.String())
	}
}

// TestMachineBound: a guest still running at its bound is killed and
// reported with its console, whatever it was doing (here: still booting).
func TestMachineBound(t *testing.T) {
	img := requireHost(t)
	t.Parallel()
	m := &Machine{Image: img, Dir: t.TempDir()}
	// Far shorter than any boot: the kill comes while the kernel starts.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	// Run returns only once QEMU is reaped: were the kill lost, it would
	// wait out the sleep and the test binary's timeout would fail it.
	_, err := m.Run(ctx, "sleep 1000", &syncBuffer{})
	var ge *GuestError
	if !errors.As(err, &ge) || !strings.Contains(ge.Reason, "did not power off within its bound") {
		t.Fatalf("Run: %v, want a GuestError for the bound", err)
	}
}

// TestMachineSystemd boots a guest with systemd as PID 1 and checks what a
// test of units relies on: the script runs from a unit of a running system,
// its output and exit status come back, systemctl and the journal answer,
// socket activation and sd_notify work, and the disks still have their
// by-id links (udev's coldplug of block devices).
func TestMachineSystemd(t *testing.T) {
	img := requireHost(t)
	t.Parallel()
	m := &Machine{Image: img, Dir: t.TempDir(), Disks: []int64{64 << 20}, Systemd: true}
	// systemd's boot to basic.target adds half a minute to a stage-2 boot
	// on a quiet machine, and more than two on a loaded one.
	ctx, cancel := context.WithTimeout(context.Background(), 2*bootBound)
	defer cancel()
	script := `
echo "pid1 $(cat /proc/1/comm)"
echo "unit $(systemctl show -p Id --value lab-run.service) $(systemctl show -p ActiveState --value lab-run.service)"
echo "system $(systemctl is-system-running)"
echo "lab0 $(readlink -f /dev/disk/by-id/virtio-lab0)"
systemd-run --quiet --wait --service-type=notify -p TimeoutStartSec=60 \
	/bin/sh -c 'systemd-notify --ready --status=lab-ready' && echo "notify ok"
ls /sys/class/net | tr '\n' ' '; echo
exit 4
`
	var out syncBuffer
	code, err := m.Run(ctx, script, &out)
	if err != nil {
		t.Fatalf("Run: %v\noutput:\n%s", err, out.String())
	}
	if code != 4 {
		t.Errorf("exit status %d, want 4\noutput:\n%s", code, out.String())
	}
	for _, want := range []string{
		"pid1 systemd\n",
		"unit lab-run.service activating\n",
		// Nothing failed on the way: the masks cover what cannot run.
		"system starting\n",
		"lab0 /dev/vda\n",
		"notify ok\n",
		"\nlo \n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
