package reliability_test

import "testing"

// TestGrowth checks the soak's leak detector on the figures it is meant for.
func TestGrowth(t *testing.T) {
	rss := func(vs ...int64) []procStats {
		out := make([]procStats, len(vs))
		for i, v := range vs {
			out[i] = procStats{rssKB: v}
		}
		return out
	}
	tests := []struct {
		name     string
		give     []procStats
		wantLeak bool
	}{
		{name: "too few samples", give: rss(1, 2, 3, 4), wantLeak: false},
		{name: "flat with noise", give: rss(50, 61, 63, 70, 73, 68, 70, 73, 69, 72, 66, 71, 70), wantLeak: false},
		{name: "rises every interval", give: rss(10, 100, 110, 120, 130, 140), wantLeak: true},
		{name: "rises every interval, barely", give: rss(10, 100, 101, 102, 103, 104), wantLeak: false},
		// The 10-minute soak of 2026-11-24 (MiB), with volume names leaking.
		{name: "noisy upward trend", give: rss(61, 63, 70, 74, 68, 70, 73, 82, 83, 92, 93, 88, 88, 87, 81, 93, 96, 95, 112, 119), wantLeak: true},
		{name: "warm-up only", give: rss(10, 60, 61, 60, 59, 61, 60, 60), wantLeak: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			why := growth(tt.give, func(s procStats) int64 { return s.rssKB })
			if got := why != ""; got != tt.wantLeak {
				t.Errorf("growth = %q, want leak %v", why, tt.wantLeak)
			}
		})
	}
}
