package reliability_test

import (
	"encoding/binary"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/gen/admin"
	"github.com/virtstoraged-go/virtstoraged/gen/remote"
	"github.com/virtstoraged-go/virtstoraged/gen/virnet"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/xdr"
)

// decodeAllocFactor bounds what a decoder may allocate per input byte: a
// decoded value is larger in Go than on the wire (a 4-byte empty string is a
// 16-byte header, a 20-byte pool handle a 32-byte struct), but by a small
// factor. A decoder that trusts a length or count word before checking that
// the bytes follow allocates megabytes for a few bytes of input.
const (
	decodeAllocFactor = 16
	decodeAllocSlack  = 64 << 10
)

// decoders returns a fresh-value maker for every body the generated code
// decodes: each procedure's arguments and reply, of both programs, and the
// header, error and hole the server decodes on its own.
func decoders() map[string]func() xdr.Message {
	out := map[string]func() xdr.Message{
		"header": func() xdr.Message { return new(virnet.MessageHeader) },
		"error":  func() xdr.Message { return new(virnet.Error) },
		"hole":   func() xdr.Message { return new(virnet.StreamHole) },
	}
	for _, procs := range [][]xdr.ProcInfo{remote.Procedures, admin.Procedures} {
		for _, p := range procs {
			if p.NewArgs != nil {
				out[p.Name+" args"] = p.NewArgs
			}
			if p.NewRet != nil {
				out[p.Name+" ret"] = p.NewRet
			}
		}
	}
	return out
}

// decodeAllocated decodes in with a value from mk and returns the heap bytes
// that took.
func decodeAllocated(mk func() xdr.Message, in []byte) uint64 {
	m := mk() // the empty value is not the decoder's doing
	return testkit.AllocatedBytes(func() { _ = m.Decode(xdr.NewDecoder(in)) })
}

// hostileBodies are short inputs whose every 4-byte word in turn claims a
// huge length or count, in front of bytes that look like small valid fields.
func hostileBodies() [][]byte {
	var out [][]byte
	base := make([]byte, 64)
	for i := 0; i < len(base); i += 4 {
		binary.BigEndian.PutUint32(base[i:], 1) // a count of one, a 1-byte string, "present"
	}
	for _, huge := range []uint32{0x7fffffff, 0x00ffffff, 0x00100000, remote.StringMax} {
		for at := 0; at < len(base); at += 4 {
			b := append([]byte(nil), base...)
			binary.BigEndian.PutUint32(b[at:], huge)
			out = append(out, b)
		}
	}
	return out
}

// TestDecodersAllocateWithinInput runs every generated decoder on inputs
// that announce huge strings, opaques and arrays at every offset in turn:
// none may allocate more than a small multiple of the input it was given.
// (internal/genroundtrip's fuzz targets hold random inputs to a bound of the
// same kind; this test places the hostile words systematically, in make test.)
func TestDecodersAllocateWithinInput(t *testing.T) {
	ds := decoders()
	if len(ds) < 100 {
		t.Fatalf("only %d decoders found: the dispatch tables look wrong", len(ds))
	}
	// The measure must see a decoder's allocations, or the bound proves nothing.
	big := binary.BigEndian.AppendUint32(nil, 1<<20)
	big = append(big, make([]byte, 1<<20)...)
	if n := decodeAllocated(func() xdr.Message { return new(remote.StoragePoolLookupByNameArgs) }, big); n < 1<<20 {
		t.Fatalf("decoding a 1 MiB name measured %d bytes allocated", n)
	}
	inputs := hostileBodies()
	for name, mk := range ds {
		for _, in := range inputs {
			bound := uint64(decodeAllocFactor*len(in) + decodeAllocSlack)
			if n := decodeAllocated(mk, in); n > bound {
				t.Errorf("%s: %d input bytes (%x) allocated %d bytes, bound %d", name, len(in), in[:16], n, bound)
				break
			}
		}
	}
}
