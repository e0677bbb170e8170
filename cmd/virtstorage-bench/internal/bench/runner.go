package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
)

// Config holds what every scenario needs: rounds, where files go, and the sizes and
// counts of storbench.py's flags (same names, same defaults except Chunk).
type Config struct {
	// Rounds is how many times each scenario runs on each target.
	Rounds int `json:"rounds"`
	// Workdir holds the pools' directories; the daemons must be able to use it.
	Workdir string `json:"workdir"`
	// Keep leaves the files under Workdir in place at the end.
	Keep bool `json:"keep"`
	// NLookup is the number of lookup+info iterations of rpc_lookup.
	NLookup int `json:"n_lookup"`
	// Threads is the number of connections of rpc_concurrent.
	Threads int `json:"threads"`
	// Duration is how long rpc_concurrent runs.
	Duration time.Duration `json:"duration_ns"`
	// Files is the number of volumes refresh_10k puts in its pool.
	Files int `json:"files"`
	// NCreate is the number of raw create+delete pairs of vol_create_delete.
	NCreate int `json:"n_create"`
	// NQcow2 is the number of qcow2 volumes vol_create_qcow2 creates.
	NQcow2 int `json:"n_qcow2"`
	// StreamSize is the volume size of stream and clone.
	StreamSize Size `json:"stream_size"`
	// SparseSize is the volume size of download_sparse.
	SparseSize Size `json:"sparse_size"`
	// SparseData is how much of it holds data.
	SparseData Size `json:"sparse_data"`
	// SparseExtents is the number of data extents SparseData is split into.
	SparseExtents int `json:"sparse_extents"`
	// WipeSize is the volume size of wipe.
	WipeSize Size `json:"wipe_size"`
	// Chunk is the size of each upload Send and file read.
	Chunk Size `json:"chunk"`
}

// DefaultConfig is storbench.py's defaults, with 4 MiB upload chunks.
func DefaultConfig() Config {
	return Config{
		Rounds: 3, Workdir: "/tmp/bench-data/vsb",
		NLookup: 20000, Threads: 8, Duration: 5 * time.Second, Files: 10000, NCreate: 500, NQcow2: 200,
		StreamSize: 1 << 30, SparseSize: 4 << 30, SparseData: 256 << 20, SparseExtents: 4,
		WipeSize: 256 << 20, Chunk: 4 << 20,
	}
}

// Validate rejects sizes and counts the scenarios cannot run with.
func (c *Config) Validate() error {
	switch {
	case c.Rounds < 1:
		return errors.New("bench: rounds must be at least 1")
	case c.NLookup < 1 || c.Threads < 1 || c.Files < 2 || c.NCreate < 1 || c.NQcow2 < 1 || c.SparseExtents < 1:
		return errors.New("bench: counts must be at least 1 (files at least 2)")
	case c.Duration <= 0:
		return errors.New("bench: duration must be positive")
	case c.StreamSize < 1 || c.WipeSize < 1 || c.Chunk < 1:
		return errors.New("bench: sizes must be positive")
	case c.SparseData < Size(c.SparseExtents) || c.SparseData > c.SparseSize:
		return errors.New("bench: sparse data must be between the extent count and the sparse size")
	case c.Workdir == "":
		return errors.New("bench: workdir is required")
	}
	return nil
}

// Target is one daemon under test.
type Target struct {
	// Label names the target in tables and JSON: "A", "B".
	Label string `json:"label"`
	// URI is the libvirt URI it was given as.
	URI string `json:"uri"`
	// Socket is the socket dialled.
	Socket string `json:"socket"`
	// Name is the URI sent in CONNECT_OPEN.
	Name string `json:"name"`
	// PID is the daemon's process, 0 if unknown (no daemon CPU or memory figures).
	PID int `json:"pid,omitempty"`
	// LibVersion is the libvirt version the daemon reports (major*1e6+minor*1e3+micro),
	// 0 if it would not say.
	LibVersion uint64 `json:"lib_version,omitempty"`
}

// NewTarget parses uri for a target labelled label.
func NewTarget(label, uri string, pid int) (Target, error) {
	ep, err := ParseURI(uri)
	if err != nil {
		return Target{}, err
	}
	return Target{Label: label, URI: uri, Socket: ep.Socket, Name: ep.Name, PID: pid}, nil
}

// Runner runs scenarios on targets, interleaved: every round runs each scenario on
// every target before the next scenario, alternating which target goes first, so that
// the machine's noise falls on both alike.
type Runner struct {
	// Config is the sizes and counts.
	Config Config
	// Targets is one target, or two to compare (B against A).
	Targets []Target
	// Scenarios are the scenario names to run, in order (see ResolveScenarios).
	Scenarios []string
	// Log receives warnings.
	Log *logrus.Entry
	// Progress, if not nil, shows where the run is.
	Progress *Progress
}

// Run runs every round. A scenario that fails is recorded in its Run and the others go
// on; only a target that cannot be reached or a bad setup fails the whole run.
func (r *Runner) Run(ctx context.Context) (*Report, error) {
	if err := r.Config.Validate(); err != nil {
		return nil, err
	}
	if len(r.Targets) == 0 || len(r.Targets) > 2 {
		return nil, errors.New("bench: want one target, or two to compare")
	}
	rep := &Report{Meta: newMeta(r.Config, r.Scenarios), Targets: r.Targets}
	wd, err := filepath.Abs(r.Config.Workdir)
	if err != nil {
		return nil, fmt.Errorf("bench: workdir: %w", err)
	}
	if err := os.MkdirAll(wd, 0o755); err != nil {
		return nil, fmt.Errorf("bench: workdir: %w", err)
	}
	envs := make([]*env, len(r.Targets))
	defer func() {
		for _, e := range envs {
			if e != nil {
				cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				e.s.Close(cctx) //nolint:errcheck // the run's figures are already taken
				cancel()
			}
		}
		if !r.Config.Keep {
			r.cleanup(wd)
		}
	}()
	src := filepath.Join(wd, "src.bin")
	if slices.ContainsFunc(r.Scenarios, func(s string) bool { return s == "stream" || s == "clone" }) {
		if err := writeRandomFile(src, int64(r.Config.StreamSize)); err != nil {
			return nil, err
		}
	}
	for i := range r.Targets {
		t := &r.Targets[i]
		s, err := Open(ctx, Endpoint{Socket: t.Socket, Name: t.Name})
		if err != nil {
			return nil, err
		}
		if v, err := s.ConnectGetLibVersion(ctx); err == nil {
			t.LibVersion = v.LibVer
		}
		dir := filepath.Join(wd, strings.ToLower(t.Label))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("bench: workdir: %w", err)
		}
		envs[i] = &env{s: s, t: t, cfg: &r.Config, dir: dir, src: src, log: r.Log, prog: r.Progress}
		rep.Runs = append(rep.Runs, memoryRun(0, t))
	}
	r.Progress.Start(r.Config.Rounds * len(r.Scenarios) * len(r.Targets))
	defer r.Progress.Finish()
	for round := 1; round <= r.Config.Rounds; round++ {
		for _, name := range r.Scenarios {
			order := slices.Clone(envs)
			if round%2 == 0 {
				slices.Reverse(order)
			}
			for _, e := range order {
				if err := ctx.Err(); err != nil {
					return rep, err
				}
				r.Progress.Step(fmt.Sprintf("round %d/%d %s %s", round, r.Config.Rounds, e.t.Label, name))
				run := e.run(ctx, round, name)
				if run.Error != "" {
					r.Log.WithField("target", e.t.Label).Warnf("%s round %d: %s", name, round, run.Error)
				}
				for _, w := range run.Warnings {
					r.Log.WithField("target", e.t.Label).Warnf("%s round %d: %s", name, round, w)
				}
				rep.Runs = append(rep.Runs, run)
				r.Progress.Done()
			}
		}
		for _, e := range envs {
			rep.Runs = append(rep.Runs, memoryRun(round, e.t))
		}
	}
	return rep, nil
}

func (r *Runner) cleanup(wd string) {
	for _, t := range r.Targets {
		os.RemoveAll(filepath.Join(wd, strings.ToLower(t.Label))) //nolint:errcheck // best effort
	}
	os.Remove(filepath.Join(wd, "src.bin")) //nolint:errcheck // may not exist
	os.Remove(wd)                           //nolint:errcheck // only if empty: it may be the user's
}

// memoryRun records the daemon's memory as the pseudo-scenario "daemon" (round 0 is
// before the first scenario).
func memoryRun(round int, t *Target) Run {
	run := Run{Round: round, Target: t.Label, Scenario: "daemon", Start: time.Now().UTC()}
	if t.PID == 0 {
		return run
	}
	m, err := ProcStatus(t.PID)
	if err != nil {
		run.Error = err.Error()
		return run
	}
	// Before the first round is its own figure: the median would mix it with "after".
	suffix := ""
	if round == 0 {
		suffix = "_at_start"
	}
	o := &outcome{}
	o.add("rss_mb"+suffix, "MB", float64(m.RSSKiB)*1024/1e6)
	o.add("hwm_mb"+suffix, "MB", float64(m.HWMKiB)*1024/1e6)
	o.add("threads"+suffix, "", float64(m.Threads))
	run.Metrics = o.metrics
	return run
}

// env is what a scenario works with on one target.
type env struct {
	s    *Session
	t    *Target
	cfg  *Config
	dir  string // this target's directory under the workdir
	src  string // StreamSize bytes of random data
	log  *logrus.Entry
	prog *Progress
}

func (e *env) run(ctx context.Context, round int, name string) Run {
	run := Run{Round: round, Target: e.t.Label, Scenario: name, Start: time.Now().UTC()}
	sc, ok := scenarioByName(name)
	if !ok {
		run.Error = "unknown scenario"
		return run
	}
	o := &outcome{}
	m := e.meter()
	err := sc.run(ctx, e, o)
	c := m.stop()
	run.Cost = Cost{WallS: c.wall, ClientCPUS: c.client}
	if c.hasDaemon {
		run.Cost.DaemonCPUS = &c.daemon
	}
	run.Metrics, run.Samples, run.Warnings = o.metrics, o.samples, o.warnings
	if err != nil {
		run.Error = err.Error()
	}
	return run
}

// status shows what a long scenario is doing on the progress line.
func (e *env) status(s string) { e.prog.Detail(s) }

// outcome collects what a scenario measured.
type outcome struct {
	metrics  []Metric
	samples  map[string][]float64
	warnings []string
}

// add records a figure; NaN and infinities (no samples, zero time) are dropped, as
// JSON cannot carry them and they mean "not measured".
func (o *outcome) add(name, unit string, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	o.metrics = append(o.metrics, Metric{Name: name, Unit: unit, Value: v})
}

func (o *outcome) sample(name string, xs []float64) {
	if o.samples == nil {
		o.samples = map[string][]float64{}
	}
	o.samples[name] = xs
}

func (o *outcome) warn(format string, args ...any) {
	o.warnings = append(o.warnings, fmt.Sprintf(format, args...))
}

// cpu records the client's and (with a pid) the daemon's CPU per operation, in unit
// ("us" or "ms") per what.
func (o *outcome) cpu(c cost, ops float64, unit, what string) {
	scale := map[string]float64{"us": 1e6, "ms": 1e3, "s": 1}[unit]
	o.add("client_cpu_"+unit+"_per_"+what, unit, c.client/ops*scale)
	if c.hasDaemon {
		o.add("daemon_cpu_"+unit+"_per_"+what, unit, c.daemon/ops*scale)
	}
}

// meter measures wall time and CPU time of a stretch of a scenario.
type meter struct {
	pid    int
	t0     time.Time
	c0, d0 time.Duration
	dok    bool
}

// cost is what a meter measured, in seconds.
type cost struct {
	wall, client, daemon float64
	hasDaemon            bool
}

func (e *env) meter() meter {
	m := meter{pid: e.t.PID}
	if m.pid != 0 {
		d, err := ProcCPU(m.pid)
		m.d0, m.dok = d, err == nil
	}
	m.c0 = SelfCPU()
	m.t0 = time.Now()
	return m
}

func (m meter) stop() cost {
	c := cost{wall: time.Since(m.t0).Seconds(), client: (SelfCPU() - m.c0).Seconds()}
	if m.dok {
		if d, err := ProcCPU(m.pid); err == nil {
			c.daemon, c.hasDaemon = (d - m.d0).Seconds(), true
		}
	}
	return c
}

// randomBlock is incompressible data that files and uploads repeat.
func randomBlock() []byte {
	b := make([]byte, 16<<20)
	rand.Read(b) //nolint:errcheck // crypto/rand.Read never fails (Go 1.24+)
	return b
}

// writeRandomFile makes path size bytes of random data, unless it already is that size.
func writeRandomFile(path string, size int64) error {
	if st, err := os.Stat(path); err == nil && st.Size() == size {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bench: source file: %w", err)
	}
	blk := randomBlock()
	for left := size; left > 0; {
		n := min(left, int64(len(blk)))
		if _, err := f.Write(blk[:n]); err != nil {
			f.Close()
			return fmt.Errorf("bench: source file: %w", err)
		}
		left -= n
	}
	return f.Close()
}
