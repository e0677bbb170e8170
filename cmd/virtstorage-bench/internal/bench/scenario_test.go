package bench_test

import (
	"slices"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/cmd/virtstorage-bench/internal/bench"
)

func TestResolveScenarios(t *testing.T) {
	tests := []struct {
		name     string
		giveOnly []string
		want     []string
		wantErr  bool
	}{
		{name: "all by default", want: bench.ScenarioNames()},
		{
			name:     "run order, not argument order",
			giveOnly: []string{"wipe", "rpc_lookup"},
			want:     []string{"rpc_lookup", "wipe"},
		},
		{
			name:     "storbench groups",
			giveOnly: []string{"stream", "vol_create_delete"},
			want:     []string{"vol_create_delete", "vol_create_qcow2", "stream", "download_sparse"},
		},
		{name: "single member", giveOnly: []string{"download_sparse"}, want: []string{"download_sparse"}},
		{name: "blanks ignored", giveOnly: []string{" clone ", ""}, want: []string{"clone"}},
		{name: "unknown", giveOnly: []string{"rpc_lookup", "upload"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := bench.ResolveScenarios(tt.giveOnly)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ResolveScenarios(%v) error = %v, wantErr %v", tt.giveOnly, err, tt.wantErr)
			}
			if err == nil && !slices.Equal(got, tt.want) {
				t.Errorf("ResolveScenarios(%v) = %v, want %v", tt.giveOnly, got, tt.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		give    func(*bench.Config)
		wantErr bool
	}{
		{name: "defaults", give: func(*bench.Config) {}},
		{name: "no rounds", give: func(c *bench.Config) { c.Rounds = 0 }, wantErr: true},
		{name: "sparse data above size", give: func(c *bench.Config) { c.SparseData = c.SparseSize + 1 }, wantErr: true},
		{name: "zero chunk", give: func(c *bench.Config) { c.Chunk = 0 }, wantErr: true},
		{name: "no workdir", give: func(c *bench.Config) { c.Workdir = "" }, wantErr: true},
		{name: "one file", give: func(c *bench.Config) { c.Files = 1 }, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := bench.DefaultConfig()
			tt.give(&c)
			if err := c.Validate(); (err != nil) != tt.wantErr {
				t.Errorf("Validate() error = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}
