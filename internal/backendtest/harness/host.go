package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// Devices hands out a block device for a new pool, the pool's to destroy
// until the test ends. LoopDevices serves the host; the lab passes its own,
// which clear the device it hands out.
type Devices func(t *testing.T) (string, error)

// LoopDevices hands out loop devices over fresh sparse images of size bytes,
// detached when the test ends. They need root; a test without it is skipped,
// and one as root (how CI runs) fails when no loop device can be attached,
// rather than pass by skipping.
func LoopDevices(size int64) Devices { return loopDevices(size) }

// loopDevices attaches with losetup's extra options opts.
func loopDevices(size int64, opts ...string) Devices {
	return func(t *testing.T) (string, error) {
		t.Helper()
		requireRoot(t, "loop devices")
		requireTools(t, "losetup")
		img := filepath.Join(t.TempDir(), "disk.img")
		f, err := os.Create(img)
		if err != nil {
			return "", err
		}
		err = f.Truncate(size)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return "", err
		}
		out, err := exec.Command("losetup", append(append([]string{"-f", "--show"}, opts...), img)...).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("harness: cannot attach a loop device as root: %v: %s", err, out)
		}
		dev := strings.TrimSpace(string(out))
		t.Cleanup(func() { detach(t, dev) })
		return dev, nil
	}
}

// detach detaches a loop device. The kernel may still hold it for a moment
// after the last umount or vgremove (its release is asynchronous), so the
// detach is tried again, for at most two seconds.
func detach(t *testing.T, dev string) {
	for i := 0; ; i++ {
		out, err := exec.Command("losetup", "-d", dev).CombinedOutput()
		if err == nil {
			return
		}
		if i == 20 {
			t.Errorf("harness: losetup -d %s: %v: %s", dev, err, out)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// requireRoot skips a test that needs root for what.
func requireRoot(t *testing.T, what string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("harness: %s need root (CI runs as root): skipping", what)
	}
}

// requireTools skips without the programs, or fails under CI, which has
// them all.
func requireTools(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			testkit.SkipOrFailInCI(t, fmt.Sprintf("harness: %s is not installed: skipping", n))
		}
	}
}
