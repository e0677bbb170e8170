// Package conffile reads virtstoraged.conf, which uses libvirt's conf syntax
// (the subset of Python assignments that libvirt's virconf understands), and
// turns it into a typed, validated Config.
package conffile

import (
	"fmt"
	"strconv"
)

// Kind is the type of a parsed value.
type Kind int

// The kinds of value the syntax can express.
const (
	KindString Kind = iota + 1
	KindInt
	KindList
)

// String names the kind as error messages show it.
func (k Kind) String() string {
	switch k {
	case KindString:
		return "string"
	case KindInt:
		return "integer"
	case KindList:
		return "list"
	}
	return "unknown"
}

// Value is one parsed right-hand side.
type Value struct {
	Kind Kind
	Str  string
	Int  int64
	List []Value
	// Line is where the value starts, for error messages about its type.
	Line int
}

// Entry is one `key = value` statement.
type Entry struct {
	Key   string
	Value Value
	Line  int
}

// SyntaxError reports a malformed file with the line it was found on.
type SyntaxError struct {
	File string
	Line int
	Msg  string
}

// Error formats as "conffile: FILE:LINE: MSG", the shape editors can jump to.
func (e *SyntaxError) Error() string {
	return fmt.Sprintf("conffile: %s:%d: %s", e.File, e.Line, e.Msg)
}

// maxFileSize matches libvirt's sanity limit on config files.
const maxFileSize = 10 << 20

type parser struct {
	file string
	src  []byte
	pos  int
	line int
}

// Parse reads the statements of a libvirt-syntax conf file held in src; file
// only names it in errors. Entries come back in file order, duplicates included.
func Parse(file string, src []byte) ([]Entry, error) {
	if len(src) > maxFileSize {
		return nil, &SyntaxError{File: file, Line: 1, Msg: fmt.Sprintf("file larger than %d bytes", maxFileSize)}
	}
	p := &parser{file: file, src: src, line: 1}
	var entries []Entry
	for {
		p.skipBlanksEOLAndComments()
		if p.eof() {
			return entries, nil
		}
		e, err := p.statement()
		if err != nil {
			return nil, err
		}
		entries = append(entries, e)
		if err := p.separator(); err != nil {
			return nil, err
		}
	}
}

func (p *parser) errf(format string, args ...any) error {
	return &SyntaxError{File: p.file, Line: p.line, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) eof() bool { return p.pos >= len(p.src) }

func (p *parser) cur() byte {
	if p.eof() {
		return 0
	}
	return p.src[p.pos]
}

func (p *parser) next() {
	if p.cur() == '\n' {
		p.line++
	}
	p.pos++
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }
func isEOL(c byte) bool   { return c == '\n' || c == '\r' }
func isAlpha(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func (p *parser) skipBlanks() {
	for !p.eof() && isBlank(p.cur()) {
		p.next()
	}
}

func (p *parser) skipComment() {
	for !p.eof() && !isEOL(p.cur()) {
		p.next()
	}
}

// skipBlanksEOLAndComments also eats comments because a list may be written
// one element per line with a comment after some of them.
func (p *parser) skipBlanksEOLAndComments() {
	for !p.eof() {
		switch c := p.cur(); {
		case isBlank(c) || isEOL(c):
			p.next()
		case c == '#':
			p.skipComment()
		default:
			return
		}
	}
}

func (p *parser) statement() (Entry, error) {
	line := p.line
	if !isAlpha(p.cur()) {
		return Entry{}, p.errf("expected a key name, found %s", p.describe())
	}
	start := p.pos
	for !p.eof() && (isAlpha(p.cur()) || isDigit(p.cur()) || p.cur() == '_') {
		p.next()
	}
	key := string(p.src[start:p.pos])
	p.skipBlanks()
	if p.cur() != '=' {
		return Entry{}, p.errf("expected '=' after %q, found %s", key, p.describe())
	}
	p.next()
	p.skipBlanks()
	if p.eof() || isEOL(p.cur()) || p.cur() == '#' {
		return Entry{}, p.errf("expected value after '='")
	}
	v, err := p.value()
	if err != nil {
		return Entry{}, err
	}
	return Entry{Key: key, Value: v, Line: line}, nil
}

// separator accepts what may follow a statement: a trailing comment, the end
// of the line, a ';', or the end of the file.
func (p *parser) separator() error {
	p.skipBlanks()
	switch c := p.cur(); {
	case p.eof():
		return nil
	case c == '#':
		p.skipComment()
		return nil
	case isEOL(c):
		return nil
	case c == ';':
		p.next()
		return nil
	}
	return p.errf("expected end of line after value, found %s", p.describe())
}

func (p *parser) describe() string {
	if p.eof() {
		return "end of file"
	}
	c := p.cur()
	if isEOL(c) {
		return "end of line"
	}
	return strconv.QuoteRune(rune(c))
}

func (p *parser) value() (Value, error) {
	line := p.line
	switch c := p.cur(); {
	case c == '"' || c == '\'':
		s, err := p.str()
		return Value{Kind: KindString, Str: s, Line: line}, err
	case c == '[':
		l, err := p.list()
		return Value{Kind: KindList, List: l, Line: line}, err
	case isDigit(c) || c == '-' || c == '+':
		n, err := p.integer()
		return Value{Kind: KindInt, Int: n, Line: line}, err
	case p.eof():
		return Value{}, p.errf("expected a value, found end of file")
	}
	return Value{}, p.errf("expected a value (string, integer or list), found %s", p.describe())
}

func (p *parser) str() (string, error) {
	if p.pos+6 <= len(p.src) && string(p.src[p.pos:p.pos+3]) == `"""` {
		// Triple quotes are libvirt's way to write a value spanning lines.
		startLine := p.line
		p.pos += 3
		start := p.pos
		for p.pos+3 <= len(p.src) && string(p.src[p.pos:p.pos+3]) != `"""` {
			p.next()
		}
		if p.pos+3 > len(p.src) {
			p.pos = len(p.src)
			return "", &SyntaxError{File: p.file, Line: startLine, Msg: "unterminated string"}
		}
		s := string(p.src[start:p.pos])
		p.pos += 3
		return s, nil
	}
	quote := p.cur()
	p.next()
	start := p.pos
	for !p.eof() && p.cur() != quote && !isEOL(p.cur()) {
		p.next()
	}
	if p.cur() != quote || p.eof() {
		return "", p.errf("unterminated string")
	}
	s := string(p.src[start:p.pos])
	p.next()
	return s, nil
}

func (p *parser) integer() (int64, error) {
	start := p.pos
	if p.cur() == '-' || p.cur() == '+' {
		p.next()
	}
	if !isDigit(p.cur()) {
		return 0, p.errf("expected digits in number, found %s", p.describe())
	}
	for !p.eof() && isDigit(p.cur()) {
		p.next()
	}
	text := string(p.src[start:p.pos])
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return 0, p.errf("number %s out of range", text)
	}
	return n, nil
}

func (p *parser) list() ([]Value, error) {
	p.next() // '['
	var out []Value
	p.skipBlanksEOLAndComments()
	for {
		if p.eof() {
			return nil, p.errf("list is not closed with ']'")
		}
		if p.cur() == ']' {
			p.next()
			return out, nil
		}
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		p.skipBlanksEOLAndComments()
		switch {
		case p.cur() == ',':
			p.next()
			p.skipBlanksEOLAndComments()
		case p.cur() == ']' || p.eof():
		default:
			return nil, p.errf("expected ',' or ']' in list, found %s", p.describe())
		}
	}
}
