package rbde2e_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// virsher is a daemon virsh can drive: ours or libvirtd.
type virsher interface {
	Virsh(args ...string) (stdout, stderr string, code int)
}

// must runs virsh and fails the test unless it succeeds.
func must(t *testing.T, d virsher, args ...string) string {
	t.Helper()
	out, errOut, code := d.Virsh(args...)
	if code != 0 {
		t.Fatalf("virsh %s: rc=%d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// fails runs virsh, expects it to fail and returns its error text (virsh's
// "error: ..." lines, the first one, which names the operation, dropped).
func fails(t *testing.T, d virsher, args ...string) string {
	t.Helper()
	out, errOut, code := d.Virsh(args...)
	if code == 0 {
		t.Fatalf("virsh %s succeeded, want an error:\n%s", strings.Join(args, " "), out)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(errOut), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > 1 {
		lines = lines[1:]
	}
	return strings.Join(lines, "\n")
}

// newCephPool makes a Ceph pool of its own for a test, removed at its end.
func newCephPool(t *testing.T, name string) {
	t.Helper()
	ctx := context.Background()
	if _, err := lab.Ceph(ctx, "osd", "pool", "create", name, "8", "8"); err != nil {
		t.Fatal(err)
	}
	if _, err := lab.Rbd(ctx, "pool", "init", name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = lab.Ceph(context.Background(), "osd", "pool", "rm", name, name, "--yes-i-really-really-mean-it")
	})
}

// poolXML is an rbd pool on the lab's monitor; auth is an <auth> element or "".
func poolXML(name, cephPool, auth, extra string) string {
	host, port, _ := strings.Cut(lab.MonHost, ":")
	return fmt.Sprintf("<pool type='rbd'><name>%s</name><source><host name='%s' port='%s'/><name>%s</name>%s</source>%s</pool>",
		name, host, port, cephPool, auth, extra)
}

// definePool defines and starts a pool from XML.
func definePool(t *testing.T, d virsher, name, xml string) {
	t.Helper()
	definePoolOnly(t, d, name, xml)
	must(t, d, "pool-start", name)
}

// definePoolOnly defines a pool from XML.
func definePoolOnly(t *testing.T, d virsher, name, xml string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), name+".xml")
	if err := os.WriteFile(f, []byte(xml), 0o644); err != nil {
		t.Fatal(err)
	}
	must(t, d, "pool-define", f)
}

// dataFile writes n bytes of random data with a run of zeros in the middle
// (so sparse streams carry a hole) and returns its path and SHA-256.
func dataFile(t *testing.T, n int) (string, string) {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	clear(b[n/3 : 2*n/3])
	p := filepath.Join(t.TempDir(), "data")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, sum(b)
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func fileSum(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sum(b)
}

// download fetches a volume into a file and returns its bytes.
func download(t *testing.T, d virsher, pool, vol string, args ...string) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "out")
	must(t, d, append([]string{"vol-download", "--pool", pool, vol, p}, args...)...)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// allZero reports whether b holds only zeros.
func allZero(b []byte) bool { return len(bytes.Trim(b, "\x00")) == 0 }

// startDaemon starts our daemon with a short rbd timeout, so that the fault
// tests stay short.
func startDaemon(t *testing.T) *testkit.Daemon {
	t.Helper()
	return testkit.StartDaemon(t, testkit.DaemonOptions{Config: "rbd_timeout = 5\n"})
}

func netListen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

// startPool gives a test a Ceph pool of its own and our daemon with an rbd
// pool on it, started.
func startPool(t *testing.T, name, cephPool string) *testkit.Daemon {
	t.Helper()
	newCephPool(t, cephPool)
	d := startDaemon(t)
	definePool(t, d, name, poolXML(name, cephPool, "", ""))
	return d
}
