package xdr_test

import (
	"bytes"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/xdr"
)

func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{0, 0, 0, 28, 0x20, 0, 0x80, 0x86, 0, 0, 0, 1, 0, 0, 0, 0x54, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := xdr.ReadFrame(bytes.NewReader(b), nil, 1<<16)
		if err == nil && (len(got) < xdr.HeaderSize || len(got) > len(b)) {
			t.Fatalf("frame of %d bytes from %d input bytes", len(got), len(b))
		}
	})
}

func FuzzDecodePrimitives(f *testing.F) {
	f.Add([]byte{0, 0, 0, 2, 'p', '1', 0, 0, 0, 0, 0, 1})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		d := xdr.NewDecoder(b)
		for d.Remaining() > 0 {
			before := d.Remaining()
			n, err := d.DecodeArrayLen(16384, 4)
			if err == nil && n*4 > d.Remaining() {
				t.Fatalf("array of %d accepted with %d bytes left", n, d.Remaining())
			}
			if _, err := d.DecodeString(64); err != nil {
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
}
