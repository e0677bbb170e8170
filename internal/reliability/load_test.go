package reliability_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/gen/remote"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// Knobs of the load and soak runs. The defaults keep `make test` around a
// minute; `make soak` sets the full figures.
const (
	envClients  = "VIRTSTORAGED_LOAD_CLIENTS" // concurrent clients, default 200
	envCalls    = "VIRTSTORAGED_LOAD_CALLS"   // calls per client, default 250
	envSoak     = "VIRTSTORAGED_SOAK"         // soak duration (e.g. 10m); unset skips the soak
	envSoakCli  = "VIRTSTORAGED_SOAK_CLIENTS" // soak clients, default 50
	envMaxRSSMB = "VIRTSTORAGED_LOAD_MAX_RSS" // RSS bound in MiB, default 200
	loadPools   = 4                           // pools the load spreads over
	loadVols    = 8                           // volumes per pool for lookups
	streamBytes = 256 << 10                   // upload/download size in the soak
	statsPeriod = 30 * time.Second            // soak report interval
)

func envInt(t testing.TB, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// recorder collects latencies and errors of many clients.
type recorder struct {
	mu     sync.Mutex
	lat    []time.Duration
	errs   []string
	nerr   atomic.Int64
	ncalls atomic.Int64
}

func (r *recorder) add(lat []time.Duration) {
	r.mu.Lock()
	r.lat = append(r.lat, lat...)
	r.mu.Unlock()
}

func (r *recorder) fail(format string, args ...any) {
	if r.nerr.Add(1) <= 10 {
		r.mu.Lock()
		r.errs = append(r.errs, fmt.Sprintf(format, args...))
		r.mu.Unlock()
	}
}

// take returns the latencies gathered since the last take, sorted.
func (r *recorder) take() []time.Duration {
	r.mu.Lock()
	lat := r.lat
	r.lat = nil
	r.mu.Unlock()
	slices.Sort(lat)
	return lat
}

// workload is the mixed call pattern of the load and soak runs, over several
// pools of the same daemon.
type workload struct {
	tg      *target
	pools   []remote.StoragePool
	vols    [][]remote.StorageVol
	streams bool // add uploads and downloads (soak)
}

func newWorkload(t testing.TB, tg *target, streams bool) *workload {
	t.Helper()
	c := dial(t, tg.rw, 0)
	base := shortDir(t, "vsl")
	w := &workload{tg: tg, streams: streams}
	for p := range loadPools {
		pool := createPool(t, c, fmt.Sprintf("load%d", p), base)
		var vols []remote.StorageVol
		for v := range loadVols {
			vols = append(vols, createVol(t, c, pool, fmt.Sprintf("v%d.img", v), 1<<20))
		}
		w.pools = append(w.pools, pool)
		w.vols = append(w.vols, vols)
	}
	return w
}

// run drives one client: calls operations (a create+delete or an
// upload+download counts as one) until it made calls of them or until ends,
// whichever first; calls <= 0 means no count limit.
func (w *workload) run(ctx context.Context, id, calls int, until time.Time, rec *recorder) {
	c, err := tryDial(w.tg.rw, 0)
	if err != nil {
		rec.fail("client %d: dial: %v", id, err)
		return
	}
	defer c.conn.Close()
	var own remote.StorageVol
	payload := bytes.Repeat([]byte{byte(id)}, streamBytes)
	if w.streams {
		own, err = tryCreateVol(ctx, c, w.pools[id%loadPools], fmt.Sprintf("s%d.img", id), streamBytes)
		if err != nil {
			rec.fail("client %d: create its stream volume: %v", id, err)
			return
		}
		defer func() {
			if err := c.StorageVolDelete(ctx, &remote.StorageVolDeleteArgs{Vol: own}); err != nil {
				rec.fail("client %d: delete its stream volume: %v", id, err)
			}
		}()
	}
	ops := 7
	if w.streams {
		ops = 8
	}
	lat := make([]time.Duration, 0, 256)
	for i := 0; (calls <= 0 || i < calls) && time.Now().Before(until) && ctx.Err() == nil; i++ {
		p := (id + i) % loadPools
		pool, vol := w.pools[p], w.vols[p][i%loadVols]
		start := time.Now()
		var err error
		switch op := (id + i) % ops; op {
		case 0:
			_, err = c.StoragePoolLookupByName(ctx, &remote.StoragePoolLookupByNameArgs{Name: pool.Name})
		case 1:
			_, err = c.StoragePoolGetInfo(ctx, &remote.StoragePoolGetInfoArgs{Pool: pool})
		case 2:
			_, err = c.StorageVolLookupByName(ctx, &remote.StorageVolLookupByNameArgs{Pool: pool, Name: vol.Name})
		case 3:
			_, err = c.StorageVolGetInfo(ctx, &remote.StorageVolGetInfoArgs{Vol: vol})
		case 4:
			var r *remote.StoragePoolListAllVolumesRet
			r, err = c.StoragePoolListAllVolumes(ctx, &remote.StoragePoolListAllVolumesArgs{Pool: pool, NeedResults: 1})
			if err == nil && len(r.Vols) < loadVols {
				err = fmt.Errorf("pool %s lists %d volumes, want at least %d", pool.Name, len(r.Vols), loadVols)
			}
		case 5:
			var r *remote.ConnectListAllStoragePoolsRet
			r, err = c.ConnectListAllStoragePools(ctx, &remote.ConnectListAllStoragePoolsArgs{NeedResults: 1})
			if err == nil && len(r.Pools) < loadPools {
				err = fmt.Errorf("%d pools listed, want at least %d", len(r.Pools), loadPools)
			}
		case 6:
			var v remote.StorageVol
			v, err = tryCreateVol(ctx, c, pool, fmt.Sprintf("c%d-%d.img", id, i), 64<<10)
			if err == nil {
				err = c.StorageVolDelete(ctx, &remote.StorageVolDeleteArgs{Vol: v})
			}
		case 7:
			err = roundTrip(ctx, c, own, payload, true)
		}
		if err != nil {
			rec.fail("client %d call %d: %s", id, i, errText(err))
			continue
		}
		lat = append(lat, time.Since(start))
		rec.ncalls.Add(1)
		if len(lat) == cap(lat) {
			rec.add(lat)
			lat = lat[:0]
		}
	}
	rec.add(lat)
}

// roundTrip uploads payload to vol and downloads it back; verify compares the
// bytes (only sound when no other client writes the volume meanwhile).
func roundTrip(ctx context.Context, c *client, vol remote.StorageVol, payload []byte, verify bool) error {
	up, err := c.StorageVolUpload(ctx, &remote.StorageVolUploadArgs{Vol: vol, Length: uint64(len(payload))})
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	if err := up.Send(payload); err != nil {
		return fmt.Errorf("upload send: %w", err)
	}
	if err := up.Finish(); err != nil {
		return fmt.Errorf("upload finish: %w", err)
	}
	down, err := c.StorageVolDownload(ctx, &remote.StorageVolDownloadArgs{Vol: vol, Length: uint64(len(payload))})
	if err != nil {
		return fmt.Errorf("download: %w", err)
	}
	var got []byte
	for {
		data, _, err := down.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("download recv: %w", err)
		}
		got = append(got, data...)
	}
	if err := down.Finish(); err != nil {
		return fmt.Errorf("download finish: %w", err)
	}
	if verify && !bytes.Equal(got, payload) {
		return fmt.Errorf("downloaded %d bytes differ from the %d uploaded", len(got), len(payload))
	}
	return nil
}

// rssMonitor samples the daemon's /proc every period until stopped and keeps
// the peak.
type rssMonitor struct {
	peak procStats
	stop chan struct{}
	done chan struct{}
}

func watchProc(t testing.TB, pid int, period time.Duration) *rssMonitor {
	m := &rssMonitor{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-tick.C:
			}
			ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
			if err != nil {
				return // the daemon is gone: the calls report it
			}
			s := statusOf(pid)
			s.fds = len(ents)
			if s.rssKB > m.peak.rssKB {
				m.peak.rssKB = s.rssKB
			}
			m.peak.fds = max(m.peak.fds, s.fds)
			m.peak.threads = max(m.peak.threads, s.threads)
		}
	}()
	return m
}

func (m *rssMonitor) halt() procStats {
	close(m.stop)
	<-m.done
	return m.peak
}

// TestLoad runs 200 concurrent clients × 250 mixed calls (knobs: envClients,
// envCalls) against the daemon process over several pools: no call may fail
// and the daemon's RSS stays bounded. Latencies are reported, not asserted.
func TestLoad(t *testing.T) {
	clients := envInt(t, envClients, 200)
	calls := envInt(t, envCalls, 250)
	maxRSS := int64(envInt(t, envMaxRSSMB, 200)) << 10
	tg := startProcess(t, testkit.DaemonOptions{})
	w := newWorkload(t, tg, false)
	before := readProc(t, tg.pid)
	// At least 200 calls a second must go through, or the run is a failure
	// anyway; the bound keeps a stuck daemon from hanging the test binary.
	budget := 2*time.Minute + time.Duration(clients*calls/200)*time.Second
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	until := time.Now().Add(budget)
	mon := watchProc(t, tg.pid, 250*time.Millisecond)
	rec := &recorder{}
	start := time.Now()
	var wg sync.WaitGroup
	for id := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(ctx, id, calls, until, rec)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	peak := mon.halt()
	after := readProc(t, tg.pid)
	lat := rec.take()
	t.Logf("load: %d clients × %d calls: %d ok, %d errors in %v (%.0f calls/s); latency p50=%v p99=%v max=%v",
		clients, calls, rec.ncalls.Load(), rec.nerr.Load(), elapsed.Round(time.Millisecond),
		float64(rec.ncalls.Load())/elapsed.Seconds(), pct(lat, 0.5), pct(lat, 0.99), pct(lat, 1))
	t.Logf("load: daemon before %s, peak %s, after %s", before, peak, after)
	if n := rec.nerr.Load(); n > 0 {
		t.Errorf("%d calls failed; first ones:\n%v", n, rec.errs)
	}
	if want := int64(clients * calls); rec.ncalls.Load() != want {
		t.Errorf("%d calls done, want %d (budget %v)", rec.ncalls.Load(), want, budget)
	}
	if peak.rssKB > maxRSS {
		t.Errorf("daemon peak RSS %d KiB, over the %d KiB bound", peak.rssKB, maxRSS)
	}
	if after.fds > before.fds+settleSlack {
		// Clients are gone: their fds must be too (allow the daemon a moment).
		if !waitUntil(10*time.Second, func() bool { return readProc(t, tg.pid).fds <= before.fds+settleSlack }) {
			t.Errorf("daemon fds %d after the load, %d before", readProc(t, tg.pid).fds, before.fds)
		}
	}
}

// TestSoak runs the load mix plus uploads and downloads for VIRTSTORAGED_SOAK
// (e.g. 10m), printing the daemon's RSS, threads, fds and latency every 30s,
// and fails on any error or on RSS or fds growing in every interval.
func TestSoak(t *testing.T) {
	v := os.Getenv(envSoak)
	if v == "" {
		t.Skipf("soak run: set %s=10m (make soak)", envSoak)
	}
	duration, err := time.ParseDuration(v)
	if err != nil || duration <= 0 {
		t.Fatalf("%s=%q: want a duration", envSoak, v)
	}
	clients := envInt(t, envSoakCli, 50)
	maxRSS := int64(envInt(t, envMaxRSSMB, 200)) << 10
	tg := startProcess(t, testkit.DaemonOptions{})
	w := newWorkload(t, tg, true)
	ctx, cancel := context.WithTimeout(context.Background(), duration+2*time.Minute)
	defer cancel()
	until := time.Now().Add(duration)
	rec := &recorder{}
	var wg sync.WaitGroup
	for id := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(ctx, id, 0, until, rec)
		}()
	}
	var samples []procStats
	tick := time.NewTicker(min(statsPeriod, duration/2))
	defer tick.Stop()
	end := time.NewTimer(time.Until(until))
	defer end.Stop()
	last := int64(0)
	for running := true; running; {
		select {
		case <-tick.C:
		case <-end.C:
			running = false
			wg.Wait()
		case <-tg.daemon.Done():
			cancel()
			wg.Wait()
			t.Fatalf("the daemon exited during the soak: %v", tg.daemon.ExitErr())
		}
		s := readProc(t, tg.pid)
		samples = append(samples, s)
		lat := rec.take()
		n := rec.ncalls.Load()
		t.Logf("soak %v left: %s; %d calls (+%d), %d errors; latency p50=%v p99=%v max=%v",
			max(0, time.Until(until)).Round(time.Second), s, n, n-last, rec.nerr.Load(), pct(lat, 0.5), pct(lat, 0.99), pct(lat, 1))
		last = n
		if s.rssKB > maxRSS {
			t.Errorf("daemon RSS %d KiB, over the %d KiB bound", s.rssKB, maxRSS)
		}
	}
	if n := rec.nerr.Load(); n > 0 {
		t.Errorf("%d calls failed; first ones:\n%v", n, rec.errs)
	}
	if rec.ncalls.Load() == 0 {
		t.Errorf("no call succeeded")
	}
	rss := func(s procStats) int64 { return s.rssKB }
	fds := func(s procStats) int64 { return int64(s.fds) }
	for _, m := range []struct {
		name string
		get  func(procStats) int64
	}{{"RSS", rss}, {"fds", fds}} {
		if why := growth(samples, m.get); why != "" {
			t.Errorf("daemon %s %s during the soak: a leak", m.name, why)
		}
	}
}

// growth reports a leak in the soak's samples, or "": after the first
// (warm-up) sample, either the value rose in every interval (at least four)
// by more than a tenth overall, or the average of the last third of the
// samples exceeds that of the first third by more than a quarter. A healthy
// daemon's figures wander up and down around a level; a leak's only go up.
func growth(samples []procStats, get func(procStats) int64) string {
	if len(samples) < 5 {
		return ""
	}
	s := samples[1:]
	rising := true
	for i := 1; i < len(s); i++ {
		if get(s[i]) <= get(s[i-1]) {
			rising = false
			break
		}
	}
	if first, last := get(s[0]), get(s[len(s)-1]); rising && last-first > first/10 {
		return fmt.Sprintf("grew in every interval (%d -> %d)", first, last)
	}
	third := len(s) / 3
	if third < 2 {
		return ""
	}
	avg := func(part []procStats) int64 {
		var sum int64
		for _, p := range part {
			sum += get(p)
		}
		return sum / int64(len(part))
	}
	if early, late := avg(s[:third]), avg(s[len(s)-third:]); late-early > early/4 {
		return fmt.Sprintf("trended up (first third %d, last third %d)", early, late)
	}
	return ""
}
