package bench

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Median is the middle of xs (the mean of the two middle values for an even count), or
// NaN for none. xs is not modified.
func Median(xs []float64) float64 {
	n := len(xs)
	if n == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Percentile is the q-quantile (0 <= q <= 1) of sorted by the nearest-rank rule
// storbench.py uses, sorted[min(n-1, floor(q*n))], so that both tools report the same
// p50/p99 from the same samples. It is NaN for none.
func Percentile(sorted []float64, q float64) float64 {
	n := len(sorted)
	if n == 0 {
		return math.NaN()
	}
	return sorted[min(n-1, max(0, int(q*float64(n))))]
}

// Stats summarises the values one metric took over the rounds.
type Stats struct {
	// Median, Min and Max summarise Values.
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	// Values are the per-round figures in run order.
	Values []float64 `json:"values"`
}

// Summarize computes the Stats of xs; every field is NaN for none.
func Summarize(xs []float64) Stats {
	if len(xs) == 0 {
		return Stats{Median: math.NaN(), Min: math.NaN(), Max: math.NaN()}
	}
	return Stats{Median: Median(xs), Min: slices.Min(xs), Max: slices.Max(xs), Values: slices.Clone(xs)}
}

// FormatValue prints a figure the way storbench.py does: 4 significant digits below
// 1000, whole numbers above, "-" for NaN.
func FormatValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "-"
	case math.IsInf(v, 0):
		return fmt.Sprint(v)
	case math.Abs(v) < 1000:
		return strconv.FormatFloat(v, 'g', 4, 64)
	default:
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
}

// Size is a byte count given on the command line as a number with an optional binary
// suffix: 262120, 4M, 1G, 1.5GiB, 256MiB (k, m, g, t; case does not matter).
type Size int64

var sizeUnits = map[string]int64{"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}

// UnmarshalText parses s as a Size.
func (s *Size) UnmarshalText(b []byte) error {
	txt := strings.ToLower(strings.TrimSpace(string(b)))
	num := strings.TrimRight(txt, "kmgtib")
	suffix := txt[len(num):]
	unit := strings.TrimSuffix(strings.TrimSuffix(suffix, "b"), "i")
	mult, ok := sizeUnits[unit]
	if suffix != unit && suffix != unit+"b" && (unit == "" || suffix != unit+"ib") {
		ok = false
	}
	if !ok || num == "" {
		return fmt.Errorf("bench: size %q: want a byte count like 262120, 4M or 1G", string(b))
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || f*float64(mult) > math.MaxInt64/2 {
		return fmt.Errorf("bench: size %q: want a byte count like 262120, 4M or 1G", string(b))
	}
	*s = Size(f * float64(mult))
	return nil
}

// String prints s with the largest binary suffix that divides it.
func (s Size) String() string {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}} {
		if s != 0 && int64(s)%u.mult == 0 {
			return strconv.FormatInt(int64(s)/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(s), 10)
}
