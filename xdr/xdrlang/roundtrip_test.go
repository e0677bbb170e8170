package xdrlang_test

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	xdr2 "github.com/davecgh/go-xdr/xdr2"

	"github.com/virtstoraged-go/virtstoraged/internal/genroundtrip"
	"github.com/virtstoraged-go/virtstoraged/xdr"
	"github.com/virtstoraged-go/virtstoraged/xdr/xdrlang/testdata/demo"
)

// TestDemoRoundTrip round-trips every type of the golden fixture, which uses every
// construct the generator supports.
func TestDemoRoundTrip(t *testing.T) {
	types := []func() xdr.Message{
		func() xdr.Message { return new(demo.Everything) },
		func() xdr.Message { return new(demo.Pool) },
		func() xdr.Message { return new(demo.OptPool) },
		func() xdr.Message { return new(demo.OptString) },
		func() xdr.Message { return new(demo.UUID) },
		func() xdr.Message { return new(demo.Error) },
		func() xdr.Message { return new(demo.ParamValue) },
		func() xdr.Message { return new(demo.Maybe) },
		func() xdr.Message { return new(demo.Param) },
		func() xdr.Message { return new(demo.PoolGetInfoRet) },
		func() xdr.Message { return new(demo.VolUploadArgs) },
		func() xdr.Message { return new(demo.PoolEventMsg) },
	}
	r := rand.New(rand.NewPCG(7, 7))
	for _, newT := range types {
		name := reflect.TypeOf(newT()).Elem().Name()
		t.Run(name, func(t *testing.T) {
			for i := range 200 {
				m := newT()
				if !genroundtrip.FillValid(m, r) {
					t.Fatal("no valid random value found")
				}
				if _, err := genroundtrip.RoundTrip(m); err != nil {
					t.Fatalf("iteration %d: %v", i, err)
				}
			}
		})
	}
}

func TestDemoEncodeAndDecodeChecks(t *testing.T) {
	tests := []struct {
		name     string
		give     xdr.Message
		wantCode xdr2.ErrorCode
	}{
		{name: "string over its bound", give: &demo.Everything{S: strings.Repeat("x", 11)}, wantCode: xdr2.ErrOverflow},
		{name: "array over its bound", give: &demo.Everything{Names: make([]string, 5)}, wantCode: xdr2.ErrOverflow},
		{name: "opaque over its bound", give: &demo.Everything{Blob: make([]byte, 65)}, wantCode: xdr2.ErrOverflow},
		{name: "optional with two values", give: &demo.Everything{OptName: demo.OptString{"a", "b"}}, wantCode: xdr2.ErrOverflow},
		{name: "union without arm", give: &demo.ParamValue{Type: 99}, wantCode: xdr2.ErrBadEnumValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := genroundtrip.Encode(tt.give)
			var me *xdr2.MarshalError
			if !errors.As(err, &me) || me.ErrorCode != tt.wantCode {
				t.Errorf("error %v, want MarshalError %v", err, tt.wantCode)
			}
		})
	}

	// A discriminant with no arm and no default cannot be decoded either.
	var pv demo.ParamValue
	err := pv.Decode(xdr.NewDecoder([]byte{0, 0, 0, 99}))
	var ue *xdr2.UnmarshalError
	if !errors.As(err, &ue) || ue.ErrorCode != xdr2.ErrBadEnumValue {
		t.Errorf("decoding discriminant 99: %v", err)
	}
	// With a default arm any discriminant decodes.
	m := demo.Maybe{Kind: 99}
	got, err := genroundtrip.RoundTrip(&m)
	if err != nil || got.(*demo.Maybe).Kind != 99 {
		t.Errorf("Maybe{99}: %v, %v", got, err)
	}
	// Fixed arrays are encoded without a length word: 3 ints = 12 bytes.
	b, err := genroundtrip.Encode(&demo.PoolGetInfoRet{State: 2})
	if err != nil || len(b) != 28 {
		t.Errorf("PoolGetInfoRet is %d bytes (%v), want 28", len(b), err)
	}
}

func TestDemoProgram(t *testing.T) {
	if demo.Program != 0x20008086 || demo.ProtocolVersion != 1 {
		t.Errorf("Program %#x version %d", demo.Program, demo.ProtocolVersion)
	}
	p := demo.Lookup(208)
	if p == nil || p.Stream != xdr.StreamUpload || p.API != "virStorageVolUpload" || p.ReadOnly {
		t.Errorf("Lookup(208) = %+v", p)
	}
	if p := demo.Lookup(1); p == nil || !p.ReadOnly || !p.Priority || p.NewArgs != nil || p.NewRet != nil {
		t.Errorf("Lookup(1) = %+v", p)
	}
	if p := demo.Lookup(370); p == nil || !p.Async || p.NewArgs == nil {
		t.Errorf("Lookup(370) = %+v", p)
	}
	if demo.Lookup(2) != nil || demo.Lookup(371) != nil {
		t.Error("Lookup of an undefined number is not nil")
	}
	if demo.StateRunning.String() != "DEMO_STATE_RUNNING" || demo.State(2).String() != "DEMO_STATE_RUNNING" {
		t.Errorf("enum String with an alias member: %q", demo.State(2).String())
	}
	var err error = &demo.Error{Message: demo.OptString{"boom"}}
	if err.Error() != "boom" {
		t.Errorf("Error() = %q", err.Error())
	}
}
