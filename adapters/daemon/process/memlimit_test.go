package process_test

import (
	"math"
	"runtime/debug"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/adapters/daemon/process"
)

// Not parallel: the limit is the whole process's.
func TestMemoryLimit(t *testing.T) {
	start := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(start) })
	m := process.NewMemoryLimit()
	if got := m.Set(512 << 20); got != 512<<20 || debug.SetMemoryLimit(-1) != 512<<20 {
		t.Errorf("Set(512 MiB): %d in force, runtime says %d", got, debug.SetMemoryLimit(-1))
	}
	if got := m.Set(0); got != start || debug.SetMemoryLimit(-1) != start {
		t.Errorf("Set(0): %d in force, runtime says %d; want the starting %d", got, debug.SetMemoryLimit(-1), start)
	}
	// A limit from the environment is what unsetting goes back to.
	debug.SetMemoryLimit(1 << 30)
	m = process.NewMemoryLimit()
	m.Set(64 << 20)
	if got := m.Set(0); got != 1<<30 {
		t.Errorf("Set(0) after a start with 1 GiB: %d", got)
	}
	debug.SetMemoryLimit(math.MaxInt64)
}
