package daemonclient

import (
	"fmt"
	"time"
)

// Report is one JSON line of loadgen's output: an interval (Final false) or
// the whole run. Latencies are per RPC, in nanoseconds. loadgen writes it and
// the load and soak tests read it, so the one type keeps both ends agreeing.
type Report struct {
	Final       bool     `json:"final"`
	Calls       int64    `json:"calls"`
	Errors      int64    `json:"errors"`
	FirstErrors []string `json:"first_errors,omitempty"`
	ElapsedNS   int64    `json:"elapsed_ns"`
	P50NS       int64    `json:"p50_ns"`
	P99NS       int64    `json:"p99_ns"`
	MaxNS       int64    `json:"max_ns"`
}

// Latencies is the report's latency figures as durations, for a log line.
func (r Report) Latencies() string {
	return fmt.Sprintf("p50=%v p99=%v max=%v", time.Duration(r.P50NS), time.Duration(r.P99NS), time.Duration(r.MaxNS))
}
