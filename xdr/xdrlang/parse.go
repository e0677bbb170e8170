package xdrlang

import (
	"fmt"
	"strconv"
)

// Parse parses src (named file in errors) and resolves every constant and type name. It
// fails with "file:line: message" on the first problem.
func Parse(file, src string) (*File, error) {
	toks, err := lex(file, src)
	if err != nil {
		return nil, err
	}
	p := &parser{file: file, toks: toks, f: &File{Name: file}}
	if err := p.parseFile(); err != nil {
		return nil, err
	}
	if err := resolve(p.f); err != nil {
		return nil, err
	}
	return p.f, nil
}

type parser struct {
	file string
	toks []token
	i    int
	f    *File
}

func (p *parser) errf(line int, format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s", p.file, line, fmt.Sprintf(format, args...))
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tokEOF {
		p.i++
	}
	return t
}

func describe(t token) string {
	if t.kind == tokEOF {
		return "end of file"
	}
	return strconv.Quote(t.text)
}

func (p *parser) expect(text string) (token, error) {
	t := p.next()
	if t.text != text || t.kind == tokEOF {
		return t, p.errf(t.line, "expected %q, found %s", text, describe(t))
	}
	return t, nil
}

func (p *parser) ident() (token, error) {
	t := p.next()
	if t.kind != tokIdent {
		return t, p.errf(t.line, "expected identifier, found %s", describe(t))
	}
	if keywords[t.text] {
		return t, p.errf(t.line, "unexpected keyword %q", t.text)
	}
	return t, nil
}

var keywords = map[string]bool{
	"const": true, "enum": true, "struct": true, "union": true, "switch": true,
	"case": true, "default": true, "typedef": true, "void": true, "unsigned": true,
	"int": true, "hyper": true, "bool": true, "double": true, "float": true, "char": true,
	"short": true, "opaque": true, "string": true, "program": true, "version": true,
	"quadruple": true, "long": true,
}

func (p *parser) parseFile() error {
	for p.peek().kind != tokEOF {
		t := p.next()
		var err error
		switch t.text {
		case "const":
			err = p.parseConst(t)
		case "enum":
			err = p.parseEnum(t)
		case "struct":
			err = p.parseStruct(t)
		case "union":
			err = p.parseUnion(t)
		case "typedef":
			err = p.parseTypedef(t)
		default:
			return p.errf(t.line, "expected definition (const, enum, struct, union, typedef), found %s", describe(t))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (p *parser) value() (Value, error) {
	t := p.next()
	switch t.kind {
	case tokNumber:
		n, err := strconv.ParseInt(t.text, 0, 64)
		if err != nil {
			return Value{}, p.errf(t.line, "bad number %q", t.text)
		}
		return Value{Num: n}, nil
	case tokIdent:
		if keywords[t.text] {
			return Value{}, p.errf(t.line, "expected number or constant, found keyword %q", t.text)
		}
		return Value{Name: t.text}, nil
	}
	return Value{}, p.errf(t.line, "expected number or constant, found %s", describe(t))
}

func (p *parser) parseConst(kw token) error {
	name, err := p.ident()
	if err != nil {
		return err
	}
	if _, err := p.expect("="); err != nil {
		return err
	}
	v, err := p.value()
	if err != nil {
		return err
	}
	if _, err := p.expect(";"); err != nil {
		return err
	}
	c := &Const{Pos: Pos{p.file, name.line}, Name: name.text, Value: v, Doc: kw.doc}
	p.f.Consts = append(p.f.Consts, c)
	p.f.Order = append(p.f.Order, c)
	return nil
}

func (p *parser) parseEnum(kw token) error {
	name, err := p.ident()
	if err != nil {
		return err
	}
	if _, err := p.expect("{"); err != nil {
		return err
	}
	e := &Enum{Pos: Pos{p.file, name.line}, Name: name.text, Doc: kw.doc}
	for {
		m, err := p.ident()
		if err != nil {
			return err
		}
		em := &EnumMember{Pos: Pos{p.file, m.line}, Name: m.text, Doc: m.doc}
		if p.peek().text == "=" {
			p.next()
			if em.Value, err = p.value(); err != nil {
				return err
			}
		} else {
			// rpcgen numbers members without a value from the previous one.
			em.Value = Value{Num: -1, Name: ""}
			if len(e.Members) == 0 {
				em.Value.Num = 0
			} else {
				em.Value = Value{Name: "\x00next"}
			}
		}
		e.Members = append(e.Members, em)
		em.Comment = p.toks[p.i-1].trail
		t := p.next()
		if t.text == "," && t.trail != "" {
			em.Comment = t.trail
		}
		if t.text == "}" {
			break
		}
		if t.text != "," {
			return p.errf(t.line, "expected \",\" or \"}\" in enum %s, found %s", e.Name, describe(t))
		}
		if p.peek().text == "}" {
			p.next()
			break
		}
	}
	if _, err := p.expect(";"); err != nil {
		return err
	}
	p.f.Enums = append(p.f.Enums, e)
	p.f.Order = append(p.f.Order, e)
	return nil
}

func (p *parser) parseStruct(kw token) error {
	name, err := p.ident()
	if err != nil {
		return err
	}
	if _, err := p.expect("{"); err != nil {
		return err
	}
	s := &Struct{Pos: Pos{p.file, name.line}, Name: name.text, Doc: kw.doc}
	for p.peek().text != "}" {
		d, err := p.decl()
		if err != nil {
			return err
		}
		if d == nil {
			return p.errf(p.peek().line, "void field in struct %s", s.Name)
		}
		semi, err := p.expect(";")
		if err != nil {
			return err
		}
		d.Comment = semi.trail
		s.Fields = append(s.Fields, d)
	}
	p.next()
	if _, err := p.expect(";"); err != nil {
		return err
	}
	p.f.Structs = append(p.f.Structs, s)
	p.f.Order = append(p.f.Order, s)
	return nil
}

func (p *parser) parseUnion(kw token) error {
	name, err := p.ident()
	if err != nil {
		return err
	}
	u := &Union{Pos: Pos{p.file, name.line}, Name: name.text, Doc: kw.doc}
	if _, err := p.expect("switch"); err != nil {
		return err
	}
	if _, err := p.expect("("); err != nil {
		return err
	}
	if u.Disc, err = p.decl(); err != nil {
		return err
	}
	if u.Disc == nil {
		return p.errf(name.line, "union %s: void discriminant", u.Name)
	}
	if _, err := p.expect(")"); err != nil {
		return err
	}
	if _, err := p.expect("{"); err != nil {
		return err
	}
	for p.peek().text != "}" {
		t := p.next()
		c := &Case{Pos: Pos{p.file, t.line}}
		switch t.text {
		case "case":
			for {
				v, err := p.value()
				if err != nil {
					return err
				}
				c.Values = append(c.Values, v)
				if _, err := p.expect(":"); err != nil {
					return err
				}
				if p.peek().text != "case" {
					break
				}
				p.next()
			}
		case "default":
			if u.Default != nil {
				return p.errf(t.line, "union %s: second default arm", u.Name)
			}
			if _, err := p.expect(":"); err != nil {
				return err
			}
		default:
			return p.errf(t.line, "expected \"case\" or \"default\" in union %s, found %s", u.Name, describe(t))
		}
		if c.Arm, err = p.decl(); err != nil {
			return err
		}
		if _, err := p.expect(";"); err != nil {
			return err
		}
		if t.text == "default" {
			u.Default = c
		} else {
			u.Cases = append(u.Cases, c)
		}
	}
	p.next()
	if _, err := p.expect(";"); err != nil {
		return err
	}
	p.f.Unions = append(p.f.Unions, u)
	p.f.Order = append(p.f.Order, u)
	return nil
}

func (p *parser) parseTypedef(kw token) error {
	d, err := p.decl()
	if err != nil {
		return err
	}
	if d == nil {
		return p.errf(kw.line, "typedef of void")
	}
	if _, err := p.expect(";"); err != nil {
		return err
	}
	t := &Typedef{Pos: d.Pos, Decl: d, Doc: kw.doc}
	p.f.Typedefs = append(p.f.Typedefs, t)
	p.f.Order = append(p.f.Order, t)
	return nil
}

// typeSpec reads a type specifier: a builtin (possibly two words) or a name.
func (p *parser) typeSpec() (string, token, error) {
	t := p.next()
	if t.kind != tokIdent {
		return "", t, p.errf(t.line, "expected type, found %s", describe(t))
	}
	switch t.text {
	case "unsigned":
		switch p.peek().text {
		case "int", "hyper", "char", "short":
			return "unsigned " + p.next().text, t, nil
		}
		return "unsigned int", t, nil
	case "int", "hyper", "bool", "double", "float", "char", "short", "opaque", "string":
		return t.text, t, nil
	case "struct", "union", "enum":
		return "", t, p.errf(t.line, "inline %s definitions are not supported; define it at top level", t.text)
	case "long", "quadruple":
		return "", t, p.errf(t.line, "type %q is not supported", t.text)
	}
	if keywords[t.text] {
		return "", t, p.errf(t.line, "expected type, found keyword %q", t.text)
	}
	return t.text, t, nil
}

// decl reads a declaration; it returns nil for `void`.
func (p *parser) decl() (*Decl, error) {
	if p.peek().text == "void" {
		p.next()
		return nil, nil
	}
	typ, tt, err := p.typeSpec()
	if err != nil {
		return nil, err
	}
	d := &Decl{Pos: Pos{p.file, tt.line}, Type: typ}
	if p.peek().text == "*" {
		p.next()
		d.Kind = DeclOptional
	}
	name, err := p.ident()
	if err != nil {
		return nil, err
	}
	d.Name = name.text
	switch p.peek().text {
	case "[":
		if d.Kind == DeclOptional {
			return nil, p.errf(name.line, "%s: optional arrays are not supported", d.Name)
		}
		p.next()
		d.Kind = DeclFixedArray
		if d.Size, err = p.value(); err != nil {
			return nil, err
		}
		if _, err := p.expect("]"); err != nil {
			return nil, err
		}
	case "<":
		if d.Kind == DeclOptional {
			return nil, p.errf(name.line, "%s: optional arrays are not supported", d.Name)
		}
		p.next()
		d.Kind = DeclVarArray
		if p.peek().text == ">" {
			d.Unbounded = true
			d.Size = Value{Num: 0xffffffff}
		} else if d.Size, err = p.value(); err != nil {
			return nil, err
		}
		if _, err := p.expect(">"); err != nil {
			return nil, err
		}
	}
	switch typ {
	case "string":
		if d.Kind != DeclVarArray {
			return nil, p.errf(name.line, "%s: string must be declared string %s<N>", d.Name, d.Name)
		}
	case "opaque":
		if d.Kind != DeclVarArray && d.Kind != DeclFixedArray {
			return nil, p.errf(name.line, "%s: opaque must be declared opaque %s[N] or %s<N>", d.Name, d.Name, d.Name)
		}
	}
	return d, nil
}
