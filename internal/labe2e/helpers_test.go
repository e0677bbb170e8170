package labe2e_test

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"

	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// startDaemon starts our daemon under a fresh --root in the guest.
func startDaemon(t *testing.T) *testkit.Daemon {
	t.Helper()
	testkit.RequireTool(t, "virsh")
	return testkit.StartDaemon(t, testkit.DaemonOptions{})
}

// writeTemp writes text to a new file in the test's temporary directory.
func writeTemp(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// patterned writes n bytes no run of which repeats within a block, so that a
// misplaced or lost block changes the checksum.
func patterned(t *testing.T, n int, seed byte) string {
	t.Helper()
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	p := filepath.Join(t.TempDir(), "data"+strconv.Itoa(int(seed)))
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// sum is the SHA-256 of the first n bytes of path (all of it when n < 0).
func sum(t *testing.T, path string, n int64) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	if n >= 0 {
		r = io.LimitReader(f, n)
	}
	h := sha256.New()
	got, err := io.Copy(h, r)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if n >= 0 && got != n {
		t.Fatalf("read %s: %d bytes, want %d", path, got, n)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// firstOther is the offset of the first of the first n bytes of path that
// is not c, and that byte; -1 when they all are c.
func firstOther(t *testing.T, path string, n int64, c byte) (int64, byte) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	var off int64
	for off < n {
		k, err := f.Read(buf[:min(int64(len(buf)), n-off)])
		for i, b := range buf[:k] {
			if b != c {
				return off + int64(i), b
			}
		}
		off += int64(k)
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
	}
	return -1, 0
}

// dialGoLibvirt connects go-libvirt to the daemon's read-write socket; the
// connection closes with the test.
func dialGoLibvirt(t *testing.T, d *testkit.Daemon) *libvirt.Libvirt {
	t.Helper()
	l := libvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket(d.SocketPath()), dialers.WithLocalTimeout(5*time.Second)))
	if err := l.ConnectToURI(libvirt.ConnectURI("storage:///system")); err != nil {
		t.Fatalf("go-libvirt ConnectToURI: %v", err)
	}
	t.Cleanup(func() { l.Disconnect() })
	return l
}
