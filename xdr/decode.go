package xdr

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"

	xdr2 "github.com/davecgh/go-xdr/xdr2"
)

// Decoder reads XDR values from a byte slice, checking every length against both the
// declared bound and the bytes actually left, so hostile input fails fast without
// allocating more than it sent.
type Decoder struct {
	buf []byte
	off int
	// arena backs short decoded strings: one allocation per arenaSize bytes of strings
	// instead of one per string (a 10,000-volume list has 30,000 of them). Bytes once
	// handed out are never written again, which is what makes unsafe.String sound; the
	// cost is that a live string keeps at most one arena chunk alive.
	arena []byte
	// alias makes decoded strings point into buf instead of copying: only for a
	// caller that owns buf and never writes it again (the server's per-call
	// argument buffer), where it saves a copy of every string argument.
	alias bool
}

// NewAliasingDecoder returns a Decoder whose strings point into b rather than
// copying it. The caller must own b and never modify it while any decoded
// value is alive; a Reset keeps the mode.
func NewAliasingDecoder(b []byte) *Decoder { return &Decoder{buf: b, alias: true} }

// SetAlias switches between copying strings (the default, safe when the buffer
// is reused) and pointing into the buffer (see NewAliasingDecoder).
func (d *Decoder) SetAlias(on bool) { d.alias = on }

const (
	arenaSize      = 16 << 10
	arenaStringMax = 512
)

func (d *Decoder) makeString(b []byte) string {
	switch {
	case len(b) == 0:
		return ""
	case d.alias:
		return unsafe.String(unsafe.SliceData(b), len(b))
	case len(b) > arenaStringMax:
		return string(b)
	}
	if len(d.arena)+len(b) > cap(d.arena) {
		// No more than the strings still to decode can need: a small message
		// (a lookup reply) must not pay for a 16 KiB chunk.
		d.arena = make([]byte, 0, max(len(b), min(arenaSize, len(b)+d.Remaining())))
	}
	start := len(d.arena)
	d.arena = append(d.arena, b...)
	return unsafe.String(&d.arena[start], len(b))
}

// NewDecoder returns a Decoder reading b from its start.
func NewDecoder(b []byte) *Decoder { return &Decoder{buf: b} }

// Reset makes the Decoder read b from its start. Strings decoded before stay valid.
func (d *Decoder) Reset(b []byte) { d.buf, d.off = b, 0 }

// Remaining returns the number of bytes not yet consumed.
func (d *Decoder) Remaining() int { return len(d.buf) - d.off }

// Offset returns the number of bytes consumed so far.
func (d *Decoder) Offset() int { return d.off }

// Rest returns the unconsumed bytes without copying them and consumes them.
func (d *Decoder) Rest() []byte {
	b := d.buf[d.off:]
	d.off = len(d.buf)
	return b
}

func shortErr(fn string, want, have int) error {
	return &xdr2.UnmarshalError{
		ErrorCode:   xdr2.ErrIO,
		Func:        fn,
		Value:       have,
		Description: fmt.Sprintf("short input: need %d bytes, %d left", want, have),
	}
}

func overflowErr(fn string, n uint64, max uint64) error {
	return &xdr2.UnmarshalError{
		ErrorCode:   xdr2.ErrOverflow,
		Func:        fn,
		Value:       n,
		Description: fmt.Sprintf("length %d exceeds maximum %d", n, max),
	}
}

func (d *Decoder) take(fn string, n int) ([]byte, error) {
	if n < 0 || n > d.Remaining() {
		return nil, shortErr(fn, n, d.Remaining())
	}
	b := d.buf[d.off : d.off+n]
	d.off += n
	return b, nil
}

// DecodeUint reads an unsigned 32-bit integer.
func (d *Decoder) DecodeUint() (uint32, error) {
	b, err := d.take("DecodeUint", 4)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(b), nil
}

// DecodeInt reads a signed 32-bit integer.
func (d *Decoder) DecodeInt() (int32, error) {
	v, err := d.DecodeUint()
	return int32(v), err
}

// DecodeUhyper reads an unsigned 64-bit integer.
func (d *Decoder) DecodeUhyper() (uint64, error) {
	b, err := d.take("DecodeUhyper", 8)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint64(b), nil
}

// DecodeHyper reads a signed 64-bit integer.
func (d *Decoder) DecodeHyper() (int64, error) {
	v, err := d.DecodeUhyper()
	return int64(v), err
}

// DecodeBool reads a boolean. Like libvirt (and unlike RFC 4506) any non-zero value is
// true rather than an error.
func (d *Decoder) DecodeBool() (bool, error) {
	v, err := d.DecodeUint()
	return v != 0, err
}

// DecodeFloat reads an IEEE single-precision float.
func (d *Decoder) DecodeFloat() (float32, error) {
	v, err := d.DecodeUint()
	return math.Float32frombits(v), err
}

// DecodeDouble reads an IEEE double-precision float.
func (d *Decoder) DecodeDouble() (float64, error) {
	v, err := d.DecodeUhyper()
	return math.Float64frombits(v), err
}

func padded(n int) int { return (n + 3) &^ 3 }

// DecodeFixedOpaque reads n bytes plus padding and returns a copy of the n bytes.
func (d *Decoder) DecodeFixedOpaque(n int) ([]byte, error) {
	b, err := d.take("DecodeFixedOpaque", padded(n))
	if err != nil {
		return nil, err
	}
	out := make([]byte, n)
	copy(out, b)
	return out, nil
}

// DecodeFixedOpaqueInto fills dst from the next len(dst) bytes plus padding; generated
// code uses it for fixed arrays such as UUIDs so that they cost no allocation.
func (d *Decoder) DecodeFixedOpaqueInto(dst []byte) error {
	b, err := d.take("DecodeFixedOpaque", padded(len(dst)))
	if err != nil {
		return err
	}
	copy(dst, b)
	return nil
}

func (d *Decoder) lenPrefixed(fn string, max uint32) ([]byte, error) {
	n, err := d.DecodeUint()
	if err != nil {
		return nil, err
	}
	if n > max {
		return nil, overflowErr(fn, uint64(n), uint64(max))
	}
	if uint64(padded(int(n))) > uint64(d.Remaining()) {
		return nil, shortErr(fn, padded(int(n)), d.Remaining())
	}
	b := d.buf[d.off : d.off+int(n)]
	d.off += padded(int(n))
	return b, nil
}

// DecodeOpaque reads a length-prefixed byte string of at most max bytes and returns a
// copy, so a later reuse of the input buffer cannot change it.
func (d *Decoder) DecodeOpaque(max uint32) ([]byte, error) {
	b, err := d.lenPrefixed("DecodeOpaque", max)
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), b...), nil
}

// DecodeString reads a length-prefixed string of at most max bytes.
func (d *Decoder) DecodeString(max uint32) (string, error) {
	b, err := d.lenPrefixed("DecodeString", max)
	if err != nil {
		return "", err
	}
	return d.makeString(b), nil
}

// DecodeArrayLen reads the element count of a variable-length array. It fails when the
// count exceeds max or when count*minElemSize bytes cannot possibly follow, so the caller
// can make([]T, n) without trusting the peer.
func (d *Decoder) DecodeArrayLen(max uint32, minElemSize int) (int, error) {
	n, err := d.DecodeUint()
	if err != nil {
		return 0, err
	}
	if n > max {
		return 0, overflowErr("DecodeArrayLen", uint64(n), uint64(max))
	}
	if minElemSize > 0 && uint64(n)*uint64(minElemSize) > uint64(d.Remaining()) {
		return 0, shortErr("DecodeArrayLen", int(min(uint64(n)*uint64(minElemSize), math.MaxInt32)), d.Remaining())
	}
	return int(n), nil
}

// DecodeOptional reads the discriminant of optional data (T *x). Any non-zero value means
// present: libvirt accepts it and go-libvirt sends 0x01000000 for its CONNECT_OPEN name.
func (d *Decoder) DecodeOptional() (bool, error) {
	v, err := d.DecodeUint()
	return v != 0, err
}

// BadDiscriminantDecodeError is returned by a generated union's Decode when the
// discriminant read selects no arm and the union has no default.
func BadDiscriminantDecodeError(union string, v int64) error {
	return &xdr2.UnmarshalError{
		ErrorCode:   xdr2.ErrBadEnumValue,
		Func:        "Decode",
		Value:       v,
		Description: fmt.Sprintf("%s: no arm for discriminant %d", union, v),
	}
}
