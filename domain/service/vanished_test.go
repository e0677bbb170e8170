package service_test

import (
	"context"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/domain/service"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// goneBackend reports one volume as removed behind the daemon's back, as the
// logical backend does for an LV that lvs no longer shows.
type goneBackend struct {
	*testkit.MemoryBackend
	gone string
}

func (g *goneBackend) RefreshVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef) error {
	if vol.Name == g.gone {
		return domain.Errorf(domain.KindNoStorageVol, "no storage vol with matching name '%s'", vol.Name)
	}
	return g.MemoryBackend.RefreshVol(ctx, pool, vol)
}

func TestVolumeGoneBehindOurBackIsForgotten(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	mem := testkit.NewMemoryBackend(10 * gib)
	b := &goneBackend{MemoryBackend: mem}
	svc, err := service.New(service.Config{}, []ports.PoolBackend{b}, testkit.FakeCodec{}, testkit.NewMemoryStore(), &testkit.RecordingSink{}, testLog())
	must(t, err)
	must(t, svc.Start(ctx))
	h, err := svc.PoolCreateXML(ctx, testkit.PoolXML(dirDef("p", 1)), domain.PoolCreateWithBuild)
	must(t, err)
	for _, n := range []string{"a", "b"} {
		_, err := svc.VolCreateXML(ctx, h, rawVol(n, gib), 0)
		must(t, err)
	}
	b.gone = "a"
	_, err = svc.VolGetInfo(ctx, domain.VolHandle{Pool: "p", Name: "a"}, 0)
	if domain.KindOf(err) != domain.KindNoStorageVol {
		t.Fatalf("info of a vanished volume: %v", err)
	}
	vols, err := svc.PoolListAllVolumes(ctx, h, 0)
	must(t, err)
	if len(vols) != 1 || vols[0].Name != "b" {
		t.Errorf("volumes after one vanished: %+v, want only b", vols)
	}
	if _, err := svc.VolLookupByName(ctx, h, "a"); domain.KindOf(err) != domain.KindNoStorageVol {
		t.Errorf("lookup of the vanished volume: %v", err)
	}
}
