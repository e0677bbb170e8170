package harness

import (
	"context"
	"strconv"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/adapters/osexec"
	"github.com/virtstoraged-go/virtstoraged/adapters/scsi"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/backendtest"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// SCSIHosts makes SCSI hosts and their LUNs behind the backend's back.
type SCSIHosts interface {
	// NewHost adds a SCSI host and returns its name (hostN).
	NewHost() (string, error)
	// AddLUN gives host a new LUN and returns its number; the kernel sees
	// it at the host's next scan.
	AddLUN(host string) (int, error)
	// RemoveLUN takes LUN lun away from host and from the kernel.
	RemoveLUN(host string, lun int) error
}

// SCSIEnv is where scsi pools find their hosts.
type SCSIEnv struct {
	// Sysfs is the sysfs tree the backend reads ("/sys" in the lab).
	Sysfs string
	Hosts SCSIHosts
	// LUNSize is every LUN's size: the hosts make them, not the suite.
	LUNSize uint64
}

// SCSI is the harness of the scsi backend over real SCSI hosts (the lab's
// scsi_debug): each pool is a host of its own given by name, its volumes
// the host's LUNs. The type makes no volumes and has no build or delete
// step; a pool is active while its host exists.
func SCSI(newEnv func(t *testing.T) (SCSIEnv, error)) backendtest.HarnessMaker {
	return withEnv(newEnv, func(t *testing.T, env SCSIEnv) backendtest.Harness {
		log := testkit.QuietLog()
		return &scsiHarness{env: env, b: scsi.New(scsi.NewLUNScanner(osexec.New(log), env.Sysfs, "", "", log))}
	})
}

type scsiHarness struct {
	env SCSIEnv
	b   *scsi.Backend
}

func (h *scsiHarness) Backend() ports.PoolBackend { return h.b }

func (h *scsiHarness) Capabilities() backendtest.Capabilities {
	return backendtest.Capabilities{
		Type: domain.PoolSCSI, Presence: backendtest.PresentWhenBuilt,
		Ops:        backendtest.WipeVol | backendtest.UploadVol | backendtest.DownloadVol,
		Allocation: backendtest.Fixed, Isolated: true, VolumeSize: h.env.LUNSize,
	}
}

func (h *scsiHarness) MakePool(ctx context.Context, name string) (*domain.PoolDef, error) {
	host, err := h.env.Hosts.NewHost()
	if err != nil {
		return nil, err
	}
	return &domain.PoolDef{Type: domain.PoolSCSI, Name: name,
		Source: domain.PoolSource{Adapter: &domain.SourceAdapter{Type: domain.AdapterSCSIHost, Name: host}},
		// /dev: scsi_debug's LUNs have no by-path links (no transport to
		// name), so they are listed by their /dev/sdX nodes.
		Target: domain.PoolTarget{Path: "/dev", Perms: domain.UnsetPerms()}}, nil
}

// AddVolume adds a LUN of the host's size (size is the suite's VolumeSize,
// which Capabilities set to it).
func (h *scsiHarness) AddVolume(ctx context.Context, pool *domain.PoolDef, name string, size uint64) (string, error) {
	lun, err := h.env.Hosts.AddLUN(pool.Source.Adapter.Name)
	if err != nil {
		return "", err
	}
	return "unit:0:0:" + strconv.Itoa(lun), nil
}

func (h *scsiHarness) RemoveVolume(ctx context.Context, pool *domain.PoolDef, name string) error {
	lun, err := UnitLUN(name)
	if err != nil {
		return err
	}
	return h.env.Hosts.RemoveLUN(pool.Source.Adapter.Name, lun)
}
