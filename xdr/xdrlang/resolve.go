package xdrlang

import (
	"fmt"
	"slices"
)

var builtins = map[string]bool{
	"int": true, "unsigned int": true, "hyper": true, "unsigned hyper": true, "bool": true,
	"double": true, "float": true, "char": true, "unsigned char": true, "short": true,
	"unsigned short": true, "opaque": true, "string": true,
}

// Symbols are the names a file defines, for lookups during resolution and emission.
type Symbols struct {
	Consts   map[string]*Const
	Members  map[string]*EnumMember
	MemberOf map[string]*Enum // the enum of each member
	Enums    map[string]*Enum
	Structs  map[string]*Struct
	Unions   map[string]*Union
	Typedefs map[string]*Typedef
}

func symbols(f *File) (*Symbols, error) {
	s := &Symbols{
		Consts: map[string]*Const{}, Members: map[string]*EnumMember{}, MemberOf: map[string]*Enum{}, Enums: map[string]*Enum{},
		Structs: map[string]*Struct{}, Unions: map[string]*Union{}, Typedefs: map[string]*Typedef{},
	}
	seen := map[string]Pos{}
	add := func(name string, pos Pos) error {
		if prev, ok := seen[name]; ok {
			return fmt.Errorf("%s:%d: duplicate name %s (first defined at line %d)", pos.File, pos.Line, name, prev.Line)
		}
		seen[name] = pos
		return nil
	}
	for _, d := range f.Order {
		var err error
		switch d := d.(type) {
		case *Const:
			err = add(d.Name, d.Pos)
			s.Consts[d.Name] = d
		case *Enum:
			err = add(d.Name, d.Pos)
			s.Enums[d.Name] = d
			for _, m := range d.Members {
				if err == nil {
					err = add(m.Name, m.Pos)
				}
				s.Members[m.Name] = m
				s.MemberOf[m.Name] = d
			}
		case *Struct:
			err = add(d.Name, d.Pos)
			s.Structs[d.Name] = d
		case *Union:
			err = add(d.Name, d.Pos)
			s.Unions[d.Name] = d
		case *Typedef:
			err = add(d.Decl.Name, d.Pos)
			s.Typedefs[d.Decl.Name] = d
		}
		if err != nil {
			return nil, err
		}
	}
	return s, nil
}

// resolve gives every Value its number and checks that every type name is defined.
func resolve(f *File) error {
	syms, err := symbols(f)
	if err != nil {
		return err
	}
	// Constants may refer to constants defined earlier.
	for _, c := range f.Consts {
		if err := resolveValue(syms, &c.Value, c.Pos, false); err != nil {
			return err
		}
	}
	for _, e := range f.Enums {
		for i, m := range e.Members {
			if m.Value.Name == "\x00next" {
				m.Value = Value{Num: e.Members[i-1].Value.Num + 1}
				continue
			}
			if err := resolveValue(syms, &m.Value, m.Pos, true); err != nil {
				return err
			}
		}
	}
	checkDecl := func(d *Decl) error {
		if d == nil {
			return nil
		}
		if !builtins[d.Type] {
			if syms.Enums[d.Type] == nil && syms.Structs[d.Type] == nil && syms.Unions[d.Type] == nil && syms.Typedefs[d.Type] == nil {
				return fmt.Errorf("%s:%d: unknown type %s", d.File, d.Line, d.Type)
			}
		}
		if d.Kind == DeclFixedArray || (d.Kind == DeclVarArray && !d.Unbounded) {
			if err := resolveValue(syms, &d.Size, d.Pos, false); err != nil {
				return err
			}
			if d.Size.Num < 0 || d.Size.Num > 0xffffffff {
				return fmt.Errorf("%s:%d: %s: size %d out of range", d.File, d.Line, d.Name, d.Size.Num)
			}
		}
		return nil
	}
	for _, s := range f.Structs {
		names := map[string]bool{}
		for _, fd := range s.Fields {
			if names[fd.Name] {
				return fmt.Errorf("%s:%d: duplicate field %s in struct %s", fd.File, fd.Line, fd.Name, s.Name)
			}
			names[fd.Name] = true
			if err := checkDecl(fd); err != nil {
				return err
			}
		}
	}
	for _, t := range f.Typedefs {
		if err := checkDecl(t.Decl); err != nil {
			return err
		}
	}
	for _, u := range f.Unions {
		if err := checkDecl(u.Disc); err != nil {
			return err
		}
		seenVals := map[int64]bool{}
		names := map[string]bool{u.Disc.Name: true}
		arms := append([]*Case(nil), u.Cases...)
		if u.Default != nil {
			arms = append(arms, u.Default)
		}
		for _, c := range arms {
			for i := range c.Values {
				if err := resolveValue(syms, &c.Values[i], c.Pos, true); err != nil {
					return err
				}
				if seenVals[c.Values[i].Num] {
					return fmt.Errorf("%s:%d: union %s: duplicate case value %d", c.File, c.Line, u.Name, c.Values[i].Num)
				}
				seenVals[c.Values[i].Num] = true
			}
			if c.Arm != nil {
				if names[c.Arm.Name] {
					return fmt.Errorf("%s:%d: union %s: duplicate arm name %s", c.File, c.Line, u.Name, c.Arm.Name)
				}
				names[c.Arm.Name] = true
				if err := checkDecl(c.Arm); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func resolveValue(syms *Symbols, v *Value, pos Pos, allowMembers bool) error {
	return resolveValueSeen(syms, v, pos, allowMembers, map[string]bool{})
}

// resolveValueSeen follows constants defined in terms of other constants, in any order
// (C's #define does not care either), and rejects cycles.
func resolveValueSeen(syms *Symbols, v *Value, pos Pos, allowMembers bool, seen map[string]bool) error {
	if v.Name == "" {
		return nil
	}
	if c := syms.Consts[v.Name]; c != nil {
		if seen[v.Name] {
			return fmt.Errorf("%s:%d: constant %s is defined in terms of itself", pos.File, pos.Line, v.Name)
		}
		seen[v.Name] = true
		if err := resolveValueSeen(syms, &c.Value, c.Pos, false, seen); err != nil {
			return err
		}
		v.Num = c.Value.Num
		return nil
	}
	if m := syms.Members[v.Name]; m != nil && allowMembers {
		if m.Value.Name == "\x00next" {
			// Referenced before its enum was resolved (from an enum defined earlier):
			// its value is its predecessor's plus one, as in C.
			e := syms.MemberOf[v.Name]
			i := slices.Index(e.Members, m)
			prev := Value{Name: e.Members[i-1].Name}
			if err := resolveValueSeen(syms, &prev, m.Pos, true, seen); err != nil {
				return err
			}
			m.Value = Value{Num: prev.Num + 1}
		}
		if seen[v.Name] {
			return fmt.Errorf("%s:%d: enum member %s is defined in terms of itself", pos.File, pos.Line, v.Name)
		}
		seen[v.Name] = true
		if err := resolveValueSeen(syms, &m.Value, m.Pos, true, seen); err != nil {
			return err
		}
		v.Num = m.Value.Num
		return nil
	}
	return fmt.Errorf("%s:%d: undefined constant %s", pos.File, pos.Line, v.Name)
}
