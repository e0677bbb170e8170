package xmldef

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/virtstoraged-go/virtstoraged/domain"
)

// xmlError is VIR_ERR_XML_ERROR raised by the storage conf code (domain storage).
func xmlError(format string, args ...any) error {
	return domain.Errorf(domain.KindXMLError, format, args...)
}

// xmlPropError is VIR_ERR_XML_ERROR raised by libvirt's generic XML helpers
// (virXMLProp*, virXMLParse), which report in the XML error domain.
func xmlPropError(format string, args ...any) error {
	e := domain.Errorf(domain.KindXMLError, format, args...)
	e.Domain = domain.FromXML
	return e
}

// rootError is virXMLParse's complaint about the wrong document element.
func rootError(want, got string) error {
	return xmlPropError("expecting root element of '%s', not '%s'", want, got)
}

// invalidAttr is virXMLProp*'s error for a value outside the allowed set.
func invalidAttr(attr, elem, val, extra string) error {
	return xmlPropError("Invalid value for attribute '%s' in element '%s': '%s'.%s", attr, elem, val, extra)
}

// tristate parses a yes/no attribute the way virXMLPropTristateBool does.
func tristate(n *node, attr string) (string, error) {
	v, ok := n.attr(attr)
	if !ok {
		return "", nil
	}
	if v != "yes" && v != "no" {
		return "", invalidAttr(attr, n.name.Local, v, "")
	}
	return v, nil
}

// parseULL mimics virStrToLong_ullp: base 10, leading blanks allowed, no sign
// other than '+', nothing after the digits.
func parseULL(s string) (uint64, bool) {
	s = strings.TrimLeft(s, " \t\n\v\f\r")
	s = strings.TrimPrefix(s, "+")
	if s == "" || s[0] < '0' || s[0] > '9' {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 10, 64)
	return v, err == nil
}

// scale applies virScaleInteger's case-insensitive unit suffix to v, keeping the
// result at or below limit.
func scale(v uint64, unit string, limit uint64) (uint64, error) {
	mult := uint64(1)
	switch {
	case unit == "":
	case strings.EqualFold(unit, "b"), strings.EqualFold(unit, "byte"), strings.EqualFold(unit, "bytes"):
	default:
		var base uint64
		switch {
		case len(unit) == 1 || strings.EqualFold(unit[1:], "ib"):
			base = 1024
		case len(unit) == 2 && (unit[1] == 'b' || unit[1] == 'B'):
			base = 1000
		default:
			return 0, domain.Errorf(domain.KindInvalidArg, "unknown suffix '%s'", unit)
		}
		exp := strings.IndexByte("kmgtpe", lower(unit[0]))
		if exp < 0 {
			return 0, domain.Errorf(domain.KindInvalidArg, "unknown suffix '%s'", unit)
		}
		for i := 0; i <= exp; i++ {
			mult *= base
		}
	}
	if v != 0 && v > limit/mult {
		return 0, domain.Errorf(domain.KindOverflow, "value too large: %d%s", v, unit)
	}
	return v * mult, nil
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// xpathNumber is XPath 1.0's number() of a string: optional blanks, an optional
// minus, digits with an optional fraction; anything else is NaN.
func xpathNumber(s string) float64 {
	s = strings.Trim(s, " \t\r\n")
	body := strings.TrimPrefix(s, "-")
	if body == "" || body == "." {
		return math.NaN()
	}
	dot := false
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case c >= '0' && c <= '9':
		case c == '.' && !dot:
			dot = true
		default:
			return math.NaN()
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return math.NaN()
	}
	return f
}

// parsePerms reads a <permissions> element as virStorageDefParsePerms does; a
// missing element leaves every field unset.
func parsePerms(n *node) (domain.Perms, error) {
	p := domain.UnsetPerms()
	if n == nil {
		return p, nil
	}
	if m := n.str("mode"); m != "" {
		v, err := strconv.ParseInt(strings.TrimLeft(m, " \t\n\v\f\r"), 8, 32)
		if err != nil || v&^0o777 != 0 {
			return p, xmlError("malformed octal mode")
		}
		p.Mode = v
	}
	for _, id := range []struct {
		elem string
		dst  *int64
	}{{"owner", &p.Owner}, {"group", &p.Group}} {
		c := n.child(id.elem)
		if c == nil {
			continue
		}
		f := xpathNumber(c.text())
		// virXPathLongLong also refuses a number with a fraction.
		if math.IsNaN(f) || f != math.Trunc(f) || f > math.MaxInt64 || f < math.MinInt64 {
			return p, xmlError("malformed %s element", id.elem)
		}
		v := int64(f)
		if (v < 0 || v > math.MaxUint32) && v != -1 {
			return p, xmlError("malformed %s element", id.elem)
		}
		if v == math.MaxUint32 {
			v = -1 // (uid_t)-1 is libvirt's "unset"
		}
		*id.dst = v
	}
	p.Label = n.str("label")
	return p, nil
}

// sanitizePath is virFileSanitizePath: runs of '/' collapse (a leading "//"
// stays, as POSIX allows) and a trailing '/' goes.
func sanitizePath(p string) string {
	prefix, rest := "", p
	if strings.HasPrefix(p, "//") && !strings.HasPrefix(p, "///") {
		prefix, rest = "/", p[1:]
	}
	var b strings.Builder
	b.WriteString(prefix)
	for i := 0; i < len(rest); i++ {
		if rest[i] == '/' && i > 0 && rest[i-1] == '/' {
			continue
		}
		b.WriteByte(rest[i])
	}
	s := b.String()
	if len(s) > 1 && s[len(s)-1] == '/' {
		s = s[:len(s)-1]
	}
	return s
}

// writer builds libvirt-shaped output: two-space indentation and single-quoted
// attributes, escaped as virBufferEscapeString does.
type writer struct {
	b      strings.Builder
	indent int
}

func (w *writer) line(format string, args ...any) {
	w.b.WriteString(strings.Repeat(" ", w.indent))
	fmt.Fprintf(&w.b, format, args...)
	w.b.WriteByte('\n')
}

func (w *writer) open(format string, args ...any) {
	w.line(format, args...)
	w.indent += 2
}

func (w *writer) close(tag string) {
	w.indent -= 2
	w.line("</%s>", tag)
}

func (w *writer) String() string { return w.b.String() }

var escaper = strings.NewReplacer("<", "&lt;", ">", "&gt;", "&", "&amp;", "'", "&apos;", `"`, "&quot;")

func esc(s string) string { return escaper.Replace(s) }

// writePerms prints a <permissions> block when any field is set.
func (w *writer) perms(p domain.Perms) {
	if p.Mode == -1 && p.Owner == -1 && p.Group == -1 && p.Label == "" {
		return
	}
	w.open("<permissions>")
	if p.Mode != -1 {
		w.line("<mode>0%o</mode>", p.Mode)
	}
	if p.Owner != -1 {
		w.line("<owner>%d</owner>", int32(uint32(p.Owner)))
	}
	if p.Group != -1 {
		w.line("<group>%d</group>", int32(uint32(p.Group)))
	}
	if p.Label != "" {
		w.line("<label>%s</label>", esc(p.Label))
	}
	w.close("permissions")
}
