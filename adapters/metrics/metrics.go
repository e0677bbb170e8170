// Package metrics serves the daemon's Prometheus metrics (docs/metrics.md):
// pools, volume jobs, RPC calls, clients and the Go runtime. It observes the
// daemon through ports only: the RPC server tells it about calls and clients
// (ports.CallObserver) and it reads pools and jobs from the service's
// read-only status (ports.StatusSource) at each scrape. Nothing it serves can
// change state, and a scraper, however slow, holds no lock of the daemon: the
// figures are copied first and written out afterwards.
package metrics

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

const namespace = "virtstoraged"

var _ ports.CallObserver = (*Metrics)(nil)

// callBuckets are the bounds of the RPC latency histograms, in seconds: from
// the tens of microseconds a lookup takes to the minutes a pool build can.
var callBuckets = []float64{
	25e-6, 50e-6, 100e-6, 250e-6, 500e-6,
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
	1, 2.5, 5, 10, 30, 60, 300,
}

// Config tunes the metrics.
type Config struct {
	// Version is the daemon's version, in virtstoraged_build_info.
	Version string
	// Now is the clock of job durations; nil means time.Now.
	Now func() time.Time
}

// Metrics holds the daemon's metrics; it is the ports.CallObserver of the
// RPC server.
type Metrics struct {
	cfg      Config
	reg      *prometheus.Registry
	calls    *prometheus.CounterVec
	errors   *prometheus.CounterVec
	duration *prometheus.HistogramVec
	clients  *prometheus.GaugeVec
}

// New builds the metrics over the service's status.
func New(status ports.StatusSource, cfg Config) (*Metrics, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m := &Metrics{
		cfg: cfg,
		reg: prometheus.NewRegistry(),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "rpc", Name: "calls_total",
			Help: "RPC calls answered, by program and procedure.",
		}, []string{"program", "procedure"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "rpc", Name: "errors_total",
			Help: "RPC calls answered with an error, by program and procedure.",
		}, []string{"program", "procedure"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "rpc", Name: "call_duration_seconds",
			Help:    "Time from a call's arrival to its answer, by program and procedure.",
			Buckets: callBuckets,
		}, []string{"program", "procedure"}),
		clients: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "clients",
			Help: "Clients connected, by server (virtstoraged, admin).",
		}, []string{"server"}),
	}
	// Both servers show from the start, with no client.
	m.clients.WithLabelValues("virtstoraged")
	m.clients.WithLabelValues("admin")
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info",
		Help:        "Always 1; the version label is the daemon's.",
		ConstLabels: prometheus.Labels{"version": cfg.Version},
	})
	build.Set(1)
	for _, c := range []prometheus.Collector{
		m.calls, m.errors, m.duration, m.clients, build,
		&statusCollector{status: status, now: cfg.Now},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := m.reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Gatherer is what the HTTP handler serves; tests read it directly.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

// Procedure returns the recorder of one procedure. Its series appear with
// its first call, so that a scrape lists the procedures in use, not the 400
// of the protocol.
func (m *Metrics) Procedure(program, name string) ports.CallRecorder {
	return &recorder{m: m, program: program, name: name}
}

// ClientConnected counts a client in.
func (m *Metrics) ClientConnected(server string) { m.clients.WithLabelValues(server).Inc() }

// ClientDisconnected counts a client out.
func (m *Metrics) ClientDisconnected(server string) { m.clients.WithLabelValues(server).Dec() }

// recorder holds one procedure's series once it has been called.
type recorder struct {
	m             *Metrics
	program, name string
	once          sync.Once
	calls, errors prometheus.Counter
	duration      prometheus.Observer
}

// CallDone counts a call: a few atomic adds once the series exist.
func (r *recorder) CallDone(took time.Duration, failed bool) {
	r.once.Do(func() {
		r.calls = r.m.calls.WithLabelValues(r.program, r.name)
		r.errors = r.m.errors.WithLabelValues(r.program, r.name)
		r.duration = r.m.duration.WithLabelValues(r.program, r.name)
	})
	r.calls.Inc()
	if failed {
		r.errors.Inc()
	}
	r.duration.Observe(took.Seconds())
}

// statusCollector turns the service's pools and jobs into metrics at each
// scrape.
type statusCollector struct {
	status ports.StatusSource
	now    func() time.Time
}

var (
	poolLabels = []string{"pool", "type"}
	jobLabels  = []string{"id", "kind", "pool", "vol"}

	poolState = prometheus.NewDesc(namespace+"_pool_state",
		"Pool state as virStoragePoolState numbers it: 0 inactive, 1 building, 2 running, 3 degraded, 4 inaccessible.",
		poolLabels, nil)
	poolCapacity = prometheus.NewDesc(namespace+"_pool_capacity_bytes",
		"Capacity of a running pool, as pool-info reports it.", poolLabels, nil)
	poolAllocation = prometheus.NewDesc(namespace+"_pool_allocation_bytes",
		"Allocation of a running pool, as pool-info reports it.", poolLabels, nil)
	poolAvailable = prometheus.NewDesc(namespace+"_pool_available_bytes",
		"Space available in a running pool, as pool-info reports it.", poolLabels, nil)
	poolVolumes = prometheus.NewDesc(namespace+"_pool_volumes",
		"Volumes of a running pool, as pool-list-volumes lists them.", poolLabels, nil)

	jobsRunning = prometheus.NewDesc(namespace+"_jobs_running",
		"Volume jobs running, by kind (build, clone, wipe, upload, download).", []string{"kind"}, nil)
	jobsFinished = prometheus.NewDesc(namespace+"_jobs_finished_total",
		"Volume jobs that ended, by kind, failed ones included.", []string{"kind"}, nil)
	jobsFailed = prometheus.NewDesc(namespace+"_jobs_failed_total",
		"Volume jobs that ended in an error or were aborted by their client, by kind.", []string{"kind"}, nil)
	jobsBytes = prometheus.NewDesc(namespace+"_jobs_bytes_total",
		"Bytes volume jobs got through, running ones included, by kind.", []string{"kind"}, nil)

	jobDone = prometheus.NewDesc(namespace+"_job_bytes_done",
		"Bytes a running volume job got through so far.", jobLabels, nil)
	jobTotal = prometheus.NewDesc(namespace+"_job_bytes",
		"Bytes a running volume job moves in all.", jobLabels, nil)
	jobDuration = prometheus.NewDesc(namespace+"_job_duration_seconds",
		"How long a running volume job has been running.", jobLabels, nil)
)

// Describe sends every descriptor.
func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolState, poolCapacity, poolAllocation, poolAvailable, poolVolumes,
		jobsRunning, jobsFinished, jobsFailed, jobsBytes, jobDone, jobTotal, jobDuration} {
		ch <- d
	}
}

// Collect copies the status, then emits it: the service's locks are held
// only while copying, each for a few fields.
func (c *statusCollector) Collect(ch chan<- prometheus.Metric) {
	pools := c.status.Pools()
	jobs := c.status.Jobs()
	now := c.now()
	for _, p := range pools {
		lv := []string{p.Name, p.Type.String()}
		ch <- prometheus.MustNewConstMetric(poolState, prometheus.GaugeValue, float64(p.State), lv...)
		if p.State != domain.PoolRunning {
			continue
		}
		ch <- prometheus.MustNewConstMetric(poolCapacity, prometheus.GaugeValue, float64(p.Capacity), lv...)
		ch <- prometheus.MustNewConstMetric(poolAllocation, prometheus.GaugeValue, float64(p.Allocation), lv...)
		ch <- prometheus.MustNewConstMetric(poolAvailable, prometheus.GaugeValue, float64(p.Available), lv...)
		ch <- prometheus.MustNewConstMetric(poolVolumes, prometheus.GaugeValue, float64(p.Volumes), lv...)
	}
	running := make(map[domain.JobKind]uint64, len(domain.JobKinds))
	for _, j := range jobs.Running {
		running[j.Kind] += j.Done
		lv := []string{strconv.FormatUint(j.ID, 10), j.Kind.String(), j.Pool, j.Vol}
		ch <- prometheus.MustNewConstMetric(jobDone, prometheus.GaugeValue, float64(j.Done), lv...)
		ch <- prometheus.MustNewConstMetric(jobTotal, prometheus.GaugeValue, float64(j.Total), lv...)
		ch <- prometheus.MustNewConstMetric(jobDuration, prometheus.GaugeValue, max(now.Sub(j.Started).Seconds(), 0), lv...)
	}
	for _, k := range domain.JobKinds {
		t := jobs.Totals[k]
		kind := k.String()
		ch <- prometheus.MustNewConstMetric(jobsRunning, prometheus.GaugeValue, float64(t.Running), kind)
		ch <- prometheus.MustNewConstMetric(jobsFinished, prometheus.CounterValue, float64(t.Finished), kind)
		ch <- prometheus.MustNewConstMetric(jobsFailed, prometheus.CounterValue, float64(t.Failed), kind)
		// Finished jobs count what they got through and running ones what
		// they got through so far: with one snapshot for both, the sum only
		// grows, as a counter must.
		ch <- prometheus.MustNewConstMetric(jobsBytes, prometheus.CounterValue, float64(t.Bytes+running[k]), kind)
	}
}
