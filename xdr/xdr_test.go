package xdr_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"

	xdr2 "github.com/davecgh/go-xdr/xdr2"

	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/xdr"
)

func TestEncoderPrimitives(t *testing.T) {
	tests := []struct {
		name    string
		give    func(e *xdr.Encoder)
		wantHex string
	}{
		{name: "int", give: func(e *xdr.Encoder) { e.EncodeInt(-2) }, wantHex: "fffffffe"},
		{name: "uint", give: func(e *xdr.Encoder) { e.EncodeUint(0x20008086) }, wantHex: "20008086"},
		{name: "hyper", give: func(e *xdr.Encoder) { e.EncodeHyper(-1) }, wantHex: "ffffffffffffffff"},
		{name: "uhyper", give: func(e *xdr.Encoder) { e.EncodeUhyper(0x0102030405060708) }, wantHex: "0102030405060708"},
		{name: "bool", give: func(e *xdr.Encoder) { e.EncodeBool(true); e.EncodeBool(false) }, wantHex: "0000000100000000"},
		{name: "double", give: func(e *xdr.Encoder) { e.EncodeDouble(1.5) }, wantHex: "3ff8000000000000"},
		{name: "float", give: func(e *xdr.Encoder) { e.EncodeFloat(1.5) }, wantHex: "3fc00000"},
		{name: "string padded", give: func(e *xdr.Encoder) { e.EncodeString("p1") }, wantHex: "0000000270310000"},
		{name: "string aligned", give: func(e *xdr.Encoder) { e.EncodeString("abcd") }, wantHex: "0000000461626364"},
		{name: "empty string", give: func(e *xdr.Encoder) { e.EncodeString("") }, wantHex: "00000000"},
		{name: "opaque", give: func(e *xdr.Encoder) { e.EncodeOpaque([]byte{1, 2, 3}) }, wantHex: "0000000301020300"},
		{name: "fixed opaque", give: func(e *xdr.Encoder) { e.EncodeFixedOpaque([]byte{9}) }, wantHex: "09000000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := xdr.NewEncoder(nil)
			tt.give(e)
			if got := hex.EncodeToString(e.Bytes()); got != tt.wantHex {
				t.Errorf("got %s, want %s", got, tt.wantHex)
			}
			if e.Len() != len(e.Bytes()) {
				t.Errorf("Len() = %d, want %d", e.Len(), len(e.Bytes()))
			}
		})
	}
}

func TestEncoderZeroAllocs(t *testing.T) {
	buf := make([]byte, 0, 256)
	e := xdr.NewEncoder(buf)
	allocs := testing.AllocsPerRun(100, func() {
		e.Reset(buf[:0])
		e.EncodeInt(1)
		e.EncodeUhyper(2)
		e.EncodeString("storage-pool")
		e.EncodeFixedOpaque(make([]byte, 16)[:16:16])
		e.EncodeBool(true)
		e.EncodeDouble(math.Pi)
	})
	if allocs != 0 {
		t.Errorf("encoding into a buffer with capacity allocated %v times, want 0", allocs)
	}
}

func TestDecoderRoundTrip(t *testing.T) {
	e := xdr.NewEncoder(nil)
	e.EncodeInt(-7)
	e.EncodeUint(7)
	e.EncodeHyper(-8)
	e.EncodeUhyper(8)
	e.EncodeBool(true)
	e.EncodeDouble(2.25)
	e.EncodeFloat(0.5)
	e.EncodeString("hello")
	e.EncodeOpaque([]byte{1, 2})
	e.EncodeFixedOpaque([]byte{3, 4, 5})

	d := xdr.NewDecoder(e.Bytes())
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	i, err := d.DecodeInt()
	must(err)
	u, err := d.DecodeUint()
	must(err)
	h, err := d.DecodeHyper()
	must(err)
	uh, err := d.DecodeUhyper()
	must(err)
	b, err := d.DecodeBool()
	must(err)
	f64, err := d.DecodeDouble()
	must(err)
	f32, err := d.DecodeFloat()
	must(err)
	s, err := d.DecodeString(5)
	must(err)
	o, err := d.DecodeOpaque(2)
	must(err)
	fo, err := d.DecodeFixedOpaque(3)
	must(err)
	if i != -7 || u != 7 || h != -8 || uh != 8 || !b || f64 != 2.25 || f32 != 0.5 || s != "hello" ||
		!bytes.Equal(o, []byte{1, 2}) || !bytes.Equal(fo, []byte{3, 4, 5}) {
		t.Errorf("decoded %v %v %v %v %v %v %v %q %v %v", i, u, h, uh, b, f64, f32, s, o, fo)
	}
	if d.Remaining() != 0 || d.Offset() != len(e.Bytes()) {
		t.Errorf("Remaining %d Offset %d, want 0 and %d", d.Remaining(), d.Offset(), len(e.Bytes()))
	}
}

func TestDecodeCopiesOut(t *testing.T) {
	e := xdr.NewEncoder(nil)
	e.EncodeString("abcd")
	e.EncodeOpaque([]byte("wxyz"))
	buf := e.Bytes()
	d := xdr.NewDecoder(buf)
	s, _ := d.DecodeString(10)
	o, _ := d.DecodeOpaque(10)
	for i := range buf {
		buf[i] = 0xff // the connection reuses its buffer for the next frame
	}
	if s != "abcd" || string(o) != "wxyz" {
		t.Errorf("values changed with the buffer: %q %q", s, o)
	}
}

func TestDecodedStringsSurviveReuse(t *testing.T) {
	d := xdr.NewDecoder(nil)
	var got []string
	for i := range 2000 { // enough to fill several string arenas
		e := xdr.NewEncoder(nil)
		e.EncodeString(fmt.Sprintf("name-%04d", i))
		e.EncodeString(strings.Repeat("x", 600)) // over the arena limit
		buf := e.Bytes()
		d.Reset(buf)
		s, err := d.DecodeString(100)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.DecodeString(1000); err != nil {
			t.Fatal(err)
		}
		for j := range buf {
			buf[j] = 0
		}
		got = append(got, s)
	}
	for i, s := range got {
		if want := fmt.Sprintf("name-%04d", i); s != want {
			t.Fatalf("string %d = %q, want %q", i, s, want)
		}
	}
}

func TestDecodeBoolAndOptionalAcceptAnyNonZero(t *testing.T) {
	tests := []struct {
		name string
		give []byte
		want bool
	}{
		{name: "zero", give: []byte{0, 0, 0, 0}, want: false},
		{name: "one", give: []byte{0, 0, 0, 1}, want: true},
		{name: "go-libvirt byte order", give: []byte{1, 0, 0, 0}, want: true},
		{name: "two", give: []byte{0, 0, 0, 2}, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := xdr.NewDecoder(tt.give).DecodeOptional()
			if err != nil || got != tt.want {
				t.Errorf("DecodeOptional = %v, %v; want %v", got, err, tt.want)
			}
			got, err = xdr.NewDecoder(tt.give).DecodeBool()
			if err != nil || got != tt.want {
				t.Errorf("DecodeBool = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func be32(v uint32) []byte { return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)} }

func TestDecoderBounds(t *testing.T) {
	tests := []struct {
		name     string
		give     []byte
		decode   func(d *xdr.Decoder) error
		wantCode xdr2.ErrorCode
	}{
		{name: "short int", give: []byte{0, 0, 1}, decode: func(d *xdr.Decoder) error { _, err := d.DecodeInt(); return err }, wantCode: xdr2.ErrIO},
		{name: "short hyper", give: make([]byte, 7), decode: func(d *xdr.Decoder) error { _, err := d.DecodeHyper(); return err }, wantCode: xdr2.ErrIO},
		{name: "string over max", give: append(be32(6), "abcdef\x00\x00"...), decode: func(d *xdr.Decoder) error { _, err := d.DecodeString(5); return err }, wantCode: xdr2.ErrOverflow},
		{name: "string beyond remaining", give: append(be32(5), "abcd"...), decode: func(d *xdr.Decoder) error { _, err := d.DecodeString(100); return err }, wantCode: xdr2.ErrIO},
		{name: "string padding missing", give: append(be32(5), "abcde"...), decode: func(d *xdr.Decoder) error { _, err := d.DecodeString(100); return err }, wantCode: xdr2.ErrIO},
		{name: "huge string length", give: be32(0xffffffff), decode: func(d *xdr.Decoder) error { _, err := d.DecodeString(math.MaxUint32); return err }, wantCode: xdr2.ErrIO},
		{name: "opaque over max", give: append(be32(8), make([]byte, 8)...), decode: func(d *xdr.Decoder) error { _, err := d.DecodeOpaque(4); return err }, wantCode: xdr2.ErrOverflow},
		{name: "fixed opaque short", give: make([]byte, 15), decode: func(d *xdr.Decoder) error { _, err := d.DecodeFixedOpaque(16); return err }, wantCode: xdr2.ErrIO},
		{name: "array count over max", give: be32(16385), decode: func(d *xdr.Decoder) error { _, err := d.DecodeArrayLen(16384, 4); return err }, wantCode: xdr2.ErrOverflow},
		{name: "array count beyond remaining", give: append(be32(3), make([]byte, 8)...), decode: func(d *xdr.Decoder) error { _, err := d.DecodeArrayLen(16384, 4); return err }, wantCode: xdr2.ErrIO},
		{name: "huge array count", give: be32(0xffffffff), decode: func(d *xdr.Decoder) error { _, err := d.DecodeArrayLen(math.MaxUint32, 1); return err }, wantCode: xdr2.ErrIO},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.decode(xdr.NewDecoder(tt.give))
			var ue *xdr2.UnmarshalError
			if !errors.As(err, &ue) {
				t.Fatalf("error %v (%T), want *xdr2.UnmarshalError", err, err)
			}
			if ue.ErrorCode != tt.wantCode {
				t.Errorf("ErrorCode %v, want %v", ue.ErrorCode, tt.wantCode)
			}
		})
	}
}

func TestHostileLengthsDoNotAllocate(t *testing.T) {
	give := be32(0xfffffff0)
	got := testkit.AllocatedBytes(func() {
		for range 100 {
			if _, err := xdr.NewDecoder(give).DecodeArrayLen(math.MaxUint32, 1); err == nil {
				t.Fatal("array: no error")
			}
			if _, err := xdr.NewDecoder(give).DecodeOpaque(math.MaxUint32); err == nil {
				t.Fatal("opaque: no error")
			}
			if _, err := xdr.NewDecoder(give).DecodeString(math.MaxUint32); err == nil {
				t.Fatal("string: no error")
			}
		}
	})
	// Only the error values: a few hundred bytes each, never the 4 GiB announced.
	if got > 300*1024 {
		t.Errorf("rejecting 300 hostile lengths allocated %d bytes", got)
	}
}

func TestDecodeArrayLenAcceptsExact(t *testing.T) {
	d := xdr.NewDecoder(append(be32(2), make([]byte, 8)...))
	n, err := d.DecodeArrayLen(2, 4)
	if err != nil || n != 2 {
		t.Errorf("DecodeArrayLen = %d, %v; want 2, nil", n, err)
	}
}

func TestCheckBound(t *testing.T) {
	if err := xdr.CheckBound("X.Name", 5, 5); err != nil {
		t.Errorf("at the bound: %v", err)
	}
	err := xdr.CheckBound("X.Name", 6, 5)
	var me *xdr2.MarshalError
	if !errors.As(err, &me) || me.ErrorCode != xdr2.ErrOverflow {
		t.Errorf("over the bound: %v, want *xdr2.MarshalError ErrOverflow", err)
	}
}

func TestReadFrame(t *testing.T) {
	frame := func(n uint32, body int) []byte { return append(be32(n), make([]byte, body)...) }
	tests := []struct {
		name     string
		give     []byte
		giveMax  uint32
		wantLen  int
		wantErr  error
		wantFErr bool
	}{
		{name: "minimal", give: frame(28, 24), giveMax: xdr.MaxFrameLen, wantLen: 24},
		{name: "with payload", give: frame(36, 32), giveMax: xdr.MaxFrameLen, wantLen: 32},
		{name: "too short", give: frame(27, 23), giveMax: xdr.MaxFrameLen, wantFErr: true},
		{name: "zero", give: frame(0, 0), giveMax: xdr.MaxFrameLen, wantFErr: true},
		{name: "libvirt maximum is accepted", give: be32(33554436), giveMax: xdr.MaxFrameLen, wantErr: io.ErrUnexpectedEOF},
		{name: "one over libvirt maximum", give: be32(33554437), giveMax: xdr.MaxFrameLen, wantFErr: true},
		{name: "truncated body", give: frame(40, 10), giveMax: xdr.MaxFrameLen, wantErr: io.ErrUnexpectedEOF},
		{name: "clean EOF", give: nil, giveMax: xdr.MaxFrameLen, wantErr: io.EOF},
		{name: "truncated length word", give: []byte{0, 0}, giveMax: xdr.MaxFrameLen, wantErr: io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := xdr.ReadFrame(bytes.NewReader(tt.give), nil, tt.giveMax)
			var fe *xdr.FrameError
			switch {
			case tt.wantFErr:
				if !errors.As(err, &fe) {
					t.Fatalf("error %v, want *xdr.FrameError", err)
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error %v, want %v", err, tt.wantErr)
				}
			case err != nil:
				t.Fatal(err)
			case len(got) != tt.wantLen:
				t.Errorf("len %d, want %d", len(got), tt.wantLen)
			}
		})
	}
}

func TestReadFrameReusesBuffer(t *testing.T) {
	buf := make([]byte, 0, 64)
	got, err := xdr.ReadFrame(bytes.NewReader(append(be32(32), make([]byte, 28)...)), buf, xdr.MaxFrameLen)
	if err != nil {
		t.Fatal(err)
	}
	if &got[0] != &buf[:1][0] {
		t.Error("ReadFrame allocated although buf had room")
	}
}

func TestStartFinishFrame(t *testing.T) {
	e := xdr.NewEncoder([]byte{0xaa}) // something already in the buffer
	off := xdr.StartFrame(e)
	for range 6 {
		e.EncodeUint(1)
	}
	e.EncodeString("p1")
	if err := xdr.FinishFrame(e, off, xdr.MaxFrameLen); err != nil {
		t.Fatal(err)
	}
	got, err := xdr.ReadFrame(bytes.NewReader(e.Bytes()[1:]), nil, xdr.MaxFrameLen)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 24+8 {
		t.Errorf("frame body %d bytes, want 32", len(got))
	}

	short := xdr.NewEncoder(nil)
	off = xdr.StartFrame(short)
	short.EncodeUint(1)
	var fe *xdr.FrameError
	if err := xdr.FinishFrame(short, off, xdr.MaxFrameLen); !errors.As(err, &fe) {
		t.Errorf("FinishFrame of a headerless frame: %v, want *xdr.FrameError", err)
	}
}

func TestErrors(t *testing.T) {
	ue := &xdr.UnsupportedError{API: "virConnectGetVersion"}
	if got, want := ue.Error(), "this function is not supported by the connection driver: virConnectGetVersion"; got != want {
		t.Errorf("UnsupportedError = %q, want %q", got, want)
	}
	inner := errors.New("short")
	de := &xdr.DecodeError{Proc: 84, Err: inner}
	if !errors.Is(de, inner) {
		t.Error("DecodeError does not unwrap")
	}
	if xdr.StreamUpload.String() != "upload" || xdr.StreamDownload.String() != "download" || xdr.StreamNone.String() != "none" {
		t.Error("StreamDir.String")
	}
}
