package reliability_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/internal/reliability/daemonclient"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// Knobs of the load and soak runs. The defaults are the figures:
// 200 clients × 10,000 calls in `make test`; `make soak` adds the soak.
const (
	envClients      = "VIRTSTORAGED_LOAD_CLIENTS" // concurrent clients, default 200
	envCalls        = "VIRTSTORAGED_LOAD_CALLS"   // RPCs per client, default 10,000
	envSoak         = "VIRTSTORAGED_SOAK"         // soak duration (e.g. 10m); unset skips the soak
	envSoakCli      = "VIRTSTORAGED_SOAK_CLIENTS" // soak clients, default 200 (the load's)
	envMaxRSSMB     = "VIRTSTORAGED_LOAD_MAX_RSS" // RSS bound in MiB, default 200 (soak: 300 for 200 clients)
	envLoadgen      = "VIRTSTORAGED_LOADGEN_BIN"  // a prebuilt ./internal/reliability/loadgen
	envLoadDir      = "VIRTSTORAGED_LOAD_DIR"     // where the pools go, default /dev/shm when there is one
	loadPools       = 4                           // pools the load spreads over
	loadVols        = 8                           // volumes per pool for lookups
	statsPeriod     = 30 * time.Second            // soak report interval
	soakStreamBytes = 256 << 10                   // each soak client's upload/download round trip
	loadReportIn    = 15 * time.Second            // progress lines of the load run
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

var (
	loadgenOnce sync.Once
	loadgenPath string
	loadgenErr  error
)

// loadgen returns the load generator, built once per test binary without the
// race detector: under -race the Go client, not the daemon, would be what the
// load measures (2,400 instead of 12,000 calls/s on two cores).
func loadgen(t testing.TB) string {
	t.Helper()
	loadgenOnce.Do(func() {
		if bin := os.Getenv(envLoadgen); bin != "" {
			loadgenPath = bin
			return
		}
		dir, err := os.MkdirTemp("", "vsloadgen")
		if err != nil {
			loadgenErr = err
			return
		}
		bin := filepath.Join(dir, "loadgen")
		cmd := exec.Command("go", "build", "-o", bin, "./loadgen")
		if out, err := cmd.CombinedOutput(); err != nil {
			_ = os.RemoveAll(dir)
			loadgenErr = fmt.Errorf("go build ./internal/reliability/loadgen: %v\n%s", err, out)
			return
		}
		loadgenPath = bin
	})
	if loadgenErr != nil {
		t.Fatal(loadgenErr)
	}
	return loadgenPath
}

// loadPoolsOn creates the pools of the load on tg, each holding the same
// loadVols volumes, and returns loadgen's -pools and -vols arguments.
func loadPoolsOn(t testing.TB, tg *target) (pools, vols string) {
	t.Helper()
	c := dial(t, tg.rw, 0)
	base := shortDirIn(t, loadDir(), "vsl")
	var pn, vn []string
	for v := range loadVols {
		vn = append(vn, fmt.Sprintf("v%d.img", v))
	}
	for p := range loadPools {
		pool := createPool(t, c, fmt.Sprintf("load%d", p), base)
		pn = append(pn, pool.Name)
		for _, v := range vn {
			createVol(t, c, pool, v, 1<<20)
		}
	}
	return strings.Join(pn, ","), strings.Join(vn, ",")
}

// loadDir is where the load's pools live: a tmpfs when the machine has one.
// The load is about the daemon, and every create fsyncs: on a disk shared with
// other jobs, journal stalls of seconds would make its latencies and its run
// time those of the disk.
func loadDir() string {
	if d := os.Getenv(envLoadDir); d != "" {
		return d
	}
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() && unix.Access("/dev/shm", unix.W_OK) == nil {
		return "/dev/shm"
	}
	return ""
}

// runLoadgen starts loadgen against tg with args and calls each for every
// report line until the final one, which it returns. The process is killed if
// it outlives timeout, so a stuck daemon cannot hang the test binary.
func runLoadgen(t testing.TB, tg *target, timeout time.Duration, each func(daemonclient.Report), args ...string) daemonclient.Report {
	t.Helper()
	pools, vols := loadPoolsOn(t, tg)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, loadgen(t), append([]string{"-socket", tg.rw, "-pools", pools, "-vols", vols}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var final *daemonclient.Report
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		var r daemonclient.Report
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Errorf("loadgen printed %q: %v", sc.Text(), err)
			continue
		}
		if r.Final {
			final = &r
			continue
		}
		each(r)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("loadgen: %v (timeout %v)\n%s", err, timeout, stderr.String())
	}
	if final == nil {
		t.Fatalf("loadgen printed no final report\n%s", stderr.String())
	}
	return *final
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

// TestLoad runs 200 concurrent clients × 10,000 mixed RPCs each (knobs:
// envClients, envCalls) against the daemon process over several pools: pool
// and volume lookups, info, lists, and volume create+delete. No call may fail
// and the daemon's RSS stays bounded; throughput and latency are reported,
// not asserted. The clients run in loadgen, a process built without the race
// detector.
func TestLoad(t *testing.T) {
	clients := envInt(t, envClients, 200)
	calls := envInt(t, envCalls, 10000)
	maxRSS := int64(envInt(t, envMaxRSSMB, 200)) << 10
	loadgen(t) // built before the daemon starts, so the build is not timed
	tg := startProcess(t, testkit.DaemonOptions{})
	before := readProc(t, tg.pid)
	// At least 500 calls a second must go through, or the run is a failure
	// anyway; the bound keeps a stuck daemon from hanging the test binary.
	budget := 2*time.Minute + time.Duration(clients*calls/500)*time.Second
	mon := watchProc(t, tg.pid, 250*time.Millisecond)
	final := runLoadgen(t, tg, budget, func(r daemonclient.Report) {
		t.Logf("load: %v: %d calls, %d errors; last %v: %s; daemon %s", time.Duration(r.ElapsedNS).Round(time.Second),
			r.Calls, r.Errors, loadReportIn, r.Latencies(), readProc(t, tg.pid))
	}, "-clients", strconv.Itoa(clients), "-calls", strconv.Itoa(calls), "-report", loadReportIn.String())
	peak := mon.halt()
	after := readProc(t, tg.pid)
	elapsed := time.Duration(final.ElapsedNS)
	t.Logf("load: %d clients × %d calls: %d ok, %d errors in %v (%.0f calls/s); latency %s",
		clients, calls, final.Calls, final.Errors, elapsed.Round(time.Millisecond),
		float64(final.Calls)/elapsed.Seconds(), final.Latencies())
	t.Logf("load: daemon before %s, peak %s, after %s", before, peak, after)
	if final.Errors > 0 {
		t.Errorf("%d calls failed; first ones:\n%s", final.Errors, strings.Join(final.FirstErrors, "\n"))
	}
	if want := int64(clients * calls); final.Calls != want {
		t.Errorf("%d calls done, want %d", final.Calls, want)
	}
	if peak.rssKB > maxRSS {
		t.Errorf("daemon peak RSS %d KiB, over the %d KiB bound", peak.rssKB, maxRSS)
	}
	if peak.rssKB == 0 {
		t.Errorf("no RSS sample of the daemon was taken during the load")
	}
	// Clients are gone: their fds must be too (allow the daemon a moment).
	if !waitUntil(10*time.Second, func() bool { return readProc(t, tg.pid).fds <= before.fds+settleSlack }) {
		t.Errorf("daemon fds %d after the load, %d before", readProc(t, tg.pid).fds, before.fds)
	}
}

// TestSoak runs the load mix plus uploads and downloads for VIRTSTORAGED_SOAK
// (e.g. 10m) with as many clients as TestLoad, printing the daemon's RSS,
// threads, fds and latency every 30s, and fails on any error, on a peak RSS
// over the bound, or on RSS or fds growing in every interval.
func TestSoak(t *testing.T) {
	v := os.Getenv(envSoak)
	if v == "" {
		t.Skipf("soak run: set %s=10m (make soak)", envSoak)
	}
	duration, err := time.ParseDuration(v)
	if err != nil || duration <= 0 {
		t.Fatalf("%s=%q: want a duration", envSoak, v)
	}
	// The issue asks for the load's mix plus streams: the load's 200 clients,
	// not a lighter run that could hide contention the load would show.
	clients := envInt(t, envSoakCli, 200)
	// The load's 200 MiB, plus each client's stream volume in flight, doubled
	// for the Go heap growing to twice what is live between collections. The
	// 10-minute soak of 200 clients peaked at 209 MiB: over the load's bound,
	// with a live heap (GODEBUG=gctrace=1) flat at 76-83 MB from the first
	// minute to the last.
	maxRSS := int64(envInt(t, envMaxRSSMB, 200+clients*2*soakStreamBytes>>20)) << 10
	loadgen(t)
	tg := startProcess(t, testkit.DaemonOptions{})
	period := min(statsPeriod, duration/2)
	start := readProc(t, tg.pid)
	// The 30 s samples feed the trend check; the peak between them, where
	// stream buffers come and go, is only seen by sampling more often.
	mon := watchProc(t, tg.pid, time.Second)
	var samples []procStats
	final := runLoadgen(t, tg, duration+2*time.Minute, func(r daemonclient.Report) {
		s := readProc(t, tg.pid)
		samples = append(samples, s)
		t.Logf("soak %v left: %s; %d calls, %d errors; latency %s",
			max(0, duration-time.Duration(r.ElapsedNS)).Round(time.Second), s, r.Calls, r.Errors, r.Latencies())
		if s.rssKB > maxRSS {
			t.Errorf("daemon RSS %d KiB, over the %d KiB bound", s.rssKB, maxRSS)
		}
	}, "-clients", strconv.Itoa(clients), "-calls", "0", "-duration", duration.String(), "-streams", "-stream-bytes", strconv.Itoa(soakStreamBytes), "-report", period.String())
	select {
	case <-tg.daemon.Done():
		t.Fatalf("the daemon exited during the soak: %v", tg.daemon.ExitErr())
	default:
	}
	peak := mon.halt()
	end := readProc(t, tg.pid)
	samples = append(samples, end)
	t.Logf("soak: %d clients: %d calls, %d errors in %v; latency %s", clients, final.Calls, final.Errors,
		time.Duration(final.ElapsedNS).Round(time.Second), final.Latencies())
	t.Logf("soak: daemon start %s, peak %s, end %s", start, peak, end)
	if peak.rssKB > maxRSS {
		t.Errorf("daemon peak RSS %d KiB, over the %d KiB bound", peak.rssKB, maxRSS)
	}
	if final.Errors > 0 {
		t.Errorf("%d calls failed; first ones:\n%s", final.Errors, strings.Join(final.FirstErrors, "\n"))
	}
	if final.Calls == 0 {
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
