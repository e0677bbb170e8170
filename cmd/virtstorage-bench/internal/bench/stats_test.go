package bench_test

import (
	"math"
	"slices"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/cmd/virtstorage-bench/internal/bench"
)

func TestMedian(t *testing.T) {
	tests := []struct {
		name string
		give []float64
		want float64
	}{
		{name: "one", give: []float64{7}, want: 7},
		{name: "odd unsorted", give: []float64{5, 1, 3}, want: 3},
		{name: "even takes the mean of the middle two", give: []float64{4, 1, 3, 2}, want: 2.5},
		{name: "duplicates", give: []float64{2, 2, 9}, want: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := slices.Clone(tt.give)
			if got := bench.Median(tt.give); got != tt.want {
				t.Errorf("Median(%v) = %v, want %v", tt.give, got, tt.want)
			}
			if !slices.Equal(orig, tt.give) {
				t.Errorf("Median modified its input: %v", tt.give)
			}
		})
	}
	if !math.IsNaN(bench.Median(nil)) {
		t.Error("Median(nil) is not NaN")
	}
}

func TestPercentile(t *testing.T) {
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(i + 1)
	}
	tests := []struct {
		name  string
		give  []float64
		giveQ float64
		want  float64
	}{
		// storbench.py's pct: sorted[min(n-1, int(q*n))].
		{name: "p50 of 100", give: hundred, giveQ: .5, want: 51},
		{name: "p99 of 100", give: hundred, giveQ: .99, want: 100},
		{name: "p0", give: hundred, giveQ: 0, want: 1},
		{name: "p100 clamps to the last", give: hundred, giveQ: 1, want: 100},
		{name: "p50 of 4", give: []float64{1, 2, 3, 4}, giveQ: .5, want: 3},
		{name: "p99 of 1", give: []float64{42}, giveQ: .99, want: 42},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := bench.Percentile(tt.give, tt.giveQ); got != tt.want {
				t.Errorf("Percentile(q=%v) = %v, want %v", tt.giveQ, got, tt.want)
			}
		})
	}
	if !math.IsNaN(bench.Percentile(nil, .5)) {
		t.Error("Percentile(nil) is not NaN")
	}
}

func TestSummarize(t *testing.T) {
	got := bench.Summarize([]float64{3, 1, 2})
	want := bench.Stats{Median: 2, Min: 1, Max: 3, Values: []float64{3, 1, 2}}
	if got.Median != want.Median || got.Min != want.Min || got.Max != want.Max || !slices.Equal(got.Values, want.Values) {
		t.Errorf("Summarize = %+v, want %+v", got, want)
	}
	empty := bench.Summarize(nil)
	if !math.IsNaN(empty.Median) || !math.IsNaN(empty.Min) || !math.IsNaN(empty.Max) {
		t.Errorf("Summarize(nil) = %+v, want NaNs", empty)
	}
}

func TestFormatValue(t *testing.T) {
	tests := []struct {
		name string
		give float64
		want string
	}{
		{name: "small", give: 0.0123456, want: "0.01235"},
		{name: "below 1000", give: 174.44, want: "174.4"},
		{name: "integer", give: 4, want: "4"},
		{name: "large", give: 4663.4, want: "4663"},
		{name: "nan", give: math.NaN(), want: "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := bench.FormatValue(tt.give); got != tt.want {
				t.Errorf("FormatValue(%v) = %q, want %q", tt.give, got, tt.want)
			}
		})
	}
}

func TestSize(t *testing.T) {
	tests := []struct {
		name     string
		give     string
		want     bench.Size
		wantText string
		wantErr  bool
	}{
		{name: "bytes", give: "262120", want: 262120, wantText: "262120"},
		{name: "mebibytes", give: "4M", want: 4 << 20, wantText: "4M"},
		{name: "gibibytes lower", give: "1g", want: 1 << 30, wantText: "1G"},
		{name: "iB suffix", give: "256MiB", want: 256 << 20, wantText: "256M"},
		{name: "B suffix", give: "64kb", want: 64 << 10, wantText: "64K"},
		{name: "fraction", give: "1.5G", want: 3 << 29, wantText: "1536M"},
		{name: "empty", give: "", wantErr: true},
		{name: "unit only", give: "G", wantErr: true},
		{name: "bad unit", give: "5i", wantErr: true},
		{name: "unknown suffix", give: "3x", wantErr: true},
		{name: "negative", give: "-1", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s bench.Size
			err := s.UnmarshalText([]byte(tt.give))
			if (err != nil) != tt.wantErr {
				t.Fatalf("UnmarshalText(%q) error = %v, wantErr %v", tt.give, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if s != tt.want || s.String() != tt.wantText {
				t.Errorf("UnmarshalText(%q) = %d (%s), want %d (%s)", tt.give, s, s, tt.want, tt.wantText)
			}
		})
	}
}
