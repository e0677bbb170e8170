package dir_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/adapters/dir"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// tmpfsPool returns a pool on a private tmpfs, where no other process changes
// the free space between two refreshes, so that pool figures compare exactly,
// and a directory beside it on the same filesystem.
func tmpfsPool(t *testing.T) (pool *domain.PoolDef, outside string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root: skipping")
	}
	d := t.TempDir()
	if err := unix.Mount("tmpfs", d, "tmpfs", 0, "size=256m,mode=0755"); err != nil {
		t.Skipf("cannot mount a tmpfs (%v): skipping", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(d, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", d, err)
		}
	})
	must(t, os.Mkdir(filepath.Join(d, "pool"), 0o711))
	must(t, os.Mkdir(filepath.Join(d, "outside"), 0o755))
	pool = &domain.PoolDef{Type: domain.PoolDir, Name: "tmpfs", Target: domain.PoolTarget{Path: filepath.Join(d, "pool"), Perms: domain.UnsetPerms()}}
	return pool, filepath.Join(d, "outside")
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path string, size int) {
	t.Helper()
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*7 + len(path))
	}
	must(t, os.WriteFile(path, data, 0o600))
}

func qemuImg(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("qemu-img", args...).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img %v: %v\n%s", args, err, out)
	}
}

// compareRefresh refreshes inc (incremental) and a FileVolumes without cache
// and requires the same stats and volumes, in the same order. On a shared
// filesystem the free space moves between the two calls (other processes,
// the kernel's writeback): both calls measure it live, never from a cache,
// so there it is left out and the rest of the stats compared.
func compareRefresh(t *testing.T, step string, inc *dir.FileVolumes, pool *domain.PoolDef, sharedFS bool) {
	t.Helper()
	ctx := context.Background()
	full := &dir.FileVolumes{FullRefresh: true, Log: testkit.QuietLog()}
	gotStats, gotVols, err := inc.RefreshPool(ctx, pool)
	if err != nil {
		t.Fatalf("%s: incremental refresh: %v", step, err)
	}
	wantStats, wantVols, err := full.RefreshPool(ctx, pool)
	if err != nil {
		t.Fatalf("%s: full refresh: %v", step, err)
	}
	if !reflect.DeepEqual(gotVols, wantVols) {
		t.Fatalf("%s: volumes differ from a full refresh:\n%s", step, volDiff(gotVols, wantVols))
	}
	if sharedFS {
		gotStats.Available, gotStats.Allocation = wantStats.Available, wantStats.Allocation
	}
	if !reflect.DeepEqual(gotStats, wantStats) {
		t.Fatalf("%s: stats %+v, full refresh %+v", step, gotStats, wantStats)
	}
}

func volDiff(got, want []*domain.VolDef) string {
	s := fmt.Sprintf("got %d volumes, want %d\n", len(got), len(want))
	for i := range max(len(got), len(want)) {
		var g, w *domain.VolDef
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if !reflect.DeepEqual(g, w) {
			s += fmt.Sprintf("[%d]\n got %s\nwant %s\n", i, fmtVol(g), fmtVol(w))
		}
	}
	return s
}

func fmtVol(v *domain.VolDef) string {
	if v == nil {
		return "<nil>"
	}
	s := fmt.Sprintf("%+v", *v)
	if v.Target.Timestamps != nil {
		s += fmt.Sprintf(" times %+v", *v.Target.Timestamps)
	}
	if v.Backing != nil {
		s += fmt.Sprintf(" backing %+v", *v.Backing)
	}
	return s
}

// populate fills a pool with a few hundred entries of every kind refresh
// meets: raw, sparse, qcow2 (one over a backing file outside the pool),
// a subdirectory, symlinks in and out of the pool, a dangling one, a file
// with a second hard link outside, a FIFO.
func populate(t *testing.T, target, outside string) {
	t.Helper()
	for i := range 250 {
		writeFile(t, filepath.Join(target, fmt.Sprintf("raw-%03d.img", i)), 4096+i)
	}
	for i := range 30 {
		f, err := os.Create(filepath.Join(target, fmt.Sprintf("sparse-%02d.img", i)))
		must(t, err)
		must(t, f.Truncate(1<<30))
		must(t, f.Close())
	}
	for i := range 4 {
		qemuImg(t, "create", "-q", "-f", "qcow2", filepath.Join(target, fmt.Sprintf("q-%d.qcow2", i)), "64M")
	}
	writeFile(t, filepath.Join(outside, "base.raw"), 1<<20)
	qemuImg(t, "create", "-q", "-f", "qcow2", "-b", filepath.Join(outside, "base.raw"), "-F", "raw", filepath.Join(target, "overlay.qcow2"))
	must(t, os.Mkdir(filepath.Join(target, "sub"), 0o755))
	writeFile(t, filepath.Join(outside, "ext.raw"), 8192)
	must(t, os.Symlink("raw-000.img", filepath.Join(target, "link-in")))
	must(t, os.Symlink(filepath.Join(outside, "ext.raw"), filepath.Join(target, "link-out")))
	must(t, os.Symlink(filepath.Join(outside, "later.raw"), filepath.Join(target, "dangling")))
	writeFile(t, filepath.Join(target, "linked.img"), 4096)
	must(t, os.Link(filepath.Join(target, "linked.img"), filepath.Join(outside, "linked.img")))
	must(t, unix.Mkfifo(filepath.Join(target, "fifo"), 0o600))
}

func appendTo(t *testing.T, path string, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	must(t, err)
	_, err = f.Write(make([]byte, n))
	must(t, err)
	must(t, f.Close())
}

// TestIncrementalRefreshEqualsFull applies mutations of every kind to a pool
// and after each requires the incremental refresh to give what a full one
// gives, having read only a handful of files. Access times are compared too:
// both refreshes open files with O_NOATIME, so reading does not move them.
func TestIncrementalRefreshEqualsFull(t *testing.T) {
	requireQemuImg(t)
	for _, fsName := range []string{"tmpfs", "tempdir"} {
		t.Run(fsName, func(t *testing.T) {
			var pool *domain.PoolDef
			var outside string
			shared := fsName == "tempdir"
			if shared {
				pool, outside = newPool(t), t.TempDir()
			} else {
				pool, outside = tmpfsPool(t)
			}
			target := pool.Target.Path
			populate(t, target, outside)
			p := func(name string) string { return filepath.Join(target, name) }

			be := dir.New(nil, testkit.QuietLog())
			inc := &be.FileVolumes
			t.Cleanup(func() { be.ForgetPool(pool) })
			compareRefresh(t, "first", inc, pool, shared)
			if c := dir.CountsOf(inc); c.Full != 1 || c.Incremental != 0 {
				t.Fatalf("first refresh: counts %+v, want one full", c)
			}

			steps := []struct {
				name   string
				mutate func(t *testing.T)
			}{
				{"nothing", func(t *testing.T) {}},
				{"create", func(t *testing.T) { writeFile(t, p("new-1.img"), 8192) }},
				{"append", func(t *testing.T) { appendTo(t, p("raw-001.img"), 5000) }},
				{"truncate", func(t *testing.T) { must(t, os.Truncate(p("raw-002.img"), 1<<20)) }},
				{"delete", func(t *testing.T) { must(t, os.Remove(p("raw-003.img"))) }},
				{"rename in", func(t *testing.T) {
					writeFile(t, filepath.Join(outside, "in.raw"), 12345)
					must(t, os.Rename(filepath.Join(outside, "in.raw"), p("in.raw")))
				}},
				{"rename out", func(t *testing.T) { must(t, os.Rename(p("raw-004.img"), filepath.Join(outside, "raw-004.img"))) }},
				{"rename within", func(t *testing.T) { must(t, os.Rename(p("raw-009.img"), p("raw-009b.img"))) }},
				{"chmod", func(t *testing.T) { must(t, os.Chmod(p("raw-005.img"), 0o644)) }},
				{"chown", func(t *testing.T) { must(t, os.Chown(p("raw-010.img"), 107, 107)) }},
				{"replace raw by qcow2", func(t *testing.T) {
					qemuImg(t, "create", "-q", "-f", "qcow2", filepath.Join(outside, "tmp.qcow2"), "1G")
					must(t, os.Rename(filepath.Join(outside, "tmp.qcow2"), p("raw-006.img")))
				}},
				{"touch", func(t *testing.T) {
					ts := time.Date(2020, 1, 2, 3, 4, 5, 6, time.UTC)
					must(t, os.Chtimes(p("raw-007.img"), ts, ts))
				}},
				{"write through open fd", func(t *testing.T) {
					f, err := os.OpenFile(p("raw-011.img"), os.O_WRONLY, 0)
					must(t, err)
					t.Cleanup(func() { f.Close() })
					_, err = f.WriteAt([]byte("QFI\xfb"), 0)
					must(t, err)
				}},
				{"grow qcow2", func(t *testing.T) { qemuImg(t, "resize", "-q", p("q-1.qcow2"), "128M") }},
				{"symlink target outside written", func(t *testing.T) { appendTo(t, filepath.Join(outside, "ext.raw"), 4096) }},
				{"symlink target inside written", func(t *testing.T) { appendTo(t, p("raw-000.img"), 100) }},
				{"dangling symlink target created", func(t *testing.T) { writeFile(t, filepath.Join(outside, "later.raw"), 777) }},
				{"backing file chmod", func(t *testing.T) { must(t, os.Chmod(filepath.Join(outside, "base.raw"), 0o640)) }},
				{"file in subdirectory", func(t *testing.T) { writeFile(t, p("sub/inner"), 10) }},
				{"write through the other hard link", func(t *testing.T) { appendTo(t, filepath.Join(outside, "linked.img"), 999) }},
				{"mkdir", func(t *testing.T) { must(t, os.Mkdir(p("sub2"), 0o700)) }},
				{"rmdir", func(t *testing.T) { must(t, os.Remove(p("sub2"))) }},
				{"fifo", func(t *testing.T) { must(t, unix.Mkfifo(p("fifo2"), 0o600)) }},
				{"sparse punch", func(t *testing.T) {
					fd, err := unix.Open(p("raw-012.img"), unix.O_RDWR, 0)
					must(t, err)
					defer unix.Close(fd)
					must(t, unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 0, 4096))
				}},
				{"several at once", func(t *testing.T) {
					appendTo(t, p("raw-020.img"), 1)
					must(t, os.Remove(p("raw-021.img")))
					writeFile(t, p("new-2.img"), 3)
					must(t, os.Chmod(p("sparse-03.img"), 0o400))
				}},
			}
			for _, st := range steps {
				before := dir.CountsOf(inc)
				st.mutate(t)
				compareRefresh(t, st.name, inc, pool, shared)
				after := dir.CountsOf(inc)
				if after.Full != before.Full {
					t.Fatalf("%s: a full refresh ran (counts %+v)", st.name, after)
				}
				// The symlinks, the subdirectory and the hard-linked file
				// are read every time; the mutation adds a few.
				if n := after.Inspected - before.Inspected; n > 12 {
					t.Errorf("%s: %d files read, want a handful", st.name, n)
				}
			}
		})
	}
}

// TestIncrementalRefreshFallsBack checks the cases where the next refresh
// must read everything again, and that its result is still right.
func TestIncrementalRefreshFallsBack(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(t *testing.T, v *dir.FileVolumes, pool *domain.PoolDef)
	}{
		{"queue overflow", func(t *testing.T, v *dir.FileVolumes, pool *domain.PoolDef) {
			dir.SimulateOverflow(v)
			writeFile(t, filepath.Join(pool.Target.Path, "after-overflow"), 10)
		}},
		{"directory replaced", func(t *testing.T, v *dir.FileVolumes, pool *domain.PoolDef) {
			must(t, os.Rename(pool.Target.Path, pool.Target.Path+".old"))
			must(t, os.Mkdir(pool.Target.Path, 0o711))
			writeFile(t, filepath.Join(pool.Target.Path, "other"), 10)
		}},
		{"target path changed", func(t *testing.T, v *dir.FileVolumes, pool *domain.PoolDef) {
			pool.Target.Path = t.TempDir()
			writeFile(t, filepath.Join(pool.Target.Path, "elsewhere"), 10)
		}},
		{"cache too old", func(t *testing.T, v *dir.FileVolumes, pool *domain.PoolDef) {
			dir.AgeCache(v, pool.Name, time.Hour)
		}},
		{"forgotten", func(t *testing.T, v *dir.FileVolumes, pool *domain.PoolDef) {
			v.ForgetPool(pool)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pool := newPool(t)
			pool.Target.Path = filepath.Join(pool.Target.Path, "pool")
			must(t, os.Mkdir(pool.Target.Path, 0o711))
			for i := range 20 {
				writeFile(t, filepath.Join(pool.Target.Path, strconv.Itoa(i)), 512)
			}
			v := &dir.FileVolumes{Log: testkit.QuietLog()}
			t.Cleanup(func() { v.ForgetPool(pool) })
			compareRefresh(t, "first", v, pool, true)
			compareRefresh(t, "second", v, pool, true)
			c := dir.CountsOf(v)
			if c.Full != 1 || c.Incremental != 1 {
				t.Fatalf("counts %+v, want 1 full and then incremental", c)
			}
			tt.mutate(t, v, pool)
			compareRefresh(t, "after", v, pool, true)
			if c = dir.CountsOf(v); c.Full != 2 {
				t.Fatalf("counts %+v, want a second full refresh", c)
			}
			compareRefresh(t, "then", v, pool, true)
			if c2 := dir.CountsOf(v); c2.Full != 2 || c2.Incremental != c.Incremental+1 {
				t.Fatalf("counts %+v, want incremental again", c2)
			}
		})
	}
}

// TestFullRefreshOption checks that FullRefresh keeps no watch and no cache.
func TestFullRefreshOption(t *testing.T) {
	pool := newPool(t)
	writeFile(t, filepath.Join(pool.Target.Path, "a"), 10)
	v := &dir.FileVolumes{FullRefresh: true}
	base := countFDs(t)
	for range 3 {
		if _, vols, err := v.RefreshPool(context.Background(), pool); err != nil || len(vols) != 1 {
			t.Fatalf("RefreshPool: %d volumes, %v", len(vols), err)
		}
	}
	if c := dir.CountsOf(v); c != (dir.RefreshCounts{}) {
		t.Errorf("counts %+v, want none", c)
	}
	if n := countFDs(t); n != base {
		t.Errorf("%d descriptors open, %d before", n, base)
	}
}

// TestIncrementalRefreshRace refreshes while files change, then requires the
// quiet pool's next refresh to match a full one (run with -race).
func TestIncrementalRefreshRace(t *testing.T) {
	pool := newPool(t)
	for i := range 100 {
		writeFile(t, filepath.Join(pool.Target.Path, strconv.Itoa(i)), 512)
	}
	v := &dir.FileVolumes{Log: testkit.QuietLog(), Workers: 4}
	t.Cleanup(func() { v.ForgetPool(pool) })
	ctx := context.Background()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := filepath.Join(pool.Target.Path, strconv.Itoa((i*3+w)%120))
				switch i % 4 {
				case 0:
					_ = os.WriteFile(name, make([]byte, i%5000), 0o600)
				case 1:
					_ = os.Remove(name)
				case 2:
					_ = os.Chmod(name, os.FileMode(0o600|i%2<<5))
				case 3:
					_ = os.Rename(name, name+"x")
				}
			}
		}()
	}
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if _, _, err := v.RefreshPool(ctx, pool); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	compareRefresh(t, "quiet", v, pool, true)
	compareRefresh(t, "quiet again", v, pool, true)
}

func countFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot list /proc/self/fd: %v", err)
	}
	return len(ents)
}

// TestWatchNoFDLeak starts and stops a pool 100 times: the inotify
// descriptor exists while the pool is watched and is closed by StopPool.
func TestWatchNoFDLeak(t *testing.T) {
	be := dir.New(nil, testkit.QuietLog())
	pool := newPool(t)
	writeFile(t, filepath.Join(pool.Target.Path, "a"), 10)
	ctx := context.Background()
	cycle := func(i int) (watching int) {
		must(t, be.StartPool(ctx, pool))
		if _, _, err := be.RefreshPool(ctx, pool); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(pool.Target.Path, "b"+strconv.Itoa(i)), 10)
		if _, _, err := be.RefreshPool(ctx, pool); err != nil {
			t.Fatal(err)
		}
		watching = countFDs(t)
		must(t, be.StopPool(ctx, pool))
		return watching
	}
	cycle(-1) // the runtime's poller opens its own descriptors once
	base := countFDs(t)
	for i := range 100 {
		if w := cycle(i); w != base+1 {
			t.Fatalf("cycle %d: %d descriptors while watching, want %d", i, w, base+1)
		}
		if n := countFDs(t); n != base {
			t.Fatalf("cycle %d: %d descriptors after StopPool, want %d", i, n, base)
		}
	}
	if c := dir.CountsOf(&be.FileVolumes); c.Full != 101 || c.Incremental != 101 {
		t.Errorf("counts %+v, want 101 full and 101 incremental refreshes", c)
	}
}

// TestWatchDroppedOnUnmount: an fs pool's filesystem unmounted under the
// watch releases the inotify descriptor without StopPool.
func TestWatchDroppedOnUnmount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root: skipping")
	}
	d := t.TempDir()
	if err := unix.Mount("tmpfs", d, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount a tmpfs (%v): skipping", err)
	}
	pool := &domain.PoolDef{Type: domain.PoolFS, Name: "fs", Target: domain.PoolTarget{Path: d, Perms: domain.UnsetPerms()}}
	v := &dir.FileVolumes{Log: testkit.QuietLog()}
	t.Cleanup(func() { v.ForgetPool(pool) })
	base := countFDs(t)
	if _, _, err := v.RefreshPool(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	if n := countFDs(t); n != base+1 {
		t.Fatalf("%d descriptors while watching, want %d", n, base+1)
	}
	must(t, unix.Unmount(d, 0))
	deadline := time.Now().Add(5 * time.Second)
	for countFDs(t) != base {
		if time.Now().After(deadline) {
			t.Fatalf("inotify descriptor still open after the unmount")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkRefreshIncremental10k touches one file of a 10,000-file pool
// and refreshes it; compare with BenchmarkRefresh10k, the full refresh.
func BenchmarkRefreshIncremental10k(b *testing.B) {
	be, _ := fakeBackend(b)
	pool := newPool(b)
	fill10k(b, pool.Target.Path)
	ctx := context.Background()
	b.Cleanup(func() { be.ForgetPool(pool) })
	if _, _, err := be.RefreshPool(ctx, pool); err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		i++
		ts := time.Unix(int64(1e9+i), 0)
		if err := os.Chtimes(filepath.Join(pool.Target.Path, "vol-"+strconv.Itoa(i%10000)+".img"), ts, ts); err != nil {
			b.Fatal(err)
		}
		_, vols, err := be.RefreshPool(ctx, pool)
		if err != nil {
			b.Fatal(err)
		}
		if len(vols) != 10000 {
			b.Fatalf("%d volumes", len(vols))
		}
	}
	if c := dir.CountsOf(&be.FileVolumes); c.Full != 1 {
		b.Fatalf("counts %+v, want one full refresh", c)
	}
}

// BenchmarkRefreshFull10k is BenchmarkRefresh10k with FullRefresh set: since
// dir.New refreshes incrementally, BenchmarkRefresh10k measures a pool where
// nothing changed, and this one the full scan every refresh used to be.
func BenchmarkRefreshFull10k(b *testing.B) { benchRefresh10k(b, true) }
