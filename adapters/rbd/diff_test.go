package rbd_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/adapters/rbd"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// readAll drains a diff reader into the image bytes it stands for, holes
// as zeros, and counts the hole bytes.
func readAll(t *testing.T, r interface {
	Next([]byte) (int, int64, error)
}, buf int) ([]byte, int64, error) {
	t.Helper()
	var out bytes.Buffer
	var holes int64
	b := make([]byte, buf)
	for {
		n, hole, err := r.Next(b)
		out.Write(b[:n])
		if hole > 0 {
			holes += hole
			out.Write(make([]byte, hole))
		}
		if err == io.EOF {
			return out.Bytes(), holes, nil
		}
		if err != nil {
			return out.Bytes(), holes, err
		}
	}
}

// TestDiffReader reads export-diff streams into image bytes, from an offset,
// for a length, with and without holes.
func TestDiffReader(t *testing.T) {
	t.Parallel()
	// A 32-byte image: "abcd" at 4, zeros at 8-15 (a 'z' record), "XY" at 20.
	stream := diffStream(32, []extent{{tag: 'w', off: 4, data: []byte("abcd")}, {tag: 'z', off: 8, n: 8}, {tag: 'w', off: 20, data: []byte("XY")}})
	image := make([]byte, 32)
	copy(image[4:], "abcd")
	copy(image[20:], "XY")
	tests := []struct {
		name           string
		offset, length uint64
		sparse         bool
		buf            int
		wantHoles      int64
	}{
		{name: "whole", buf: 64},
		{name: "whole sparse", sparse: true, buf: 64, wantHoles: 26},
		{name: "small buffer", buf: 3},
		{name: "offset inside data", offset: 6, buf: 64},
		{name: "offset inside hole sparse", offset: 10, sparse: true, buf: 64, wantHoles: 20},
		{name: "range", offset: 5, length: 16, buf: 4},
		{name: "range past the end", offset: 30, length: 100, buf: 64},
		{name: "at the end", offset: 32, buf: 64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, holes, err := readAll(t, rbd.NewDiffReader(bytes.NewReader(stream), tt.offset, tt.length, tt.sparse), tt.buf)
			if err != nil {
				t.Fatal(err)
			}
			end := uint64(32)
			if tt.length != 0 && tt.offset+tt.length < end {
				end = tt.offset + tt.length
			}
			if want := image[tt.offset:end]; !bytes.Equal(got, want) {
				t.Errorf("read %q, want %q", got, want)
			}
			if holes != tt.wantHoles {
				t.Errorf("holes %d, want %d", holes, tt.wantHoles)
			}
		})
	}
}

// A stream cut before its end record is an error, not a short image.
func TestDiffReaderTruncated(t *testing.T) {
	t.Parallel()
	stream := diffStream(32, []extent{{tag: 'w', off: 4, data: []byte("abcd")}})
	for _, cut := range []int{5, len("rbd diff v1\n") + 3, len(stream) - 3, len(stream) - 1} {
		_, _, err := readAll(t, rbd.NewDiffReader(bytes.NewReader(stream[:cut]), 0, 0, false), 64)
		if !errors.Is(err, io.ErrUnexpectedEOF) && err == nil {
			t.Errorf("cut at %d: error %v, want one", cut, err)
		}
	}
	if _, _, err := readAll(t, rbd.NewDiffReader(bytes.NewReader([]byte("rbd diff v2\nxxxx")), 0, 0, false), 64); err == nil {
		t.Errorf("a foreign header read without error")
	}
}

// An upload becomes import-diff records at the stream's position: data,
// holes as zeroed extents, then the end record.
func TestUploadStream(t *testing.T) {
	t.Parallel()
	var got []byte
	call := any("rbd", "")
	call.Do = func(cmd ports.Command) error {
		var err error
		got, err = io.ReadAll(cmd.StdinStream)
		return err
	}
	f := testkit.NewFakeRunner(t, call)
	b, _ := newBackend(t, f, nil)
	ctx := context.Background()
	w, err := b.UploadVol(ctx, plainPool(""), &domain.VolDef{Name: "v", Capacity: 1 << 20}, 100, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	if err := w.Hole(10); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("de")); err != nil {
		t.Fatal(err)
	}
	if err := w.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	want := diffStream(0, []extent{{tag: 'w', off: 100, data: []byte("abc")}, {tag: 'z', off: 103, n: 10}, {tag: 'w', off: 113, data: []byte("de")}})
	want = append(want[:len("rbd diff v1\n")], want[len("rbd diff v1\n")+9:]...) // no size record
	if !bytes.Equal(got, want) {
		t.Errorf("stream\n got %q\nwant %q", got, want)
	}
}

// An upload longer than announced, or past the image's end, is refused
// before it reaches the image.
func TestUploadLength(t *testing.T) {
	t.Parallel()
	f := testkit.NewFakeRunner(t, drain("rbd"), drain("rbd"))
	b, _ := newBackend(t, f, nil)
	ctx := context.Background()
	w, err := b.UploadVol(ctx, plainPool(""), &domain.VolDef{Name: "v", Capacity: 8}, 0, 4, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("abcde")); err == nil || domain.KindOf(err) != domain.KindInvalidArg {
		t.Errorf("write past the length: %v", err)
	}
	w.Abort()
	w, err = b.UploadVol(ctx, plainPool(""), &domain.VolDef{Name: "v", Capacity: 8}, 4, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("abcde")); err == nil || err.Error() != "failed to upload to RBD image 'rbd/v': No space left on device" {
		t.Errorf("write past the end: %v", err)
	}
	if err := w.Hole(5); err == nil {
		t.Errorf("a hole past the end: no error")
	}
	w.Abort()
}
