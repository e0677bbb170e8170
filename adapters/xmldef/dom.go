package xmldef

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/virtstoraged-go/virtstoraged/domain"
)

// node is a parsed element. libvirt reads its documents through XPath
// (string(./name), ./device, ...), whose answers depend on the raw text and on
// document order, so we keep a small tree instead of unmarshalling into typed
// structs: typed fields would turn "-5" or "5M" into strconv errors instead of
// libvirt's "malformed capacity element".
type node struct {
	name  xml.Name
	attrs []xml.Attr
	parts []any // string (character data) or *node, in document order
	line  int
	// begin and end are the element's byte range in the document, from its
	// start tag to the end of its end tag.
	begin, end int
}

// child returns the first child element with the given local name and no namespace.
func (n *node) child(name string) *node {
	if n == nil {
		return nil
	}
	for _, p := range n.parts {
		if c, ok := p.(*node); ok && c.name.Local == name && c.name.Space == "" {
			return c
		}
	}
	return nil
}

// children returns every child element with the given local name and no namespace.
func (n *node) children(name string) []*node {
	if n == nil {
		return nil
	}
	var out []*node
	for _, p := range n.parts {
		if c, ok := p.(*node); ok && c.name.Local == name && c.name.Space == "" {
			out = append(out, c)
		}
	}
	return out
}

// childNS returns the first child element in namespace space with the local name.
func (n *node) childNS(space, name string) *node {
	if n == nil {
		return nil
	}
	for _, p := range n.parts {
		if c, ok := p.(*node); ok && c.name.Local == name && c.name.Space == space {
			return c
		}
	}
	return nil
}

// elements returns every child element.
func (n *node) elements() []*node {
	if n == nil {
		return nil
	}
	var out []*node
	for _, p := range n.parts {
		if c, ok := p.(*node); ok {
			out = append(out, c)
		}
	}
	return out
}

// text is the XPath string-value of the element: all descendant text.
func (n *node) text() string {
	if n == nil {
		return ""
	}
	var b strings.Builder
	n.appendText(&b)
	return b.String()
}

func (n *node) appendText(b *strings.Builder) {
	for _, p := range n.parts {
		switch v := p.(type) {
		case string:
			b.WriteString(v)
		case *node:
			v.appendText(b)
		}
	}
}

// attr returns an attribute value and whether it is present.
func (n *node) attr(name string) (string, bool) {
	if n == nil {
		return "", false
	}
	for _, a := range n.attrs {
		if a.Name.Local == name && a.Name.Space == "" {
			return a.Value, true
		}
	}
	return "", false
}

// str mimics virXPathString("string(./a/b)"): the text of the first match,
// where an empty string counts as absent (libvirt returns NULL for it).
func (n *node) str(path ...string) string {
	c := n
	for _, p := range path {
		c = c.child(p)
	}
	return c.text()
}

// parseDoc parses an XML document into a tree. Failures come back in libvirt's
// VIR_ERR_XML_DETAIL shape "(what):LINE: message\nCONTEXT\n----^" with
// libxml2's wording for the common cases (Go's otherwise).
func parseDoc(doc, what string) (*node, error) {
	if doc == "" {
		return nil, detailAt(what, doc, 0, "Document is empty")
	}
	trimmed := strings.TrimLeft(doc, " \t\r\n\ufeff")
	if trimmed == "" || trimmed[0] != '<' {
		return nil, detailAt(what, doc, len(doc)-len(trimmed), "Start tag expected, '<' not found")
	}

	d := xml.NewDecoder(strings.NewReader(doc))
	d.Strict = true
	var root *node
	var stack []*node
	for {
		begin := int(d.InputOffset())
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			if root == nil {
				return nil, detailAt(what, doc, len(doc), "Start tag expected, '<' not found")
			}
			return root, nil
		}
		off := int(d.InputOffset())
		if err != nil {
			return nil, syntaxError(what, doc, off, stack, root == nil, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if root != nil && len(stack) == 0 {
				return nil, detailAt(what, doc, begin, "Extra content at the end of the document")
			}
			if dup := duplicateAttr(t.Attr); dup != "" {
				return nil, detailAt(what, doc, off-1, "Attribute "+dup+" redefined")
			}
			line, _ := position(doc, begin)
			n := &node{name: t.Name, attrs: t.Attr, line: line, begin: begin}
			if len(stack) == 0 {
				root = n
			} else {
				parent := stack[len(stack)-1]
				parent.parts = append(parent.parts, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack[len(stack)-1].end = off
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				parent := stack[len(stack)-1]
				parent.parts = append(parent.parts, string(t))
			} else if root != nil && len(bytes.TrimSpace(t)) > 0 {
				lead := len(t) - len(bytes.TrimLeft(t, " \t\r\n"))
				return nil, detailAt(what, doc, begin+lead, "Extra content at the end of the document")
			}
		}
	}
}

// syntaxError rewords encoding/xml's complaints as libxml2 words them.
func syntaxError(what, doc string, off int, stack []*node, noRoot bool, err error) error {
	var se *xml.SyntaxError
	if !errors.As(err, &se) {
		return detailAt(what, doc, off, err.Error())
	}
	msg := se.Msg
	lastLt := strings.LastIndexByte(doc[:off], '<')
	switch {
	case msg == "unexpected EOF" && lastLt >= 0 && strings.HasPrefix(doc[lastLt:], "</") && !strings.Contains(doc[lastLt:], ">"):
		msg = "expected '>'"
	case msg == "unexpected EOF" && len(stack) > 0:
		top := stack[len(stack)-1]
		msg = fmt.Sprintf("Premature end of data in tag %s line %d", top.name.Local, top.line)
	case strings.HasPrefix(msg, "element <") && strings.Contains(msg, "> closed by </") && len(stack) > 0:
		// encoding/xml has replaced a declared prefix by its namespace URL;
		// libxml2 prints the prefix, which we no longer know: use local names.
		top := stack[len(stack)-1]
		closer := msg[strings.Index(msg, "</")+2 : len(msg)-1]
		msg = fmt.Sprintf("Opening and ending tag mismatch: %s line %d and %s", top.name.Local, top.line, closer)
	case strings.HasPrefix(msg, "unexpected end element") && noRoot:
		if lt := strings.LastIndex(doc[:off], "</"); lt >= 0 {
			off = lt + 1
		}
		msg = "StartTag: invalid element name"
	case msg == "unquoted or missing attribute value in element":
		msg = `AttValue: " or ' expected`
		off--
	case strings.HasPrefix(msg, "invalid character entity &") && !strings.HasPrefix(msg, "invalid character entity &#"):
		msg = fmt.Sprintf("Entity '%s' not defined", strings.TrimSuffix(strings.TrimPrefix(msg, "invalid character entity &"), ";"))
	}
	return detailAt(what, doc, off, msg)
}

func duplicateAttr(attrs []xml.Attr) string {
	for i := range attrs {
		for j := 0; j < i; j++ {
			if attrs[i].Name == attrs[j].Name {
				return attrs[i].Name.Local
			}
		}
	}
	return ""
}

// position converts a byte offset to a 1-based line and 0-based column.
func position(doc string, off int) (int, int) {
	line := 1 + strings.Count(doc[:off], "\n")
	col := off
	if i := strings.LastIndexByte(doc[:off], '\n'); i >= 0 {
		col = off - i - 1
	}
	return line, col
}

func lineText(doc string, line int) string {
	lines := strings.Split(doc, "\n")
	if line < 1 || line > len(lines) {
		return ""
	}
	return strings.TrimRight(lines[line-1], "\r")
}

// detailAt builds the error with the context line and a pointer at byte
// offset off; libvirt shows "(null)" when the line is empty.
func detailAt(what, doc string, off int, msg string) error {
	if off < 0 {
		off = 0
	}
	if off > len(doc) {
		off = len(doc)
	}
	line, col := position(doc, off)
	context := lineText(doc, line)
	if context == "" {
		context, col = "(null)", 0
	}
	// The pointer line keeps tabs so that it lines up under the context, and
	// never runs past the context's end.
	var ptr strings.Builder
	for i := 0; i < col && i < len(context); i++ {
		if context[i] == '\t' {
			ptr.WriteByte('\t')
		} else {
			ptr.WriteByte('-')
		}
	}
	return domain.Errorf(domain.KindXMLDetail, "%s:%d: %s\n%s\n%s^", what, line, msg, context, ptr.String())
}
