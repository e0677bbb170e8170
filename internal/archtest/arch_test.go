// Package archtest enforces the dependency rule of DESIGN.md: imports only point
// inward. It asks the go command for the real import graph, so it cannot drift from
// the code; TestRulesCatchViolations feeds each rule a made-up graph that breaks it, so a
// rule that silently stopped matching anything would fail there.
package archtest

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/virtstoraged-go/virtstoraged"

type pkgInfo struct {
	ImportPath string
	Imports    []string
	Deps       []string
	Standard   bool
}

func listPackages(t *testing.T, pattern string) []pkgInfo {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", pattern)
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list %s: %v\n%s", pattern, err, ee.Stderr)
		}
		t.Fatalf("go list %s: %v", pattern, err)
	}
	var pkgs []pkgInfo
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p pkgInfo
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatalf("go list %s: no packages", pattern)
	}
	return pkgs
}

func isStdlib(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

func ours(path string) bool { return path == module || strings.HasPrefix(path, module+"/") }

func rel(path string) string { return strings.TrimPrefix(strings.TrimPrefix(path, module), "/") }

// under reports whether the module-relative path r is dir or inside it.
func under(r, dir string) bool { return r == dir || strings.HasPrefix(r, dir+"/") }

// forbiddenInDomain are standard packages that would let the pure domain do I/O.
var forbiddenInDomain = []string{"os", "os/exec", "os/signal", "os/user", "net", "syscall", "unsafe", "io/fs", "path/filepath"}

// rule is one dependency rule: the packages it applies to (a go list pattern) and the
// check that returns its violations.
type rule struct {
	name    string
	pattern string
	check   func([]pkgInfo) []string
}

var rules = []rule{
	{"domain imports only the standard library, without I/O", module + "/domain", domainStdlibOnly},
	{"ports import nothing of ours but domain", module + "/ports", portsOnlyDomain},
	{"domain/service reaches neither adapters nor the protocol", module + "/domain/...", serviceNotAdaptersOrGen},
	{"gen does not know the domain", module + "/gen/...", genNotDomain},
	{"nothing but cmd imports cmd", module + "/adapters/...", adaptersNotCmd},
	{"adapters run commands through ports.CommandRunner", module + "/adapters/...", commandsThroughPorts},
	{"the test kit fakes commands without the real runner", module + "/internal/testkit/...", commandsThroughPorts},
	{"daemon plumbing is cmd's alone", module + "/...", plumbingOnlyForCmd},
	{"libraries import no port implementation nor plumbing", module + "/adapters/...", librariesStandAlone},
	{"port implementations import libraries, not siblings", module + "/adapters/...", noSiblingImplementations},
}

func domainStdlibOnly(pkgs []pkgInfo) []string {
	var bad []string
	for _, p := range pkgs {
		for _, imp := range p.Imports {
			if !isStdlib(imp) {
				bad = append(bad, fmt.Sprintf("%s imports %s: the domain may import the standard library only", rel(p.ImportPath), imp))
				continue
			}
			for _, f := range forbiddenInDomain {
				if imp == f {
					bad = append(bad, fmt.Sprintf("%s imports %s: the domain does no I/O", rel(p.ImportPath), imp))
				}
			}
			if strings.HasPrefix(imp, "net/") {
				bad = append(bad, fmt.Sprintf("%s imports %s: the domain does no I/O", rel(p.ImportPath), imp))
			}
		}
	}
	return bad
}

func portsOnlyDomain(pkgs []pkgInfo) []string {
	var bad []string
	for _, p := range pkgs {
		for _, imp := range p.Imports {
			if ours(imp) && rel(imp) != "domain" {
				bad = append(bad, fmt.Sprintf("%s imports %s: ports may import only domain of ours", rel(p.ImportPath), rel(imp)))
			}
		}
	}
	return bad
}

// serviceNotAdaptersOrGen looks at all dependencies, not only direct imports: reaching
// gen through a helper package is the same coupling.
func serviceNotAdaptersOrGen(pkgs []pkgInfo) []string {
	var bad []string
	for _, p := range pkgs {
		for _, dep := range p.Deps {
			if !ours(dep) {
				continue
			}
			r := rel(dep)
			if under(r, "adapters") || under(r, "gen") || under(r, "xdr") || under(r, "cmd") {
				bad = append(bad, fmt.Sprintf("%s depends on %s: the service talks to the world only through ports", rel(p.ImportPath), r))
			}
		}
	}
	return bad
}

func genNotDomain(pkgs []pkgInfo) []string {
	var bad []string
	for _, p := range pkgs {
		for _, dep := range p.Deps {
			if r := rel(dep); ours(dep) && (under(r, "domain") || under(r, "ports") || under(r, "adapters")) {
				bad = append(bad, fmt.Sprintf("%s depends on %s: generated protocol code stays independent of the domain", rel(p.ImportPath), r))
			}
		}
	}
	return bad
}

func adaptersNotCmd(pkgs []pkgInfo) []string {
	var bad []string
	for _, p := range pkgs {
		for _, dep := range p.Deps {
			if ours(dep) && under(rel(dep), "cmd") {
				bad = append(bad, fmt.Sprintf("%s depends on %s: nothing imports cmd", rel(p.ImportPath), rel(dep)))
			}
		}
	}
	return bad
}

// The three roles of adapters/ (doc.go there): port implementations
// (adapters/<name>), the libraries they share (adapters/lib/...) and the
// daemon plumbing only cmd uses (adapters/daemon/...).
const (
	libDir      = "adapters/lib"
	plumbingDir = "adapters/daemon"
)

// role names what a module-relative package path is among the adapters:
// "library", "plumbing", "port" (an implementation), or "" outside adapters/.
func role(r string) string {
	switch {
	case under(r, libDir):
		return "library"
	case under(r, plumbingDir):
		return "plumbing"
	case under(r, "adapters"):
		return "port"
	}
	return ""
}

// builtOn are the port implementations others are built on, as libvirt's
// are: fs and netfs keep their volumes as dir does (dir.FileVolumes), iscsi
// finds its LUNs as scsi does. The rest are libraries still outside
// adapters/lib, to move there when the branches changing them have landed:
// luks (dir's and logical's encrypted volumes) and statefile's atomic write
// that iscsi uses for its records.
var builtOn = map[string]bool{
	"adapters/dir": true, "adapters/scsi": true,
	"adapters/luks": true, "adapters/statefile": true,
}

// plumbingOnlyForCmd keeps the daemon's plumbing (process, sockets, log and
// config files) out of everything but cmd: the rest of the daemon works the
// same under any process model.
func plumbingOnlyForCmd(pkgs []pkgInfo) []string {
	var bad []string
	for _, p := range pkgs {
		r := rel(p.ImportPath)
		if under(r, "cmd") || role(r) == "plumbing" {
			continue
		}
		for _, imp := range p.Imports {
			if ours(imp) && role(rel(imp)) == "plumbing" {
				bad = append(bad, fmt.Sprintf("%s imports %s: daemon plumbing is for cmd alone", r, rel(imp)))
			}
		}
	}
	return bad
}

// librariesStandAlone keeps the shared libraries below the port
// implementations: a library that imported one would tie every backend
// using it to that backend.
func librariesStandAlone(pkgs []pkgInfo) []string {
	var bad []string
	for _, p := range pkgs {
		r := rel(p.ImportPath)
		if role(r) != "library" {
			continue
		}
		for _, imp := range p.Imports {
			if ours(imp) && role(rel(imp)) != "" && role(rel(imp)) != "library" {
				bad = append(bad, fmt.Sprintf("%s imports %s: a library imports only other libraries of adapters/", r, rel(imp)))
			}
		}
	}
	return bad
}

// noSiblingImplementations keeps port implementations apart: what two of
// them share goes into a library (netfs once imported fs for its mount
// helpers, now adapters/lib/fsmount), unless one is built on the other
// (builtOn). None imports the daemon's plumbing.
func noSiblingImplementations(pkgs []pkgInfo) []string {
	var bad []string
	for _, p := range pkgs {
		r := rel(p.ImportPath)
		if role(r) != "port" {
			continue
		}
		for _, imp := range p.Imports {
			ir := rel(imp)
			if !ours(imp) || ir == r || builtOn[ir] {
				continue
			}
			switch role(ir) {
			case "port":
				bad = append(bad, fmt.Sprintf("%s imports %s: port implementations share code through adapters/lib, not each other", r, ir))
			case "plumbing":
				bad = append(bad, fmt.Sprintf("%s imports %s: daemon plumbing is for cmd alone", r, ir))
			}
		}
	}
	return bad
}

// execAllowed are the adapters that may import os/exec themselves: the one
// runner, the daemon's re-execution of itself, and dir, which only looks a
// program up in PATH (exec.LookPath) where libvirt reports its place.
var execAllowed = map[string]bool{"adapters/osexec": true, plumbingDir + "/process": true, "adapters/dir": true}

// commandsThroughPorts keeps os/exec and its one adapter out of the
// packages that run commands through ports.CommandRunner, whose failure
// contract (ports.ExitError, ports.ErrCommandNotFound) is all they need;
// the test kit may start real processes (os/exec), but its scripted runners
// answer with the ports' errors, never the real runner's.
func commandsThroughPorts(pkgs []pkgInfo) []string {
	var bad []string
	for _, p := range pkgs {
		r := rel(p.ImportPath)
		for _, imp := range p.Imports {
			if (imp == "os/exec" && under(r, "adapters") && !execAllowed[r]) || (ours(imp) && rel(imp) == "adapters/osexec" && r != "adapters/osexec") {
				bad = append(bad, fmt.Sprintf("%s imports %s: commands run through ports.CommandRunner, whose errors are ports.ExitError and ports.ErrCommandNotFound", r, rel(imp)))
			}
		}
	}
	return bad
}

// TestArchitecture applies every rule to the real import graph.
func TestArchitecture(t *testing.T) {
	for _, r := range rules {
		t.Run(r.name, func(t *testing.T) {
			for _, v := range r.check(listPackages(t, r.pattern)) {
				t.Error(v)
			}
		})
	}
}

// TestRulesCatchViolations gives each rule one graph that obeys it and several that break
// it the ways issue 2 names.
func TestRulesCatchViolations(t *testing.T) {
	m := func(p string) string { return module + "/" + p }
	tests := []struct {
		name  string
		check func([]pkgInfo) []string
		give  pkgInfo
		bad   bool
	}{
		{"domain with strings and errors", domainStdlibOnly, pkgInfo{ImportPath: m("domain"), Imports: []string{"errors", "strings"}}, false},
		{"domain importing os", domainStdlibOnly, pkgInfo{ImportPath: m("domain"), Imports: []string{"os"}}, true},
		{"domain importing net", domainStdlibOnly, pkgInfo{ImportPath: m("domain"), Imports: []string{"net"}}, true},
		{"domain importing net/http", domainStdlibOnly, pkgInfo{ImportPath: m("domain"), Imports: []string{"net/http"}}, true},
		{"domain importing os/exec", domainStdlibOnly, pkgInfo{ImportPath: m("domain"), Imports: []string{"os/exec"}}, true},
		{"domain importing a third party", domainStdlibOnly, pkgInfo{ImportPath: m("domain"), Imports: []string{"github.com/google/uuid"}}, true},
		{"domain importing ports", domainStdlibOnly, pkgInfo{ImportPath: m("domain"), Imports: []string{m("ports")}}, true},
		{"ports importing domain", portsOnlyDomain, pkgInfo{ImportPath: m("ports"), Imports: []string{"context", m("domain")}}, false},
		{"ports importing adapters", portsOnlyDomain, pkgInfo{ImportPath: m("ports"), Imports: []string{m("adapters/dir")}}, true},
		{"ports importing gen", portsOnlyDomain, pkgInfo{ImportPath: m("ports"), Imports: []string{m("gen/remote")}}, true},
		{"service through ports", serviceNotAdaptersOrGen, pkgInfo{ImportPath: m("domain/service"), Deps: []string{m("domain"), m("ports")}}, false},
		{"service reaching adapters", serviceNotAdaptersOrGen, pkgInfo{ImportPath: m("domain/service"), Deps: []string{m("ports"), m("adapters/dir")}}, true},
		{"service reaching gen", serviceNotAdaptersOrGen, pkgInfo{ImportPath: m("domain/service"), Deps: []string{m("gen/remote")}}, true},
		{"gen on xdr", genNotDomain, pkgInfo{ImportPath: m("gen/remote"), Deps: []string{m("xdr"), m("xdr/rpcconn")}}, false},
		{"gen importing domain", genNotDomain, pkgInfo{ImportPath: m("gen/remote"), Deps: []string{m("xdr"), m("domain")}}, true},
		{"gen reaching domain/service", genNotDomain, pkgInfo{ImportPath: m("gen/admin"), Deps: []string{m("domain/service")}}, true},
		{"adapter reaching cmd", adaptersNotCmd, pkgInfo{ImportPath: m("adapters/rpc"), Deps: []string{m("cmd/virtstoraged")}}, true},
		{"backend on the ports' errors", commandsThroughPorts, pkgInfo{ImportPath: m("adapters/logical"), Imports: []string{"errors", m("ports")}}, false},
		{"backend importing os/exec", commandsThroughPorts, pkgInfo{ImportPath: m("adapters/iscsi"), Imports: []string{"os/exec"}}, true},
		{"backend importing osexec", commandsThroughPorts, pkgInfo{ImportPath: m("adapters/rbd"), Imports: []string{m("adapters/osexec")}}, true},
		{"test kit importing osexec", commandsThroughPorts, pkgInfo{ImportPath: m("internal/testkit"), Imports: []string{m("adapters/osexec")}}, true},
		{"test kit starting a process", commandsThroughPorts, pkgInfo{ImportPath: m("internal/testkit"), Imports: []string{"os/exec"}}, false},
		{"the runner itself", commandsThroughPorts, pkgInfo{ImportPath: m("adapters/osexec"), Imports: []string{"os/exec"}}, false},
		{"cmd on plumbing", plumbingOnlyForCmd, pkgInfo{ImportPath: m("cmd/virtstoraged"), Imports: []string{m("adapters/daemon/sockets")}}, false},
		{"rpc on plumbing", plumbingOnlyForCmd, pkgInfo{ImportPath: m("adapters/rpc"), Imports: []string{m("adapters/daemon/process")}}, true},
		{"test kit on plumbing", plumbingOnlyForCmd, pkgInfo{ImportPath: m("internal/testkit"), Imports: []string{m("adapters/daemon/logconf")}}, true},
		{"library on library", librariesStandAlone, pkgInfo{ImportPath: m("adapters/lib/blockdev"), Imports: []string{m("adapters/lib/oserr"), m("ports")}}, false},
		{"library on a backend", librariesStandAlone, pkgInfo{ImportPath: m("adapters/lib/fsmount"), Imports: []string{m("adapters/fs")}}, true},
		{"library on plumbing", librariesStandAlone, pkgInfo{ImportPath: m("adapters/lib/oserr"), Imports: []string{m("adapters/daemon/logconf")}}, true},
		{"backend on libraries", noSiblingImplementations, pkgInfo{ImportPath: m("adapters/netfs"), Imports: []string{m("adapters/lib/fsmount"), m("adapters/dir")}}, false},
		{"backend on a sibling", noSiblingImplementations, pkgInfo{ImportPath: m("adapters/netfs"), Imports: []string{m("adapters/fs")}}, true},
		{"backend on plumbing", noSiblingImplementations, pkgInfo{ImportPath: m("adapters/logical"), Imports: []string{m("adapters/daemon/conffile")}}, true},
		{"a sibling named like a forbidden one", genNotDomain, pkgInfo{ImportPath: m("gen/remote"), Deps: []string{m("domainless")}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.check([]pkgInfo{tt.give})
			if tt.bad && len(got) == 0 {
				t.Errorf("%+v: no violation reported", tt.give)
			}
			if !tt.bad && len(got) > 0 {
				t.Errorf("%+v: false violations %q", tt.give, got)
			}
		})
	}
}
