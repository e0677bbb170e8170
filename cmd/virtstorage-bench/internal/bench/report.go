package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is everything a run measured.
type Report struct {
	// Meta says when, where and with which settings.
	Meta Meta `json:"meta"`
	// Targets are the daemons measured.
	Targets []Target `json:"targets"`
	// Runs has one entry per scenario, round and target, plus the daemon's memory
	// (scenario "daemon") before round 1 (round 0) and after each round.
	Runs []Run `json:"runs"`
}

// Meta describes the run.
type Meta struct {
	// Date is when the run started.
	Date time.Time `json:"date"`
	// Host is the machine's name.
	Host string `json:"host"`
	// CPUs is the number of CPUs the client saw.
	CPUs int `json:"cpus"`
	// GoVersion is the toolchain the tool was built with.
	GoVersion string `json:"go_version"`
	// Argv is the tool's command line.
	Argv []string `json:"argv"`
	// Scenarios are the scenarios run, in order.
	Scenarios []string `json:"scenarios"`
	// Config is the sizes and counts.
	Config Config `json:"config"`
}

func newMeta(c Config, scenarios []string) Meta {
	host, _ := os.Hostname()
	return Meta{Date: time.Now().UTC(), Host: host, CPUs: runtime.NumCPU(), GoVersion: runtime.Version(),
		Argv: os.Args, Scenarios: scenarios, Config: c}
}

// Run is one scenario run on one target.
type Run struct {
	// Round counts from 1; 0 is the daemon's memory before the first round.
	Round int `json:"round"`
	// Target is the target's label.
	Target string `json:"target"`
	// Scenario is the scenario's name, or "daemon" for memory figures.
	Scenario string `json:"scenario"`
	// Start is when the run began.
	Start time.Time `json:"start"`
	// Metrics are the figures, in the order the scenario measured them.
	Metrics []Metric `json:"metrics"`
	// Samples are per-operation measurements behind the figures (latencies, per-thread
	// counts), by name.
	Samples map[string][]float64 `json:"samples,omitempty"`
	// Warnings are oddities that did not stop the scenario (wrong volume count...).
	Warnings []string `json:"warnings,omitempty"`
	// Error is why the scenario stopped early; its figures are then partial.
	Error string `json:"error,omitempty"`
	// Cost is the whole run's time and CPU, setup included.
	Cost Cost `json:"cost"`
}

// Metric is one figure.
type Metric struct {
	// Name says what was measured and how it is normalised: calls_per_s,
	// daemon_cpu_us_per_call.
	Name string `json:"name"`
	// Unit is the unit of Value ("" for counts).
	Unit string `json:"unit"`
	// Value is the figure.
	Value float64 `json:"value"`
}

// Cost is the wall and CPU time of a whole scenario run, in seconds.
type Cost struct {
	// WallS is the elapsed time.
	WallS float64 `json:"wall_s"`
	// ClientCPUS is this tool's CPU time.
	ClientCPUS float64 `json:"client_cpu_s"`
	// DaemonCPUS is nil without the daemon's pid. It counts the daemon's reaped
	// children (qemu-img) and any other client's work on a shared daemon.
	DaemonCPUS *float64 `json:"daemon_cpu_s,omitempty"`
}

// Row is one metric over every round, per target.
type Row struct {
	// Scenario, Metric and Unit name the figure.
	Scenario string `json:"scenario"`
	Metric   string `json:"metric"`
	Unit     string `json:"unit"`
	// Targets holds the Stats by target label; a target that never produced the
	// metric is absent.
	Targets map[string]Stats `json:"targets"`
	// Ratio is the median of the second target over that of the first (B/A), when
	// both have one and A's is not zero.
	Ratio *float64 `json:"ratio_b_a,omitempty"`
}

// Summary folds the runs into one row per scenario and metric, in the order they were
// first measured. Runs that failed still contribute the figures they got.
func (r *Report) Summary() []Row {
	type key struct{ scenario, metric string }
	var order []key
	rows := map[key]*Row{}
	values := map[key]map[string][]float64{}
	for _, run := range r.Runs {
		for _, m := range run.Metrics {
			k := key{run.Scenario, m.Name}
			if rows[k] == nil {
				order = append(order, k)
				rows[k] = &Row{Scenario: run.Scenario, Metric: m.Name, Unit: m.Unit, Targets: map[string]Stats{}}
				values[k] = map[string][]float64{}
			}
			values[k][run.Target] = append(values[k][run.Target], m.Value)
		}
	}
	// The daemon's memory goes last, as in storbench's output.
	slices.SortStableFunc(order, func(a, b key) int {
		return boolInt(a.scenario == "daemon") - boolInt(b.scenario == "daemon")
	})
	out := make([]Row, 0, len(order))
	for _, k := range order {
		row := rows[k]
		for label, xs := range values[k] {
			row.Targets[label] = Summarize(xs)
		}
		if len(r.Targets) == 2 {
			a, okA := row.Targets[r.Targets[0].Label]
			b, okB := row.Targets[r.Targets[1].Label]
			if okA && okB && a.Median != 0 {
				ratio := b.Median / a.Median
				row.Ratio = &ratio
			}
		}
		out = append(out, *row)
	}
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// FormatStats prints "median [min-max]", or just the value when all rounds agree or
// there was one.
func FormatStats(s Stats) string {
	if len(s.Values) <= 1 || s.Min == s.Max {
		return FormatValue(s.Median)
	}
	return fmt.Sprintf("%s [%s-%s]", FormatValue(s.Median), FormatValue(s.Min), FormatValue(s.Max))
}

// WriteTable prints the summary as an aligned table (one column per target, then B/A
// with two targets), followed by the targets' legend and any errors and warnings.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := []string{"scenario", "metric", "unit"}
	for _, t := range r.Targets {
		head = append(head, t.Label+" median [min-max]")
	}
	if len(r.Targets) == 2 {
		head = append(head, "B/A")
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, row := range r.Summary() {
		cells := []string{row.Scenario, row.Metric, row.Unit}
		for _, t := range r.Targets {
			if s, ok := row.Targets[t.Label]; ok {
				cells = append(cells, FormatStats(s))
			} else {
				cells = append(cells, "-")
			}
		}
		if len(r.Targets) == 2 {
			if row.Ratio != nil {
				cells = append(cells, fmt.Sprintf("%.3g", *row.Ratio))
			} else {
				cells = append(cells, "-")
			}
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	rounds := 0
	for _, run := range r.Runs {
		rounds = max(rounds, run.Round)
	}
	fmt.Fprintf(w, "\n%d round(s); MB = 10^6 bytes; cpu figures per call, op or GiB moved\n", rounds)
	for _, t := range r.Targets {
		pid := "no pid: no daemon cpu/memory"
		if t.PID != 0 {
			pid = fmt.Sprintf("pid %d", t.PID)
		}
		if t.LibVersion != 0 {
			pid += fmt.Sprintf(", libvirt %d.%d.%d", t.LibVersion/1000000, t.LibVersion/1000%1000, t.LibVersion%1000)
		}
		fmt.Fprintf(w, "%s = %s (%s)\n", t.Label, t.URI, pid)
	}
	seen := map[string]bool{}
	for _, run := range r.Runs {
		msgs := run.Warnings
		if run.Error != "" {
			msgs = append([]string{"error: " + run.Error}, msgs...)
		}
		for _, m := range msgs {
			line := fmt.Sprintf("%s %s: %s", run.Target, run.Scenario, m)
			if !seen[line] {
				seen[line] = true
				fmt.Fprintln(w, line)
			}
		}
	}
	return nil
}

// jsonReport is the file --json writes: the report plus its summary.
type jsonReport struct {
	*Report
	Summary []Row `json:"summary"`
}

// WriteJSON writes the report, every sample and the summary as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return enc.Encode(jsonReport{Report: r, Summary: r.Summary()})
}
