package dir_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/domain"
)

// fill10k makes 10,000 small raw files in the pool's directory.
func fill10k(b *testing.B, dir string) {
	b.Helper()
	data := make([]byte, 4096)
	for i := range 10000 {
		data[0] = byte(i)
		if err := os.WriteFile(filepath.Join(dir, "vol-"+strconv.Itoa(i)+".img"), data, 0o600); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRefresh10k is a refresh of a pool of 10,000 files; compare it with
// BenchmarkStatRead10k, the floor of one stat and one 512-byte read per file.
func BenchmarkRefresh10k(b *testing.B) { benchRefresh10k(b, false) }

// benchRefresh10k refreshes a pool of 10,000 files over and over, each time
// reading every file when full is set.
func benchRefresh10k(b *testing.B, full bool) {
	be, _ := fakeBackend(b)
	be.FullRefresh = full
	pool := newPool(b)
	fill10k(b, pool.Target.Path)
	ctx := context.Background()
	for b.Loop() {
		_, vols, err := be.RefreshPool(ctx, pool)
		if err != nil {
			b.Fatal(err)
		}
		if len(vols) != 10000 {
			b.Fatalf("%d volumes", len(vols))
		}
	}
}

// BenchmarkStatRead10k is the baseline for BenchmarkRefresh10k: a serial
// readdir, stat and 512-byte read of every file.
func BenchmarkStatRead10k(b *testing.B) {
	pool := newPool(b)
	fill10k(b, pool.Target.Path)
	buf := make([]byte, 512)
	for b.Loop() {
		entries, err := os.ReadDir(pool.Target.Path)
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range entries {
			p := filepath.Join(pool.Target.Path, e.Name())
			var st unix.Stat_t
			if err := unix.Stat(p, &st); err != nil {
				b.Fatal(err)
			}
			fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := unix.Pread(fd, buf, 0); err != nil {
				b.Fatal(err)
			}
			unix.Close(fd)
		}
	}
}

func BenchmarkRawCreateDelete(b *testing.B) {
	be, _ := fakeBackend(b)
	pool := newPool(b)
	ctx := context.Background()
	for b.Loop() {
		vol := &domain.VolDef{Name: "v", Capacity: 64 << 20, HasCapacity: true, Target: domain.VolTarget{Perms: domain.UnsetPerms()}}
		if err := be.PrepareVol(pool, vol); err != nil {
			b.Fatal(err)
		}
		if err := be.BuildVol(ctx, pool, vol, 0); err != nil {
			b.Fatal(err)
		}
		if err := be.DeleteVol(ctx, pool, vol, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// writeData fills a file with size bytes of non-zero data.
func writeData(b *testing.B, path string, size int64) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4<<20)
	for i := range chunk {
		chunk[i] = byte(i)
	}
	for off := int64(0); off < size; off += int64(len(chunk)) {
		if _, err := f.WriteAt(chunk, off); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkClone1GiB clones a raw volume holding 1 GiB of data.
func BenchmarkClone1GiB(b *testing.B) {
	be, _ := fakeBackend(b)
	pool := newPool(b)
	ctx := context.Background()
	srcPath := filepath.Join(pool.Target.Path, "src")
	writeData(b, srcPath, 1<<30)
	src := &domain.VolDef{Name: "src", Target: domain.VolTarget{Path: srcPath}}
	if err := be.RefreshVol(ctx, pool, src); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(1 << 30)
	for b.Loop() {
		vol := &domain.VolDef{Name: "clone", HasAllocation: true, Target: domain.VolTarget{Perms: domain.UnsetPerms()}}
		if err := be.PrepareVol(pool, vol); err != nil {
			b.Fatal(err)
		}
		if err := be.BuildVolFrom(ctx, pool, vol, pool, src, 0); err != nil {
			b.Fatal(err)
		}
		if err := be.DeleteVol(ctx, pool, vol, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUploadDownload streams 256 MiB into a volume and back out, in
// 256 KiB messages as the RPC layer sends them.
func BenchmarkUploadDownload(b *testing.B) {
	const size = 256 << 20
	be, _ := fakeBackend(b)
	pool := newPool(b)
	ctx := context.Background()
	vol := &domain.VolDef{Name: "v", Capacity: size, HasCapacity: true, HasAllocation: true, Target: domain.VolTarget{Perms: domain.UnsetPerms()}}
	if err := be.PrepareVol(pool, vol); err != nil {
		b.Fatal(err)
	}
	if err := be.BuildVol(ctx, pool, vol, 0); err != nil {
		b.Fatal(err)
	}
	msg := make([]byte, 256<<10)
	for i := range msg {
		msg[i] = byte(i | 1)
	}
	b.SetBytes(2 * size)
	for b.Loop() {
		w, err := be.UploadVol(ctx, pool, vol, 0, 0, 0)
		if err != nil {
			b.Fatal(err)
		}
		for off := 0; off < size; off += len(msg) {
			if _, err := w.Write(msg); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Finish(ctx); err != nil {
			b.Fatal(err)
		}
		r, err := be.DownloadVol(ctx, pool, vol, 0, 0, domain.StreamSparse)
		if err != nil {
			b.Fatal(err)
		}
		total := 0
		for {
			n, _, err := r.Next(msg)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			total += n
		}
		r.Close()
		if total != size {
			b.Fatalf("downloaded %d bytes", total)
		}
	}
}
