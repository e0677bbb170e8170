// Package xdrlang reads the XDR language subset of xdr/README.md (lexer, recursive-descent
// parser, resolver) and emits Go for it; cmd/xdrgen is its command line.
package xdrlang

// Pos is a position in a .x file, printed as file:line in errors.
type Pos struct {
	File string
	Line int
}

// File is a parsed .x file, definitions in source order.
type File struct {
	Name     string
	Consts   []*Const
	Enums    []*Enum
	Structs  []*Struct
	Unions   []*Union
	Typedefs []*Typedef
	// Order lists every definition (*Const, *Enum, *Struct, *Union, *Typedef) in source order.
	Order []any
}

// Value is a number or the name of a constant or enum member.
type Value struct {
	Name string // empty for a literal
	Num  int64  // resolved value
}

// Const is `const NAME = value;`.
type Const struct {
	Pos
	Name  string
	Value Value
	Doc   string
}

// Enum is `enum name { A = 1, ... };`.
type Enum struct {
	Pos
	Name    string
	Members []*EnumMember
	Doc     string
}

// EnumMember is one member of an Enum with the /** */ comment before it.
type EnumMember struct {
	Pos
	Name  string
	Value Value
	Doc   string
	// Comment is the comment after the member on its line.
	Comment string
}

// Struct is `struct name { decl; ... };`.
type Struct struct {
	Pos
	Name   string
	Fields []*Decl
	Doc    string
}

// Union is `union name switch (decl) { case ...: decl; default: decl; };`.
type Union struct {
	Pos
	Name    string
	Disc    *Decl
	Cases   []*Case
	Default *Case // nil when the union has no default arm
	Doc     string
}

// Case is one arm of a union: its labels and its declaration (nil for void).
type Case struct {
	Pos
	Values []Value
	Arm    *Decl
}

// Typedef is `typedef decl;`.
type Typedef struct {
	Pos
	Decl *Decl
	Doc  string
}

// DeclKind is the shape of a declaration.
type DeclKind int

const (
	// DeclScalar is `T x`.
	DeclScalar DeclKind = iota
	// DeclFixedArray is `T x[N]` (and `opaque x[N]`).
	DeclFixedArray
	// DeclVarArray is `T x<N>` or `T x<>` (and `opaque x<N>`, `string x<N>`).
	DeclVarArray
	// DeclOptional is `T *x`.
	DeclOptional
)

// Decl is a declaration: a struct field, a union arm or discriminant, a typedef.
type Decl struct {
	Pos
	Name string
	// Type is a builtin ("int", "unsigned int", "hyper", "unsigned hyper", "bool",
	// "double", "float", "char", "unsigned char", "short", "unsigned short", "opaque",
	// "string") or the name of a definition.
	Type string
	Kind DeclKind
	// Size is the fixed length or the bound; Unbounded marks `x<>`.
	Size      Value
	Unbounded bool
	// Comment is the comment after the declaration on its line.
	Comment string
}
