package genroundtrip_test

import (
	"testing"

	"github.com/virtstoraged-go/virtstoraged/gen/admin"
	"github.com/virtstoraged-go/virtstoraged/gen/remote"
	"github.com/virtstoraged-go/virtstoraged/gen/virnet"
	"github.com/virtstoraged-go/virtstoraged/internal/genroundtrip"
	"github.com/virtstoraged-go/virtstoraged/xdr"
)

// fuzzDecode feeds b to the decoder of every argument and return type of procs: no input
// may panic, and whatever decodes must encode again (decoded values respect the bounds).
func fuzzDecode(t *testing.T, procs []xdr.ProcInfo, b []byte) {
	for i := range procs {
		for _, mk := range []func() xdr.Message{procs[i].NewArgs, procs[i].NewRet} {
			if mk == nil {
				continue
			}
			m := mk()
			if err := m.Decode(xdr.NewDecoder(b)); err != nil {
				continue
			}
			if _, err := genroundtrip.Encode(m); err != nil {
				t.Fatalf("%s: decoded value does not encode: %v", procs[i].Name, err)
			}
		}
	}
}

func seeds(f *testing.F) {
	f.Add([]byte{0, 0, 0, 2, 'p', '1', 0, 0})
	f.Add([]byte{0, 0, 0, 2, 'p', '1', 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1})
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 1, 'x', 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0, 0, 0x40, 0, 0, 0, 0, 0})
}

func FuzzDecodeRemote(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, b []byte) { fuzzDecode(t, remote.Procedures, b) })
}

func FuzzDecodeAdmin(f *testing.F) {
	seeds(f)
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 1, 'f', 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 1, 'v', 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) { fuzzDecode(t, admin.Procedures, b) })
}

func FuzzDecodeHeaderAndError(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, m := range []xdr.Message{new(virnet.MessageHeader), new(virnet.Error), new(virnet.StreamHole)} {
			if err := m.Decode(xdr.NewDecoder(b)); err == nil {
				if _, err := genroundtrip.Encode(m); err != nil {
					t.Fatalf("%T: decoded value does not encode: %v", m, err)
				}
			}
		}
	})
}
