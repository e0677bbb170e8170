package metrics_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/sirupsen/logrus"

	"github.com/virtstoraged-go/virtstoraged/adapters/metrics"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// fixedStatus is a ports.StatusSource with fixed contents.
type fixedStatus struct {
	pools []ports.PoolStatus
	jobs  ports.JobSnapshot
}

func (f *fixedStatus) Pools() []ports.PoolStatus { return f.pools }
func (f *fixedStatus) Jobs() ports.JobSnapshot   { return f.jobs }

var now = time.Unix(1_700_000_000, 0)

func newMetrics(t testing.TB, st ports.StatusSource) *metrics.Metrics {
	t.Helper()
	m, err := metrics.New(st, metrics.Config{Version: "1.2.3", Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func quietLog() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
}

func TestPoolAndJobMetrics(t *testing.T) {
	t.Parallel()
	st := &fixedStatus{
		pools: []ports.PoolStatus{
			{Name: "idle", Type: domain.PoolLogical, State: domain.PoolInactive},
			{Name: "images", Type: domain.PoolDir, State: domain.PoolRunning, Capacity: 1000, Allocation: 300, Available: 700, Volumes: 4},
		},
		jobs: ports.JobSnapshot{
			Running: []ports.JobStatus{
				{ID: 7, Kind: domain.JobClone, Pool: "images", Vol: "copy.img", Started: now.Add(-90 * time.Second), Done: 40, Total: 100},
			},
			Totals: map[domain.JobKind]ports.JobTotals{
				domain.JobBuild: {Finished: 3, Bytes: 5000},
				domain.JobClone: {Running: 1, Finished: 2, Failed: 1, Bytes: 150},
			},
		},
	}
	m := newMetrics(t, st)
	want := `
# HELP virtstoraged_pool_state Pool state as virStoragePoolState numbers it: 0 inactive, 1 building, 2 running, 3 degraded, 4 inaccessible.
# TYPE virtstoraged_pool_state gauge
virtstoraged_pool_state{pool="idle",type="logical"} 0
virtstoraged_pool_state{pool="images",type="dir"} 2
# HELP virtstoraged_pool_capacity_bytes Capacity of a running pool, as pool-info reports it.
# TYPE virtstoraged_pool_capacity_bytes gauge
virtstoraged_pool_capacity_bytes{pool="images",type="dir"} 1000
# HELP virtstoraged_pool_allocation_bytes Allocation of a running pool, as pool-info reports it.
# TYPE virtstoraged_pool_allocation_bytes gauge
virtstoraged_pool_allocation_bytes{pool="images",type="dir"} 300
# HELP virtstoraged_pool_available_bytes Space available in a running pool, as pool-info reports it.
# TYPE virtstoraged_pool_available_bytes gauge
virtstoraged_pool_available_bytes{pool="images",type="dir"} 700
# HELP virtstoraged_pool_volumes Volumes of a running pool, as pool-list-volumes lists them.
# TYPE virtstoraged_pool_volumes gauge
virtstoraged_pool_volumes{pool="images",type="dir"} 4
# HELP virtstoraged_job_bytes_done Bytes a running volume job got through so far.
# TYPE virtstoraged_job_bytes_done gauge
virtstoraged_job_bytes_done{id="7",kind="clone",pool="images",vol="copy.img"} 40
# HELP virtstoraged_job_bytes Bytes a running volume job moves in all.
# TYPE virtstoraged_job_bytes gauge
virtstoraged_job_bytes{id="7",kind="clone",pool="images",vol="copy.img"} 100
# HELP virtstoraged_job_duration_seconds How long a running volume job has been running.
# TYPE virtstoraged_job_duration_seconds gauge
virtstoraged_job_duration_seconds{id="7",kind="clone",pool="images",vol="copy.img"} 90
# HELP virtstoraged_jobs_running Volume jobs running, by kind (build, clone, wipe, upload, download).
# TYPE virtstoraged_jobs_running gauge
virtstoraged_jobs_running{kind="build"} 0
virtstoraged_jobs_running{kind="clone"} 1
virtstoraged_jobs_running{kind="download"} 0
virtstoraged_jobs_running{kind="upload"} 0
virtstoraged_jobs_running{kind="wipe"} 0
# HELP virtstoraged_jobs_finished_total Volume jobs that ended, by kind, failed ones included.
# TYPE virtstoraged_jobs_finished_total counter
virtstoraged_jobs_finished_total{kind="build"} 3
virtstoraged_jobs_finished_total{kind="clone"} 2
virtstoraged_jobs_finished_total{kind="download"} 0
virtstoraged_jobs_finished_total{kind="upload"} 0
virtstoraged_jobs_finished_total{kind="wipe"} 0
# HELP virtstoraged_jobs_failed_total Volume jobs that ended in an error or were aborted by their client, by kind.
# TYPE virtstoraged_jobs_failed_total counter
virtstoraged_jobs_failed_total{kind="build"} 0
virtstoraged_jobs_failed_total{kind="clone"} 1
virtstoraged_jobs_failed_total{kind="download"} 0
virtstoraged_jobs_failed_total{kind="upload"} 0
virtstoraged_jobs_failed_total{kind="wipe"} 0
# HELP virtstoraged_jobs_bytes_total Bytes volume jobs got through, running ones included, by kind.
# TYPE virtstoraged_jobs_bytes_total counter
virtstoraged_jobs_bytes_total{kind="build"} 5000
virtstoraged_jobs_bytes_total{kind="clone"} 190
virtstoraged_jobs_bytes_total{kind="download"} 0
virtstoraged_jobs_bytes_total{kind="upload"} 0
virtstoraged_jobs_bytes_total{kind="wipe"} 0
# HELP virtstoraged_build_info Always 1; the version label is the daemon's.
# TYPE virtstoraged_build_info gauge
virtstoraged_build_info{version="1.2.3"} 1
# HELP virtstoraged_clients Clients connected, by server (virtstoraged, admin).
# TYPE virtstoraged_clients gauge
virtstoraged_clients{server="admin"} 0
virtstoraged_clients{server="virtstoraged"} 0
`
	names := []string{
		"virtstoraged_pool_state", "virtstoraged_pool_capacity_bytes", "virtstoraged_pool_allocation_bytes",
		"virtstoraged_pool_available_bytes", "virtstoraged_pool_volumes",
		"virtstoraged_job_bytes_done", "virtstoraged_job_bytes", "virtstoraged_job_duration_seconds",
		"virtstoraged_jobs_running", "virtstoraged_jobs_finished_total", "virtstoraged_jobs_failed_total",
		"virtstoraged_jobs_bytes_total", "virtstoraged_build_info", "virtstoraged_clients",
	}
	if err := testutil.GatherAndCompare(m.Gatherer(), strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
}

func TestCallAndClientMetrics(t *testing.T) {
	t.Parallel()
	m := newMetrics(t, &fixedStatus{})
	lookup := m.Procedure("remote", "STORAGE_POOL_LOOKUP_BY_NAME")
	m.Procedure("remote", "STORAGE_VOL_WIPE") // never called: no series
	lookup.CallDone(40*time.Microsecond, false)
	lookup.CallDone(3*time.Millisecond, true)
	m.ClientConnected("virtstoraged")
	m.ClientConnected("virtstoraged")
	m.ClientDisconnected("virtstoraged")
	m.ClientConnected("admin")

	want := `
# HELP virtstoraged_rpc_calls_total RPC calls answered, by program and procedure.
# TYPE virtstoraged_rpc_calls_total counter
virtstoraged_rpc_calls_total{procedure="STORAGE_POOL_LOOKUP_BY_NAME",program="remote"} 2
# HELP virtstoraged_rpc_errors_total RPC calls answered with an error, by program and procedure.
# TYPE virtstoraged_rpc_errors_total counter
virtstoraged_rpc_errors_total{procedure="STORAGE_POOL_LOOKUP_BY_NAME",program="remote"} 1
# HELP virtstoraged_clients Clients connected, by server (virtstoraged, admin).
# TYPE virtstoraged_clients gauge
virtstoraged_clients{server="admin"} 1
virtstoraged_clients{server="virtstoraged"} 1
`
	if err := testutil.GatherAndCompare(m.Gatherer(), strings.NewReader(want),
		"virtstoraged_rpc_calls_total", "virtstoraged_rpc_errors_total", "virtstoraged_clients"); err != nil {
		t.Fatal(err)
	}
	mfs, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "virtstoraged_rpc_call_duration_seconds" {
			continue
		}
		if len(mf.Metric) != 1 {
			t.Fatalf("%d duration series, want 1 (the procedure called)", len(mf.Metric))
		}
		h := mf.Metric[0].GetHistogram()
		if h.GetSampleCount() != 2 || h.GetSampleSum() != 0.00304 {
			t.Fatalf("duration histogram: %d samples, sum %v; want 2 and 0.00304", h.GetSampleCount(), h.GetSampleSum())
		}
		// 40 µs falls in the 50 µs bucket, 3 ms in the 5 ms one.
		for _, b := range h.Bucket {
			want := uint64(0)
			switch {
			case b.GetUpperBound() >= 0.005:
				want = 2
			case b.GetUpperBound() >= 50e-6:
				want = 1
			}
			if b.GetCumulativeCount() != want {
				t.Errorf("bucket le=%v holds %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
			}
		}
		return
	}
	t.Fatal("no virtstoraged_rpc_call_duration_seconds")
}

func TestStandardMetrics(t *testing.T) {
	t.Parallel()
	m := newMetrics(t, &fixedStatus{})
	mfs, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, mf := range mfs {
		have[mf.GetName()] = true
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total",
		"process_resident_memory_bytes", "process_open_fds"} {
		if !have[name] {
			t.Errorf("%s missing", name)
		}
	}
}

func TestHandlerIsReadOnly(t *testing.T) {
	t.Parallel()
	h := newMetrics(t, &fixedStatus{}).Handler(quietLog())
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, metrics.MetricsPath, strings.NewReader("x")))
		if rec.Code != http.StatusMethodNotAllowed {
			t.Errorf("%s %s: status %d, want 405", method, metrics.MetricsPath, rec.Code)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("GET /: status %d, want 404", rec.Code)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, metrics.MetricsPath, nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `virtstoraged_build_info{version="1.2.3"} 1`) {
		t.Errorf("GET %s: status %d, body %.200q", metrics.MetricsPath, rec.Code, rec.Body.String())
	}
}

// BenchmarkCallDone is what metrics add to an RPC call: the two clock reads
// around it and the recorder's counters and histogram.
func BenchmarkCallDone(b *testing.B) {
	m := newMetrics(b, &fixedStatus{})
	r := m.Procedure("remote", "STORAGE_POOL_LOOKUP_BY_NAME")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			start := time.Now()
			r.CallDone(time.Since(start), false)
		}
	})
}
