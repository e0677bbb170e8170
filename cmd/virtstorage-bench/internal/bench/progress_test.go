package bench_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/cmd/virtstorage-bench/internal/bench"
)

func TestProgressLine(t *testing.T) {
	p := bench.NewProgress(nil)
	tests := []struct {
		name      string
		giveDone  int
		giveTotal int
		want      string
	}{
		{name: "empty", giveDone: 0, giveTotal: 4, want: "[                              ] 0/4 1m5s A rpc_lookup"},
		{name: "half", giveDone: 2, giveTotal: 4, want: "[==============>               ] 2/4 1m5s A rpc_lookup"},
		{name: "full", giveDone: 4, giveTotal: 4, want: "[==============================] 4/4 1m5s A rpc_lookup"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := p.Line(tt.giveDone, tt.giveTotal, 65500*time.Millisecond, "A rpc_lookup")
			if got != tt.want {
				t.Errorf("Line = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestProgressWriteKeepsLogAboveBar(t *testing.T) {
	var buf bytes.Buffer
	p := bench.NewProgress(&buf)
	p.Start(2)
	p.Step("round 1/1 A wipe")
	p.Write([]byte("warning\n"))
	p.Done()
	p.Finish()
	out := buf.String()
	// The bar is erased before the log line and drawn again after it.
	if !strings.Contains(out, "\r\x1b[Kwarning\n\r[") {
		t.Errorf("log line not printed over a cleared bar: %q", out)
	}
	if !strings.HasSuffix(out, "\r\x1b[K") {
		t.Errorf("Finish did not erase the bar: %q", out)
	}
	var nilBar *bench.Progress
	nilBar.Start(1)
	nilBar.Step("x")
	nilBar.Done()
	nilBar.Finish()
}
