package rpc_test

import (
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/gen/remote"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkLookupByName measures a STORAGE_POOL_LOOKUP_BY_NAME round trip over a real
// UNIX socket against the in-memory port, with 1 and 8 concurrent clients (one
// connection each). cpu-µs/call is the CPU of the whole test process (client and
// server) per call, from getrusage.
func BenchmarkLookupByName(b *testing.B) {
	for _, clients := range []int{1, 8} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			d := startDaemon(b)
			cls := make([]*remote.Client, clients)
			for i := range cls {
				cls[i] = d.client(b, d.rw, "storage:///system", 0)
			}
			ctx := ctx5(b)
			args := &remote.StoragePoolLookupByNameArgs{Name: "images"}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0, t0 := cpuTime(), time.Now()
			var wg sync.WaitGroup
			for i, cl := range cls {
				n := b.N / clients
				if i < b.N%clients {
					n++
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					for j := 0; j < n; j++ {
						if _, err := cl.StoragePoolLookupByName(ctx, args); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			elapsed, cpu := time.Since(t0), cpuTime()-cpu0
			b.ReportMetric(float64(elapsed.Microseconds())/float64(b.N), "µs/call")
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/call")
		})
	}
}
