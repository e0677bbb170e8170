// Package genroundtrip checks the code xdrgen emits: a reflection-driven random filler
// for generated types, a round-trip check, and (in its tests) round trips of every type
// of gen/... plus benchmarks against go-xdr's reflection codec. Reflection lives here,
// in test support only; the generated code itself never uses it.
package genroundtrip

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"

	xdr2 "github.com/davecgh/go-xdr/xdr2"

	"github.com/virtstoraged-go/virtstoraged/xdr"
)

// maxDepth stops the filler in self-referencing types (optional linked lists).
const maxDepth = 5

// Fill sets every exported field reachable from ptr to a random value. Lengths stay
// small (strings up to 8 bytes, arrays up to 3 elements, Opt* types 0 or 1 element) so
// that any declared bound holds but an undeclared optional may still get 2 elements;
// RoundTrip retries such values. Small integers are favoured so that union
// discriminants often select an arm.
func Fill(ptr any, r *rand.Rand) {
	fill(reflect.ValueOf(ptr).Elem(), r, 0)
}

func fill(v reflect.Value, r *rand.Rand, depth int) {
	switch v.Kind() {
	case reflect.Int32:
		if r.IntN(2) == 0 {
			v.SetInt(int64(r.IntN(9)))
		} else {
			v.SetInt(int64(int32(r.Uint32())))
		}
	case reflect.Uint32:
		if r.IntN(2) == 0 {
			v.SetUint(uint64(r.IntN(9)))
		} else {
			v.SetUint(uint64(r.Uint32()))
		}
	case reflect.Int64:
		v.SetInt(int64(r.Uint64()))
	case reflect.Uint64:
		v.SetUint(r.Uint64())
	case reflect.Bool:
		v.SetBool(r.IntN(2) == 1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(float32(r.NormFloat64())))
	case reflect.String:
		b := make([]byte, r.IntN(9))
		for i := range b {
			b[i] = byte('a' + r.IntN(26))
		}
		v.SetString(string(b))
	case reflect.Array:
		for i := range v.Len() {
			fill(v.Index(i), r, depth+1)
		}
	case reflect.Slice:
		n := r.IntN(4)
		if r.IntN(10) < 8 {
			n = r.IntN(2)
		}
		if strings.HasPrefix(v.Type().Name(), "Opt") {
			n = r.IntN(2)
		}
		if depth > maxDepth {
			n = 0
		}
		if n == 0 && (v.Type().Elem().Kind() == reflect.Uint8 || strings.HasPrefix(v.Type().Name(), "Opt")) {
			v.SetZero() // what the decoder returns for empty opaque and absent optionals
			return
		}
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			fill(s.Index(i), r, depth+1)
		}
		v.Set(s)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), r, depth+1)
			}
		}
	}
}

// Encode returns m's encoding in a fresh buffer.
func Encode(m xdr.Message) ([]byte, error) {
	e := xdr.NewEncoder(nil)
	err := m.Encode(e)
	return e.Bytes(), err
}

// RoundTrip encodes m, decodes the bytes into a new value of m's type, and checks that
// every byte was consumed, that the decoded value encodes to the same bytes, and that
// decoding those again gives a deeply equal value. It returns the decoded value.
func RoundTrip(m xdr.Message) (xdr.Message, error) {
	enc1, err := Encode(m)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	w, err := decodeNew(m, enc1)
	if err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	enc2, err := Encode(w)
	if err != nil {
		return nil, fmt.Errorf("re-encode: %w", err)
	}
	if !bytes.Equal(enc1, enc2) {
		return nil, fmt.Errorf("re-encoding differs:\n%x\n%x", enc1, enc2)
	}
	w2, err := decodeNew(m, enc2)
	if err != nil {
		return nil, fmt.Errorf("second decode: %w", err)
	}
	if !reflect.DeepEqual(w, w2) {
		return nil, fmt.Errorf("second decode differs: %+v vs %+v", w, w2)
	}
	return w, nil
}

func decodeNew(like xdr.Message, b []byte) (xdr.Message, error) {
	w := reflect.New(reflect.TypeOf(like).Elem()).Interface().(xdr.Message)
	d := xdr.NewDecoder(b)
	if err := w.Decode(d); err != nil {
		return nil, err
	}
	if d.Remaining() != 0 {
		return nil, fmt.Errorf("%d bytes left over", d.Remaining())
	}
	return w, nil
}

// FillValid fills m with random values that encode (retrying values that break a bound
// or select no union arm) and reports whether it found one.
func FillValid(m xdr.Message, r *rand.Rand) bool {
	for range 200 {
		reflect.ValueOf(m).Elem().SetZero()
		Fill(m, r)
		_, err := Encode(m)
		if err == nil {
			return true
		}
		var me *xdr2.MarshalError
		if !errors.As(err, &me) {
			return false
		}
	}
	return false
}

// DecodeAllocFactor and DecodeAllocSlack bound what decoding n bytes may allocate:
// DecodeAllocFactor*n + DecodeAllocSlack. A decoded value may be larger than its wire
// form (a typed parameter with an empty name and an int is 8 bytes on the wire and an
// 80-byte Go struct; a string is a 4-byte length there and a 16-byte header here), so the
// factor is not 1, but it is a constant: no length or count the input claims can make
// the decoder allocate more than a fixed multiple of what was actually sent. The slack
// covers size-class and page rounding of one allocation.
const (
	DecodeAllocFactor = 16
	DecodeAllocSlack  = 16 << 10
)

// DecodeAllocBound is the most decoding n input bytes may allocate.
func DecodeAllocBound(n int) uint64 { return DecodeAllocFactor*uint64(n) + DecodeAllocSlack }
