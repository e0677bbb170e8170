package dir_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/adapters/dir"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// piece is one element of a stream: data, or a hole of the given length.
type piece struct {
	data []byte
	hole int64
}

// drain reads a download to the end with buffers of bufSize.
func drain(t testing.TB, r ports.VolumeReader, bufSize int) []piece {
	t.Helper()
	buf := make([]byte, bufSize)
	return drainWith(t, func() ([]byte, int64, error) {
		n, hole, err := r.Next(buf)
		return buf[:n], hole, err
	})
}

// drainSections reads a download to the end as the transport's sendfile path
// does: sections of at most max bytes, their data read from the file.
func drainSections(t testing.TB, r ports.VolumeSectionReader, max int) []piece {
	t.Helper()
	return drainWith(t, func() ([]byte, int64, error) {
		sec, err := r.NextSection(max)
		if err != nil || sec.Len == 0 {
			return nil, sec.Hole, err
		}
		buf := make([]byte, sec.Len)
		_, err = unix.Pread(sec.FD, buf, sec.Offset)
		return buf, 0, err
	})
}

// drainWith collects the pieces next returns until io.EOF, runs of data
// joined into one piece.
func drainWith(t testing.TB, next func() ([]byte, int64, error)) []piece {
	t.Helper()
	var out []piece
	for {
		data, hole, err := next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if hole > 0 {
			out = append(out, piece{hole: hole})
			continue
		}
		if len(out) > 0 && out[len(out)-1].data != nil {
			out[len(out)-1].data = append(out[len(out)-1].data, data...)
			continue
		}
		out = append(out, piece{data: append([]byte(nil), data...)})
	}
}

func fileVol(t testing.TB, pool *domain.PoolDef, name string) *domain.VolDef {
	t.Helper()
	vol := &domain.VolDef{Name: name, Target: domain.VolTarget{Path: filepath.Join(pool.Target.Path, name)}}
	b, _ := fakeBackend(t)
	if err := b.RefreshVol(context.Background(), pool, vol); err != nil {
		t.Fatal(err)
	}
	return vol
}

func TestDownload(t *testing.T) {
	t.Parallel()
	b, _ := fakeBackend(t)
	pool := newPool(t)
	a, c := bytes.Repeat([]byte{'a'}, 300000), bytes.Repeat([]byte{'c'}, 100000)
	writeSparse(t, filepath.Join(pool.Target.Path, "s"), 20<<20, map[int64][]byte{0: a, 8 << 20: c})
	vol := fileVol(t, pool, "s")
	tests := []struct {
		name       string
		giveOffset uint64
		giveLength uint64
		giveFlags  uint32
		wantLen    int64 // total bytes (data + holes)
		wantHoles  int
	}{
		{name: "whole, not sparse", wantLen: 20 << 20},
		{name: "whole, sparse", giveFlags: domain.StreamSparse, wantLen: 20 << 20, wantHoles: 2},
		{name: "offset past end", giveOffset: 30 << 20, wantLen: 0},
		{name: "offset past int64", giveOffset: 1<<64 - 1, giveLength: 10, wantLen: 0},
		{name: "length", giveOffset: 100, giveLength: 1000, wantLen: 1000},
		{name: "length across a hole, sparse", giveOffset: 302000, giveLength: 10000, giveFlags: domain.StreamSparse, wantLen: 10000, wantHoles: 1},
	}
	for _, tt := range tests {
		for _, sections := range []bool{false, true} {
			name := tt.name
			if sections {
				name += ", sections"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				r, err := b.DownloadVol(context.Background(), pool, vol, tt.giveOffset, tt.giveLength, tt.giveFlags)
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				var pieces []piece
				if sections {
					sr, ok := r.(ports.VolumeSectionReader)
					if !ok {
						if !dir.IsLocalFS(pool.Target.Path) {
							t.Skipf("%s is not on a local filesystem: no sections offered", pool.Target.Path)
						}
						t.Fatal("the download of a file on a local filesystem offers no sections")
					}
					pieces = drainSections(t, sr, 256<<10)
				} else {
					pieces = drain(t, r, 256<<10)
				}
				checkDownload(t, vol, pieces, tt.giveOffset, tt.wantLen, tt.wantHoles)
			})
		}
	}
}

// checkDownload compares the pieces of a download from offset with the file:
// wantLen bytes in all, wantHoles of them holes.
func checkDownload(t *testing.T, vol *domain.VolDef, pieces []piece, offset uint64, wantLen int64, wantHoles int) {
	t.Helper()
	var total int64
	holes := 0
	var got []byte
	for _, p := range pieces {
		if p.data == nil {
			holes++
			total += p.hole
			got = append(got, make([]byte, p.hole)...)
			continue
		}
		total += int64(len(p.data))
		got = append(got, p.data...)
	}
	if total != wantLen || holes != wantHoles {
		t.Errorf("total %d holes %d, want %d and %d", total, holes, wantLen, wantHoles)
	}
	full, _ := os.ReadFile(vol.Target.Path)
	if offset < uint64(len(full)) && !bytes.Equal(got, full[offset:offset+uint64(total)]) {
		t.Error("downloaded bytes differ from the file")
	}
}

func TestUpload(t *testing.T) {
	t.Parallel()
	b, _ := fakeBackend(t)
	pool := newPool(t)
	ctx := context.Background()

	vol := newVol(t, b, pool, "u", "raw", 4<<20, nil)
	if err := b.BuildVol(ctx, pool, vol, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vol.Target.Path, bytes.Repeat([]byte{'x'}, 4<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := b.UploadVol(ctx, pool, vol, 0, 0, domain.StreamSparse)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("head")); err != nil {
		t.Fatal(err)
	}
	if err := w.Hole(1<<20 - 4); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("mid")); err != nil {
		t.Fatal(err)
	}
	if err := w.Hole(3<<20 - 3); err != nil {
		t.Fatal(err)
	}
	if err := w.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(vol.Target.Path)
	want := make([]byte, 4<<20)
	copy(want, "head")
	copy(want[1<<20:], "mid")
	if !bytes.Equal(got, want) {
		t.Error("uploaded content differs: holes must read back as zeros")
	}
	if ext := extents(t, vol.Target.Path); len(ext) != 2 {
		t.Errorf("data extents after a sparse upload: %v, want the holes punched", ext)
	}

	// More bytes than --length: libvirt's ENOSPC stream error.
	w, err = b.UploadVol(ctx, pool, vol, 10, 5, 0)
	if err != nil {
		t.Fatal(err)
	}
	n, err := w.Write([]byte("0123456789"))
	if n != 5 {
		t.Errorf("wrote %d bytes, want the 5 that fit", n)
	}
	var de *domain.Error
	if !errors.As(err, &de) || de.Kind != domain.KindSystem || de.ErrorDomain() != domain.FromStreams || de.Error() != "cannot write to stream: No space left on device" {
		t.Errorf("err = %v", err)
	}
	w.Abort()

	// Past the capacity: refused, the file does not grow.
	w, err = b.UploadVol(ctx, pool, vol, 4<<20-2, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("abcd")); domain.KindOf(err) != domain.KindSystem {
		t.Errorf("write past capacity: %v", err)
	}
	if err := w.Hole(10); err == nil {
		t.Error("hole past capacity accepted")
	}
	w.Abort()
	if size, _ := blocks(t, vol.Target.Path); size != 4<<20 {
		t.Errorf("file grew to %d", size)
	}
	if _, err := b.UploadVol(ctx, pool, vol, 5<<20, 0, 0); domain.KindOf(err) != domain.KindInvalidArg {
		t.Errorf("offset past the end: %v", err)
	}
	if _, err := b.UploadVol(ctx, pool, vol, 0, 0, 2); domain.KindOf(err) != domain.KindInvalidArg {
		t.Errorf("bad flags: %v", err)
	}
}

func TestUploadGrowsSparseTail(t *testing.T) {
	t.Parallel()
	b, _ := fakeBackend(t)
	pool := newPool(t)
	ctx := context.Background()
	// An empty file with a 1 MiB capacity (a qcow2 being replaced, say).
	path := filepath.Join(pool.Target.Path, "t")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	vol := &domain.VolDef{Name: "t", Type: domain.VolFile, Capacity: 1 << 20, Target: domain.VolTarget{Path: path, Format: "raw"}}
	w, err := b.UploadVol(ctx, pool, vol, 0, 0, domain.StreamSparse)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	if err := w.Hole(1<<20 - 3); err != nil {
		t.Fatal(err)
	}
	if err := w.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	if size, alloc := blocks(t, path); size != 1<<20 || alloc > 64<<10 {
		t.Errorf("size %d alloc %d", size, alloc)
	}
}
