package bench_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/virtstoraged-go/virtstoraged/cmd/virtstorage-bench/internal/bench"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// tinyConfig runs every scenario in about a second.
func tinyConfig(t *testing.T) bench.Config {
	c := bench.DefaultConfig()
	c.Rounds = 1
	c.Workdir = filepath.Join(t.TempDir(), "wd")
	c.NLookup, c.Threads, c.Duration = 50, 2, 200*time.Millisecond
	c.Files, c.NCreate, c.NQcow2 = 40, 5, 2
	c.StreamSize, c.Chunk = 2<<20, 256<<10
	c.SparseSize, c.SparseData, c.SparseExtents = 8<<20, 1<<20, 2
	c.WipeSize = 1 << 20
	return c
}

// runEveryScenario runs all scenarios once on uri and checks each produced its
// figures without error or warning.
func runEveryScenario(t *testing.T, uri string, pid int) {
	t.Helper()
	testkit.RequireTool(t, "qemu-img")
	tgt, err := bench.NewTarget("A", uri, pid)
	if err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.Out = testWriter{t}
	r := &bench.Runner{Config: tinyConfig(t), Targets: []bench.Target{tgt}, Scenarios: bench.ScenarioNames(), Log: logrus.NewEntry(log)}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := r.Run(ctx)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	got := map[string]map[string]float64{}
	for _, run := range rep.Runs {
		if run.Error != "" {
			t.Errorf("%s: %s", run.Scenario, run.Error)
		}
		for _, w := range run.Warnings {
			t.Errorf("%s: warning: %s", run.Scenario, w)
		}
		if got[run.Scenario] == nil {
			got[run.Scenario] = map[string]float64{}
		}
		for _, m := range run.Metrics {
			got[run.Scenario][m.Name] = m.Value
		}
	}
	positive := map[string][]string{
		"rpc_lookup":        {"calls_per_s", "p50_us", "p99_us", "client_cpu_us_per_call"},
		"rpc_concurrent":    {"calls_per_s", "min_thread_calls"},
		"refresh_10k":       {"start_s", "refresh_s", "list_s", "list_info_s", "list_info_pipelined_s"},
		"vol_create_delete": {"ops_per_s", "create_p50_ms", "delete_p50_ms"},
		"vol_create_qcow2":  {"ops_per_s", "delete_ops_per_s"},
		"stream":            {"upload_mb_per_s", "download_mb_per_s"},
		"download_sparse":   {"s", "data_mb", "wire_mb", "nonsparse_s"},
		"clone":             {"mb_per_s"},
		"wipe":              {"mb_per_s"},
	}
	if pid != 0 {
		positive["daemon"] = []string{"rss_mb", "hwm_mb", "rss_mb_at_start"}
	}
	// Daemon CPU comes in clock ticks (10 ms): a tiny run may measure 0, so only
	// its presence is checked.
	if _, ok := got["rpc_lookup"]["daemon_cpu_us_per_call"]; pid != 0 && !ok {
		t.Errorf("rpc_lookup reports no daemon_cpu_us_per_call")
	}
	for sc, names := range positive {
		for _, n := range names {
			if v := got[sc][n]; !(v > 0) {
				t.Errorf("%s %s = %v, want > 0", sc, n, v)
			}
		}
	}
	if h := got["download_sparse"]["holes"]; h != 2 {
		t.Errorf("download_sparse holes = %v, want 2 (one after each extent)", h)
	}
	if d := got["download_sparse"]["data_mb"]; d != float64(1<<20)/1e6 {
		t.Errorf("download_sparse data_mb = %v, want %v", d, float64(1<<20)/1e6)
	}
	if _, err := os.Stat(r.Config.Workdir); !os.IsNotExist(err) {
		t.Errorf("workdir %s left behind (%v)", r.Config.Workdir, err)
	}
	if t.Failed() {
		_ = rep.WriteTable(testWriter{t})
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(string(b))
	return len(b), nil
}

func TestScenariosAgainstLibvirtd(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	uri, pid := startLibvirtd(t)
	runEveryScenario(t, uri, pid)
}

// startLibvirtd returns the URI and pid of testkit's reference libvirtd. It is
// the one instance every test binary of `go test ./...` shares, behind
// testkit's lock and in a private mount namespace: a libvirtd of our own next
// to it would find /run/libvirt taken and exit at once.
func startLibvirtd(t *testing.T) (string, int) {
	t.Helper()
	a := testkit.StartAnchor(t)
	t.Cleanup(func() { a.CleanupPools("bench-vsb-") })
	return a.URI(), a.Pid()
}

func TestScenariosAgainstVirtstoraged(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	d := testkit.StartDaemon(t, testkit.DaemonOptions{})
	runEveryScenario(t, d.URI(), d.Pid())
}
