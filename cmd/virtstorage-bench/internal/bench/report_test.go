package bench_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/cmd/virtstorage-bench/internal/bench"
)

// compareReport is two targets over three rounds: A at 100/200/300 calls/s, B at
// 300/400/500, B missing one metric and failing one scenario.
func compareReport() *bench.Report {
	rep := &bench.Report{Targets: []bench.Target{
		{Label: "A", URI: "storage:///system?socket=/a", PID: 10, LibVersion: 9000000},
		{Label: "B", URI: "storage:///system?socket=/b"},
	}}
	for round, v := range []float64{100, 200, 300} {
		rep.Runs = append(rep.Runs,
			bench.Run{Round: round + 1, Target: "A", Scenario: "rpc_lookup", Metrics: []bench.Metric{
				{Name: "calls_per_s", Unit: "calls/s", Value: v},
				{Name: "daemon_cpu_us_per_call", Unit: "us", Value: 150},
			}, Samples: map[string][]float64{"lookup_us": {1, 2}}},
			bench.Run{Round: round + 1, Target: "B", Scenario: "rpc_lookup", Metrics: []bench.Metric{
				{Name: "calls_per_s", Unit: "calls/s", Value: v + 200},
			}},
		)
	}
	rep.Runs = append(rep.Runs,
		bench.Run{Round: 1, Target: "A", Scenario: "daemon", Metrics: []bench.Metric{{Name: "rss_mb", Unit: "MB", Value: 20}}},
		bench.Run{Round: 1, Target: "A", Scenario: "wipe", Metrics: []bench.Metric{{Name: "mb_per_s", Unit: "MB/s", Value: 700}}},
		bench.Run{Round: 1, Target: "B", Scenario: "wipe", Error: "bench: wipe: not supported"},
	)
	return rep
}

func TestSummary(t *testing.T) {
	rows := compareReport().Summary()
	var got []string
	for _, r := range rows {
		got = append(got, r.Scenario+"."+r.Metric)
	}
	want := []string{"rpc_lookup.calls_per_s", "rpc_lookup.daemon_cpu_us_per_call", "wipe.mb_per_s", "daemon.rss_mb"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("rows = %v, want %v (daemon last)", got, want)
	}
	calls := rows[0]
	if a := calls.Targets["A"]; a.Median != 200 || a.Min != 100 || a.Max != 300 {
		t.Errorf("A stats = %+v, want 200 [100-300]", a)
	}
	if calls.Ratio == nil || *calls.Ratio != 2 {
		t.Errorf("ratio = %v, want 2", calls.Ratio)
	}
	if _, ok := rows[1].Targets["B"]; ok || rows[1].Ratio != nil {
		t.Errorf("metric only A has: B present or ratio set: %+v", rows[1])
	}
}

func TestWriteTable(t *testing.T) {
	var buf bytes.Buffer
	if err := compareReport().WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	want := `scenario    metric                  unit     A median [min-max]  B median [min-max]  B/A
rpc_lookup  calls_per_s             calls/s  200 [100-300]       400 [300-500]       2
rpc_lookup  daemon_cpu_us_per_call  us       150                 -                   -
wipe        mb_per_s                MB/s     700                 -                   -
daemon      rss_mb                  MB       20                  -                   -

3 round(s); MB = 10^6 bytes; cpu figures per call, op or GiB moved
A = storage:///system?socket=/a (pid 10, libvirt 9.0.0)
B = storage:///system?socket=/b (no pid: no daemon cpu/memory)
B wipe: error: bench: wipe: not supported
`
	if got := buf.String(); got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
}

func TestWriteTableOneTarget(t *testing.T) {
	rep := &bench.Report{
		Targets: []bench.Target{{Label: "A", URI: "u"}},
		Runs: []bench.Run{{Round: 1, Target: "A", Scenario: "clone", Metrics: []bench.Metric{{Name: "mb_per_s", Unit: "MB/s", Value: 651.23}}},
			{Round: 1, Target: "A", Scenario: "clone", Warnings: []string{"odd"}}},
	}
	var buf bytes.Buffer
	if err := rep.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	head, _, _ := strings.Cut(buf.String(), "\n")
	if strings.Contains(head, "B/A") {
		t.Errorf("one target has a ratio column: %q", head)
	}
	if !strings.Contains(buf.String(), "clone     mb_per_s  MB/s  651.2") || !strings.Contains(buf.String(), "A clone: odd") {
		t.Errorf("table:\n%s", buf.String())
	}
}

func TestWriteJSONShape(t *testing.T) {
	rep := compareReport()
	rep.Meta.Scenarios = []string{"rpc_lookup", "wipe"}
	rep.Meta.Config = bench.DefaultConfig()
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Meta struct {
			Scenarios []string       `json:"scenarios"`
			Config    map[string]any `json:"config"`
		} `json:"meta"`
		Targets []struct {
			Label string `json:"label"`
			URI   string `json:"uri"`
			PID   int    `json:"pid"`
		} `json:"targets"`
		Runs []struct {
			Round    int                  `json:"round"`
			Target   string               `json:"target"`
			Scenario string               `json:"scenario"`
			Metrics  []bench.Metric       `json:"metrics"`
			Samples  map[string][]float64 `json:"samples"`
			Error    string               `json:"error"`
			Cost     map[string]any       `json:"cost"`
		} `json:"runs"`
		Summary []struct {
			Scenario string                 `json:"scenario"`
			Metric   string                 `json:"metric"`
			Unit     string                 `json:"unit"`
			Targets  map[string]bench.Stats `json:"targets"`
			Ratio    *float64               `json:"ratio_b_a"`
		} `json:"summary"`
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(buf.Bytes(), &top); err != nil {
		t.Fatalf("decode: %v", err)
	}
	for _, k := range []string{"meta", "targets", "runs", "summary"} {
		if _, ok := top[k]; !ok {
			t.Errorf("no top-level %q", k)
		}
	}
	if len(top) != 4 {
		t.Errorf("top-level keys = %d, want 4", len(top))
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if len(got.Targets) != 2 || got.Targets[0].PID != 10 || got.Targets[1].Label != "B" {
		t.Errorf("targets = %+v", got.Targets)
	}
	if len(got.Runs) != len(rep.Runs) || got.Runs[0].Samples["lookup_us"][1] != 2 {
		t.Errorf("runs lost samples: %+v", got.Runs[0])
	}
	if _, ok := got.Runs[0].Cost["wall_s"]; !ok {
		t.Errorf("run cost has no wall_s: %v", got.Runs[0].Cost)
	}
	if got.Runs[len(got.Runs)-1].Error == "" {
		t.Error("failed run lost its error")
	}
	if got.Meta.Config["n_lookup"] != float64(20000) || got.Meta.Config["chunk"] != float64(4<<20) {
		t.Errorf("config = %v", got.Meta.Config)
	}
	s := got.Summary[0]
	if s.Metric != "calls_per_s" || s.Ratio == nil || *s.Ratio != 2 || len(s.Targets["B"].Values) != 3 {
		t.Errorf("summary[0] = %+v", s)
	}
}
