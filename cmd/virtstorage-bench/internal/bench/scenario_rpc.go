package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/virtstoraged-go/virtstoraged/gen/remote"
)

// smallPool starts pool bench-vsb-small over 3 sparse 1 MiB files, the target of the
// RPC scenarios, and returns a function that removes it again.
func (e *env) smallPool(ctx context.Context) (string, func(), error) {
	return e.poolWith(ctx, "small", func(dir string) error {
		for i := range 3 {
			if err := truncFile(filepath.Join(dir, fmt.Sprintf("bench-%d.raw", i)), 1<<20); err != nil {
				return err
			}
		}
		return nil
	})
}

// poolWith makes the directory of pool bench-vsb-TAG, lets fill put files in it, and
// starts the pool as a transient dir pool. The returned function destroys the pool and
// removes the directory.
func (e *env) poolWith(ctx context.Context, tag string, fill func(dir string) error) (string, func(), error) {
	name, dir := "bench-vsb-"+tag, filepath.Join(e.dir, tag)
	if err := e.s.dropPool(ctx, name); err != nil {
		return "", nil, err
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", nil, fmt.Errorf("bench: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, fmt.Errorf("bench: %w", err)
	}
	if fill != nil {
		if err := fill(dir); err != nil {
			os.RemoveAll(dir) //nolint:errcheck // best effort
			return "", nil, err
		}
	}
	if _, err := e.s.createPool(ctx, name, dir); err != nil {
		os.RemoveAll(dir) //nolint:errcheck // best effort
		return "", nil, err
	}
	return name, func() { e.dropPoolDir(name, dir) }, nil
}

// dropPoolDir removes a scenario's pool and directory even when the scenario's context
// was cancelled.
func (e *env) dropPoolDir(name, dir string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.s.dropPool(ctx, name); err != nil {
		e.log.WithField("target", e.t.Label).Warnf("cleanup: %v", err)
	}
	if !e.cfg.Keep {
		os.RemoveAll(dir) //nolint:errcheck // best effort
	}
}

func truncFile(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return fmt.Errorf("bench: %w", err)
	}
	return f.Close()
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// rpcLookup is storbench's rpc_lookup: StoragePoolLookupByName + StoragePoolGetInfo in
// a loop on one connection, each call timed.
func rpcLookup(ctx context.Context, e *env, o *outcome) error {
	name, drop, err := e.smallPool(ctx)
	if err != nil {
		return err
	}
	defer drop()
	n := e.cfg.NLookup
	look, info := make([]float64, 0, n), make([]float64, 0, n)
	args := &remote.StoragePoolLookupByNameArgs{Name: name}
	m := e.meter()
	for range n {
		t1 := time.Now()
		r, err := e.s.StoragePoolLookupByName(ctx, args)
		if err != nil {
			return fmt.Errorf("bench: lookup pool: %w", err)
		}
		t2 := time.Now()
		if _, err := e.s.StoragePoolGetInfo(ctx, &remote.StoragePoolGetInfoArgs{Pool: r.Pool}); err != nil {
			return fmt.Errorf("bench: pool info: %w", err)
		}
		t3 := time.Now()
		look = append(look, micros(t2.Sub(t1)))
		info = append(info, micros(t3.Sub(t2)))
	}
	c := m.stop()
	calls := float64(2 * n)
	both := slices.Concat(look, info)
	slices.Sort(both)
	o.add("calls_per_s", "calls/s", calls/c.wall)
	o.add("p50_us", "us", Percentile(both, .5))
	o.add("p99_us", "us", Percentile(both, .99))
	o.add("lookup_p50_us", "us", Median(look))
	o.add("info_p50_us", "us", Median(info))
	o.cpu(c, calls, "us", "call")
	o.sample("lookup_us", look)
	o.sample("info_us", info)
	return nil
}

// rpcConcurrent is storbench's rpc_concurrent: Threads connections each looping
// lookup+info for Duration.
func rpcConcurrent(ctx context.Context, e *env, o *outcome) error {
	name, drop, err := e.smallPool(ctx)
	if err != nil {
		return err
	}
	defer drop()
	n := e.cfg.Threads
	sess := make([]*Session, 0, n)
	defer func() {
		for _, s := range sess {
			s.Close(context.Background()) //nolint:errcheck // figures already taken
		}
	}()
	for range n {
		s, err := Open(ctx, Endpoint{Socket: e.t.Socket, Name: e.t.Name})
		if err != nil {
			return err
		}
		sess = append(sess, s)
	}
	var (
		stop   atomic.Bool
		wg     sync.WaitGroup
		errMu  sync.Mutex
		runErr error
	)
	counts := make([]float64, n)
	start := make(chan struct{})
	for i, s := range sess {
		wg.Go(func() {
			args := &remote.StoragePoolLookupByNameArgs{Name: name}
			<-start
			for !stop.Load() {
				r, err := s.StoragePoolLookupByName(ctx, args)
				if err == nil {
					_, err = s.StoragePoolGetInfo(ctx, &remote.StoragePoolGetInfoArgs{Pool: r.Pool})
				}
				if err != nil {
					errMu.Lock()
					runErr = errors.Join(runErr, err)
					errMu.Unlock()
					return
				}
				counts[i] += 2
			}
		})
	}
	m := e.meter()
	close(start)
	select {
	case <-time.After(e.cfg.Duration):
	case <-ctx.Done():
	}
	stop.Store(true)
	wg.Wait()
	c := m.stop()
	if runErr != nil {
		return fmt.Errorf("bench: concurrent calls: %w", runErr)
	}
	var total float64
	for _, x := range counts {
		total += x
	}
	lo, hi := slices.Min(counts), slices.Max(counts)
	o.add("calls_per_s", "calls/s", total/c.wall)
	o.add("per_thread_calls_per_s", "calls/s", total/c.wall/float64(n))
	if hi > 0 {
		o.add("min_max_thread_ratio", "ratio", lo/hi)
	}
	o.add("min_thread_calls", "calls", lo)
	o.add("max_thread_calls", "calls", hi)
	o.cpu(c, total, "us", "call")
	o.sample("thread_calls", counts)
	return ctx.Err()
}
