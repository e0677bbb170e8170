package xdrlang_test

import (
	"strings"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/xdr/xdrlang"
)

func mustParse(t *testing.T, src string) *xdrlang.File {
	t.Helper()
	f, err := xdrlang.Parse("t.x", src)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return f
}

func TestParseConstants(t *testing.T) {
	f := mustParse(t, `
/* block */ // line
%#include <passthrough.h>
const A = 0x20008086;
const B = -5;
const C = A;
const D = 010;
const E = F;
const F = 3;
`)
	want := map[string]int64{"A": 0x20008086, "B": -5, "C": 0x20008086, "D": 8, "E": 3, "F": 3}
	if len(f.Consts) != len(want) {
		t.Fatalf("%d consts, want %d", len(f.Consts), len(want))
	}
	for _, c := range f.Consts {
		if c.Value.Num != want[c.Name] {
			t.Errorf("%s = %d, want %d", c.Name, c.Value.Num, want[c.Name])
		}
	}
	if f.Consts[0].Line != 4 {
		t.Errorf("A at line %d, want 4", f.Consts[0].Line)
	}
}

func TestParseEnumWithDocAnnotations(t *testing.T) {
	f := mustParse(t, `
const BASE = 10;
enum p_procedure {
    /** first
     * @api virFirst
     * @readonly @priority high
     */
    P_PROC_FIRST = 1,
    P_PROC_SECOND,
    /** @message */
    P_PROC_THIRD = BASE,
};
`)
	e := f.Enums[0]
	if e.Name != "p_procedure" || len(e.Members) != 3 {
		t.Fatalf("enum %s with %d members", e.Name, len(e.Members))
	}
	if got := []int64{e.Members[0].Value.Num, e.Members[1].Value.Num, e.Members[2].Value.Num}; got[0] != 1 || got[1] != 2 || got[2] != 10 {
		t.Errorf("values %v, want [1 2 10]", got)
	}
	a, err := xdrlang.ParseAnnotations(e.Members[0].Doc, e.Members[0].Pos)
	if err != nil {
		t.Fatal(err)
	}
	if a.API != "virFirst" || !a.ReadOnly || !a.Priority || a.Message || a.Stream != "" {
		t.Errorf("annotations %+v", a)
	}
	if e.Members[1].Doc != "" {
		t.Errorf("doc leaked onto the next member: %q", e.Members[1].Doc)
	}
	if !strings.Contains(e.Members[2].Doc, "@message") {
		t.Errorf("third member doc %q", e.Members[2].Doc)
	}
}

func TestParseAnnotations(t *testing.T) {
	tests := []struct {
		name    string
		give    string
		want    xdrlang.Annotations
		wantErr string
	}{
		{name: "stream upload", give: "@api virStorageVolUpload\n * @stream upload", want: xdrlang.Annotations{API: "virStorageVolUpload", Stream: "upload"}},
		{name: "stream download", give: "@stream download", want: xdrlang.Annotations{Stream: "download"}},
		{name: "priority low", give: "@priority low", want: xdrlang.Annotations{}},
		{name: "prose is ignored", give: "Lists the pools. Not @readonly in prose.", want: xdrlang.Annotations{}},
		{name: "unknown", give: "@acl storage_pool:write", wantErr: "t.x:7: unknown annotation @acl"},
		{name: "bad stream", give: "@stream sideways", wantErr: `t.x:7: bad annotation "@stream sideways"`},
		{name: "api without name", give: "@api", wantErr: `t.x:7: bad annotation "@api"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := xdrlang.ParseAnnotations(tt.give, xdrlang.Pos{File: "t.x", Line: 7})
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestParseTrailingComments(t *testing.T) {
	f := mustParse(t, `
enum e {
    A = 0,      /* first */
    B = 1       // last
};
struct s {
    int x;      /* the x */
    int y;
    /* not a trailing comment */
    int z;      /* spans
                   lines, dropped */
};
`)
	if got := []string{f.Enums[0].Members[0].Comment, f.Enums[0].Members[1].Comment}; got[0] != "first" || got[1] != "last" {
		t.Errorf("member comments %q", got)
	}
	s := f.Structs[0]
	if s.Fields[0].Comment != "the x" || s.Fields[1].Comment != "" || s.Fields[2].Comment != "" {
		t.Errorf("field comments %q %q %q", s.Fields[0].Comment, s.Fields[1].Comment, s.Fields[2].Comment)
	}
}

func TestParseDeclarations(t *testing.T) {
	f := mustParse(t, `
const MAX = 16;
typedef string name_t<MAX>;
typedef opaque uuid_t[16];
typedef name_t *opt_name;
enum color { RED = 0, GREEN = 1 };
struct s {
    int a;
    unsigned int b;
    unsigned c;
    hyper d;
    unsigned hyper e;
    bool f;
    double g;
    float h;
    char i;
    unsigned char j;
    short k;
    unsigned short l;
    opaque m<MAX>;
    opaque n[4];
    opaque o<>;
    string p<10>;
    int q[3];
    color r<MAX>;
    s *next;
    name_t names<>;
};
`)
	s := f.Structs[0]
	want := []struct {
		name, typ string
		kind      xdrlang.DeclKind
		size      int64
		unbounded bool
	}{
		{"a", "int", xdrlang.DeclScalar, 0, false},
		{"b", "unsigned int", xdrlang.DeclScalar, 0, false},
		{"c", "unsigned int", xdrlang.DeclScalar, 0, false},
		{"d", "hyper", xdrlang.DeclScalar, 0, false},
		{"e", "unsigned hyper", xdrlang.DeclScalar, 0, false},
		{"f", "bool", xdrlang.DeclScalar, 0, false},
		{"g", "double", xdrlang.DeclScalar, 0, false},
		{"h", "float", xdrlang.DeclScalar, 0, false},
		{"i", "char", xdrlang.DeclScalar, 0, false},
		{"j", "unsigned char", xdrlang.DeclScalar, 0, false},
		{"k", "short", xdrlang.DeclScalar, 0, false},
		{"l", "unsigned short", xdrlang.DeclScalar, 0, false},
		{"m", "opaque", xdrlang.DeclVarArray, 16, false},
		{"n", "opaque", xdrlang.DeclFixedArray, 4, false},
		{"o", "opaque", xdrlang.DeclVarArray, 0xffffffff, true},
		{"p", "string", xdrlang.DeclVarArray, 10, false},
		{"q", "int", xdrlang.DeclFixedArray, 3, false},
		{"r", "color", xdrlang.DeclVarArray, 16, false},
		{"next", "s", xdrlang.DeclOptional, 0, false},
		{"names", "name_t", xdrlang.DeclVarArray, 0xffffffff, true},
	}
	if len(s.Fields) != len(want) {
		t.Fatalf("%d fields, want %d", len(s.Fields), len(want))
	}
	for i, w := range want {
		d := s.Fields[i]
		if d.Name != w.name || d.Type != w.typ || d.Kind != w.kind || d.Size.Num != w.size || d.Unbounded != w.unbounded {
			t.Errorf("field %d = %+v, want %+v", i, *d, w)
		}
	}
	if len(f.Typedefs) != 3 || f.Typedefs[2].Decl.Kind != xdrlang.DeclOptional {
		t.Errorf("typedefs %+v", f.Typedefs)
	}
	if len(f.Order) != 6 {
		t.Errorf("%d definitions in Order, want 6", len(f.Order))
	}
}

func TestParseUnion(t *testing.T) {
	f := mustParse(t, `
const K = 7;
enum kind { KA = 1, KB = 2 };
union u switch (kind k) {
case KA:
case KB:
    int x;
case K:
    void;
default:
    hyper y;
};
union v switch (unsigned int d) {
case 0:
    void;
};
`)
	u := f.Unions[0]
	if u.Disc.Name != "k" || u.Disc.Type != "kind" {
		t.Errorf("discriminant %+v", u.Disc)
	}
	if len(u.Cases) != 2 || len(u.Cases[0].Values) != 2 || u.Cases[0].Values[1].Num != 2 || u.Cases[0].Arm.Name != "x" {
		t.Errorf("first case %+v", u.Cases[0])
	}
	if u.Cases[1].Values[0].Num != 7 || u.Cases[1].Arm != nil {
		t.Errorf("void case %+v", u.Cases[1])
	}
	if u.Default == nil || u.Default.Arm.Name != "y" {
		t.Errorf("default %+v", u.Default)
	}
	if f.Unions[1].Default != nil {
		t.Error("union without default got one")
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name    string
		give    string
		wantErr string
	}{
		{name: "unknown type", give: "struct s {\n  foo x;\n};", wantErr: "t.x:2: unknown type foo"},
		{name: "duplicate name", give: "const A = 1;\n\nconst A = 2;", wantErr: "t.x:3: duplicate name A (first defined at line 1)"},
		{name: "duplicate type and const", give: "const s = 1;\nstruct s { int a; };", wantErr: "t.x:2: duplicate name s (first defined at line 1)"},
		{name: "duplicate field", give: "struct s {\n int a;\n int a;\n};", wantErr: "t.x:3: duplicate field a in struct s"},
		{name: "bad token", give: "const A = 1;\nconst B $ 2;", wantErr: "t.x:2: unexpected character '$'"},
		{name: "missing semicolon", give: "const A = 1\nconst B = 2;", wantErr: `t.x:2: expected ";", found "const"`},
		{name: "undefined constant bound", give: "struct s {\n string x<NOPE>;\n};", wantErr: "t.x:2: undefined constant NOPE"},
		{name: "undefined constant value", give: "const A = B;", wantErr: "t.x:1: undefined constant B"},
		{name: "constant cycle", give: "const A = B;\nconst B = A;", wantErr: "t.x:1: constant B is defined in terms of itself"},
		{name: "undefined case", give: "union u switch (int d) {\ncase X:\n void;\n};", wantErr: "t.x:2: undefined constant X"},
		{name: "duplicate case", give: "union u switch (int d) {\ncase 1:\n void;\ncase 1:\n int x;\n};", wantErr: "t.x:4: union u: duplicate case value 1"},
		{name: "duplicate arm", give: "union u switch (int d) {\ncase 1:\n int x;\ncase 2:\n int x;\n};", wantErr: "t.x:4: union u: duplicate arm name x"},
		{name: "second default", give: "union u switch (int d) {\ndefault:\n void;\ndefault:\n void;\n};", wantErr: "t.x:4: union u: second default arm"},
		{name: "string without bound", give: "struct s {\n string x;\n};", wantErr: "t.x:2: x: string must be declared string x<N>"},
		{name: "scalar opaque", give: "struct s {\n opaque x;\n};", wantErr: "t.x:2: x: opaque must be declared opaque x[N] or x<N>"},
		{name: "inline struct", give: "struct s {\n struct { int a; } x;\n};", wantErr: "t.x:2: inline struct definitions are not supported; define it at top level"},
		{name: "optional array", give: "struct s {\n int *x<2>;\n};", wantErr: "t.x:2: x: optional arrays are not supported"},
		{name: "void field", give: "struct s {\n void;\n};", wantErr: "t.x:2: void field in struct s"},
		{name: "unterminated comment", give: "const A = 1;\n/* open", wantErr: "t.x:2: unterminated comment"},
		{name: "program not supported", give: "program P { };", wantErr: `t.x:1: expected definition (const, enum, struct, union, typedef), found "program"`},
		{name: "keyword as name", give: "const int = 1;", wantErr: `t.x:1: unexpected keyword "int"`},
		{name: "unexpected end", give: "struct s {\n int a;", wantErr: `t.x:2: expected type, found end of file`},
		{name: "long unsupported", give: "struct s {\n long a;\n};", wantErr: `t.x:2: type "long" is not supported`},
		{name: "bad enum separator", give: "enum e {\n A = 1\n B = 2\n};", wantErr: `t.x:3: expected "," or "}" in enum e, found "B"`},
		{name: "negative size", give: "struct s {\n int a[-1];\n};", wantErr: "t.x:2: a: size -1 out of range"},
		{name: "size beyond 32 bits", give: "struct s {\n opaque a<0x100000000>;\n};", wantErr: "t.x:2: a: size 4294967296 out of range"},
		{name: "bad number", give: "const A = 0x;", wantErr: `t.x:1: bad number "0x"`},
		{name: "number too big", give: "const A = 99999999999999999999;", wantErr: `t.x:1: bad number "99999999999999999999"`},
		{name: "missing value", give: "const A = ;", wantErr: `t.x:1: expected number or constant, found ";"`},
		{name: "keyword as value", give: "const A = int;", wantErr: `t.x:1: expected number or constant, found keyword "int"`},
		{name: "missing name", give: "const = 1;", wantErr: `t.x:1: expected identifier, found "="`},
		{name: "missing field name", give: "struct s {\n int;\n};", wantErr: `t.x:2: expected identifier, found ";"`},
		{name: "keyword as type", give: "struct s {\n switch x;\n};", wantErr: `t.x:2: expected type, found keyword "switch"`},
		{name: "unclosed fixed array", give: "struct s {\n int a[4;\n};", wantErr: `t.x:2: expected "]", found ";"`},
		{name: "unclosed variable array", give: "struct s {\n int a<4;\n};", wantErr: `t.x:2: expected ">", found ";"`},
		{name: "optional fixed array", give: "struct s {\n int *x[2];\n};", wantErr: "t.x:2: x: optional arrays are not supported"},
		{name: "fixed string", give: "struct s {\n string x[4];\n};", wantErr: "t.x:2: x: string must be declared string x<N>"},
		{name: "optional opaque", give: "struct s {\n opaque *x;\n};", wantErr: "t.x:2: x: opaque must be declared opaque x[N] or x<N>"},
		{name: "typedef of void", give: "const A = 1;\ntypedef void;", wantErr: "t.x:2: typedef of void"},
		{name: "void discriminant", give: "union u switch (void) {\ncase 1:\n void;\n};", wantErr: "t.x:1: union u: void discriminant"},
		{name: "union without switch", give: "union u {\n int a;\n};", wantErr: `t.x:1: expected "switch", found "{"`},
		{name: "union arm without case", give: "union u switch (int d) {\n int x;\n};", wantErr: `t.x:2: expected "case" or "default" in union u, found "int"`},
		{name: "case without colon", give: "union u switch (int d) {\ncase 1\n void;\n};", wantErr: `t.x:3: expected ":", found "void"`},
		{name: "unknown discriminant type", give: "union u switch (kind d) {\ncase 1:\n void;\n};", wantErr: "t.x:1: unknown type kind"},
		{name: "unknown arm type", give: "union u switch (int d) {\ncase 1:\n nope x;\n};", wantErr: "t.x:3: unknown type nope"},
		{name: "unknown typedef target", give: "typedef nope *opt;", wantErr: "t.x:1: unknown type nope"},
		{name: "enum member cycle", give: "enum e {\n A = B,\n B = A\n};", wantErr: "t.x:2: enum member B is defined in terms of itself"},
		{name: "enum member as size", give: "enum e { A = 4 };\nstruct s {\n int x[A];\n};", wantErr: "t.x:3: undefined constant A"},
		{name: "duplicate enum member", give: "enum e { A = 1 };\nenum f { A = 2 };", wantErr: "t.x:2: duplicate name A (first defined at line 1)"},
		{name: "struct without semicolon", give: "struct s {\n int a;\n}\nconst A = 1;", wantErr: `t.x:4: expected ";", found "const"`},
		{name: "enum without members", give: "enum e { };", wantErr: `t.x:1: expected identifier, found "}"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := xdrlang.Parse("t.x", tt.give)
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestGoName(t *testing.T) {
	tests := []struct {
		give, want string
	}{
		{give: "remote_storage_pool_lookup_by_name_args", want: "StoragePoolLookupByNameArgs"},
		{give: "remote_nonnull_storage_pool", want: "StoragePool"},
		{give: "REMOTE_STRING_MAX", want: "StringMax"},
		{give: "REMOTE_PROC_STORAGE_VOL_CREATE_XML_FROM", want: "ProcStorageVolCreateXMLFrom"},
		{give: "remote_uuid", want: "UUID"},
		{give: "admin_connect_get_lib_version_ret", want: "ConnectGetLibVersionRet"},
		{give: "virnet_message_header", want: "MessageHeader"},
		{give: "VIR_NET_MESSAGE_MAX", want: "MessageMax"},
		{give: "keepalive_procedure", want: "Procedure"},
		{give: "REMOTE_PROC_CONNECT_GET_URI", want: "ProcConnectGetURI"},
		{give: "remote_node_get_cpu_map_args", want: "NodeGetCPUMapArgs"},
		{give: "remote_", want: "Remote"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			if got := xdrlang.GoName(tt.give); got != tt.want {
				t.Errorf("GoName(%q) = %q, want %q", tt.give, got, tt.want)
			}
		})
	}
	if got := xdrlang.FieldName("need_results"); got != "NeedResults" {
		t.Errorf("FieldName(need_results) = %q", got)
	}
	for give, want := range map[string]string{"callbackID": "CallbackID", "usageType": "UsageType", "hv_ver": "HvVer", "eventID": "EventID"} {
		if got := xdrlang.FieldName(give); got != want {
			t.Errorf("FieldName(%q) = %q, want %q", give, got, want)
		}
	}
	if got := xdrlang.FieldName("uuid"); got != "UUID" {
		t.Errorf("FieldName(uuid) = %q", got)
	}
}

// An enum member without a value is its predecessor plus one wherever it is used, also
// from a definition that comes before its enum.
func TestParseImplicitEnumValues(t *testing.T) {
	f := mustParse(t, `
enum early { E = LATE_C };
enum late { LATE_A = 5, LATE_B, LATE_C };
union u switch (late d) {
case LATE_B:
    int x;
};
`)
	if got := f.Enums[0].Members[0].Value.Num; got != 7 {
		t.Errorf("E = %d, want 7", got)
	}
	if got := []int64{f.Enums[1].Members[1].Value.Num, f.Enums[1].Members[2].Value.Num}; got[0] != 6 || got[1] != 7 {
		t.Errorf("LATE_B, LATE_C = %v, want [6 7]", got)
	}
	if got := f.Unions[0].Cases[0].Values[0].Num; got != 6 {
		t.Errorf("case LATE_B = %d, want 6", got)
	}
}
