package rpcconn

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"testing"
)

// choppy hands out its data a few bytes at a time, with a deadline error
// between the pieces, as a socket read interrupted by deadlines does.
type choppy struct {
	data  []byte
	piece int
	fail  bool
}

func (c *choppy) Read(p []byte) (int, error) {
	if c.fail = !c.fail; c.fail {
		return 0, os.ErrDeadlineExceeded
	}
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.piece)], c.data)
	c.data = c.data[n:]
	return n, nil
}

func testFrame(body []byte) []byte {
	f := binary.BigEndian.AppendUint32(nil, uint32(4+len(body)))
	return append(f, body...)
}

func TestFrameReaderResumes(t *testing.T) {
	bodies := [][]byte{bytes.Repeat([]byte{1}, 24), bytes.Repeat([]byte{2}, 100), bytes.Repeat([]byte{3}, 31)}
	var stream []byte
	for _, b := range bodies {
		stream = append(stream, testFrame(b)...)
	}
	for _, piece := range []int{1, 3, 7, 1000} {
		fr := frameReader{r: &choppy{data: stream, piece: piece}}
		for i, want := range bodies {
			var got []byte
			for {
				b, err := fr.next()
				if errors.Is(err, os.ErrDeadlineExceeded) {
					continue
				}
				if err != nil {
					t.Fatalf("piece %d, frame %d: %v", piece, i, err)
				}
				got = b
				break
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("piece %d, frame %d: got %d bytes %v..., want %d bytes of %d", piece, i, len(got), got[:min(4, len(got))], len(want), want[0])
			}
		}
	}
}

func TestFrameReaderRejectsBadLength(t *testing.T) {
	for _, n := range []uint32{0, 27, 33554432 + 5} {
		fr := frameReader{r: bytes.NewReader(binary.BigEndian.AppendUint32(nil, n))}
		if _, err := fr.next(); err == nil {
			t.Errorf("length %d accepted", n)
		}
	}
}

func TestFrameReaderTruncated(t *testing.T) {
	fr := frameReader{r: bytes.NewReader(testFrame(make([]byte, 40))[:20])}
	if _, err := fr.next(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated frame: %v, want ErrUnexpectedEOF", err)
	}
}
