package harness

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/adapters/osexec"
	"github.com/virtstoraged-go/virtstoraged/adapters/rbd"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/backendtest"
	"github.com/virtstoraged-go/virtstoraged/internal/cephlab"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// RBD is the harness of the rbd backend on a running Ceph cluster (the
// package's internal/cephlab one): each pool is a Ceph pool of its own,
// made for the test and removed at its end, which the backend reaches as
// the cephx user with key (base64), looked up as a libvirt secret would be.
// Images are thin and share the cluster's space, so the pools are not
// isolated; libvirt's rbd backend has no build, delete, discovery or
// shrink, and takes no resize flag.
func RBD(c *cephlab.Cluster, user, key string) backendtest.HarnessMaker {
	return func(ctx context.Context, t *testing.T) (backendtest.Harness, error) {
		log := testkit.QuietLog()
		b := rbd.New(osexec.New(log), rbd.Config{Timeout: 10 * time.Second, Secrets: cephKey(key), KeyDir: t.TempDir()}, log)
		return &rbdHarness{t: t, c: c, b: b, user: user}, nil
	}
}

// cephKey is a secret driver holding one key.
type cephKey string

func (k cephKey) CephKey(ctx context.Context, auth domain.PoolAuth) ([]byte, error) {
	return base64.StdEncoding.DecodeString(string(k))
}

type rbdHarness struct {
	t    *testing.T
	c    *cephlab.Cluster
	b    *rbd.Backend
	user string
}

func (h *rbdHarness) Backend() ports.PoolBackend { return h.b }

func (h *rbdHarness) Capabilities() backendtest.Capabilities {
	return backendtest.Capabilities{
		Type: domain.PoolRBD, Presence: backendtest.PresentWhenBuilt,
		Ops: backendtest.CreateVol | backendtest.DeleteVol | backendtest.ResizeVol | backendtest.CloneVol |
			backendtest.WipeVol | backendtest.TrimVol | backendtest.UploadVol | backendtest.DownloadVol,
		Allocation: backendtest.Thin,
	}
}

func (h *rbdHarness) MakePool(ctx context.Context, name string) (*domain.PoolDef, error) {
	cephPool := "conf-" + name
	// One placement group: a pool of a few small images needs no more, and
	// it is the pool's creation (peering) that takes the suite's time.
	if _, err := h.c.Ceph(ctx, "osd", "pool", "create", cephPool, "1", "1"); err != nil {
		return nil, err
	}
	h.t.Cleanup(func() {
		_, _ = h.c.Ceph(context.Background(), "osd", "pool", "rm", cephPool, cephPool, "--yes-i-really-really-mean-it")
	})
	if _, err := h.c.Rbd(ctx, "pool", "init", cephPool); err != nil {
		return nil, err
	}
	host, port, _ := strings.Cut(h.c.MonHost, ":")
	p, err := strconv.Atoi(port)
	if err != nil {
		return nil, err
	}
	var u domain.UUID
	if _, err := rand.Read(u[:]); err != nil {
		return nil, err
	}
	// <refresh><volume allocation='default'/>: an image's allocation is
	// what is written (rbd du), not libvirt's default of its capacity.
	return &domain.PoolDef{
		Type: domain.PoolRBD, Name: name, UUID: u, RefreshVolAllocation: "default",
		Source: domain.PoolSource{
			Hosts: []domain.SourceHost{{Name: host, Port: p}}, Name: cephPool,
			Auth: &domain.PoolAuth{Type: "ceph", Username: h.user, SecretUsage: "client." + h.user + " secret"},
		},
	}, nil
}

func (h *rbdHarness) AddVolume(ctx context.Context, pool *domain.PoolDef, name string, size uint64) (string, error) {
	// rbd's --size counts MiB without a unit; the suite's sizes are whole MiB.
	_, err := h.c.Rbd(ctx, "create", "--size", strconv.FormatUint((size+(1<<20)-1)>>20, 10)+"M", pool.Source.Name+"/"+name)
	return name, err
}

func (h *rbdHarness) RemoveVolume(ctx context.Context, pool *domain.PoolDef, name string) error {
	_, err := h.c.Rbd(ctx, "rm", "--no-progress", pool.Source.Name+"/"+name)
	return err
}
