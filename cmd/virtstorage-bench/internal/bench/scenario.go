package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// scenario is one measured workload.
type scenario struct {
	name string
	run  func(ctx context.Context, e *env, o *outcome) error
}

// scenarios in the order they run, storbench.py's order.
var scenarios = []scenario{
	{"rpc_lookup", rpcLookup},
	{"rpc_concurrent", rpcConcurrent},
	{"refresh_10k", refresh10k},
	{"vol_create_delete", volCreateDelete},
	{"vol_create_qcow2", volCreateQcow2},
	{"stream", stream},
	{"download_sparse", downloadSparse},
	{"clone", clone},
	{"wipe", wipe},
}

// groups are storbench.py's scenario names that cover more than one of ours.
var groups = map[string][]string{
	"vol_create_delete": {"vol_create_delete", "vol_create_qcow2"},
	"stream":            {"stream", "download_sparse"},
}

func scenarioByName(name string) (scenario, bool) {
	i := slices.IndexFunc(scenarios, func(s scenario) bool { return s.name == name })
	if i < 0 {
		return scenario{}, false
	}
	return scenarios[i], true
}

// ScenarioNames lists every scenario in run order.
func ScenarioNames() []string {
	out := make([]string, len(scenarios))
	for i, s := range scenarios {
		out[i] = s.name
	}
	return out
}

// ResolveScenarios turns a --only list into scenario names in run order. Empty means
// all. storbench.py's group names select what storbench runs under them:
// vol_create_delete adds vol_create_qcow2 and stream adds download_sparse.
func ResolveScenarios(only []string) ([]string, error) {
	if len(only) == 0 {
		return ScenarioNames(), nil
	}
	want := map[string]bool{}
	for _, n := range only {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if _, ok := scenarioByName(n); !ok {
			return nil, fmt.Errorf("bench: unknown scenario %q (have %s)", n, strings.Join(ScenarioNames(), ", "))
		}
		want[n] = true
		for _, g := range groups[n] {
			want[g] = true
		}
	}
	var out []string
	for _, s := range scenarios {
		if want[s.name] {
			out = append(out, s.name)
		}
	}
	return out, nil
}
