package protocoltest_test

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/gen/admin"
	"github.com/virtstoraged-go/virtstoraged/gen/remote"
	"github.com/virtstoraged-go/virtstoraged/gen/virnet"
	"github.com/virtstoraged-go/virtstoraged/internal/genroundtrip"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/xdr"
)

// roundTrip decodes hostile bytes into a fresh body. Whatever the input, decoding must not
// panic nor allocate more than a fixed multiple of the bytes it was given (a huge length
// or count must fail before any allocation it would size); when it succeeds, the value
// must encode, take exactly as many bytes as were consumed (only a non-canonical pointer
// discriminant may differ, never the length), and decode back to the same value.
func roundTrip(t *testing.T, mk func() xdr.Message, data []byte) {
	m := mk()
	d := xdr.NewDecoder(data)
	var err error
	if n := testkit.AllocatedBytes(func() { err = m.Decode(d) }); n > genroundtrip.DecodeAllocBound(len(data)) {
		t.Fatalf("%T: decoding %d bytes allocated %d bytes (bound %d)", m, len(data), n, genroundtrip.DecodeAllocBound(len(data)))
	}
	if err != nil {
		return
	}
	e := xdr.NewEncoder(nil)
	if err := m.Encode(e); err != nil {
		t.Fatalf("%T decoded from %x does not encode: %v", m, data, err)
	}
	if e.Len() != d.Offset() {
		t.Fatalf("%T: decoding consumed %d bytes, encoding wrote %d", m, d.Offset(), e.Len())
	}
	again := mk()
	d2 := xdr.NewDecoder(e.Bytes())
	if err := again.Decode(d2); err != nil {
		t.Fatalf("%T: our own encoding %x does not decode: %v", m, e.Bytes(), err)
	}
	if d2.Remaining() != 0 {
		t.Fatalf("%T: %d bytes left decoding our own encoding", m, d2.Remaining())
	}
	if !sameShape(reflect.ValueOf(again).Elem(), reflect.ValueOf(m).Elem()) {
		t.Fatalf("%T: round trip changed the value: %+v → %+v", m, m, again)
	}
	e2 := xdr.NewEncoder(nil)
	if err := again.Encode(e2); err != nil || !bytes.Equal(e2.Bytes(), e.Bytes()) {
		t.Fatalf("%T: encoding is not stable (err %v)", m, err)
	}
}

// bodyMaker picks the body of a procedure: the call arguments, or with ret the reply (the
// async body of @message procedures is registered as arguments).
func bodyMaker(info *xdr.ProcInfo, ret bool) func() xdr.Message {
	if info == nil {
		return nil
	}
	if ret && info.NewRet != nil {
		return info.NewRet
	}
	if !ret {
		return info.NewArgs
	}
	return nil
}

// seedBodies adds every golden payload of program prog as (proc, ret, payload).
func seedBodies(f *testing.F, prog uint32) {
	for _, c := range frameCases(f) {
		h := binary.BigEndian
		if len(c.giveFrame) < 28 || h.Uint32(c.giveFrame[4:]) != prog || int32(h.Uint32(c.giveFrame[24:])) != statusOK {
			continue
		}
		typ := int32(h.Uint32(c.giveFrame[16:]))
		f.Add(int32(h.Uint32(c.giveFrame[12:])), typ == typeReply, c.giveFrame[28:])
	}
}

func FuzzRemoteBody(f *testing.F) {
	seedBodies(f, progRemote)
	for _, info := range remote.Procedures {
		f.Add(info.Proc, false, []byte{})
		f.Add(info.Proc, true, []byte{0, 0, 0, 1, 0, 0, 0, 1, 'x', 0, 0, 0})
		// A huge array count must be refused without a huge allocation.
		f.Add(info.Proc, true, []byte{0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	}
	f.Fuzz(func(t *testing.T, proc int32, ret bool, data []byte) {
		if mk := bodyMaker(remote.Lookup(proc), ret); mk != nil {
			roundTrip(t, mk, data)
		}
	})
}

func FuzzAdminBody(f *testing.F) {
	seedBodies(f, progAdmin)
	for _, info := range admin.Procedures {
		f.Add(info.Proc, false, []byte{})
		f.Add(info.Proc, true, []byte{0, 0, 0, 1, 0, 0, 0, 1, 'x', 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0})
	}
	f.Fuzz(func(t *testing.T, proc int32, ret bool, data []byte) {
		if mk := bodyMaker(admin.Lookup(proc), ret); mk != nil {
			roundTrip(t, mk, data)
		}
	})
}

// FuzzFrame treats the input as a connection's bytes and reads them the way the server
// does: xdr.ReadFrame, then the header, then the body the header selects.
func FuzzFrame(f *testing.F) {
	for _, c := range frameCases(f) {
		f.Add(c.giveFrame)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 4 || binary.BigEndian.Uint32(data) > uint32(len(data)) {
			// A length word beyond the input makes ReadFrame allocate the frame it
			// announces and then fail short; xdr.FuzzReadFrame covers that path with a
			// small maximum instead of 32 MiB per input.
			return
		}
		var frame []byte
		var err error
		n := testkit.AllocatedBytes(func() { frame, err = xdr.ReadFrame(bytes.NewReader(data), nil, xdr.MaxFrameLen) })
		if n > uint64(binary.BigEndian.Uint32(data))+genroundtrip.DecodeAllocSlack {
			t.Fatalf("ReadFrame of a %d-byte frame allocated %d bytes", binary.BigEndian.Uint32(data), n)
		}
		if err != nil {
			return
		}
		d := xdr.NewDecoder(frame)
		var h virnet.MessageHeader
		if err := h.Decode(d); err != nil {
			t.Fatalf("a frame ReadFrame accepted has no header: %v", err)
		}
		rest := d.Rest()
		roundTrip(t, func() xdr.Message { return new(virnet.MessageHeader) }, frame)
		roundTrip(t, func() xdr.Message { return new(virnet.Error) }, rest)
		roundTrip(t, func() xdr.Message { return new(virnet.StreamHole) }, rest)
		var info *xdr.ProcInfo
		switch h.Prog {
		case progRemote:
			info = remote.Lookup(h.Proc)
		case progAdmin:
			info = admin.Lookup(h.Proc)
		}
		if mk := bodyMaker(info, h.Type == virnet.MessageType(typeReply)); mk != nil {
			roundTrip(t, mk, rest)
		}
	})
}
