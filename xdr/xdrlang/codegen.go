package xdrlang

import (
	"fmt"
	"strings"
)

// encodeStmts returns Go statements appending expr (addressable, of type t) to the
// *xdr.Encoder e. label names the value in bound errors.
func encodeStmts(b *strings.Builder, expr string, t *goType, label string, depth int) {
	switch t.kind {
	case kInt32:
		fmt.Fprintf(b, "e.EncodeInt(%s)\n", expr)
	case kUint32:
		fmt.Fprintf(b, "e.EncodeUint(%s)\n", expr)
	case kInt64:
		fmt.Fprintf(b, "e.EncodeHyper(%s)\n", expr)
	case kUint64:
		fmt.Fprintf(b, "e.EncodeUhyper(%s)\n", expr)
	case kBool:
		fmt.Fprintf(b, "e.EncodeBool(%s)\n", expr)
	case kFloat32:
		fmt.Fprintf(b, "e.EncodeFloat(%s)\n", expr)
	case kFloat64:
		fmt.Fprintf(b, "e.EncodeDouble(%s)\n", expr)
	case kEnum:
		fmt.Fprintf(b, "e.EncodeInt(int32(%s))\n", expr)
	case kString:
		fmt.Fprintf(b, "if err := xdr.CheckBound(%q, len(%s), %s); err != nil {\nreturn err\n}\n", label, expr, t.bound)
		fmt.Fprintf(b, "e.EncodeString(%s)\n", expr)
	case kOpaque:
		fmt.Fprintf(b, "if err := xdr.CheckBound(%q, len(%s), %s); err != nil {\nreturn err\n}\n", label, expr, t.bound)
		fmt.Fprintf(b, "e.EncodeOpaque(%s)\n", expr)
	case kFixedOpaque:
		fmt.Fprintf(b, "e.EncodeFixedOpaque(%s[:])\n", expr)
	case kNamed:
		fmt.Fprintf(b, "if err := %s.Encode(e); err != nil {\nreturn err\n}\n", expr)
	case kArray, kOptional:
		fmt.Fprintf(b, "if err := xdr.CheckBound(%q, len(%s), %s); err != nil {\nreturn err\n}\n", label, expr, t.bound)
		fmt.Fprintf(b, "e.EncodeUint(uint32(len(%s)))\n", expr)
		fallthrough
	case kFixedArray:
		i := fmt.Sprintf("i%d", depth)
		fmt.Fprintf(b, "for %s := range %s {\n", i, expr)
		encodeStmts(b, fmt.Sprintf("%s[%s]", expr, i), t.elem, label, depth+1)
		b.WriteString("}\n")
	default:
		panic(fmt.Sprintf("xdrlang: encode of kind %d", t.kind))
	}
}

// decodeStmts returns Go statements reading a value of type t from the *xdr.Decoder d
// into expr (addressable).
func decodeStmts(b *strings.Builder, expr string, t *goType, depth int) {
	prim := func(call string) {
		fmt.Fprintf(b, "if val, err := d.%s; err != nil {\nreturn err\n} else {\n%s = val\n}\n", call, expr)
	}
	switch t.kind {
	case kInt32:
		prim("DecodeInt()")
	case kUint32:
		prim("DecodeUint()")
	case kInt64:
		prim("DecodeHyper()")
	case kUint64:
		prim("DecodeUhyper()")
	case kBool:
		prim("DecodeBool()")
	case kFloat32:
		prim("DecodeFloat()")
	case kFloat64:
		prim("DecodeDouble()")
	case kEnum:
		fmt.Fprintf(b, "if val, err := d.DecodeInt(); err != nil {\nreturn err\n} else {\n%s = %s(val)\n}\n", expr, t.name)
	case kString:
		prim(fmt.Sprintf("DecodeString(%s)", t.bound))
	case kOpaque:
		prim(fmt.Sprintf("DecodeOpaque(%s)", t.bound))
	case kFixedOpaque:
		fmt.Fprintf(b, "if err := d.DecodeFixedOpaqueInto(%s[:]); err != nil {\nreturn err\n}\n", expr)
	case kNamed:
		fmt.Fprintf(b, "if err := %s.Decode(d); err != nil {\nreturn err\n}\n", expr)
	case kArray:
		n := fmt.Sprintf("n%d", depth)
		fmt.Fprintf(b, "{\n%s, err := d.DecodeArrayLen(%s, %d)\nif err != nil {\nreturn err\n}\n", n, t.bound, max(t.elem.min, 1))
		fmt.Fprintf(b, "%s = make(%s, %s)\n", expr, t.String(), n)
		decodeElems(b, expr, t, depth)
		b.WriteString("}\n")
	case kOptional:
		fmt.Fprintf(b, "if ok, err := d.DecodeOptional(); err != nil {\nreturn err\n} else if !ok {\n%s = nil\n} else {\n", expr)
		fmt.Fprintf(b, "%s = make(%s, 1)\n", expr, t.String())
		decodeStmts(b, expr+"[0]", t.elem, depth+1)
		b.WriteString("}\n")
	case kFixedArray:
		decodeElems(b, expr, t, depth)
	default:
		panic(fmt.Sprintf("xdrlang: decode of kind %d", t.kind))
	}
}

func decodeElems(b *strings.Builder, expr string, t *goType, depth int) {
	i := fmt.Sprintf("i%d", depth)
	fmt.Fprintf(b, "for %s := range %s {\n", i, expr)
	decodeStmts(b, fmt.Sprintf("%s[%s]", expr, i), t.elem, depth+1)
	b.WriteString("}\n")
}
