package xdrlang

import (
	"fmt"
	"strings"
)

type program struct {
	prefix               string // "remote"
	enum                 *Enum
	progConst, versConst string
	syms                 *Symbols
}

// findProgram finds the `<p>_procedure` enum; a file has at most one program.
func findProgram(f *File, syms *Symbols) (*program, error) {
	var p *program
	for _, e := range f.Enums {
		if !strings.HasSuffix(e.Name, "_procedure") {
			continue
		}
		if p != nil {
			return nil, fmt.Errorf("%s:%d: second procedure enum %s (one program per file)", e.File, e.Line, e.Name)
		}
		prefix := strings.TrimSuffix(e.Name, "_procedure")
		up := strings.ToUpper(prefix)
		p = &program{prefix: prefix, enum: e, progConst: up + "_PROGRAM", versConst: up + "_PROTOCOL_VERSION", syms: syms}
		for _, c := range []string{p.progConst, p.versConst} {
			if syms.Consts[c] == nil {
				return nil, fmt.Errorf("%s:%d: program %s needs const %s", e.File, e.Line, prefix, c)
			}
		}
	}
	return p, nil
}

// Annotations are the @words in a procedure's doc comment (xdr/README.md).
type Annotations struct {
	API      string
	ReadOnly bool
	Priority bool
	Message  bool
	Stream   string // "", "upload", "download"
}

func (a *Annotations) apply(f []string, pos Pos) error {
	bad := func() error {
		return fmt.Errorf("%s:%d: bad annotation %q", pos.File, pos.Line, strings.Join(f, " "))
	}
	switch f[0] {
	case "@api":
		if len(f) != 2 {
			return bad()
		}
		a.API = f[1]
	case "@readonly":
		if len(f) != 1 {
			return bad()
		}
		a.ReadOnly = true
	case "@priority":
		if len(f) != 2 || (f[1] != "high" && f[1] != "low") {
			return bad()
		}
		a.Priority = f[1] == "high"
	case "@message":
		if len(f) != 1 {
			return bad()
		}
		a.Message = true
	case "@stream":
		if len(f) != 2 || (f[1] != "upload" && f[1] != "download") {
			return bad()
		}
		a.Stream = f[1]
	default:
		return fmt.Errorf("%s:%d: unknown annotation %s", pos.File, pos.Line, f[0])
	}
	return nil
}

// ParseAnnotations reads the annotations of one enum member's doc comment; pos is used
// in errors.
func ParseAnnotations(doc string, pos Pos) (Annotations, error) {
	var a Annotations
	for _, l := range strings.Split(doc, "\n") {
		l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "*"))
		if !strings.HasPrefix(l, "@") {
			continue
		}
		// Several annotations may share a line: "@api virX @readonly".
		var groups [][]string
		for _, w := range strings.Fields(l) {
			if strings.HasPrefix(w, "@") {
				groups = append(groups, []string{w})
			} else {
				groups[len(groups)-1] = append(groups[len(groups)-1], w)
			}
		}
		for _, f := range groups {
			if err := a.apply(f, pos); err != nil {
				return a, err
			}
		}
	}
	return a, nil
}

func emitProgram(ty *typer, p *program) (*genProgram, error) {
	gp := &genProgram{}
	procPrefix := strings.ToUpper(p.prefix) + "_PROC_"
	seen := map[int64]string{}
	for _, m := range p.enum.Members {
		if !strings.HasPrefix(m.Name, procPrefix) {
			return nil, fmt.Errorf("%s:%d: procedure %s does not start with %s", m.File, m.Line, m.Name, procPrefix)
		}
		if m.Value.Num < 0 || m.Value.Num > 1<<20 {
			return nil, fmt.Errorf("%s:%d: procedure number %d out of range", m.File, m.Line, m.Value.Num)
		}
		if prev, ok := seen[m.Value.Num]; ok {
			return nil, fmt.Errorf("%s:%d: procedure number %d already used by %s", m.File, m.Line, m.Value.Num, prev)
		}
		seen[m.Value.Num] = m.Name
		a, err := ParseAnnotations(m.Doc, m.Pos)
		if err != nil {
			return nil, err
		}
		base := strings.ToLower(p.prefix + "_" + strings.TrimPrefix(m.Name, procPrefix))
		gpr := genProc{
			Const: ty.goName(m.Name), Method: camel(strings.TrimPrefix(m.Name, procPrefix)), CName: m.Name,
			Num: int32(m.Value.Num), API: a.API, ReadOnly: a.ReadOnly, Priority: a.Priority, Async: a.Message,
			Stream: "xdr.StreamNone",
		}
		if gpr.API == "" {
			gpr.API = gpr.Method
		}
		switch a.Stream {
		case "upload":
			gpr.Stream = "xdr.StreamUpload"
		case "download":
			gpr.Stream = "xdr.StreamDownload"
		}
		msgType := func(suffix string) string {
			if s := p.syms.Structs[base+suffix]; s != nil {
				return ty.goName(s.Name)
			}
			if u := p.syms.Unions[base+suffix]; u != nil {
				return ty.goName(u.Name)
			}
			return ""
		}
		if a.Message {
			if a.Stream != "" {
				return nil, fmt.Errorf("%s:%d: %s: @message and @stream exclude each other", m.File, m.Line, m.Name)
			}
			gpr.Args = msgType("_msg")
		} else {
			gpr.Args, gpr.Ret = msgType("_args"), msgType("_ret")
			if a.Stream != "" && gpr.Ret != "" {
				return nil, fmt.Errorf("%s:%d: %s: a @stream procedure must return void", m.File, m.Line, m.Name)
			}
		}
		if gpr.Num > gp.MaxProc {
			gp.MaxProc = gpr.Num
		}
		gp.Procs = append(gp.Procs, gpr)
	}
	return gp, nil
}
