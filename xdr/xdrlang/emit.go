package xdrlang

import (
	"bytes"
	_ "embed"
	"fmt"
	"go/format"
	"sort"
	"strings"
	"text/template"
)

//go:embed gen.go.tmpl
var genTemplate string

var tmpl = template.Must(template.New("gen").Parse(genTemplate))

// Options control what Emit writes.
type Options struct {
	// Source is the .x path printed in the header, e.g. "xdr/remote.x".
	Source string
	// Package is the Go package name.
	Package string
	// RPCConnImport is the import path of xdr/rpcconn; when set and the file defines a
	// program, a typed Client is emitted.
	RPCConnImport string
}

// XDRImport is the import path of the runtime the generated code calls.
const XDRImport = "github.com/virtstoraged-go/virtstoraged/xdr"

type genConst struct {
	Doc, Name, Type, Value string
}

type genMember struct {
	Doc, Name, CName, Comment string
	Value                     int64
	// Dup marks a member sharing its value with an earlier one (left out of String).
	Dup bool
}

type genEnum struct {
	Doc, Name, CName string
	Members          []genMember
}

type genField struct {
	Name, Type, Comment string
}

type genType struct {
	Kind       string // struct, union, typedef, alias
	Doc        string
	Name       string
	CName      string
	Underlying string // typedef, alias
	Fields     []genField
	Encode     string
	Decode     string
	IsError    bool
	ErrorField string // field holding the message (OptString or string)
	ErrorOpt   bool
}

type genProc struct {
	Const, Method, CName, API string
	Num                       int32
	ReadOnly, Priority, Async bool
	Stream                    string
	Args, Ret                 string
}

type genProgram struct {
	Procs                                    []genProc
	MaxProc                                  int32
	Server, Unimplemented, Client, NewClient string
}

type genFile struct {
	Source, Package string
	StdImports      []string
	Imports         []string
	Consts          []genConst
	Enums           []genEnum
	Types           []genType
	Program         *genProgram
	RPCConn         bool
}

// Emit returns gofmt'ed Go source for f.
func Emit(f *File, opt Options) ([]byte, error) {
	syms, err := symbols(f)
	if err != nil {
		return nil, err
	}
	prog, err := findProgram(f, syms)
	if err != nil {
		return nil, err
	}
	ty := &typer{syms: syms, minSize: map[string]int{}}
	if prog != nil {
		ty.prefix = prog.prefix + "_"
	}
	g := &genFile{Source: opt.Source, Package: opt.Package}
	names := map[string]string{}
	claim := func(goName string, pos Pos, what string) error {
		if prev, ok := names[goName]; ok {
			return fmt.Errorf("%s:%d: %s maps to Go name %s, already used by %s", pos.File, pos.Line, what, goName, prev)
		}
		names[goName] = fmt.Sprintf("%s (line %d)", what, pos.Line)
		return nil
	}

	for _, c := range f.Consts {
		gc := genConst{Doc: docLines(c.Doc), Name: ty.goName(c.Name), Value: fmt.Sprint(c.Value.Num)}
		if prog != nil && (c.Name == prog.progConst || c.Name == prog.versConst) {
			gc.Type = "uint32"
		}
		if c.Value.Num > 0xff {
			gc.Value = fmt.Sprintf("0x%x", c.Value.Num)
		}
		if err := claim(gc.Name, c.Pos, c.Name); err != nil {
			return nil, err
		}
		g.Consts = append(g.Consts, gc)
	}
	// Enum types first, then every struct, union and typedef; enum members last, because
	// a member that collides (VIRNET_STREAM_HOLE vs virnet_stream_hole) makes its whole
	// enum's members take the enum's name as prefix (MessageTypeStreamHole).
	for _, e := range f.Enums {
		ge := genEnum{Doc: docLines(e.Doc), Name: ty.goName(e.Name), CName: e.Name}
		if err := claim(ge.Name, e.Pos, e.Name); err != nil {
			return nil, err
		}
		g.Enums = append(g.Enums, ge)
	}
	for _, d := range f.Order {
		var gt genType
		var err error
		var pos Pos
		var cname string
		switch d := d.(type) {
		case *Struct:
			pos, cname = d.Pos, d.Name
			gt, err = emitStruct(ty, d)
		case *Union:
			pos, cname = d.Pos, d.Name
			gt, err = emitUnion(ty, d)
		case *Typedef:
			if ty.inlined(d) {
				// Still resolve it, so that an unusable typedef fails loudly.
				if _, err := ty.typeOf(d.Decl); err != nil {
					return nil, err
				}
				continue
			}
			pos, cname = d.Pos, d.Decl.Name
			gt, err = emitTypedef(ty, d)
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		if err := claim(gt.Name, pos, cname); err != nil {
			return nil, err
		}
		g.Types = append(g.Types, gt)
	}
	for i, e := range f.Enums {
		ge := &g.Enums[i]
		prefix := ""
		for _, m := range e.Members {
			if _, taken := names[ty.goName(m.Name)]; taken {
				prefix = ge.Name
			}
		}
		vals := map[int64]bool{}
		for _, m := range e.Members {
			gm := genMember{Name: prefix + ty.goName(m.Name), CName: m.Name, Value: m.Value.Num, Dup: vals[m.Value.Num], Comment: oneLine(m.Comment)}
			vals[m.Value.Num] = true
			if prog == nil || e != prog.enum {
				gm.Doc = docLines(stripAnnotations(m.Doc))
			}
			if err := claim(gm.Name, m.Pos, m.Name); err != nil {
				return nil, err
			}
			ge.Members = append(ge.Members, gm)
		}
	}
	if prog != nil {
		gp, err := emitProgram(ty, prog)
		if err != nil {
			return nil, err
		}
		// A program whose types already use Server or Client (admin_nonnull_server) gets
		// its own name in front of the generated ones (AdminServer, NewAdminClient).
		pn := camel(prog.prefix)
		gp.Server, gp.Unimplemented, gp.Client, gp.NewClient = "Server", "UnimplementedServer", "Client", "NewClient"
		if _, taken := names["Server"]; taken {
			gp.Server, gp.Unimplemented = pn+"Server", "Unimplemented"+pn+"Server"
		}
		if _, taken := names["Client"]; taken {
			gp.Client, gp.NewClient = pn+"Client", "New"+pn+"Client"
		}
		for _, n := range []string{"Procedures", "Lookup", "Dispatch", gp.Server, gp.Unimplemented, gp.Client, gp.NewClient} {
			if err := claim(n, prog.enum.Pos, "generated "+n); err != nil {
				return nil, err
			}
		}
		g.Program = gp
		g.RPCConn = opt.RPCConnImport != ""
		g.StdImports = append(g.StdImports, "context")
		if g.RPCConn {
			g.Imports = append(g.Imports, opt.RPCConnImport)
		}
	}
	if len(g.Enums) > 0 {
		g.StdImports = append(g.StdImports, "strconv")
	}
	if len(g.Types) > 0 || g.Program != nil {
		g.Imports = append(g.Imports, XDRImport)
	}
	sort.Strings(g.StdImports)
	sort.Strings(g.Imports)

	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, g); err != nil {
		return nil, fmt.Errorf("xdrlang: template: %w", err)
	}
	out, err := format.Source(buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("xdrlang: generated code does not parse (a generator bug): %w\n%s", err, buf.Bytes())
	}
	return out, nil
}

func docLines(doc string) string {
	doc = strings.TrimSpace(doc)
	if doc == "" {
		return ""
	}
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		l = strings.TrimSpace(l)
		l = strings.TrimSpace(strings.TrimPrefix(l, "*"))
		b.WriteString("// " + l + "\n")
	}
	return strings.ReplaceAll(b.String(), "// \n", "//\n")
}

func oneLine(c string) string {
	return strings.Join(strings.Fields(c), " ")
}

func stripAnnotations(doc string) string {
	var keep []string
	for _, l := range strings.Split(doc, "\n") {
		if i := strings.Index(l, " @"); i >= 0 {
			l = l[:i] // "The error body. @error"
		}
		if !strings.HasPrefix(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "*")), "@") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

func emitStruct(ty *typer, s *Struct) (genType, error) {
	gt := genType{Kind: "struct", Doc: docLines(stripAnnotations(s.Doc)), Name: ty.goName(s.Name), CName: s.Name}
	var enc, dec strings.Builder
	for _, f := range s.Fields {
		t, err := ty.typeOf(f)
		if err != nil {
			return gt, err
		}
		fn := FieldName(f.Name)
		gt.Fields = append(gt.Fields, genField{Name: fn, Type: t.String(), Comment: oneLine(f.Comment)})
		encodeStmts(&enc, "s."+fn, t, gt.Name+"."+fn, 0)
		decodeStmts(&dec, "s."+fn, t, 0)
	}
	gt.Encode, gt.Decode = enc.String(), dec.String()
	if isErrorStruct(s) {
		for _, f := range s.Fields {
			if f.Name != "message" {
				continue
			}
			t, _ := ty.typeOf(f)
			switch {
			case t.kind == kString:
				gt.IsError, gt.ErrorField = true, "Message"
			case t.kind == kNamed && strings.HasPrefix(t.name, "Opt"):
				gt.IsError, gt.ErrorField, gt.ErrorOpt = true, "Message", true
			}
		}
		if !gt.IsError {
			return gt, fmt.Errorf("%s:%d: error struct %s needs a string or optional string field called message", s.File, s.Line, s.Name)
		}
	}
	return gt, nil
}

// isErrorStruct: the struct libvirt calls virNetMessageError (remote_error), marked
// @error in its doc comment or recognised by name.
func isErrorStruct(s *Struct) bool {
	if strings.Contains(s.Doc, "@error") {
		return true
	}
	return s.Name == "remote_error" || s.Name == "virnet_error" || s.Name == "vir_net_message_error"
}

func emitUnion(ty *typer, u *Union) (genType, error) {
	gt := genType{Kind: "union", Doc: docLines(u.Doc), Name: ty.goName(u.Name), CName: u.Name}
	dt, err := ty.typeOf(u.Disc)
	if err != nil {
		return gt, err
	}
	if dt.kind != kInt32 && dt.kind != kUint32 && dt.kind != kEnum {
		return gt, fmt.Errorf("%s:%d: union %s: discriminant must be int, unsigned int or an enum", u.File, u.Line, u.Name)
	}
	disc := FieldName(u.Disc.Name)
	gt.Fields = append(gt.Fields, genField{Name: disc, Type: dt.String()})
	var enc, dec strings.Builder
	encodeStmts(&enc, "u."+disc, dt, gt.Name+"."+disc, 0)
	decodeStmts(&dec, "u."+disc, dt, 0)
	fmt.Fprintf(&enc, "switch u.%s {\n", disc)
	fmt.Fprintf(&dec, "switch u.%s {\n", disc)
	arm := func(c *Case, label string) error {
		enc.WriteString(label)
		dec.WriteString(label)
		if c.Arm == nil {
			return nil
		}
		t, err := ty.typeOf(c.Arm)
		if err != nil {
			return err
		}
		fn := FieldName(c.Arm.Name)
		gt.Fields = append(gt.Fields, genField{Name: fn, Type: t.String()})
		encodeStmts(&enc, "u."+fn, t, gt.Name+"."+fn, 0)
		decodeStmts(&dec, "u."+fn, t, 0)
		return nil
	}
	for _, c := range u.Cases {
		var vals, names []string
		for _, v := range c.Values {
			if v.Name != "" {
				names = append(names, v.Name)
			}
			if dt.kind == kUint32 && v.Num < 0 {
				return gt, fmt.Errorf("%s:%d: union %s: negative case %d for an unsigned discriminant", c.File, c.Line, u.Name, v.Num)
			}
			vals = append(vals, fmt.Sprint(v.Num))
		}
		label := "case " + strings.Join(vals, ", ") + ":"
		if len(names) > 0 {
			label += " // " + strings.Join(names, ", ")
		}
		if err := arm(c, label+"\n"); err != nil {
			return gt, err
		}
	}
	if u.Default != nil {
		if err := arm(u.Default, "default:\n"); err != nil {
			return gt, err
		}
	} else {
		fmt.Fprintf(&enc, "default:\nreturn xdr.BadDiscriminantError(%q, int64(u.%s))\n", gt.Name, disc)
		fmt.Fprintf(&dec, "default:\nreturn xdr.BadDiscriminantDecodeError(%q, int64(u.%s))\n", gt.Name, disc)
	}
	enc.WriteString("}\n")
	dec.WriteString("}\n")
	gt.Encode, gt.Decode = enc.String(), dec.String()
	return gt, nil
}

func emitTypedef(ty *typer, t *Typedef) (genType, error) {
	gt := genType{Kind: "typedef", Doc: docLines(t.Doc), Name: ty.typedefName(t), CName: t.Decl.Name}
	gtyp, err := ty.typeOf(t.Decl)
	if err != nil {
		return gt, err
	}
	if gtyp.kind == kNamed {
		// typedef of a struct, union or another named typedef: same methods, same type.
		gt.Kind, gt.Underlying = "alias", gtyp.name
		return gt, nil
	}
	gt.Underlying = gtyp.String()
	var enc, dec strings.Builder
	encodeStmts(&enc, "(*v)", gtyp, gt.Name, 0)
	decodeStmts(&dec, "(*v)", gtyp, 0)
	gt.Encode, gt.Decode = enc.String(), dec.String()
	return gt, nil
}
