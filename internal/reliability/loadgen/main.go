// Command loadgen drives the mixed workload of the load and soak tests
// (internal/reliability TestLoad and TestSoak) against one daemon socket and
// prints its results as JSON lines on stdout.
//
// It is a program of its own, built without the race detector, because the
// tests run under -race, which makes a Go client several times slower than the
// daemon it measures: 200 clients × 10,000 calls would then measure the race
// detector, and take longer than CI allows.
//
//	loadgen -socket PATH -pools load0,load1 -vols v0.img,v1.img -clients 200 -calls 10000
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/virtstoraged-go/virtstoraged/gen/remote"
	"github.com/virtstoraged-go/virtstoraged/internal/reliability/daemonclient"
)

// histogram counts latencies in buckets 2% wide (from 1 µs to well beyond a
// minute), so that percentiles of millions of calls cost no memory.
type histogram struct {
	buckets [nBuckets]atomic.Int64
	max     atomic.Int64
}

const (
	nBuckets    = 1200
	bucketRatio = 1.02
	minLatency  = time.Microsecond
)

func bucketOf(d time.Duration) int {
	if d <= minLatency {
		return 0
	}
	i := int(math.Log(float64(d)/float64(minLatency)) / math.Log(bucketRatio))
	return min(i, nBuckets-1)
}

// upper is the largest latency bucket i holds.
func upper(i int) time.Duration {
	return time.Duration(float64(minLatency) * math.Pow(bucketRatio, float64(i+1)))
}

func (h *histogram) add(d time.Duration) {
	h.buckets[bucketOf(d)].Add(1)
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

// snapshot copies the counts; quantiles of an interval come from the
// difference of two snapshots.
func (h *histogram) snapshot() []int64 {
	out := make([]int64, nBuckets)
	for i := range out {
		out[i] = h.buckets[i].Load()
	}
	return out
}

// quantile is the q-quantile (0..1) of counts, to the bucket's upper bound.
func quantile(counts []int64, q float64) time.Duration {
	var total int64
	for _, c := range counts {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(total)))
	var seen int64
	for i, c := range counts {
		seen += c
		if seen >= max(rank, 1) {
			return upper(i)
		}
	}
	return upper(len(counts) - 1)
}

// run holds what all clients share.
type run struct {
	socket  string
	pools   []string
	vols    []string
	streams bool
	size    int

	hist  histogram
	calls atomic.Int64
	nerr  atomic.Int64
	mu    sync.Mutex
	errs  []string
}

func (r *run) fail(format string, args ...any) {
	if r.nerr.Add(1) <= 10 {
		r.mu.Lock()
		r.errs = append(r.errs, fmt.Sprintf(format, args...))
		r.mu.Unlock()
	}
}

// timed runs one RPC and records its latency, or its error.
func (r *run) timed(id, i int, what string, f func() error) error {
	start := time.Now()
	if err := f(); err != nil {
		r.fail("client %d call %d (%s): %s", id, i, what, daemonclient.ErrText(err))
		return err
	}
	r.hist.add(time.Since(start))
	r.calls.Add(1)
	return nil
}

// client makes calls RPCs (calls <= 0: until stop ends) of the mix: pool and
// volume lookups, info, lists, create+delete of a volume of its own, and with
// streams an upload and download of its own volume. Each RPC counts as a call.
// The calls themselves run under ctx, not stop: the end of a soak must let the
// calls under way finish rather than fail them.
func (r *run) client(ctx, stop context.Context, id, calls int) {
	c, err := daemonclient.Dial(ctx, r.socket, 0)
	if err != nil {
		r.fail("client %d: dial: %v", id, err)
		return
	}
	defer c.Conn().Close()
	pools := make([]remote.StoragePool, len(r.pools))
	vols := make([][]remote.StorageVol, len(r.pools))
	for p, name := range r.pools {
		ret, err := c.StoragePoolLookupByName(ctx, &remote.StoragePoolLookupByNameArgs{Name: name})
		if err != nil {
			r.fail("client %d: lookup pool %s: %s", id, name, daemonclient.ErrText(err))
			return
		}
		pools[p] = ret.Pool
		for _, v := range r.vols {
			vr, err := c.StorageVolLookupByName(ctx, &remote.StorageVolLookupByNameArgs{Pool: ret.Pool, Name: v})
			if err != nil {
				r.fail("client %d: lookup volume %s/%s: %s", id, name, v, daemonclient.ErrText(err))
				return
			}
			vols[p] = append(vols[p], vr.Vol)
		}
	}
	var own remote.StorageVol
	payload := bytes.Repeat([]byte{byte(id)}, r.size)
	ops := 7
	if r.streams {
		ops = 8
		own, err = daemonclient.CreateVolume(ctx, c, pools[id%len(pools)], fmt.Sprintf("s%d.img", id), int64(r.size))
		if err != nil {
			r.fail("client %d: create its stream volume: %s", id, daemonclient.ErrText(err))
			return
		}
		defer func() {
			// The soak's deadline may have passed: the cleanup gets its own.
			dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := c.StorageVolDelete(dctx, &remote.StorageVolDeleteArgs{Vol: own}); err != nil {
				r.fail("client %d: delete its stream volume: %s", id, daemonclient.ErrText(err))
			}
		}()
	}
	for i, op := 0, id; (calls <= 0 || i < calls) && stop.Err() == nil; op++ {
		p := (id + i) % len(pools)
		pool, vol := pools[p], vols[p][i%len(vols[p])]
		kind := op % ops
		if calls > 0 && calls-i < 2 && kind >= 6 {
			kind = 0 // a pair of calls does not fit in what is left
		}
		var err error
		switch kind {
		case 0:
			err = r.timed(id, i, "pool lookup", func() error {
				_, err := c.StoragePoolLookupByName(ctx, &remote.StoragePoolLookupByNameArgs{Name: pool.Name})
				return err
			})
		case 1:
			err = r.timed(id, i, "pool info", func() error {
				_, err := c.StoragePoolGetInfo(ctx, &remote.StoragePoolGetInfoArgs{Pool: pool})
				return err
			})
		case 2:
			err = r.timed(id, i, "vol lookup", func() error {
				_, err := c.StorageVolLookupByName(ctx, &remote.StorageVolLookupByNameArgs{Pool: pool, Name: vol.Name})
				return err
			})
		case 3:
			err = r.timed(id, i, "vol info", func() error {
				_, err := c.StorageVolGetInfo(ctx, &remote.StorageVolGetInfoArgs{Vol: vol})
				return err
			})
		case 4:
			err = r.timed(id, i, "vol list", func() error {
				ret, err := c.StoragePoolListAllVolumes(ctx, &remote.StoragePoolListAllVolumesArgs{Pool: pool, NeedResults: 1})
				if err == nil && len(ret.Vols) < len(r.vols) {
					err = fmt.Errorf("pool %s lists %d volumes, want at least %d", pool.Name, len(ret.Vols), len(r.vols))
				}
				return err
			})
		case 5:
			err = r.timed(id, i, "pool list", func() error {
				ret, err := c.ConnectListAllStoragePools(ctx, &remote.ConnectListAllStoragePoolsArgs{NeedResults: 1})
				if err == nil && len(ret.Pools) < len(pools) {
					err = fmt.Errorf("%d pools listed, want at least %d", len(ret.Pools), len(pools))
				}
				return err
			})
		case 6:
			var v remote.StorageVol
			err = r.timed(id, i, "vol create", func() error {
				var err error
				v, err = daemonclient.CreateVolume(ctx, c, pool, fmt.Sprintf("c%d-%d.img", id, i), 64<<10)
				return err
			})
			if err == nil {
				i++
				err = r.timed(id, i, "vol delete", func() error {
					return c.StorageVolDelete(ctx, &remote.StorageVolDeleteArgs{Vol: v})
				})
			}
		case 7:
			err = r.timed(id, i, "upload", func() error { return daemonclient.Upload(ctx, c, own, payload) })
			if err == nil {
				i++
				// This client is the volume's only writer: what it reads back
				// must be what it uploaded.
				err = r.timed(id, i, "download", func() error { return daemonclient.Download(ctx, c, own, payload, true) })
			}
		}
		_ = err // counted by timed; the client goes on with the next call
		i++
	}
}

func (r *run) report(out *json.Encoder, final bool, elapsed time.Duration, counts []int64) error {
	rep := daemonclient.Report{Final: final, Calls: r.calls.Load(), Errors: r.nerr.Load(), ElapsedNS: int64(elapsed),
		P50NS: int64(quantile(counts, 0.5)), P99NS: int64(quantile(counts, 0.99))}
	if final {
		rep.MaxNS = r.hist.max.Load()
		r.mu.Lock()
		rep.FirstErrors = append([]string(nil), r.errs...)
		r.mu.Unlock()
	} else {
		// An interval's maximum is its highest occupied bucket.
		for i := len(counts) - 1; i >= 0; i-- {
			if counts[i] > 0 {
				rep.MaxNS = int64(upper(i))
				break
			}
		}
	}
	return out.Encode(rep)
}

func main() {
	r := &run{}
	var pools, vols string
	var clients, calls int
	var duration, every time.Duration
	flag.StringVar(&r.socket, "socket", "", "daemon read-write socket")
	flag.StringVar(&pools, "pools", "", "comma list of running pools to spread the calls over")
	flag.StringVar(&vols, "vols", "", "comma list of volumes present in every pool (lookups, info)")
	flag.IntVar(&clients, "clients", 200, "concurrent clients, one connection each")
	flag.IntVar(&calls, "calls", 10000, "RPCs per client (0: until -duration)")
	flag.DurationVar(&duration, "duration", 0, "stop after this long (0: when the calls are done)")
	flag.DurationVar(&every, "report", 0, "print an interval report this often (0: the final one only)")
	flag.BoolVar(&r.streams, "streams", false, "add an upload and a download of a volume of each client's own to the mix")
	flag.IntVar(&r.size, "stream-bytes", 256<<10, "size of the streamed volumes")
	flag.Parse()
	r.pools, r.vols = strings.Split(pools, ","), strings.Split(vols, ",")
	if r.socket == "" || pools == "" || vols == "" || clients <= 0 || (calls <= 0 && duration <= 0) {
		fmt.Fprintln(os.Stderr, "loadgen: -socket, -pools, -vols, -clients and -calls or -duration are required")
		os.Exit(2)
	}
	ctx, stop := context.Background(), context.Background()
	if duration > 0 {
		var cancel context.CancelFunc
		stop, cancel = context.WithTimeout(stop, duration)
		defer cancel()
	}
	out := json.NewEncoder(os.Stdout)
	start := time.Now()
	var wg sync.WaitGroup
	for id := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.client(ctx, stop, id, calls)
		}()
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	if every > 0 {
		tick := time.NewTicker(every)
		prev := make([]int64, nBuckets)
	loop:
		for {
			select {
			case <-done:
				break loop
			case <-tick.C:
			}
			now := r.hist.snapshot()
			diff := make([]int64, nBuckets)
			for i := range now {
				diff[i] = now[i] - prev[i]
			}
			prev = now
			if err := r.report(out, false, time.Since(start), diff); err != nil {
				fmt.Fprintln(os.Stderr, "loadgen:", err)
				os.Exit(1)
			}
		}
		tick.Stop()
	}
	<-done
	if err := r.report(out, true, time.Since(start), r.hist.snapshot()); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}
