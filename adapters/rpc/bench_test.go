package rpc_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/gen/remote"
	"github.com/virtstoraged-go/virtstoraged/gen/virnet"
	"github.com/virtstoraged-go/virtstoraged/xdr"
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
			lookupAll(ctx, b, cls, args)
			b.StopTimer()
			elapsed, cpu := time.Since(t0), cpuTime()-cpu0
			b.ReportMetric(float64(elapsed.Microseconds())/float64(b.N), "µs/call")
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/call")
		})
	}
}

// BenchmarkLookupByNameServerCPU is BenchmarkLookupByName with the server in
// a process of its own (this test binary re-run), so that its CPU per call is
// read from /proc alone: the figure the daemon's target is stated in.
func BenchmarkLookupByNameServerCPU(b *testing.B) {
	for _, bc := range []struct {
		clients int
		metrics bool
	}{{1, false}, {8, false}, {1, true}, {8, true}} {
		name := fmt.Sprintf("clients=%d", bc.clients)
		if bc.metrics {
			name += "/metrics"
		}
		clients := bc.clients
		b.Run(name, func(b *testing.B) {
			sock, pid := startServerProcess(b, bc.metrics)
			cls := make([]*remote.Client, clients)
			for i := range cls {
				cls[i] = (&daemon{}).client(b, sock, "storage:///system", 0)
			}
			ctx := ctx5(b)
			args := &remote.StoragePoolLookupByNameArgs{Name: "images"}
			b.ResetTimer()
			scpu0, t0 := procCPU(b, pid), time.Now()
			lookupAll(ctx, b, cls, args)
			b.StopTimer()
			elapsed, scpu := time.Since(t0), procCPU(b, pid)-scpu0
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "calls/s")
			b.ReportMetric(float64(scpu.Microseconds())/float64(b.N), "server-cpu-µs/call")
		})
	}
}

// startServerProcess runs this test binary as a bare server (see TestMain) and
// returns its socket and pid.
func startServerProcess(b *testing.B, withMetrics bool) (string, int) {
	b.Helper()
	dir, err := os.MkdirTemp("", "rpcb")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), serveEnv+"="+dir)
	if withMetrics {
		cmd.Env = append(cmd.Env, serveMetricsEnv+"=1")
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		cmd.Wait() //nolint:errcheck // exits when stdin closes
	})
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
		b.Fatalf("server process: %q, %v", line, err)
	}
	return filepath.Join(dir, "sock"), cmd.Process.Pid
}

// procCPU is the user+system CPU time of process pid.
func procCPU(b *testing.B, pid int) time.Duration {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+2:]))
	utime, _ := strconv.ParseUint(f[11], 10, 64)
	stime, _ := strconv.ParseUint(f[12], 10, 64)
	const ticksPerSecond = 100 // USER_HZ
	return time.Duration(utime+stime) * time.Second / ticksPerSecond
}

// lookupAll makes b.N lookups spread over the clients, each client in its own
// goroutine.
func lookupAll(ctx context.Context, b *testing.B, cls []*remote.Client, args *remote.StoragePoolLookupByNameArgs) {
	var wg sync.WaitGroup
	for i, cl := range cls {
		n := b.N / len(cls)
		if i < b.N%len(cls) {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n {
				if _, err := cl.StoragePoolLookupByName(ctx, args); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// BenchmarkUpload streams packets of libvirt's size (256 KiB, virsh) and
// go-libvirt's (4 MiB) and of the largest legal size (32 MiB) from a raw
// client over a real UNIX socket into a writer that discards them: the
// server's share of an upload, reading and queueing, without a disk.
func BenchmarkUpload(b *testing.B) {
	for _, size := range []int{262120, 4194276, xdr.MaxFrameLen - xdr.MinFrameLen} {
		b.Run(fmt.Sprintf("packet=%d", size), func(b *testing.B) {
			d := startDaemon(b)
			d.api.setVol("images", "null.img", nil)
			r := dialRaw(b, d.rw)
			r.open(0)
			vol := remote.StorageVol{Pool: "images", Name: "null.img", Key: "/pools/images/null.img"}
			r.call(procUpload, 2, &remote.StorageVolUploadArgs{Vol: vol})
			if h, _ := r.recv(); h.Status != virnet.MessageStatusOk {
				b.Fatalf("upload call: %+v", h)
			}
			pkt := frame(streamHdr(procUpload, 2, virnet.MessageTypeStream, virnet.MessageStatusContinue), nil, make([]byte, size))
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			for range b.N {
				r.write(pkt)
			}
			r.send(streamHdr(procUpload, 2, virnet.MessageTypeStream, virnet.MessageStatusOk), nil)
			if h, _ := r.recv(); h.Status != virnet.MessageStatusOk {
				b.Fatalf("upload finish: %+v", h)
			}
			b.StopTimer()
			b.ReportMetric((cpuTime()-cpu0).Seconds()/(float64(b.N)*float64(size)/(1<<30)), "cpu-s/GiB")
			if w := d.api.lastUpload(); w.written != int64(b.N)*int64(size) {
				b.Fatalf("writer got %d bytes, sent %d", w.written, int64(b.N)*int64(size))
			}
		})
	}
}
