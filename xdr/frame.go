package xdr

import (
	"encoding/binary"
	"fmt"
	"io"
)

const (
	// LenWordSize is the size of the length word that starts every message.
	LenWordSize = 4
	// HeaderSize is the size of the fixed message header that follows the length word.
	HeaderSize = 24
	// MinFrameLen is the smallest legal length word: length word plus header.
	MinFrameLen = LenWordSize + HeaderSize
	// MaxFrameLen is the largest length word libvirt 9.x accepts (VIR_NET_MESSAGE_MAX
	// plus the length word itself); one more and libvirtd drops the connection.
	MaxFrameLen = 33554432 + LenWordSize
)

// FrameError reports a length word outside [MinFrameLen, max]; the connection cannot be
// resynchronised after it and must be closed.
type FrameError struct {
	Len, Max uint32
}

// Error implements error.
func (e *FrameError) Error() string {
	if e.Len < MinFrameLen {
		return fmt.Sprintf("xdr: frame length %d below minimum %d", e.Len, MinFrameLen)
	}
	return fmt.Sprintf("xdr: frame length %d exceeds maximum %d", e.Len, e.Max)
}

// frameGrowth is how much ReadFrame's buffer grows each time the bytes
// received fill it.
const frameGrowth = 4

// ReadFrame reads one length-prefixed message from r and returns it without its length
// word (header, then payload). It reuses buf, so the result is only valid until buf is
// reused. maxLen bounds the length word (which counts itself); MaxFrameLen matches
// libvirt. A bad length word gives a *FrameError, a short read io.ErrUnexpectedEOF
// (io.EOF when r ended cleanly before the frame).
//
// Memory follows the bytes received rather than the length word: the buffer starts at
// buf's capacity (64 KiB when it has none) and grows fourfold each time it fills, up to
// the announced length. A peer that announces a 32 MiB frame and stalls holds what it
// sent times four, not 32 MiB: a server reading this way cannot be run out of memory by
// length words alone. The copies the growth costs add up to a third of the frame, and
// only for frames larger than the buffer a caller keeps.
func ReadFrame(r io.Reader, buf []byte, maxLen uint32) ([]byte, error) {
	var lw [LenWordSize]byte
	if _, err := io.ReadFull(r, lw[:]); err != nil {
		return nil, err
	}
	body, err := FrameBody(lw, maxLen)
	if err != nil {
		return nil, err
	}
	return ReadBody(r, buf, body)
}

// ReadBody reads the next n bytes of r into buf, grown as ReadFrame grows
// its buffer (so memory follows the bytes received, not n), and returns them.
// It is ReadFrame after the length word, for a reader that looks at a frame's
// header before it decides where the rest goes. A short read gives
// io.ErrUnexpectedEOF.
func ReadBody(r io.Reader, buf []byte, n int) ([]byte, error) {
	buf = buf[:0]
	if cap(buf) == 0 {
		buf = make([]byte, 0, min(n, 64<<10))
	}
	for len(buf) < n {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(n, frameGrowth*cap(buf)))
			copy(grown, buf)
			buf = grown
		}
		end := min(n, cap(buf))
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

// FrameBody returns the size of the body that follows the length word lw,
// or a FrameError when the frame it announces is shorter than a header or
// longer than maxLen: checked before anything is allocated for the body.
func FrameBody(lw [LenWordSize]byte, maxLen uint32) (int, error) {
	n := binary.BigEndian.Uint32(lw[:])
	if n < MinFrameLen || n > maxLen {
		return 0, &FrameError{Len: n, Max: maxLen}
	}
	return int(n) - LenWordSize, nil
}

// StartFrame appends a placeholder length word and returns its offset, for FinishFrame.
func StartFrame(e *Encoder) int {
	off := e.Len()
	e.EncodeUint(0)
	return off
}

// FinishFrame patches the length word written by StartFrame at off so that it counts
// everything encoded since, itself included. It fails when the frame is outside
// [MinFrameLen, maxLen], which a peer would reject.
func FinishFrame(e *Encoder, off int, maxLen uint32) error {
	n := e.Len() - off
	if n < MinFrameLen || uint64(n) > uint64(maxLen) {
		return &FrameError{Len: uint32(min(n, 1<<32-1)), Max: maxLen}
	}
	binary.BigEndian.PutUint32(e.buf[off:], uint32(n))
	return nil
}
