package harness

import (
	"context"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/adapters/fs"
	"github.com/virtstoraged-go/virtstoraged/adapters/osexec"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/backendtest"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// FS is the harness of the fs backend: each pool an ext4 filesystem the
// backend makes (build with NO_OVERWRITE) on a device from devices and
// mounts on a temporary directory, with the real mount, mkfs and blkid.
func FS(devices Devices) backendtest.HarnessMaker {
	return func(ctx context.Context, t *testing.T) (backendtest.Harness, error) {
		requireTools(t, "mkfs.ext4", "blkid", "mount", "umount")
		log := testkit.QuietLog()
		return &fsHarness{t: t, b: fs.New(osexec.New(log), "", log), devices: devices}, nil
	}
}

type fsHarness struct {
	fileVolumes
	t       *testing.T
	b       *fs.Backend
	devices Devices
}

func (h *fsHarness) Backend() ports.PoolBackend { return h.b }

func (h *fsHarness) Capabilities() backendtest.Capabilities {
	return backendtest.Capabilities{
		Type: domain.PoolFS, Build: true, BuildFlags: domain.PoolBuildNoOverwrite, Delete: true,
		Presence: backendtest.PresentWhenStarted, Ops: fileOps, Allocation: backendtest.Sparse, Isolated: true,
	}
}

func (h *fsHarness) MakePool(ctx context.Context, name string) (*domain.PoolDef, error) {
	dev, err := h.devices(h.t)
	if err != nil {
		return nil, err
	}
	target := filepath.Join(h.t.TempDir(), name)
	// Registered after the device, so it runs before its detach: never
	// leave a mount behind, whatever failed.
	h.t.Cleanup(func() { unmountIfMounted(target) })
	return &domain.PoolDef{Type: domain.PoolFS, Name: name,
		Source: domain.PoolSource{Devices: []domain.SourceDevice{{Path: dev}}, Format: "ext4"},
		Target: domain.PoolTarget{Path: target, Perms: domain.UnsetPerms()}}, nil
}

// unmountIfMounted detaches whatever is mounted on target: a filesystem is
// mounted there when target lies on another device than its parent.
func unmountIfMounted(target string) {
	var st, parent unix.Stat_t
	if unix.Stat(target, &st) == nil && unix.Stat(filepath.Dir(target), &parent) == nil && st.Dev != parent.Dev {
		_ = unix.Unmount(target, unix.MNT_DETACH)
	}
}
