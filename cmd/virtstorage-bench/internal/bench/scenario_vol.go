package bench

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/virtstoraged-go/virtstoraged/gen/remote"
)

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// lookupPool resolves a pool this scenario started.
func (e *env) lookupPool(ctx context.Context, name string) (remote.StoragePool, error) {
	r, err := e.s.StoragePoolLookupByName(ctx, &remote.StoragePoolLookupByNameArgs{Name: name})
	if err != nil {
		return remote.StoragePool{}, fmt.Errorf("bench: lookup pool %s: %w", name, err)
	}
	return r.Pool, nil
}

// volCreateDelete is storbench's raw loop: create a 10 MiB sparse raw volume, delete
// it, NCreate times, each call timed.
func volCreateDelete(ctx context.Context, e *env, o *outcome) error {
	name, drop, err := e.poolWith(ctx, "vols", nil)
	if err != nil {
		return err
	}
	defer drop()
	p, err := e.lookupPool(ctx, name)
	if err != nil {
		return err
	}
	n := e.cfg.NCreate
	cl, dl := make([]float64, 0, n), make([]float64, 0, n)
	m := e.meter()
	for i := range n {
		t1 := time.Now()
		v, err := e.s.createVol(ctx, p, volXML(fmt.Sprintf("bench-vsb-v%d.raw", i), 10<<20, 0, "raw"))
		if err != nil {
			return fmt.Errorf("bench: create raw volume: %w", err)
		}
		t2 := time.Now()
		if err := e.s.StorageVolDelete(ctx, &remote.StorageVolDeleteArgs{Vol: v}); err != nil {
			return fmt.Errorf("bench: delete raw volume: %w", err)
		}
		cl = append(cl, millis(t2.Sub(t1)))
		dl = append(dl, millis(time.Since(t2)))
	}
	c := m.stop()
	o.add("ops_per_s", "ops/s", float64(n)/c.wall)
	sc, sd := slices.Sorted(slices.Values(cl)), slices.Sorted(slices.Values(dl))
	o.add("create_p50_ms", "ms", Percentile(sc, .5))
	o.add("create_p99_ms", "ms", Percentile(sc, .99))
	o.add("delete_p50_ms", "ms", Percentile(sd, .5))
	o.cpu(c, float64(n), "ms", "op")
	o.sample("create_ms", cl)
	o.sample("delete_ms", dl)
	return nil
}

// volCreateQcow2 is storbench's qcow2 loop: create NQcow2 1 GiB qcow2 volumes (the
// daemon runs qemu-img for each), then delete them all.
func volCreateQcow2(ctx context.Context, e *env, o *outcome) error {
	name, drop, err := e.poolWith(ctx, "qcow2", nil)
	if err != nil {
		return err
	}
	defer drop()
	p, err := e.lookupPool(ctx, name)
	if err != nil {
		return err
	}
	n := e.cfg.NQcow2
	vols := make([]remote.StorageVol, 0, n)
	m := e.meter()
	for i := range n {
		v, err := e.s.createVol(ctx, p, volXML(fmt.Sprintf("bench-vsb-q%d.qcow2", i), 1<<30, 0, "qcow2"))
		if err != nil {
			return fmt.Errorf("bench: create qcow2 volume: %w", err)
		}
		vols = append(vols, v)
	}
	c := m.stop()
	o.add("ops_per_s", "ops/s", float64(n)/c.wall)
	o.cpu(c, float64(n), "ms", "op")
	m = e.meter()
	for _, v := range vols {
		if err := e.s.StorageVolDelete(ctx, &remote.StorageVolDeleteArgs{Vol: v}); err != nil {
			return fmt.Errorf("bench: delete qcow2 volume: %w", err)
		}
	}
	o.add("delete_ops_per_s", "ops/s", float64(n)/m.stop().wall)
	return nil
}

// wipe is storbench's wipe: zero a fully allocated WipeSize volume.
func wipe(ctx context.Context, e *env, o *outcome) error {
	name, drop, err := e.poolWith(ctx, "wipe", nil)
	if err != nil {
		return err
	}
	defer drop()
	p, err := e.lookupPool(ctx, name)
	if err != nil {
		return err
	}
	size := int64(e.cfg.WipeSize)
	v, err := e.s.createVol(ctx, p, volXML("bench-vsb-wipe.raw", size, size, "raw"))
	if err != nil {
		return fmt.Errorf("bench: create volume: %w", err)
	}
	if info, err := e.s.StorageVolGetInfo(ctx, &remote.StorageVolGetInfoArgs{Vol: v}); err != nil {
		return fmt.Errorf("bench: volume info: %w", err)
	} else if info.Allocation < uint64(size) {
		o.warn("volume not fully allocated (%d of %d bytes): a zero wipe may punch or truncate", info.Allocation, size)
	}
	m := e.meter()
	if err := e.s.StorageVolWipePattern(ctx, &remote.StorageVolWipePatternArgs{Vol: v, Algorithm: volWipeAlgZero}); err != nil {
		return fmt.Errorf("bench: wipe: %w", err)
	}
	c := m.stop()
	o.add("mb_per_s", "MB/s", float64(size)/1e6/c.wall)
	o.add("s", "s", c.wall)
	o.cpu(c, float64(size)/(1<<30), "s", "gib")
	return e.s.StorageVolDelete(ctx, &remote.StorageVolDeleteArgs{Vol: v})
}
