package rpc

import (
	"encoding/binary"
	"io"

	"github.com/virtstoraged-go/virtstoraged/xdr"
)

// frameGrowth is how much a frame's buffer grows each time the bytes received
// fill it.
const frameGrowth = 4

// readFrame is xdr.ReadFrame with memory that follows the bytes received
// rather than the length word: the buffer starts at buf's capacity and grows
// fourfold each time it fills, up to the announced length. A client that
// announces a 32 MiB frame and stalls holds what it sent times four, not
// 32 MiB: before, 150 such connections took the daemon to 2 GiB of RSS
// (recycled heap is zeroed, so the untouched buffers were resident), and a
// thousand could have exhausted the machine's memory. The copies the growth
// costs add up to a third of the frame, and only for frames larger than any
// the connection received before (readLoop keeps buffers up to readBufKeep).
func readFrame(r io.Reader, buf []byte) ([]byte, error) {
	var lw [xdr.LenWordSize]byte
	if _, err := io.ReadFull(r, lw[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(lw[:])
	if n < xdr.MinFrameLen || n > xdr.MaxFrameLen {
		return nil, &xdr.FrameError{Len: n, Max: xdr.MaxFrameLen}
	}
	body := int(n) - xdr.LenWordSize
	buf = buf[:0]
	if cap(buf) == 0 {
		buf = make([]byte, 0, min(body, 64<<10))
	}
	for len(buf) < body {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(body, frameGrowth*cap(buf)))
			copy(grown, buf)
			buf = grown
		}
		end := min(body, cap(buf))
		if _, err := io.ReadFull(r, buf[len(buf):end]); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		buf = buf[:end]
	}
	return buf, nil
}
