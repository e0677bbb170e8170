package xdr_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/xdr"
)

// growthSlack absorbs what the runtime and the test itself allocate around
// the measured call; the failures the bound is for are megabytes.
const growthSlack = 128 << 10

// frameBound is what ReadFrame may allocate for in bytes of input: four
// times the input (its growth factor) and the first 64 KiB buffer.
func frameBound(in int) uint64 { return uint64(4*in) + 64<<10 + growthSlack }

func lengthWord(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }

// TestReadFrameAllocatesWhatArrives announces maximum-size frames and sends
// only part of them: the reader must allocate in proportion to what came, and
// still return whole frames exactly, however the bytes are split.
func TestReadFrameAllocatesWhatArrives(t *testing.T) {
	for _, sent := range []int{0, 1000, 100 << 10, 3 << 20} {
		in := append(lengthWord(xdr.MaxFrameLen), make([]byte, sent)...)
		var err error
		got := testkit.AllocatedBytes(func() { _, err = xdr.ReadFrame(bytes.NewReader(in), nil, xdr.MaxFrameLen) })
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%d bytes of a 32 MiB frame: err %v, want unexpected EOF", sent, err)
		}
		if got > frameBound(len(in)) {
			t.Errorf("%d bytes of a 32 MiB frame allocated %d bytes, bound %d", sent, got, frameBound(len(in)))
		}
	}
	for _, size := range []int{xdr.MinFrameLen, 1000, 64 << 10, 64<<10 + 1, 5 << 20, xdr.MaxFrameLen} {
		frame := make([]byte, size)
		binary.BigEndian.PutUint32(frame, uint32(size))
		for i := xdr.LenWordSize; i < size; i++ {
			frame[i] = byte(i * 7)
		}
		readers := map[string]io.Reader{"whole": bytes.NewReader(frame)}
		if size <= 200<<10 {
			readers["byte-a-time"] = iotest.OneByteReader(bytes.NewReader(frame))
		}
		for name, r := range readers {
			got, err := xdr.ReadFrame(r, make([]byte, 0, 16), xdr.MaxFrameLen)
			if err != nil || !bytes.Equal(got, frame[xdr.LenWordSize:]) {
				t.Errorf("%s frame of %d bytes: %d bytes back, err %v", name, size, len(got), err)
			}
		}
	}
	for _, n := range []uint32{0, xdr.MinFrameLen - 1, xdr.MaxFrameLen + 1, 0xffffffff} {
		var fe *xdr.FrameError
		if _, err := xdr.ReadFrame(bytes.NewReader(lengthWord(n)), nil, xdr.MaxFrameLen); !errors.As(err, &fe) {
			t.Errorf("length word %d: err %v, want a frame error", n, err)
		}
	}
}

// FuzzReadFrameGrowth checks that no input makes the frame reader panic or
// allocate beyond its bound in the input's length (not the length word's),
// and that a frame it returns is the input's bytes after the length word.
func FuzzReadFrameGrowth(f *testing.F) {
	f.Add(append(lengthWord(xdr.MinFrameLen), make([]byte, 24)...))
	f.Add(lengthWord(xdr.MaxFrameLen))
	f.Add(append(lengthWord(xdr.MaxFrameLen), bytes.Repeat([]byte{0xab}, 70<<10)...))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		var got []byte
		var err error
		n := testkit.AllocatedBytes(func() { got, err = xdr.ReadFrame(bytes.NewReader(in), nil, xdr.MaxFrameLen) })
		if n > frameBound(len(in)) {
			t.Fatalf("%d input bytes made the reader allocate %d bytes (bound %d)", len(in), n, frameBound(len(in)))
		}
		if err == nil && !bytes.Equal(got, in[xdr.LenWordSize:xdr.LenWordSize+len(got)]) {
			t.Fatalf("frame of %d bytes is not the input", len(got))
		}
	})
}
