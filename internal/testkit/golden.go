package testkit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Golden compares got with the file at path. With update it rewrites the file
// instead (making its directory), so a deliberate change is one `go test
// -update` and a reviewed diff, as libvirt's xml2argv tests work.
func Golden(t testing.TB, path, got string, update bool) {
	t.Helper()
	if update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// GoldenArgv compares one command line with testdata/argv/name.argv.
func GoldenArgv(t testing.TB, name string, argv []string, update bool) {
	t.Helper()
	Golden(t, filepath.Join("testdata", "argv", name+".argv"), FormatArgv(argv)+"\n", update)
}

// CheckGoldenArgv compares the command lines run with testdata/name.argv, after
// replacing the temp paths in repl (old, new pairs).
func CheckGoldenArgv(t testing.TB, name string, argvs [][]string, update bool, repl ...string) {
	t.Helper()
	r := strings.NewReplacer(repl...)
	var b strings.Builder
	for _, argv := range argvs {
		b.WriteString(r.Replace(FormatArgv(argv)))
		b.WriteString("\n")
	}
	Golden(t, filepath.Join("testdata", name+".argv"), b.String(), update)
}
