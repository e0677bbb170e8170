package main_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// buildTool builds this command into a temp dir.
func buildTool(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "virtstorage-bench")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func TestCLIRejectsBadArguments(t *testing.T) {
	bin := buildTool(t)
	tests := []struct {
		name     string
		giveArgs []string
		wantErr  string
	}{
		{name: "compare needs two", giveArgs: []string{"--compare", "storage:///system?socket=/a"}, wantErr: "two URIs"},
		{name: "uris without compare", giveArgs: []string{"storage:///system?socket=/a"}, wantErr: "need --compare"},
		{name: "unknown scenario", giveArgs: []string{"--socket", "/nonexistent", "--only", "rpc_lookup,bogus"}, wantErr: `unknown scenario "bogus"`},
		{name: "bad size", giveArgs: []string{"--socket", "/nonexistent", "--chunk", "4X"}, wantErr: "size"},
		{name: "uri and socket", giveArgs: []string{"--uri", "storage:///system", "--socket", "/s"}, wantErr: "can't be used together"},
		{name: "remote uri", giveArgs: []string{"--uri", "storage://host/system"}, wantErr: "remote hosts"},
		{name: "no daemon", giveArgs: []string{"--socket", "/nonexistent/sock", "--only", "rpc_lookup"}, wantErr: "connect /nonexistent/sock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(bin, append(tt.giveArgs, "--workdir", t.TempDir())...)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("exit 0, want failure; output:\n%s", out)
			}
			if !strings.Contains(string(out), tt.wantErr) {
				t.Errorf("output does not mention %q:\n%s", tt.wantErr, out)
			}
		})
	}
}

// daemonURI starts our daemon (built once by testkit, or taken from make test).
func daemonURI(t *testing.T) string {
	t.Helper()
	return testkit.StartDaemon(t, testkit.DaemonOptions{}).URI()
}

func TestCLICompare(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	bin := buildTool(t)
	uri := daemonURI(t)
	js := filepath.Join(t.TempDir(), "out.json")
	cmd := exec.Command(bin, "--compare", uri, uri, "--only", "rpc_lookup", "--rounds", "2",
		"--n-lookup", "20", "--json", js, "--workdir", filepath.Join(t.TempDir(), "wd"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(string(out), "B/A") || !strings.Contains(string(out), "calls_per_s") {
		t.Errorf("no comparison table:\n%s", out)
	}
	b, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Runs []struct {
			Round    int    `json:"round"`
			Target   string `json:"target"`
			Scenario string `json:"scenario"`
		} `json:"runs"`
		Summary []struct {
			Metric string   `json:"metric"`
			Ratio  *float64 `json:"ratio_b_a"`
		} `json:"summary"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	// Round 1 runs A first, round 2 B first: the interleaving that spreads noise.
	var order []string
	for _, r := range rep.Runs {
		if r.Scenario == "rpc_lookup" {
			order = append(order, r.Target)
		}
	}
	if strings.Join(order, "") != "ABBA" {
		t.Errorf("run order = %v, want A B B A", order)
	}
	if len(rep.Summary) == 0 || rep.Summary[0].Ratio == nil {
		t.Errorf("summary has no ratio: %s", b)
	}
}
