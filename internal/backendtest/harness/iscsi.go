package harness

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/adapters/iscsi"
	"github.com/virtstoraged-go/virtstoraged/adapters/osexec"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/backendtest"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// ISCSITargets makes iSCSI targets and their LUNs behind the backend's back,
// as a SAN's administrator would.
type ISCSITargets interface {
	// NewTarget serves a new target without LUNs, named after name, and
	// returns its portal's host and port and its IQN.
	NewTarget(name string) (host string, port int, iqn string, err error)
	// AddLUN gives target iqn a new LUN of size bytes and returns its
	// number.
	AddLUN(iqn string, size uint64) (int, error)
	// RemoveLUN takes LUN lun away from target iqn, and from the kernel
	// of a host logged in to it (an iSCSI rescan adds LUNs, never removes
	// them).
	RemoveLUN(iqn string, lun int) error
}

// ISCSIEnv is where iscsi pools find their targets.
type ISCSIEnv struct {
	// Sysfs is the sysfs tree the backend reads ("/sys" in the lab).
	Sysfs   string
	Targets ISCSITargets
}

// ISCSI is the harness of the iscsi backend over real targets (the lab's
// tgtd): each pool is a target of its own, its volumes the target's LUNs
// under /dev/disk/by-path. The type makes no volumes and has no build or
// delete step; a pool is active while its session is open. Every pool the
// harness made is logged out of when the test ends.
func ISCSI(newEnv func(t *testing.T) (ISCSIEnv, error)) backendtest.HarnessMaker {
	return withEnv(newEnv, func(t *testing.T, env ISCSIEnv) backendtest.Harness {
		log := testkit.QuietLog()
		h := &iscsiHarness{env: env, b: iscsi.New(osexec.New(log), iscsi.Config{SysfsRoot: env.Sysfs}, log)}
		t.Cleanup(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			for _, def := range h.pools {
				if err := h.b.StopPool(context.Background(), def); err != nil {
					t.Errorf("harness: logging out of %s: %v", def.Name, err)
				}
			}
		})
		return h
	})
}

type iscsiHarness struct {
	env   ISCSIEnv
	b     *iscsi.Backend
	mu    sync.Mutex
	pools []*domain.PoolDef
}

func (h *iscsiHarness) Backend() ports.PoolBackend { return h.b }

func (h *iscsiHarness) Capabilities() backendtest.Capabilities {
	return backendtest.Capabilities{
		Type: domain.PoolISCSI, Presence: backendtest.PresentWhenStarted, FindSources: true,
		Ops:        backendtest.WipeVol | backendtest.UploadVol | backendtest.DownloadVol,
		Allocation: backendtest.Fixed, Isolated: true,
	}
}

func (h *iscsiHarness) MakePool(ctx context.Context, name string) (*domain.PoolDef, error) {
	host, port, iqn, err := h.env.Targets.NewTarget(name)
	if err != nil {
		return nil, err
	}
	def := &domain.PoolDef{Type: domain.PoolISCSI, Name: name,
		Source: domain.PoolSource{Hosts: []domain.SourceHost{{Name: host, Port: port}}, Devices: []domain.SourceDevice{{Path: iqn}}},
		Target: domain.PoolTarget{Path: "/dev/disk/by-path", Perms: domain.UnsetPerms()}}
	h.mu.Lock()
	h.pools = append(h.pools, def)
	h.mu.Unlock()
	return def, nil
}

// AddVolume adds a LUN, which libvirt names unit:0:0:LUN (one bus, one
// target per session).
func (h *iscsiHarness) AddVolume(ctx context.Context, pool *domain.PoolDef, name string, size uint64) (string, error) {
	lun, err := h.env.Targets.AddLUN(pool.Source.Devices[0].Path, size)
	if err != nil {
		return "", err
	}
	return "unit:0:0:" + strconv.Itoa(lun), nil
}

func (h *iscsiHarness) RemoveVolume(ctx context.Context, pool *domain.PoolDef, name string) error {
	lun, err := UnitLUN(name)
	if err != nil {
		return err
	}
	return h.env.Targets.RemoveLUN(pool.Source.Devices[0].Path, lun)
}

// UnitLUN is the LUN of a volume libvirt names unit:B:T:LUN.
func UnitLUN(name string) (int, error) {
	i := strings.LastIndexByte(name, ':')
	if !strings.HasPrefix(name, "unit:") || i < 0 {
		return 0, fmt.Errorf("harness: %q is not a unit:B:T:L volume name", name)
	}
	return strconv.Atoi(name[i+1:])
}
