package e2e_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// oCloexec is O_CLOEXEC as /proc/PID/fdinfo prints it in "flags:" (octal).
const oCloexec = 0o2000000

// TestInheritedFDsDoNotLeak starts the daemon with a descriptor its parent
// forgot to close, as shells and service managers sometimes do, and checks
// that the daemon keeps it from the commands it runs: LVM complains in every
// error about descriptors it inherits. The command is a qemu-img ahead in the
// daemon's PATH that records which files its shell has open.
func TestInheritedFDsDoNotLeak(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	marker, err := os.Create(filepath.Join(tmp, "inherited-marker"))
	if err != nil {
		t.Fatal(err)
	}
	defer marker.Close()
	bin := filepath.Join(tmp, "bin")
	record := filepath.Join(tmp, "open-files")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(bin, "qemu-img"),
		"#!/bin/sh\nfor f in /proc/$$/fd/*; do readlink \"$f\"; done >>"+record+"\nexit 1\n")
	if err := os.Chmod(filepath.Join(bin, "qemu-img"), 0o755); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, testkit.DaemonOptions{
		Env:        []string{"PATH=" + bin + ":" + os.Getenv("PATH")},
		ExtraFiles: []*os.File{marker}, // descriptor 3 in the daemon
	})

	// The daemon holds the descriptor still (it may be something the parent
	// expects it to keep), but close-on-exec.
	info, err := os.ReadFile("/proc/" + strconv.Itoa(d.Pid()) + "/fdinfo/3")
	if err != nil {
		t.Fatalf("the daemon's descriptor 3: %v", err)
	}
	flags := fdinfoFlags(t, string(info))
	if flags&oCloexec == 0 {
		t.Errorf("inherited descriptor 3 has flags %o in the daemon, want O_CLOEXEC", flags)
	}

	base := poolBase(t, "fd")
	ok(t, d, "pool-define-as", "fdp", "dir", "--target", base)
	ok(t, d, "pool-start", "fdp")
	// A vmdk is made by qemu-img (qcow2 natively); the fake fails the creation, only what it saw matters.
	_, _, _ = d.Virsh("vol-create-as", "fdp", "v.vmdk", "1M", "--format", "vmdk")
	seen, err := os.ReadFile(record)
	if err != nil {
		t.Fatalf("the daemon did not run qemu-img from PATH: %v", err)
	}
	if strings.Contains(string(seen), marker.Name()) {
		t.Errorf("qemu-img inherited the daemon's inherited descriptor; its open files:\n%s", seen)
	}
}

// fdinfoFlags reads the octal "flags:" line of a /proc/PID/fdinfo file.
func fdinfoFlags(t *testing.T, info string) int64 {
	t.Helper()
	for _, l := range strings.Split(info, "\n") {
		if v, found := strings.CutPrefix(l, "flags:"); found {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 8, 64)
			if err != nil {
				t.Fatalf("fdinfo flags %q: %v", v, err)
			}
			return n
		}
	}
	t.Fatalf("no flags line in fdinfo:\n%s", info)
	return 0
}
