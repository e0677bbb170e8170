package dir

import (
	"os"
	"path/filepath"
	"testing"
)

// Only files on a local filesystem are offered to the transport's sendfile
// path; a filesystem that is not known to be local (procfs here, NFS or FUSE
// in use) is not.
func TestOnLocalFS(t *testing.T) {
	tmp := t.TempDir()
	if !IsLocalFS(tmp) {
		t.Skipf("%s is not on a local filesystem", tmp)
	}
	local := filepath.Join(tmp, "f")
	if err := os.WriteFile(local, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path string
		want bool
	}{{local, true}, {"/proc/self/cmdline", false}} {
		f, err := os.Open(tt.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := onLocalFS(int(f.Fd())); got != tt.want {
			t.Errorf("onLocalFS(%s) = %v, want %v", tt.path, got, tt.want)
		}
		f.Close()
	}
}
