package rbde2e_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// TestBenchRefreshList is the benchmark of docs/performance.md, not a timed
// test: it runs only with VIRTSTORAGED_RBD_BENCH=N (images, e.g. 1000) and
// prints, for libvirtd 9.0 and for our daemon side by side, how long
// pool-start, pool-refresh and vol-list --details take on a pool of N images,
// for each <refresh> setting.
func TestBenchRefreshList(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("VIRTSTORAGED_RBD_BENCH"))
	if n <= 0 {
		t.Skip("rbde2e: set VIRTSTORAGED_RBD_BENCH=N (images) to run the rbd benchmark")
	}
	needLab(t)
	ctx := context.Background()
	newCephPoolPGs(t, "bench", "8") // as the figures of docs/performance.md were measured
	start := time.Now()
	var wg sync.WaitGroup
	work := make(chan int)
	errs := make(chan error, n)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if _, err := lab.Rbd(ctx, "create", "--size", "64M", fmt.Sprintf("bench/img-%04d", i)); err != nil {
					errs <- err
				}
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d images created in %v", n, time.Since(start))

	timed := func(d virsher, args ...string) time.Duration {
		t0 := time.Now()
		out := must(t, d, args...)
		took := time.Since(t0)
		if args[0] == "vol-list" {
			if got := strings.Count(out, "bench/img-"); got != n {
				t.Fatalf("vol-list shows %d images, want %d", got, n)
			}
		}
		return took
	}
	type row struct{ start, refresh, list time.Duration }
	measure := func(d virsher, auth, refresh string) row {
		definePoolOnly(t, d, "bench", poolXML("bench", "bench", auth, refresh))
		var r row
		r.start = timed(d, "pool-start", "bench")
		r.refresh = timed(d, "pool-refresh", "bench")
		r.list = timed(d, "vol-list", "bench", "--details")
		must(t, d, "pool-destroy", "bench")
		must(t, d, "pool-undefine", "bench")
		return r
	}
	modes := []struct{ name, xml string }{
		{"no <refresh>", ""},
		{"allocation='default'", "<refresh><volume allocation='default'/></refresh>"},
	}
	a := startSecrets(t)
	t.Cleanup(func() { a.CleanupPools("bench") })
	theirs := make([]row, len(modes))
	for i, m := range modes {
		theirs[i] = measure(a, cephAuth, m.xml)
	}
	ours := make([]row, len(modes))
	for i, m := range modes {
		// A fresh daemon each time, so that pool-start learns every image;
		// without startDaemon's debug log, which would cost time here.
		d := testkit.StartDaemon(t, testkit.DaemonOptions{Config: "rbd_timeout = 5\n" + secretConfig(a)})
		ours[i] = measure(d, cephAuth, m.xml)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n%d images, 64 MiB each\n", n)
	fmt.Fprintf(&b, "%-22s %-13s %10s %10s %8s\n", "<refresh>", "call", "libvirtd", "ours", "speed-up")
	for i, m := range modes {
		for _, c := range []struct {
			name string
			l, o time.Duration
		}{{"pool-start", theirs[i].start, ours[i].start}, {"pool-refresh", theirs[i].refresh, ours[i].refresh}, {"vol-list --details", theirs[i].list, ours[i].list}} {
			fmt.Fprintf(&b, "%-22s %-18s %8.2fs %8.2fs %7.1fx\n", m.name, c.name, c.l.Seconds(), c.o.Seconds(), c.l.Seconds()/c.o.Seconds())
		}
	}
	t.Log(b.String())
}
