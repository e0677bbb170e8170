package xdrlang

import (
	"fmt"
	"strconv"
	"strings"
)

type kind int

const (
	kInt32 kind = iota
	kUint32
	kInt64
	kUint64
	kBool
	kFloat32
	kFloat64
	kString
	kOpaque
	kFixedOpaque
	kArray
	kFixedArray
	kOptional
	kEnum
	kNamed
)

// goType is the Go shape of a declaration after typedef inlining.
type goType struct {
	kind kind
	// bound is the Go expression of the maximum (string, opaque, array) or the length
	// (fixed opaque, fixed array); n is its value.
	bound string
	n     int64
	elem  *goType
	name  string // Go type name for kEnum and kNamed
	min   int    // smallest possible encoding in bytes
}

// String returns the Go spelling of the type.
func (t *goType) String() string {
	switch t.kind {
	case kInt32:
		return "int32"
	case kUint32:
		return "uint32"
	case kInt64:
		return "int64"
	case kUint64:
		return "uint64"
	case kBool:
		return "bool"
	case kFloat32:
		return "float32"
	case kFloat64:
		return "float64"
	case kString:
		return "string"
	case kOpaque:
		return "[]byte"
	case kFixedOpaque:
		return "[" + t.bound + "]byte"
	case kArray, kOptional:
		return "[]" + t.elem.String()
	case kFixedArray:
		return "[" + t.bound + "]" + t.elem.String()
	}
	return t.name
}

// typer maps .x declarations to Go types for one file.
type typer struct {
	syms *Symbols
	// prefix is the program prefix ("remote_"), stripped like the well-known ones.
	prefix string
	// minSize caches named types' minimal encodings (and guards against recursion).
	minSize map[string]int
}

func (ty *typer) boundExpr(v Value) string {
	if v.Name != "" {
		if _, ok := ty.syms.Consts[v.Name]; ok {
			return ty.goName(v.Name)
		}
	}
	return strconv.FormatInt(v.Num, 10)
}

// inlined reports whether a typedef disappears into its uses (strings, opaque<> and
// scalars, per xdr/README.md) instead of becoming a Go type.
func (ty *typer) inlined(t *Typedef) bool {
	d := t.Decl
	switch {
	case d.Type == "string":
		return true
	case d.Type == "opaque":
		return d.Kind == DeclVarArray
	case d.Kind != DeclScalar:
		return false
	case builtins[d.Type]:
		return true
	case ty.syms.Enums[d.Type] != nil:
		return true
	case ty.syms.Typedefs[d.Type] != nil:
		return ty.inlined(ty.syms.Typedefs[d.Type])
	}
	return false
}

// typedefName is the Go name of a typedef that is not inlined: an optional one gets the
// Opt prefix so that remote_storage_pool (optional) and remote_nonnull_storage_pool do
// not collide.
func (ty *typer) typedefName(t *Typedef) string {
	if t.Decl.Kind == DeclOptional {
		return "Opt" + ty.goName(t.Decl.Name)
	}
	return ty.goName(t.Decl.Name)
}

func (ty *typer) base(d *Decl) (*goType, error) {
	switch d.Type {
	case "int", "char", "short":
		return &goType{kind: kInt32, min: 4}, nil
	case "unsigned int", "unsigned char", "unsigned short":
		return &goType{kind: kUint32, min: 4}, nil
	case "hyper":
		return &goType{kind: kInt64, min: 8}, nil
	case "unsigned hyper":
		return &goType{kind: kUint64, min: 8}, nil
	case "bool":
		return &goType{kind: kBool, min: 4}, nil
	case "float":
		return &goType{kind: kFloat32, min: 4}, nil
	case "double":
		return &goType{kind: kFloat64, min: 8}, nil
	}
	if e := ty.syms.Enums[d.Type]; e != nil {
		return &goType{kind: kEnum, name: ty.goName(e.Name), min: 4}, nil
	}
	if t := ty.syms.Typedefs[d.Type]; t != nil {
		if ty.inlined(t) {
			return ty.typeOf(t.Decl)
		}
		m, err := ty.namedMin(d.Type)
		if err != nil {
			return nil, err
		}
		return &goType{kind: kNamed, name: ty.typedefName(t), min: m}, nil
	}
	if s := ty.syms.Structs[d.Type]; s != nil {
		m, err := ty.namedMin(d.Type)
		if err != nil {
			return nil, err
		}
		return &goType{kind: kNamed, name: ty.goName(s.Name), min: m}, nil
	}
	if u := ty.syms.Unions[d.Type]; u != nil {
		return &goType{kind: kNamed, name: ty.goName(u.Name), min: 4}, nil
	}
	return nil, fmt.Errorf("%s:%d: unknown type %s", d.File, d.Line, d.Type)
}

func (ty *typer) namedMin(name string) (int, error) {
	if m, ok := ty.minSize[name]; ok {
		if m < 0 {
			pos := Pos{}
			if s := ty.syms.Structs[name]; s != nil {
				pos = s.Pos
			} else if t := ty.syms.Typedefs[name]; t != nil {
				pos = t.Pos
			}
			return 0, fmt.Errorf("%s:%d: recursive type %s contains itself without an optional", pos.File, pos.Line, name)
		}
		return m, nil
	}
	ty.minSize[name] = -1
	total := 0
	if s := ty.syms.Structs[name]; s != nil {
		for _, f := range s.Fields {
			t, err := ty.typeOf(f)
			if err != nil {
				return 0, err
			}
			total += t.min
		}
	} else if t := ty.syms.Typedefs[name]; t != nil {
		gt, err := ty.typeOf(t.Decl)
		if err != nil {
			return 0, err
		}
		total = gt.min
	}
	ty.minSize[name] = total
	return total, nil
}

func (ty *typer) typeOf(d *Decl) (*goType, error) {
	switch d.Type {
	case "string":
		return &goType{kind: kString, bound: ty.boundExpr(d.Size), n: d.Size.Num, min: 4}, nil
	case "opaque":
		if d.Kind == DeclFixedArray {
			return &goType{kind: kFixedOpaque, bound: ty.boundExpr(d.Size), n: d.Size.Num, min: int(pad4(d.Size.Num))}, nil
		}
		return &goType{kind: kOpaque, bound: ty.boundExpr(d.Size), n: d.Size.Num, min: 4}, nil
	}
	if d.Kind == DeclOptional {
		// Optional data may refer to its own type (linked lists), so do not size the element.
		elem, err := ty.elemLazy(d)
		if err != nil {
			return nil, err
		}
		return &goType{kind: kOptional, elem: elem, n: 1, bound: "1", min: 4}, nil
	}
	b, err := ty.base(d)
	if err != nil {
		return nil, err
	}
	switch d.Kind {
	case DeclFixedArray:
		return &goType{kind: kFixedArray, elem: b, bound: ty.boundExpr(d.Size), n: d.Size.Num, min: int(d.Size.Num) * b.min}, nil
	case DeclVarArray:
		return &goType{kind: kArray, elem: b, bound: ty.boundExpr(d.Size), n: d.Size.Num, min: 4}, nil
	}
	return b, nil
}

// elemLazy types the element of an optional declaration; a struct or typedef in the
// middle of being sized is referenced by name only.
func (ty *typer) elemLazy(d *Decl) (*goType, error) {
	if m, ok := ty.minSize[d.Type]; ok && m < 0 {
		if s := ty.syms.Structs[d.Type]; s != nil {
			return &goType{kind: kNamed, name: ty.goName(s.Name)}, nil
		}
	}
	return ty.base(d)
}

func pad4(n int64) int64 { return (n + 3) &^ 3 }

func (ty *typer) goName(name string) string {
	if ty.prefix != "" && len(name) > len(ty.prefix) && strings.EqualFold(name[:len(ty.prefix)], ty.prefix) {
		return GoName(name[len(ty.prefix):])
	}
	return GoName(name)
}
