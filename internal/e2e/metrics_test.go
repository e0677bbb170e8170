package e2e_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// metricsDaemon starts the daemon serving metrics on a UNIX socket, with
// more config lines if any, and returns it with a scraper of that socket.
func metricsDaemon(t *testing.T, config ...string) (*testkit.Daemon, *scraper) {
	t.Helper()
	dir, err := os.MkdirTemp("", "vsm") // short: socket paths hold 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	sock := filepath.Join(dir, "metrics.sock")
	conf := fmt.Sprintf("metrics_listen = \"unix:%s\"\n", sock) + strings.Join(config, "\n") + "\n"
	d := startDaemon(t, testkit.DaemonOptions{Config: conf})
	return d, newScraper(sock)
}

// scraper reads the metrics over the daemon's metrics socket.
type scraper struct {
	sock   string
	client *http.Client
}

func newScraper(sock string) *scraper {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}
	return &scraper{sock: sock, client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// scrape returns the metric families of one scrape.
func (s *scraper) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := s.client.Get("http://virtstoraged/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("scrape: %s: %s", resp.Status, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("scrape: parse: %v", err)
	}
	return mfs
}

// value returns the value of the series of name whose labels include
// labels ("k=v" pairs), and whether there is one.
func value(mfs map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	mf := mfs[name]
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.Metric {
		have := map[string]string{}
		for _, lp := range m.Label {
			have[lp.GetName()] = lp.GetValue()
		}
		for _, kv := range labels {
			k, v, _ := strings.Cut(kv, "=")
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func mustValue(t *testing.T, mfs map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	v, ok := value(mfs, name, labels...)
	if !ok {
		t.Fatalf("no %s{%s} in the scrape", name, strings.Join(labels, ","))
	}
	return v
}

// waitValue scrapes until name{labels} equals want. The daemon updates the
// figure when it has handled what the client sent, a moment after the
// client sent it; the loop waits for that moment, the comparison is exact.
func (s *scraper) waitValue(t *testing.T, want float64, name string, labels ...string) map[string]*dto.MetricFamily {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		mfs := s.scrape(t)
		v, ok := value(mfs, name, labels...)
		if ok && v == want {
			return mfs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s{%s} = %v (present %v), want %v after 30 s", name, strings.Join(labels, ","), v, ok, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func dirPoolXML(name, target string) string {
	return "<pool type='dir'><name>" + name + "</name><target><path>" + target + "</path></target></pool>"
}

func rawVolXML(name string, capacity uint64) string {
	return fmt.Sprintf("<volume><name>%s</name><capacity>%d</capacity><allocation>0</allocation><target><format type='raw'/></target></volume>", name, capacity)
}

// TestMetricsMatchPoolInfo scrapes the daemon's metrics and checks them
// against what go-libvirt reads through the protocol.
func TestMetricsMatchPoolInfo(t *testing.T) {
	t.Parallel()
	d, s := metricsDaemon(t)
	base := poolBase(t, "m")
	l := dialGoLibvirt(t, d)
	defer l.Disconnect()

	mfs := s.scrape(t)
	if got := mustValue(t, mfs, "virtstoraged_clients", "server=virtstoraged"); got != 1 {
		t.Errorf("virtstoraged_clients{server=virtstoraged} = %v with one go-libvirt connection, want 1", got)
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "process_open_fds", "virtstoraged_build_info"} {
		mustValue(t, mfs, name)
	}

	pool, err := l.StoragePoolDefineXML(dirPoolXML("mrun", filepath.Join(base, "run")), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.StoragePoolBuild(pool, 0); err != nil {
		t.Fatal(err)
	}
	if err := l.StoragePoolCreate(pool, 0); err != nil {
		t.Fatal(err)
	}
	idle, err := l.StoragePoolDefineXML(dirPoolXML("midle", filepath.Join(base, "idle")), 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, size := range []uint64{1 << 20, 3 << 20, 5 << 20} {
		if _, err := l.StorageVolCreateXML(pool, rawVolXML(fmt.Sprintf("v%d.img", i), size), 0); err != nil {
			t.Fatal(err)
		}
	}
	// Preallocated: the pool's allocation moves with it.
	if _, err := l.StorageVolCreateXML(pool, "<volume><name>full.img</name><capacity>2097152</capacity><target><format type='raw'/></target></volume>", 0); err != nil {
		t.Fatal(err)
	}

	before := s.scrape(t)
	for range 5 {
		if _, err := l.StoragePoolLookupByName("mrun"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.StoragePoolLookupByName("absent"); err == nil {
		t.Fatal("lookup of an absent pool succeeded")
	}
	state, capacity, allocation, available, err := l.StoragePoolGetInfo(pool)
	if err != nil {
		t.Fatal(err)
	}
	nvols, err := l.StoragePoolNumOfVolumes(pool)
	if err != nil {
		t.Fatal(err)
	}
	idleState, _, _, _, err := l.StoragePoolGetInfo(idle)
	if err != nil {
		t.Fatal(err)
	}
	mfs = s.scrape(t)

	run := []string{"pool=mrun", "type=dir"}
	for _, c := range []struct {
		name string
		want float64
	}{
		{"virtstoraged_pool_state", float64(state)},
		{"virtstoraged_pool_capacity_bytes", float64(capacity)},
		{"virtstoraged_pool_allocation_bytes", float64(allocation)},
		{"virtstoraged_pool_available_bytes", float64(available)},
		{"virtstoraged_pool_volumes", float64(nvols)},
	} {
		if got := mustValue(t, mfs, c.name, run...); got != c.want {
			t.Errorf("%s{pool=mrun} = %v, pool-info says %v", c.name, got, c.want)
		}
	}
	if state != 2 || nvols != 4 || allocation < 2<<20 {
		t.Errorf("pool-info: state %d, %d volumes, allocation %d; want running, 4 volumes, at least the 2 MiB allocated", state, nvols, allocation)
	}
	if got := mustValue(t, mfs, "virtstoraged_pool_state", "pool=midle"); got != float64(idleState) || idleState != 0 {
		t.Errorf("virtstoraged_pool_state{pool=midle} = %v, pool-info says %d (inactive)", got, idleState)
	}
	if _, ok := value(mfs, "virtstoraged_pool_capacity_bytes", "pool=midle"); ok {
		t.Error("an inactive pool has a capacity series")
	}

	lookup := []string{"program=remote", "procedure=STORAGE_POOL_LOOKUP_BY_NAME"}
	// A procedure's series appear with its first call: none before is 0.
	callsBefore, _ := value(before, "virtstoraged_rpc_calls_total", lookup...)
	errsBefore, _ := value(before, "virtstoraged_rpc_errors_total", lookup...)
	calls := mustValue(t, mfs, "virtstoraged_rpc_calls_total", lookup...) - callsBefore
	errs := mustValue(t, mfs, "virtstoraged_rpc_errors_total", lookup...) - errsBefore
	if calls != 6 || errs != 1 {
		t.Errorf("between the scrapes: %v lookups, %v errors; want 6 and 1", calls, errs)
	}
	if n := mustValue(t, mfs, "virtstoraged_rpc_call_duration_seconds", lookup...); n != mustValue(t, mfs, "virtstoraged_rpc_calls_total", lookup...) {
		t.Errorf("lookup latency histogram holds %v calls, the counter %v", n, mustValue(t, mfs, "virtstoraged_rpc_calls_total", lookup...))
	}
	if got := mustValue(t, mfs, "virtstoraged_jobs_finished_total", "kind=build"); got != 4 {
		t.Errorf("virtstoraged_jobs_finished_total{kind=build} = %v after 4 creates, want 4", got)
	}
}

// gatedReader gives first bytes, then blocks until open is closed, then gives
// the rest.
type gatedReader struct {
	first, rest int
	open        chan struct{}
}

func (r *gatedReader) Read(p []byte) (int, error) {
	if r.first > 0 {
		n := min(len(p), r.first)
		r.first -= n
		return n, nil
	}
	<-r.open
	if r.rest == 0 {
		return 0, io.EOF
	}
	n := min(len(p), r.rest)
	clear(p[:n])
	r.rest -= n
	return n, nil
}

// gatedWriter takes the first write, then blocks until open is closed.
type gatedWriter struct {
	once  sync.Once
	wrote chan struct{}
	open  chan struct{}
}

func (w *gatedWriter) Write(p []byte) (int, error) {
	first := false
	w.once.Do(func() { first = true; close(w.wrote) })
	if !first {
		<-w.open
	}
	return len(p), nil
}

// clientJobs finds the client running a job with virt-admin and returns its
// client-info.
func clientJobs(t *testing.T, d *testkit.Daemon) string {
	t.Helper()
	out, errOut, code := d.VirtAdmin("srv-clients-list", "virtstoraged")
	if code != 0 {
		t.Fatalf("virt-admin srv-clients-list: %s", errOut)
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !regexp.MustCompile(`^\d+$`).MatchString(f[0]) {
			continue
		}
		info, errOut, code := d.VirtAdmin("client-info", "virtstoraged", f[0])
		if code != 0 {
			t.Fatalf("virt-admin client-info %s: %s", f[0], errOut)
		}
		if strings.Contains(info, "job.0.type") {
			return info
		}
	}
	t.Fatalf("no client lists a job:\n%s", out)
	return ""
}

// field returns the value virt-admin client-info prints for key.
func field(t *testing.T, info, key string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(key) + `\s*: (.*)$`).FindStringSubmatch(info)
	if m == nil {
		t.Fatalf("client-info lacks %s:\n%s", key, info)
	}
	return strings.TrimSpace(m[1])
}

// TestJobProgress holds an upload and a download mid-way and follows them in
// the metrics and in virt-admin client-info.
func TestJobProgress(t *testing.T) {
	t.Parallel()
	testkit.RequireTool(t, "virt-admin")
	// Info for the storage module: the progress lines of long jobs.
	d, s := metricsDaemon(t, `log_filters = "2:storage"`, `log_outputs = "2:stderr"`)
	base := poolBase(t, "j")
	l := dialGoLibvirt(t, d)
	defer l.Disconnect()
	pool, err := l.StoragePoolCreateXML(dirPoolXML("mjob", base), 0)
	if err != nil {
		t.Fatal(err)
	}
	const size = 4 << 20
	vol, err := l.StorageVolCreateXML(pool, rawVolXML("up.img", size), 0)
	if err != nil {
		t.Fatal(err)
	}
	streams := dialGoLibvirt(t, d) // the held stream's own connection
	defer streams.Disconnect()

	const first = 256 << 10
	up := &gatedReader{first: first, rest: size - first, open: make(chan struct{})}
	down := &gatedWriter{wrote: make(chan struct{}), open: make(chan struct{})}
	// A failing test lets the held streams go before it disconnects, which
	// would wait for them.
	var openUp, openDown sync.Once
	defer openUp.Do(func() { close(up.open) })
	defer openDown.Do(func() { close(down.open) })
	upErr := make(chan error, 1)
	go func() { upErr <- streams.StorageVolUpload(vol, up, 0, size, 0) }()
	upload := []string{"kind=upload", "pool=mjob", "vol=up.img"}
	mfs := s.waitValue(t, first, "virtstoraged_job_bytes_done", upload...)
	if got := mustValue(t, mfs, "virtstoraged_job_bytes", upload...); got != size {
		t.Errorf("virtstoraged_job_bytes of the upload = %v, want %d", got, size)
	}
	if got := mustValue(t, mfs, "virtstoraged_jobs_running", "kind=upload"); got != 1 {
		t.Errorf("virtstoraged_jobs_running{kind=upload} = %v, want 1", got)
	}
	info := clientJobs(t, d)
	for key, want := range map[string]string{
		"job.count": "1", "job.0.type": "upload", "job.0.pool": "mjob", "job.0.vol": "up.img",
		"job.0.bytes_done": strconv.Itoa(first), "job.0.bytes_total": strconv.Itoa(size),
	} {
		if got := field(t, info, key); got != want {
			t.Errorf("client-info %s = %q, want %q", key, got, want)
		}
	}
	// The upload is held longer than the 5 s after which a job logs its
	// progress; the line comes then, whenever "then" is on a busy machine.
	waitLog(t, d, "info : storage : volume job in progress ", "bytes_done=262144 ", "bytes_total=4194304 ",
		"job=upload ", "percent=6 ", "pool=mjob ", "vol=up.img")
	openUp.Do(func() { close(up.open) })
	if err := <-upErr; err != nil {
		t.Fatalf("upload: %v", err)
	}
	mfs = s.waitValue(t, 0, "virtstoraged_jobs_running", "kind=upload")
	if got := mustValue(t, mfs, "virtstoraged_jobs_bytes_total", "kind=upload"); got != size {
		t.Errorf("virtstoraged_jobs_bytes_total{kind=upload} = %v, want %d", got, size)
	}
	if _, ok := value(mfs, "virtstoraged_job_bytes_done", upload...); ok {
		t.Error("the finished upload still has a progress series")
	}

	// The client buffers a few packets of a download before its writer is
	// asked again: a volume much larger than that keeps the daemon's side
	// of the download busy while the writer is held.
	const bigSize = 256 << 20
	big, err := l.StorageVolCreateXML(pool, rawVolXML("down.img", bigSize), 0)
	if err != nil {
		t.Fatal(err)
	}
	downErr := make(chan error, 1)
	go func() { downErr <- streams.StorageVolDownload(big, down, 0, 0, 0) }()
	<-down.wrote
	download := []string{"kind=download", "pool=mjob", "vol=down.img"}
	mfs = s.waitValue(t, bigSize, "virtstoraged_job_bytes", download...)
	// How far the daemon got depends on the buffers between it and the
	// stalled client; that it got somewhere short of the end does not.
	if done := mustValue(t, mfs, "virtstoraged_job_bytes_done", download...); done <= 0 || done >= bigSize {
		t.Errorf("virtstoraged_job_bytes_done of the held download = %v, want within (0, %d)", done, bigSize)
	}
	info = clientJobs(t, d)
	if field(t, info, "job.0.type") != "download" || field(t, info, "job.0.vol") != "down.img" ||
		field(t, info, "job.0.bytes_total") != strconv.Itoa(bigSize) {
		t.Errorf("client-info of the download:\n%s", info)
	}
	openDown.Do(func() { close(down.open) })
	if err := <-downErr; err != nil {
		t.Fatalf("download: %v", err)
	}
	s.waitValue(t, bigSize, "virtstoraged_jobs_bytes_total", "kind=download")
}

// waitLog waits until a line of the daemon's log holds every part.
func waitLog(t *testing.T, d *testkit.Daemon, parts ...string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, err := os.ReadFile(d.LogPath)
		if err != nil {
			t.Fatal(err)
		}
	lines:
		for _, line := range strings.Split(string(b), "\n") {
			for _, p := range parts {
				if !strings.Contains(line, p) {
					continue lines
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q within 60 s", parts)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// queued returns how many bytes wait unread in c's receive queue.
func queued(t *testing.T, c *net.UnixConn) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var ierr error
	if err := rc.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCINQ) }); err != nil {
		t.Fatal(err)
	}
	if ierr != nil {
		t.Fatal(ierr)
	}
	return n
}

// TestStuckScrapersDoNotStallTheDaemon leaves scrapers that never read their
// answers, then drives the daemon, including calls that take its pool locks,
// and scrapes again.
func TestStuckScrapersDoNotStallTheDaemon(t *testing.T) {
	t.Parallel()
	d, s := metricsDaemon(t)
	base := poolBase(t, "s")
	l := dialGoLibvirt(t, d)
	defer l.Disconnect()
	pool, err := l.StoragePoolCreateXML(dirPoolXML("mstuck", base), 0)
	if err != nil {
		t.Fatal(err)
	}

	// Each stuck scraper pipelines many requests and reads nothing, so the
	// daemon has far more to write to it than a socket buffer holds. Fewer
	// of them than the 4 scrapes the daemon runs at once: a fifth would be
	// answered a short 503 rather than held.
	const stuck, pipelined = 3, 400
	req := strings.Repeat("GET /metrics HTTP/1.1\r\nHost: virtstoraged\r\n\r\n", pipelined)
	var conns []*net.UnixConn
	for range stuck {
		c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: s.sock, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// Wait until each holds a good part of a socket buffer of answers it
	// does not read: from then on the daemon's writes to it block.
	deadline := time.Now().Add(30 * time.Second)
	for _, c := range conns {
		for queued(t, c) < 64<<10 {
			if time.Now().After(deadline) {
				t.Fatalf("a stuck scraper has only %d bytes queued after 30 s", queued(t, c))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	// A stuck scraper stalls nothing: 30 s bounds a loaded machine, the
	// calls themselves take milliseconds.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		for i := range 20 {
			if _, err := l.StorageVolCreateXML(pool, rawVolXML(fmt.Sprintf("s%d.img", i), 1<<20), 0); err != nil {
				done <- err
				return
			}
			if err := l.StoragePoolRefresh(pool, 0); err != nil {
				done <- err
				return
			}
			if _, _, _, _, err := l.StoragePoolGetInfo(pool); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("calls did not complete within 30 s while scrapers were stuck")
	}
	mfs := s.scrape(t)
	if got := mustValue(t, mfs, "virtstoraged_pool_volumes", "pool=mstuck"); got != 20 {
		t.Errorf("virtstoraged_pool_volumes{pool=mstuck} = %v, want 20", got)
	}
	if _, err := l.StoragePoolLookupByName("mstuck"); err != nil {
		t.Fatal(err)
	}
}
