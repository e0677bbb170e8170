// Package archtest enforces the dependency rule of DESIGN.md: imports only point
// inward. It asks the go command for the real import graph, so it cannot drift from
// the code.
package archtest

import (
	"encoding/json"
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
	return pkgs
}

func isStdlib(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

func ours(path string) bool { return path == module || strings.HasPrefix(path, module+"/") }

func rel(path string) string { return strings.TrimPrefix(strings.TrimPrefix(path, module), "/") }

// forbiddenInDomain are standard packages that would let the pure domain do I/O.
var forbiddenInDomain = []string{"os", "os/exec", "os/signal", "os/user", "net", "syscall", "unsafe", "io/fs", "path/filepath"}

func TestDomainImportsStdlibOnlyWithoutIO(t *testing.T) {
	for _, p := range listPackages(t, module+"/domain") {
		for _, imp := range p.Imports {
			if !isStdlib(imp) {
				t.Errorf("%s imports %s: the domain may import the standard library only", rel(p.ImportPath), imp)
				continue
			}
			for _, f := range forbiddenInDomain {
				if imp == f || strings.HasPrefix(imp, "net/") {
					t.Errorf("%s imports %s: the domain does no I/O", rel(p.ImportPath), imp)
				}
			}
		}
	}
}

func TestPortsImportOnlyDomain(t *testing.T) {
	for _, p := range listPackages(t, module+"/ports") {
		for _, imp := range p.Imports {
			if ours(imp) && rel(imp) != "domain" {
				t.Errorf("%s imports %s: ports may import only domain of ours", rel(p.ImportPath), rel(imp))
			}
		}
	}
}

func TestServiceDoesNotReachAdaptersOrProtocol(t *testing.T) {
	for _, p := range listPackages(t, module+"/domain/...") {
		for _, dep := range p.Deps {
			if !ours(dep) {
				continue
			}
			r := rel(dep)
			if strings.HasPrefix(r, "adapters") || strings.HasPrefix(r, "gen") || strings.HasPrefix(r, "xdr") || strings.HasPrefix(r, "cmd") {
				t.Errorf("%s depends on %s: the service talks to the world only through ports", rel(p.ImportPath), r)
			}
		}
	}
}

func TestGeneratedCodeDoesNotKnowTheDomain(t *testing.T) {
	pkgs := listPackages(t, module+"/gen/...")
	if len(pkgs) == 0 {
		t.Fatal("no generated packages found under gen/")
	}
	for _, p := range pkgs {
		for _, dep := range p.Deps {
			if ours(dep) && (strings.HasPrefix(rel(dep), "domain") || strings.HasPrefix(rel(dep), "ports") || strings.HasPrefix(rel(dep), "adapters")) {
				t.Errorf("%s depends on %s: generated protocol code stays independent of the domain", rel(p.ImportPath), rel(dep))
			}
		}
	}
}

func TestOnlyCmdImportsEverything(t *testing.T) {
	for _, p := range listPackages(t, module+"/adapters/...") {
		for _, dep := range p.Deps {
			if ours(dep) && strings.HasPrefix(rel(dep), "cmd") {
				t.Errorf("%s depends on %s: nothing imports cmd", rel(p.ImportPath), rel(dep))
			}
		}
	}
}
