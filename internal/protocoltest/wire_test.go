package protocoltest_test

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// wire assembles XDR bytes by hand, independently of the generated encoders, so that the
// fixtures are an oracle rather than a copy of the code under test.
type wire struct{ b []byte }

func (w *wire) u32(v uint32) *wire { w.b = binary.BigEndian.AppendUint32(w.b, v); return w }
func (w *wire) i32(v int32) *wire  { return w.u32(uint32(v)) }
func (w *wire) u64(v uint64) *wire { w.b = binary.BigEndian.AppendUint64(w.b, v); return w }
func (w *wire) i64(v int64) *wire  { return w.u64(uint64(v)) }
func (w *wire) raw(b []byte) *wire { w.b = append(w.b, b...); return w }

// str writes an XDR string: length, bytes, zero padding to a multiple of 4.
func (w *wire) str(s string) *wire {
	w.u32(uint32(len(s)))
	w.b = append(w.b, s...)
	for len(w.b)%4 != 0 {
		w.b = append(w.b, 0)
	}
	return w
}

// optStr writes a present optional string.
func (w *wire) optStr(s string) *wire { return w.u32(1).str(s) }

// null writes an absent optional value.
func (w *wire) null() *wire { return w.u32(0) }

// pool writes a remote_nonnull_storage_pool.
func (w *wire) pool(name string, uuid []byte) *wire { return w.str(name).raw(uuid) }

// vol writes a remote_nonnull_storage_vol.
func (w *wire) vol(pool, name, key string) *wire { return w.str(pool).str(name).str(key) }

// uintParam writes an admin/remote typed parameter of type UINT (2).
func (w *wire) uintParam(field string, v uint32) *wire { return w.str(field).i32(2).u32(v) }

// intParam writes a typed parameter of type INT (1).
func (w *wire) intParam(field string, v int32) *wire { return w.str(field).i32(1).i32(v) }

// boolParam writes a typed parameter of type BOOLEAN (6).
func (w *wire) boolParam(field string, v int32) *wire { return w.str(field).i32(6).i32(v) }

// strParam writes a typed parameter of type STRING (7).
func (w *wire) strParam(field, v string) *wire { return w.str(field).i32(7).str(v) }

// libvirtErr writes a remote_error the way libvirtd fills it: message always present,
// level 2, dom NULL, str1 the format, str2 the detail, str3 NULL, int2 -1, net NULL.
func (w *wire) libvirtErr(code, domain int32, msg, str1, str2 string, int1 int32) *wire {
	return w.i32(code).i32(domain).optStr(msg).i32(2).null().
		optStr(str1).optStr(str2).null().i32(int1).i32(-1).null()
}

// hdr is the 24-byte message header.
type hdr struct {
	prog, vers uint32
	proc       int32
	typ        int32
	serial     uint32
	status     int32
}

const (
	progRemote    = 0x20008086
	progAdmin     = 0x06900690
	progKeepalive = 0x6b656570

	typeCall       = 0
	typeReply      = 1
	typeMessage    = 2
	typeStream     = 3
	typeStreamHole = 6

	statusOK       = 0
	statusError    = 1
	statusContinue = 2
)

// frame prepends the length word and header to payload.
func frame(h hdr, payload []byte) []byte {
	w := &wire{}
	w.u32(uint32(4 + 24 + len(payload)))
	w.u32(h.prog).u32(h.vers).i32(h.proc).i32(h.typ).u32(h.serial).i32(h.status)
	return w.raw(payload).b
}

// mustHex decodes hex with any whitespace and '|' separators removed.
func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	s = strings.NewReplacer(" ", "", "\n", "", "\t", "", "|", "").Replace(s)
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex fixture: %v", err)
	}
	return b
}

// uuidOf returns a recognisable 16-byte UUID for synthetic fixtures.
func uuidOf(seed byte) []byte {
	u := make([]byte, 16)
	for i := range u {
		u[i] = seed + byte(i)
	}
	return u
}

// fieldAt walks a dotted path like "Pools[2].Name" or "Message[0]" through structs,
// slices and arrays.
func fieldAt(v reflect.Value, path string) (reflect.Value, error) {
	for _, part := range strings.Split(path, ".") {
		name, idx := part, -1
		if i := strings.IndexByte(part, '['); i >= 0 {
			n, err := strconv.Atoi(strings.TrimSuffix(part[i+1:], "]"))
			if err != nil {
				return reflect.Value{}, fmt.Errorf("bad index in %q", part)
			}
			name, idx = part[:i], n
		}
		for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
			v = v.Elem()
		}
		if name != "" {
			if v.Kind() != reflect.Struct {
				return reflect.Value{}, fmt.Errorf("%s: %s is not a struct", path, v.Type())
			}
			// Case-insensitive, so that paths read like the .x field names
			// (callbackID) whatever capitalisation the generator settles on.
			f := v.FieldByNameFunc(func(n string) bool { return strings.EqualFold(n, name) })
			if !f.IsValid() {
				return reflect.Value{}, fmt.Errorf("%s: %s has no field %s", path, v.Type(), name)
			}
			v = f
		}
		if idx >= 0 {
			if v.Kind() != reflect.Slice && v.Kind() != reflect.Array {
				return reflect.Value{}, fmt.Errorf("%s: %s is not indexable", path, v.Type())
			}
			if idx >= v.Len() {
				return reflect.Value{}, fmt.Errorf("%s: index %d out of range (len %d)", path, idx, v.Len())
			}
			v = v.Index(idx)
		}
	}
	return v, nil
}

// sameValue compares a decoded value with an expectation written as a plain Go literal:
// integers compare by value whatever their width or signedness, []byte against byte arrays
// and slices, nil against an empty optional or array.
func sameValue(got reflect.Value, want any) bool {
	if want == nil {
		return (got.Kind() == reflect.Slice || got.Kind() == reflect.Pointer) && (got.IsNil() || got.Len() == 0)
	}
	wv := reflect.ValueOf(want)
	switch {
	case isInt(got.Kind()) && isInt(wv.Kind()):
		return asInt(got) == asInt(wv)
	case got.Kind() == reflect.String && wv.Kind() == reflect.String:
		return got.String() == wv.String()
	case got.Kind() == reflect.Float64 && wv.Kind() == reflect.Float64:
		return got.Float() == wv.Float()
	case got.Kind() == reflect.Bool && wv.Kind() == reflect.Bool:
		return got.Bool() == wv.Bool()
	case (got.Kind() == reflect.Array || got.Kind() == reflect.Slice) && wv.Kind() == reflect.Slice && wv.Type().Elem().Kind() == reflect.Uint8:
		if got.Type().Elem().Kind() != reflect.Uint8 || got.Len() != wv.Len() {
			return false
		}
		for i := 0; i < got.Len(); i++ {
			if got.Index(i).Uint() != wv.Index(i).Uint() {
				return false
			}
		}
		return true
	}
	return false
}

func isInt(k reflect.Kind) bool {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
}

// asInt widens any integer to a comparable form; uint64 values above MaxInt64 stay
// distinguishable from negative ones because the sign is kept separately.
func asInt(v reflect.Value) [2]uint64 {
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if n := v.Int(); n < 0 {
			return [2]uint64{1, uint64(n)}
		}
		return [2]uint64{0, uint64(v.Int())}
	}
	return [2]uint64{0, v.Uint()}
}

// checkFields asserts every path → value of want on msg.
func checkFields(t *testing.T, msg any, want map[string]any) {
	t.Helper()
	for path, w := range want {
		got, err := fieldAt(reflect.ValueOf(msg), path)
		if err != nil {
			t.Errorf("field %s: %v", path, err)
			continue
		}
		if !sameValue(got, w) {
			t.Errorf("field %s = %#v, want %#v", path, got.Interface(), w)
		}
	}
}
