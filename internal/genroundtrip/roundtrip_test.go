package genroundtrip_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	xdr2 "github.com/davecgh/go-xdr/xdr2"

	"github.com/virtstoraged-go/virtstoraged/gen/remote"
	"github.com/virtstoraged-go/virtstoraged/gen/virnet"
	"github.com/virtstoraged-go/virtstoraged/internal/genroundtrip"
	"github.com/virtstoraged-go/virtstoraged/xdr"
)

func typeName(m xdr.Message) string { return reflect.TypeOf(m).Elem().String() }

// TestRoundTripAllGeneratedTypes fills every generated type with random values many
// times and checks encode → decode → encode is a fixed point consuming every byte.
func TestRoundTripAllGeneratedTypes(t *testing.T) {
	for pkg, types := range allTypes() {
		for _, newT := range types {
			m := newT()
			t.Run(typeName(m), func(t *testing.T) {
				r := rand.New(rand.NewPCG(1, uint64(len(pkg))))
				for i := range 50 {
					m := newT()
					if !genroundtrip.FillValid(m, r) {
						t.Fatalf("could not fill a valid %s", typeName(m))
					}
					if _, err := genroundtrip.RoundTrip(m); err != nil {
						t.Fatalf("iteration %d: %v", i, err)
					}
				}
			})
		}
	}
}

// TestTruncatedInputFails decodes every proper prefix of a valid encoding: each must fail
// with a go-xdr UnmarshalError (never panic, never succeed on a shorter message).
func TestTruncatedInputFails(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	for _, types := range allTypes() {
		for _, newT := range types {
			m := newT()
			if !genroundtrip.FillValid(m, r) {
				t.Fatalf("could not fill %s", typeName(m))
			}
			b, err := genroundtrip.Encode(m)
			if err != nil {
				t.Fatal(err)
			}
			for n := range len(b) {
				err := newT().Decode(xdr.NewDecoder(b[:n]))
				var ue *xdr2.UnmarshalError
				if !errors.As(err, &ue) {
					t.Errorf("%s: decoding %d of %d bytes gave %v, want *xdr2.UnmarshalError", typeName(m), n, len(b), err)
					break
				}
			}
		}
	}
}

// TestMatchesReflectionCodec checks our bytes against go-xdr's reflection encoder for
// union-free types it can handle, an independent implementation of the same wire format.
func TestMatchesReflectionCodec(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	tests := []struct {
		name string
		give xdr.Message
	}{
		{name: "StoragePoolGetInfoRet", give: new(remote.StoragePoolGetInfoRet)},
		{name: "StorageVolCreateXMLArgs", give: new(remote.StorageVolCreateXMLArgs)},
		{name: "StoragePoolListAllVolumesRet", give: new(remote.StoragePoolListAllVolumesRet)},
		{name: "StorageVolUploadArgs", give: new(remote.StorageVolUploadArgs)},
		{name: "MessageHeader", give: new(virnet.MessageHeader)},
		{name: "StreamHole", give: new(virnet.StreamHole)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 20 {
				genroundtrip.Fill(tt.give, r)
				ours, err := genroundtrip.Encode(tt.give)
				if err != nil {
					t.Fatal(err)
				}
				var theirs bytes.Buffer
				if _, err := xdr2.Marshal(&theirs, tt.give); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(ours, theirs.Bytes()) {
					t.Fatalf("ours %x\ngo-xdr %x", ours, theirs.Bytes())
				}
				got, err := genroundtrip.RoundTrip(tt.give)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, tt.give) {
					t.Fatalf("decoded %+v, want %+v", got, tt.give)
				}
			}
		})
	}
}

func TestWireExampleFromProtocolDoc(t *testing.T) {
	// CALL STORAGE_POOL_LOOKUP_BY_NAME("p1"), serial 6, from docs/protocol.md §a.
	want := "00000024200080860000000100000054000000000000000600000000" + "0000000270310000"
	e := xdr.NewEncoder(nil)
	off := xdr.StartFrame(e)
	hdr := virnet.MessageHeader{Prog: remote.Program, Vers: remote.ProtocolVersion, Proc: int32(remote.ProcStoragePoolLookupByName),
		Type: virnet.MessageTypeCall, Serial: 6, Status: virnet.MessageStatusOk}
	if err := hdr.Encode(e); err != nil {
		t.Fatal(err)
	}
	if err := (&remote.StoragePoolLookupByNameArgs{Name: "p1"}).Encode(e); err != nil {
		t.Fatal(err)
	}
	if err := xdr.FinishFrame(e, off, xdr.MaxFrameLen); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("%x", e.Bytes()); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestEncodeChecksBounds(t *testing.T) {
	vols := make([]remote.StorageVol, remote.StorageVolListMax+1)
	_, err := genroundtrip.Encode(&remote.StoragePoolListAllVolumesRet{Vols: vols})
	var me *xdr2.MarshalError
	if !errors.As(err, &me) || me.ErrorCode != xdr2.ErrOverflow {
		t.Errorf("encoding %d vols: %v, want ErrOverflow", len(vols), err)
	}
}

func TestDecodeRejectsHugeArrayWithoutAllocating(t *testing.T) {
	// A reply claiming 16384 vols but carrying none must fail before make([]StorageVol, 16384).
	b := []byte{0, 0, 0x40, 0, 0, 0, 0, 0}
	allocs := testing.AllocsPerRun(20, func() {
		var ret remote.StoragePoolListAllVolumesRet
		if err := ret.Decode(xdr.NewDecoder(b)); err == nil {
			t.Fatal("no error")
		}
	})
	if allocs > 4 {
		t.Errorf("%v allocations rejecting the count", allocs)
	}
}

func TestErrorIsAnError(t *testing.T) {
	var err error = &virnet.Error{Code: 49, Domain: 18, Message: virnet.OptString{"Storage pool not found: x"}}
	if err.Error() != "Storage pool not found: x" {
		t.Errorf("Error() = %q", err.Error())
	}
	if (&virnet.Error{}).Error() != "" {
		t.Error("NULL message should give an empty text")
	}
}

func TestDecodeGoLibvirtConnectOpen(t *testing.T) {
	// go-libvirt sends the optional name's discriminant as bytes 01 00 00 00 (docs/protocol.md §a).
	b := []byte{1, 0, 0, 0, 0, 0, 0, 17}
	b = append(b, "storage:///system\x00\x00\x00"...)
	b = append(b, 0, 0, 0, 1)
	var args remote.ConnectOpenArgs
	d := xdr.NewDecoder(b)
	if err := args.Decode(d); err != nil {
		t.Fatal(err)
	}
	if len(args.Name) != 1 || args.Name[0] != "storage:///system" || args.Flags != 1 || d.Remaining() != 0 {
		t.Errorf("decoded %+v, %d bytes left", args, d.Remaining())
	}
}

func TestDecodeLookupReplyFromProtocolDoc(t *testing.T) {
	// Reply payload of STORAGE_POOL_LOOKUP_BY_NAME("p1"): name, then 16 raw uuid bytes.
	b := []byte{0, 0, 0, 2, 'p', '1', 0, 0, 0x60, 0xb7, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	var ret remote.StoragePoolLookupByNameRet
	if err := ret.Decode(xdr.NewDecoder(b)); err != nil {
		t.Fatal(err)
	}
	if ret.Pool.Name != "p1" || ret.Pool.UUID[0] != 0x60 || ret.Pool.UUID[15] != 15 {
		t.Errorf("decoded %+v", ret)
	}
}
