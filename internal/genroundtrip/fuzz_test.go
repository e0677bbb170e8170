package genroundtrip_test

import (
	"testing"

	"github.com/virtstoraged-go/virtstoraged/gen/admin"
	"github.com/virtstoraged-go/virtstoraged/gen/remote"
	"github.com/virtstoraged-go/virtstoraged/gen/virnet"
	"github.com/virtstoraged-go/virtstoraged/internal/genroundtrip"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/xdr"
)

// fuzzOne decodes b into m: no input may panic, the decoder may allocate no more than a
// fixed multiple of len(b) whatever lengths b claims, and whatever decodes must encode
// again (decoded values respect the bounds).
func fuzzOne(t *testing.T, name string, m xdr.Message, b []byte) {
	t.Helper()
	var err error
	if n := testkit.AllocatedBytes(func() { err = m.Decode(xdr.NewDecoder(b)) }); n > genroundtrip.DecodeAllocBound(len(b)) {
		t.Fatalf("%s: decoding %d bytes allocated %d bytes (bound %d)", name, len(b), n, genroundtrip.DecodeAllocBound(len(b)))
	}
	if err != nil {
		return
	}
	if _, err := genroundtrip.Encode(m); err != nil {
		t.Fatalf("%s: decoded value does not encode: %v", name, err)
	}
}

// fuzzDecode feeds b to the decoder of every argument and return type of procs.
func fuzzDecode(t *testing.T, procs []xdr.ProcInfo, b []byte) {
	for i := range procs {
		for _, mk := range []func() xdr.Message{procs[i].NewArgs, procs[i].NewRet} {
			if mk != nil {
				fuzzOne(t, procs[i].Name, mk(), b)
			}
		}
	}
}

// seeds adds the payloads of protocol.md's examples and a few hostile shapes.
func seeds(f *testing.F) {
	// STORAGE_POOL_LOOKUP_BY_NAME("p1") call and reply payloads (protocol.md §a).
	f.Add([]byte{0, 0, 0, 2, 'p', '1', 0, 0})
	f.Add([]byte{0, 0, 0, 2, 'p', '1', 0, 0, 0x60, 0xb7, 0xc1, 0xf2, 0x0a, 0x3d, 0x4e, 0x5f, 0x8a, 0x9b, 0x0c, 0x1d, 0x2e, 0x3f, 0x4a, 0x5b})
	// STREAM_HOLE of trace 18: length 8085504, flags 0.
	f.Add([]byte{0, 0, 0, 0, 0, 0x7b, 0x60, 0, 0, 0, 0, 0})
	// remote_error 49/18 with message, str1 and str2 present (protocol.md §c layout).
	f.Add(remoteError(49, 18, "Storage pool not found: no storage pool with matching name 'x'"))
	// go-libvirt's CONNECT_OPEN: pointer discriminant 0x01000000.
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 1, 'x', 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1})
	f.Add([]byte{0, 0, 0x40, 0, 0, 0, 0, 0})
}

// remoteError encodes a remote_error the way libvirtd fills it (protocol.md §c).
func remoteError(code, domain int32, msg string) []byte {
	e := &virnet.Error{Code: code, Domain: domain, Message: virnet.OptString{msg}, Level: 2,
		Str1: virnet.OptString{"%s"}, Str2: virnet.OptString{msg}, Int1: -1, Int2: -1}
	b, err := genroundtrip.Encode(e)
	if err != nil {
		panic(err)
	}
	return b
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
			fuzzOne(t, "virnet", m, b)
		}
	})
}
