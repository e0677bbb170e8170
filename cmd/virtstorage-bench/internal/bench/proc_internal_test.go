package bench

import (
	"os"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		name    string
		give    string
		want    time.Duration
		wantErr bool
	}{
		{
			// utime 100, stime 50, cutime 20, cstime 5 ticks: 1.75 s.
			name: "comm with spaces and parentheses",
			give: "1234 (rpc (worker) 1) S 1 1234 1234 0 -1 4194560 100 0 0 0 100 50 20 5 20 0 3 0 100 0 0",
			want: 1750 * time.Millisecond,
		},
		{name: "no comm", give: "1234 S 1", wantErr: true},
		{name: "short", give: "1 (x) S 1 2 3", wantErr: true},
		{name: "not a number", give: "1 (x) S 1 1 1 0 -1 0 0 0 0 0 a 0 0 0 20", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tt.give))
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseStatCPU error = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("parseStatCPU = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestProcOfSelf(t *testing.T) {
	// Burn a little CPU so that both counters have moved past zero.
	x := 0
	for deadline := time.Now().Add(30 * time.Millisecond); time.Now().Before(deadline); {
		x++
	}
	if SelfCPU() <= 0 {
		t.Error("SelfCPU is zero after spinning")
	}
	if _, err := ProcCPU(os.Getpid()); err != nil {
		t.Errorf("ProcCPU(self): %v", err)
	}
	m, err := ProcStatus(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if m.RSSKiB <= 0 || m.HWMKiB < m.RSSKiB || m.Threads < 1 {
		t.Errorf("ProcStatus(self) = %+v", m)
	}
	if selfReadBytes() <= 0 {
		t.Error("rchar of self is zero")
	}
	if _, err := ProcCPU(-1); err == nil {
		t.Error("ProcCPU(-1) did not fail")
	}
}
