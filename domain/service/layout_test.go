package service_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/domain/service"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// tableBackend stands in for a partitioned disk: its refresh loses 1 MiB to
// alignment (so that the pool's figures cannot follow from the volumes'
// allocations alone), publishes a marker free extent, reads volume "a" with
// another allocation and without its format (as an extended partition's
// allocation grows with its logical partitions, and a table read knows no
// volume format), and, once renumber is set, lists volume "b" under the name
// "a" (as parted renumbers logical partitions after one before them is
// removed).
type tableBackend struct {
	*testkit.MemoryBackend
	renumber bool
}

var _ ports.LayoutSharingBackend = (*tableBackend)(nil)

func (b *tableBackend) VolumesShareLayout() bool { return true }

// RefreshVol keeps a volume's figures, as the disk backend does between
// reads of its table.
func (b *tableBackend) RefreshVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef) error {
	return nil
}

func (b *tableBackend) RefreshPool(ctx context.Context, def *domain.PoolDef) (domain.PoolStats, []*domain.VolDef, error) {
	stats, vols, err := b.MemoryBackend.RefreshPool(ctx, def)
	if err != nil {
		return stats, vols, err
	}
	stats.Available -= mib
	def.Source.Devices = []domain.SourceDevice{{Path: "/dev/sdz", FreeExtents: []domain.Extent{{Start: 1, End: stats.Available}}}}
	for _, v := range vols {
		switch {
		case b.renumber && v.Name == "b":
			v.Name = "a"
		case v.Name == "a":
			v.Allocation += mib
			v.Target.Format = ""
		}
	}
	return stats, vols, nil
}

func refreshes(calls []string) int {
	n := 0
	for _, c := range calls {
		if strings.HasPrefix(c, "RefreshPool ") {
			n++
		}
	}
	return n
}

// TestLayoutSharingBackendReread checks that a pool whose volumes share one
// partition table is re-read after each volume create (figures and free
// extents; the new volume keeps what its create measured) and delete (the
// volume list too), as libvirt's disk backend re-reads its table.
func TestLayoutSharingBackendReread(t *testing.T) {
	ctx := context.Background()
	b := &tableBackend{MemoryBackend: testkit.NewMemoryBackend(100 * mib)}
	svc, err := service.New(service.Config{}, []ports.PoolBackend{b}, testkit.FakeCodec{}, testkit.NewMemoryStore(), &testkit.RecordingSink{}, testLog())
	must(t, err)
	must(t, svc.Start(ctx))
	h, err := svc.PoolDefineXML(ctx, testkit.PoolXML(dirDef("p", 1)), 0)
	must(t, err)
	must(t, svc.PoolBuild(ctx, h, 0))
	must(t, svc.PoolCreate(ctx, h, 0))

	before := refreshes(b.Calls())
	_, err = svc.VolCreateXML(ctx, h, rawVol("a", 10*mib), 0)
	must(t, err)
	_, err = svc.VolCreateXML(ctx, h, rawVol("b", 20*mib), 0)
	must(t, err)
	equal(t, "refreshes after two creates", refreshes(b.Calls())-before, 2)
	info, err := svc.PoolGetInfo(ctx, h)
	must(t, err)
	equal(t, "available after the creates", info.Available, 100*mib-30*mib-mib)
	xml, err := svc.PoolGetXMLDesc(ctx, h, 0)
	must(t, err)
	pool, _, err := testkit.DecodePool(xml)
	must(t, err)
	if len(pool.Source.Devices) != 1 || pool.Source.Devices[0].FreeExtents[0].End != info.Available {
		t.Errorf("the live XML lacks the re-read free extents: %+v", pool.Source)
	}

	a, err := svc.VolLookupByName(ctx, h, "a")
	must(t, err)
	xml, err = svc.VolGetXMLDesc(ctx, a, 0)
	must(t, err)
	vol, err := testkit.DecodeVol(xml)
	must(t, err)
	if vol.Target.Format != "raw" || vol.Allocation != 11*mib {
		t.Errorf("after another create, volume a has format %q and allocation %d: want its own format and the re-read allocation", vol.Target.Format, vol.Allocation)
	}

	b.renumber = true
	must(t, err)
	must(t, svc.VolDelete(ctx, a, 0))
	names, err := svc.PoolListVolumes(ctx, h, 10)
	must(t, err)
	a, err = svc.VolLookupByName(ctx, h, "a")
	must(t, err)
	must(t, err)
	xml, err = svc.VolGetXMLDesc(ctx, a, 0)
	must(t, err)
	if vol, err = testkit.DecodeVol(xml); err != nil || vol.Capacity != 20*mib {
		t.Errorf("after the delete, a is %+v (%v), want the re-read b", vol, err)
	}
	if !slices.Equal(names, []string{"a"}) {
		t.Errorf("volumes after the delete = %v, want the re-read list [a]", names)
	}
	info, err = svc.PoolGetInfo(ctx, h)
	must(t, err)
	equal(t, "available after the delete", info.Available, 100*mib-20*mib-mib)
}

// TestOtherBackendsNotReread checks that other backends cost no pool
// refresh per volume change.
func TestOtherBackendsNotReread(t *testing.T) {
	f := newFixture(t, 100*mib)
	ctx := context.Background()
	h := f.startedPool(t, "p", 1)
	before := refreshes(f.backend.Calls())
	v, err := f.svc.VolCreateXML(ctx, h, rawVol("a", mib), 0)
	must(t, err)
	must(t, f.svc.VolDelete(ctx, v, 0))
	equal(t, "refreshes", refreshes(f.backend.Calls())-before, 0)
}
