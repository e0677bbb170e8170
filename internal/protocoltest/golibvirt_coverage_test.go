package protocoltest_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/gen/remote"
	"github.com/virtstoraged-go/virtstoraged/xdr"
)

const goLibvirtModule = "github.com/digitalocean/go-libvirt"

// goLibvirtDir is the source directory of the go-libvirt version go.mod pins, so the
// coverage below is measured against exactly the code the cross-check runs with.
func goLibvirtDir(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", goLibvirtModule)
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list -m %s: %v\n%s", goLibvirtModule, err, ee.Stderr)
		}
		t.Fatalf("go list -m %s: %v", goLibvirtModule, err)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		t.Fatalf("go list -m %s: module not downloaded", goLibvirtModule)
	}
	return dir
}

func parseGoFile(t *testing.T, path string) *ast.File {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ParseComments)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	return f
}

// goLibvirtProc is go-libvirt's comment on each procedure constant, which carries
// libvirt's own name for it.
var goLibvirtProc = regexp.MustCompile(`is libvirt's (REMOTE_PROC_[A-Z0-9_]+)`)

// goLibvirtProcedures reads go-libvirt's generated procedure constants: libvirt name →
// number, all 400-odd remote procedures.
func goLibvirtProcedures(t *testing.T, dir string) map[string]int32 {
	t.Helper()
	f := parseGoFile(t, filepath.Join(dir, "internal", "constants", "remote_protocol.gen.go"))
	procs := map[string]int32{}
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			if vs.Doc == nil || len(vs.Values) != 1 {
				continue
			}
			m := goLibvirtProc.FindStringSubmatch(vs.Doc.Text())
			lit, isLit := vs.Values[0].(*ast.BasicLit)
			if m == nil || !isLit {
				continue
			}
			n, err := strconv.ParseInt(lit.Value, 0, 32)
			if err != nil {
				t.Fatalf("%s = %s: %v", m[1], lit.Value, err)
			}
			procs[m[1]] = int32(n)
		}
	}
	if len(procs) < 400 {
		t.Fatalf("found only %d procedure constants in go-libvirt: has its layout changed?", len(procs))
	}
	return procs
}

// goLibvirtStructs reads the names of the struct types of go-libvirt's remote protocol.
func goLibvirtStructs(t *testing.T, dir string) map[string]bool {
	t.Helper()
	f := parseGoFile(t, filepath.Join(dir, "remote_protocol.gen.go"))
	names := map[string]bool{}
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.TYPE {
			continue
		}
		for _, spec := range gd.Specs {
			ts := spec.(*ast.TypeSpec)
			if _, isStruct := ts.Type.(*ast.StructType); isStruct {
				names[ts.Name.Name] = true
			}
		}
	}
	if len(names) < 400 {
		t.Fatalf("found only %d struct types in go-libvirt: has its layout changed?", len(names))
	}
	return names
}

// normalize makes go-libvirt's and our spellings of one type name comparable
// (ConnectGetUriRet there, ConnectGetURIRet here; remote_connect_get_uri_ret in libvirt).
func normalize(name string) string {
	return strings.ToLower(strings.ReplaceAll(name, "_", ""))
}

// TestGoLibvirtStorageCoverage enumerates go-libvirt's own source, not a list kept here:
// every storage procedure go-libvirt knows must be in our dispatch table under the same
// number and name, every storage args/ret/msg struct go-libvirt has must be a body of
// ours that TestGoLibvirtCrossCheck compares with it (and the other way round: no body
// of ours may be void where go-libvirt has a struct). Every other procedure number we
// serve is checked against go-libvirt's constants too.
func TestGoLibvirtStorageCoverage(t *testing.T) {
	dir := goLibvirtDir(t)
	procs := goLibvirtProcedures(t, dir)
	structs := goLibvirtStructs(t, dir)

	crossChecked := map[string]string{} // go-libvirt type name → our type name
	for _, mk := range crossCheckBodies(t) {
		ours := reflect.TypeOf(mk()).Elem().Name()
		if theirs, ok := goLibvirtTypes[ours]; ok {
			crossChecked[theirs.Name()] = ours
		}
	}

	for i := range remote.Procedures {
		info := &remote.Procedures[i]
		num, ok := procs[info.Name]
		if !ok {
			t.Errorf("%s (%d): go-libvirt has no procedure of that name", info.Name, info.Proc)
		} else if num != info.Proc {
			t.Errorf("%s is %d here, %d in go-libvirt", info.Name, info.Proc, num)
		}
	}

	var storage []string
	for name := range procs {
		if strings.Contains(name, "STORAGE") {
			storage = append(storage, name)
		}
	}
	sort.Strings(storage)
	if len(storage) < 45 {
		t.Fatalf("only %d storage procedures in go-libvirt: the filter is broken", len(storage))
	}
	covered := map[string]bool{}
	for _, name := range storage {
		info := remote.Lookup(procs[name])
		if info == nil || info.Name != name {
			t.Errorf("%s (%d): storage procedure of go-libvirt missing from our dispatch table", name, procs[name])
			continue
		}
		base := normalize(strings.TrimPrefix(name, "REMOTE_PROC_"))
		ourBody := map[string]func() xdr.Message{"args": info.NewArgs, "ret": info.NewRet}
		if info.Async {
			ourBody = map[string]func() xdr.Message{"msg": info.NewArgs}
		}
		for _, suffix := range []string{"args", "ret", "msg"} {
			var theirs string
			for s := range structs {
				if normalize(s) == base+suffix {
					theirs = s
				}
			}
			mk := ourBody[suffix]
			switch {
			case theirs == "" && mk != nil:
				t.Errorf("%s: we have a %s body %T, go-libvirt has none", name, suffix, mk())
			case theirs == "":
			case mk == nil:
				t.Errorf("%s: go-libvirt has %s, our %s is void", name, theirs, suffix)
			case crossChecked[theirs] == "":
				t.Errorf("%s: go-libvirt's %s is not cross-checked (add it to goLibvirtTypes)", name, theirs)
			default:
				if ours := reflect.TypeOf(mk()).Elem().Name(); crossChecked[theirs] != ours {
					t.Errorf("%s: go-libvirt's %s is compared with our %s, want %s", name, theirs, crossChecked[theirs], ours)
				}
				covered[theirs] = true
			}
		}
	}

	// A storage struct no procedure name leads to would escape the loop above.
	for s := range structs {
		low := normalize(s)
		if strings.Contains(low, "storage") && (strings.HasSuffix(low, "args") || strings.HasSuffix(low, "ret") || strings.HasSuffix(low, "msg")) && !covered[s] {
			t.Errorf("go-libvirt's storage body %s is not cross-checked", s)
		}
	}
	t.Logf("%d storage procedures and %d storage bodies of go-libvirt cross-checked", len(storage), len(covered))
}
