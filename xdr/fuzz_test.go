package xdr_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/xdr"
)

// allocSlack covers size-class and page rounding of one allocation.
const allocSlack = 16 << 10

// fuzzMaxFrame keeps each input's worst case small; the check is the same at 32 MiB.
const fuzzMaxFrame = 1 << 16

func FuzzReadFrame(f *testing.F) {
	// protocol.md §a: CALL and REPLY of STORAGE_POOL_LOOKUP_BY_NAME("p1"), serial 6.
	f.Add([]byte{0, 0, 0, 0x24, 0x20, 0, 0x80, 0x86, 0, 0, 0, 1, 0, 0, 0, 0x54, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0,
		0, 0, 0, 2, 'p', '1', 0, 0})
	f.Add([]byte{0, 0, 0, 0x34, 0x20, 0, 0x80, 0x86, 0, 0, 0, 1, 0, 0, 0, 0x54, 0, 0, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0,
		0, 0, 0, 2, 'p', '1', 0, 0, 0x60, 0xb7, 0xc1, 0xf2, 0x0a, 0x3d, 0x4e, 0x5f, 0x8a, 0x9b, 0x0c, 0x1d, 0x2e, 0x3f, 0x4a, 0x5b})
	// Trace 29: keepalive PING; trace 18: STREAM_HOLE 8085504 on VOL_UPLOAD serial 6.
	f.Add([]byte{0, 0, 0, 0x1c, 0x6b, 0x65, 0x65, 0x70, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 0x28, 0x20, 0, 0x80, 0x86, 0, 0, 0, 1, 0, 0, 0, 0xd0, 0, 0, 0, 6, 0, 0, 0, 6, 0, 0, 0, 2,
		0, 0, 0, 0, 0, 0x7b, 0x60, 0, 0, 0, 0, 0})
	// Two frames back to back, a huge length word, one below the minimum.
	f.Add([]byte{0, 0, 0, 28, 0x20, 0, 0x80, 0x86, 0, 0, 0, 1, 0, 0, 0, 0x54, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0,
		0, 0, 0, 28, 0x20, 0, 0x80, 0x86, 0, 0, 0, 1, 0, 0, 0, 0x54, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		for {
			start := len(b) - r.Len()
			var got []byte
			var err error
			n := testkit.AllocatedBytes(func() { got, err = xdr.ReadFrame(r, nil, fuzzMaxFrame) })
			// The only allocation is the frame body, sized by a length word that has been
			// checked against the maximum first.
			limit := uint64(allocSlack)
			if len(b)-start >= 4 {
				if lw := binary.BigEndian.Uint32(b[start:]); lw >= xdr.MinFrameLen && lw <= fuzzMaxFrame {
					limit += uint64(lw)
				}
			}
			if n > limit {
				t.Fatalf("ReadFrame allocated %d bytes, at most %d allowed", n, limit)
			}
			if err != nil {
				return
			}
			if len(got) < xdr.HeaderSize || len(got)+xdr.LenWordSize > len(b)-start {
				t.Fatalf("frame of %d bytes from %d input bytes", len(got), len(b)-start)
			}
			if int(binary.BigEndian.Uint32(b[start:])) != len(got)+xdr.LenWordSize {
				t.Fatalf("frame of %d bytes under length word %d", len(got), binary.BigEndian.Uint32(b[start:]))
			}
		}
	})
}

func FuzzDecodePrimitives(f *testing.F) {
	f.Add([]byte{0, 0, 0, 2, 'p', '1', 0, 0, 0, 0, 0, 1})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3})
	f.Add([]byte{0, 0, 0x40, 0, 0, 0, 0, 2, 'p', '1', 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9})
	f.Fuzz(func(t *testing.T, b []byte) {
		d := xdr.NewDecoder(b)
		n := testkit.AllocatedBytes(func() {
			for d.Remaining() > 0 {
				before := d.Remaining()
				n, err := d.DecodeArrayLen(16384, 4)
				if err == nil && n*4 > d.Remaining() {
					t.Fatalf("array of %d accepted with %d bytes left", n, d.Remaining())
				}
				if _, err := d.DecodeString(64); err != nil {
					break
				}
				if _, err := d.DecodeOpaque(1 << 20); err != nil {
					break
				}
				if _, err := d.DecodeOptional(); err != nil {
					break
				}
				if _, err := d.DecodeHyper(); err != nil {
					break
				}
				if d.Remaining() >= before {
					t.Fatal("decoder made no progress")
				}
			}
		})
		// Strings and opaques are copies of input bytes: together never more than the
		// input (plus the string arena's rounding), whatever lengths it claims.
		if n > 2*uint64(len(b))+allocSlack {
			t.Fatalf("decoding %d bytes allocated %d", len(b), n)
		}
	})
}
