package harness

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/adapters/dir"
	"github.com/virtstoraged-go/virtstoraged/adapters/osexec"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/backendtest"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// dirPoolSpace is the size of the tmpfs a root run gives the dir pools: four
// of the suite's volumes and room to spare.
const dirPoolSpace = "64m"

// Dir is the harness of the dir backend over a temporary directory. As root
// the directory is a tmpfs of its own, so that the pool is isolated (its
// figures move only with the suite, which may fill it); otherwise it lies on
// the host's disk and the suite checks only that its figures hold together.
func Dir() backendtest.HarnessMaker {
	return func(ctx context.Context, t *testing.T) (backendtest.Harness, error) {
		root := t.TempDir()
		isolated := false
		if os.Geteuid() == 0 {
			if err := unix.Mount("tmpfs", root, "tmpfs", unix.MS_NODEV|unix.MS_NOSUID, "size="+dirPoolSpace+",mode=0755"); err != nil {
				return nil, &os.PathError{Op: "mount tmpfs", Path: root, Err: err}
			}
			t.Cleanup(func() { _ = unix.Unmount(root, unix.MNT_DETACH) })
			isolated = true
		}
		log := testkit.QuietLog()
		return &dirHarness{b: dir.New(osexec.New(log), log), root: root, isolated: isolated}, nil
	}
}

type dirHarness struct {
	fileVolumes
	b        *dir.Backend
	root     string
	isolated bool
}

func (h *dirHarness) Backend() ports.PoolBackend { return h.b }

func (h *dirHarness) Capabilities() backendtest.Capabilities {
	return backendtest.Capabilities{
		Type: domain.PoolDir, Build: true, Delete: true, Presence: backendtest.PresentWhenBuilt,
		Ops: fileOps, Allocation: backendtest.Sparse, Isolated: h.isolated,
	}
}

func (h *dirHarness) MakePool(ctx context.Context, name string) (*domain.PoolDef, error) {
	return &domain.PoolDef{Type: domain.PoolDir, Name: name,
		Target: domain.PoolTarget{Path: filepath.Join(h.root, name), Perms: domain.UnsetPerms()}}, nil
}
