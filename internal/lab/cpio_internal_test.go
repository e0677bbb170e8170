package lab

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestCPIOUnpacks has busybox's cpio, an independent reader of the format,
// unpack what cpioWriter wrote: names, contents, modes and links survive,
// whatever the padding each length needs.
func TestCPIOUnpacks(t *testing.T) {
	if _, err := os.Stat(Busybox); err != nil {
		t.Skip("lab: busybox not installed (apt-get install busybox-static)")
	}
	var buf bytes.Buffer
	c := newCPIOWriter(&buf)
	c.Dir("bin")
	c.Dir("a")
	c.Dir("a/bc")
	c.File("bin/x", 0o755, []byte("#!/bin/sh\n"))
	c.File("a/bc/one", 0o644, []byte("1"))
	c.File("a/bc/four", 0o600, []byte("four"))
	c.File("a/empty", 0o644, nil)
	c.Symlink("bin/sh", "x")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if buf.Len()%4 != 0 {
		t.Errorf("archive length %d is not a multiple of 4", buf.Len())
	}
	dir := t.TempDir()
	cmd := exec.Command(Busybox, "cpio", "-i", "-d")
	cmd.Dir = dir
	cmd.Stdin = &buf
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("busybox cpio -i: %v\n%s", err, out)
	}
	files := map[string]struct {
		data string
		mode os.FileMode
	}{
		"bin/x":     {"#!/bin/sh\n", 0o755},
		"a/bc/one":  {"1", 0o644},
		"a/bc/four": {"four", 0o600},
		"a/empty":   {"", 0o644},
	}
	for name, want := range files {
		p := filepath.Join(dir, name)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		fi, _ := os.Stat(p)
		if string(b) != want.data || fi.Mode().Perm() != want.mode {
			t.Errorf("%s = %q mode %v, want %q mode %v", name, b, fi.Mode().Perm(), want.data, want.mode)
		}
	}
	if target, err := os.Readlink(filepath.Join(dir, "bin/sh")); err != nil || target != "x" {
		t.Errorf("bin/sh -> %q (%v), want x", target, err)
	}
}
