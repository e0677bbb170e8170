package xdrlang

import (
	"fmt"
	"strings"
)

type tokKind int

const (
	tokEOF tokKind = iota
	tokIdent
	tokNumber
	tokPunct
)

type token struct {
	kind tokKind
	text string
	line int
	// doc is the text of the /** */ comment immediately before this token, if any.
	doc string
	// trail is a one-line comment that follows this token on the same line.
	trail string
}

// lex splits src into tokens. Comments are dropped except /** */ doc comments, which stay
// attached to the next token so that enum members can carry annotations.
func lex(file, src string) ([]token, error) {
	var toks []token
	line := 1
	doc := ""
	i := 0
	atLineStart := true
	for i < len(src) {
		c := src[i]
		switch {
		case c == '\n':
			line++
			i++
			atLineStart = true
			continue
		case c == ' ' || c == '\t' || c == '\r' || c == '\f':
			i++
			continue
		case c == '%' && atLineStart:
			// rpcgen passthrough lines are for C output only.
			for i < len(src) && src[i] != '\n' {
				i++
			}
			continue
		}
		atLineStart = false
		switch {
		case strings.HasPrefix(src[i:], "//"):
			j := i
			for j < len(src) && src[j] != '\n' {
				j++
			}
			trailing(toks, line, src[i+2:j])
			i = j
		case strings.HasPrefix(src[i:], "/*"):
			end := strings.Index(src[i+2:], "*/")
			if end < 0 {
				return nil, fmt.Errorf("%s:%d: unterminated comment", file, line)
			}
			body := src[i+2 : i+2+end]
			if strings.HasPrefix(body, "*") && body != "*" {
				doc = body[1:]
			} else if !strings.Contains(body, "\n") {
				trailing(toks, line, body)
			}
			line += strings.Count(body, "\n")
			i += end + 4
		case isIdentStart(c):
			j := i
			for j < len(src) && isIdentChar(src[j]) {
				j++
			}
			toks = append(toks, token{kind: tokIdent, text: src[i:j], line: line, doc: doc})
			doc = ""
			i = j
		case isDigit(c) || (c == '-' && i+1 < len(src) && isDigit(src[i+1])):
			j := i + 1
			for j < len(src) && (isIdentChar(src[j])) {
				j++
			}
			toks = append(toks, token{kind: tokNumber, text: src[i:j], line: line, doc: doc})
			doc = ""
			i = j
		case strings.ContainsRune("{}[]<>()=;:,*", rune(c)):
			toks = append(toks, token{kind: tokPunct, text: string(c), line: line, doc: doc})
			doc = ""
			i++
		default:
			return nil, fmt.Errorf("%s:%d: unexpected character %q", file, line, c)
		}
	}
	toks = append(toks, token{kind: tokEOF, line: line})
	return toks, nil
}

// trailing attaches a one-line comment to the last token when both sit on the same line:
// that is how the .x files document fields and enum members.
func trailing(toks []token, line int, text string) {
	if n := len(toks); n > 0 && toks[n-1].line == line {
		toks[n-1].trail = strings.TrimSpace(text)
	}
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentChar(c byte) bool { return isIdentStart(c) || isDigit(c) }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
