package xdr

import (
	"encoding/binary"
	"fmt"
	"math"

	xdr2 "github.com/davecgh/go-xdr/xdr2"
)

// Encoder appends XDR-encoded values to a byte slice. Its primitives cannot fail: bounds
// are checked by the generated Encode methods (see CheckBound) before anything is written.
type Encoder struct {
	buf []byte
}

// NewEncoder returns an Encoder appending to buf (usually buf[:0] of a reused buffer).
func NewEncoder(buf []byte) *Encoder { return &Encoder{buf: buf} }

// Bytes returns everything encoded so far, including what buf held initially.
func (e *Encoder) Bytes() []byte { return e.buf }

// Reset makes the Encoder append to buf from now on.
func (e *Encoder) Reset(buf []byte) { e.buf = buf }

// Len returns len(e.Bytes()).
func (e *Encoder) Len() int { return len(e.buf) }

// EncodeInt appends a signed 32-bit integer.
func (e *Encoder) EncodeInt(v int32) { e.buf = binary.BigEndian.AppendUint32(e.buf, uint32(v)) }

// EncodeUint appends an unsigned 32-bit integer.
func (e *Encoder) EncodeUint(v uint32) { e.buf = binary.BigEndian.AppendUint32(e.buf, v) }

// EncodeHyper appends a signed 64-bit integer.
func (e *Encoder) EncodeHyper(v int64) { e.buf = binary.BigEndian.AppendUint64(e.buf, uint64(v)) }

// EncodeUhyper appends an unsigned 64-bit integer.
func (e *Encoder) EncodeUhyper(v uint64) { e.buf = binary.BigEndian.AppendUint64(e.buf, v) }

// EncodeBool appends a boolean as 0 or 1.
func (e *Encoder) EncodeBool(v bool) {
	if v {
		e.EncodeUint(1)
		return
	}
	e.EncodeUint(0)
}

// EncodeFloat appends an IEEE single-precision float.
func (e *Encoder) EncodeFloat(v float32) { e.EncodeUint(math.Float32bits(v)) }

// EncodeDouble appends an IEEE double-precision float.
func (e *Encoder) EncodeDouble(v float64) { e.EncodeUhyper(math.Float64bits(v)) }

// EncodeFixedOpaque appends v padded to a multiple of 4 bytes, without a length.
func (e *Encoder) EncodeFixedOpaque(v []byte) {
	e.buf = append(e.buf, v...)
	e.pad(len(v))
}

// EncodeOpaque appends a length-prefixed, padded byte string.
func (e *Encoder) EncodeOpaque(v []byte) {
	e.EncodeUint(uint32(len(v)))
	e.EncodeFixedOpaque(v)
}

// EncodeString appends a length-prefixed, padded string.
func (e *Encoder) EncodeString(v string) {
	e.EncodeUint(uint32(len(v)))
	e.buf = append(e.buf, v...)
	e.pad(len(v))
}

// EncodeRaw appends b as is (stream payloads are raw bytes, not XDR opaque).
func (e *Encoder) EncodeRaw(b []byte) { e.buf = append(e.buf, b...) }

func (e *Encoder) pad(n int) {
	switch n & 3 {
	case 1:
		e.buf = append(e.buf, 0, 0, 0)
	case 2:
		e.buf = append(e.buf, 0, 0)
	case 3:
		e.buf = append(e.buf, 0)
	}
}

// CheckBound returns a *xdr2.MarshalError (ErrOverflow) when a variable-length value of n
// elements (or bytes) exceeds the bound max declared in the .x file; generated code calls
// it before encoding so that we never send what libvirt would refuse to decode.
func CheckBound(field string, n int, max uint32) error {
	if uint64(n) <= uint64(max) {
		return nil
	}
	return &xdr2.MarshalError{
		ErrorCode:   xdr2.ErrOverflow,
		Func:        "Encode",
		Value:       n,
		Description: fmt.Sprintf("%s: length %d exceeds maximum %d", field, n, max),
	}
}

// BadDiscriminantError is returned by a generated union's Encode when its discriminant
// selects no arm and the union has no default.
func BadDiscriminantError(union string, v int64) error {
	return &xdr2.MarshalError{
		ErrorCode:   xdr2.ErrBadEnumValue,
		Func:        "Encode",
		Value:       v,
		Description: fmt.Sprintf("%s: no arm for discriminant %d", union, v),
	}
}
