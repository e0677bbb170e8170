package reliability_test

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/domain"
)

// TestDeletedVolumesAreNotRemembered creates and deletes volumes of ever new
// names in one pool, as provisioning tools do for months without a refresh.
// The pool's memory must not grow with the number of names it has seen: a
// long-running daemon would leak a little on every vol-delete.
func TestDeletedVolumesAreNotRemembered(t *testing.T) {
	p := domain.NewPool(&domain.PoolDef{Name: "p"}, false)
	p.FinishStart(domain.PoolStats{Capacity: 1 << 50, Available: 1 << 50}, nil)
	cycle := func(from, to int) {
		for i := from; i < to; i++ {
			name := fmt.Sprintf("provisioned-vm-disk-%08d.qcow2", i)
			def := &domain.VolDef{Name: name, Key: "/pool/" + name}
			v, err := p.AddBuilding(def)
			if err != nil {
				t.Fatal(err)
			}
			res, err := p.Ledger.ReserveVol("p", name, 0)
			if err != nil {
				t.Fatal(err)
			}
			p.VolumeCreated(v, def, res)
			p.VolumeDeleted(v)
		}
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	const warm, n = 10_000, 200_000
	cycle(0, warm)
	before := heap()
	cycle(warm, warm+n)
	after := heap()
	runtime.KeepAlive(p)
	perName := (int64(after) - int64(before)) / n
	t.Logf("heap %d -> %d bytes over %d create+delete cycles of new names: %d bytes per name", before, after, n, perName)
	if perName > 16 {
		t.Errorf("the pool keeps ~%d bytes per deleted volume name until the next refresh "+
			"(domain.Pool.deleted, cleared only by ApplyRefreshSince and Stop)", perName)
	}
}
