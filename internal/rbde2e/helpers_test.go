package rbde2e_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
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

// newCephPool makes a Ceph pool of its own for a test, removed at its end,
// with one placement group: a test's few images need no more, and peering
// is most of a pool's creation time.
func newCephPool(t *testing.T, name string) { newCephPoolPGs(t, name, "1") }

// newCephPoolPGs makes a Ceph pool with pgs placement groups.
func newCephPoolPGs(t *testing.T, name, pgs string) {
	t.Helper()
	ctx := context.Background()
	if _, err := lab.Ceph(ctx, "osd", "pool", "create", name, pgs, pgs); err != nil {
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

// cephSecretUUID and cephUsage name the ceph secret holding client.libvirt's
// key in libvirtd's secret driver.
const (
	cephSecretUUID = "2ec115d7-3a88-3ceb-bc12-0ac909a6fd87"
	cephUsage      = "client.libvirt secret"
)

// The <auth> of a pool connecting as client.libvirt, naming the secret by
// its UUID or by its usage.
const (
	cephAuth      = "<auth type='ceph' username='libvirt'><secret uuid='" + cephSecretUUID + "'/></auth>"
	cephAuthUsage = "<auth type='ceph' username='libvirt'><secret usage='" + cephUsage + "'/></auth>"
)

// startSecrets starts libvirtd 9.0, whose secret driver holds the cephx keys
// for both daemons, as on a host where virtstoraged replaces only the storage
// driver: client.libvirt's key as a private ceph secret (secret-define,
// secret-set-value), undefined when the test ends.
func startSecrets(t *testing.T) *testkit.Anchor {
	t.Helper()
	a := testkit.StartAnchor(t)
	defineKey(t, a, cephSecretUUID, cephUsage, libvirtKey)
	return a
}

// defineKey defines a private ceph secret holding key (base64, as a keyring
// has it; the secret holds the raw bytes, as `virsh secret-set-value
// --base64` would store them).
func defineKey(t *testing.T, a *testkit.Anchor, uuid, usage, key string) {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(key)
	if err != nil {
		t.Fatal(err)
	}
	a.DefineSecret(t, uuid, "<usage type='ceph'><name>"+usage+"</name></usage>", true, raw)
}

// secretConfig points our daemon at a's secret driver, as TestLUKSAgainstLibvirtd
// does: its socket, its URI and the system token that unlocks private secrets.
func secretConfig(a *testkit.Anchor) string {
	return "secret_driver_socket = \"" + a.SocketPath() + "\"\n" +
		"secret_driver_uri = \"secret:///system\"\n" +
		"secret_driver_token_file = \"" + a.SystemTokenFile() + "\"\n"
}

// startDaemon starts our daemon reading keys from a's secret driver, with a
// short rbd timeout, so that the fault tests stay short, and debug logs, so
// that keyNowhere can check every command line it ran; extra is more config.
func startDaemon(t *testing.T, a *testkit.Anchor, extra string) *testkit.Daemon {
	t.Helper()
	d := testkit.StartDaemon(t, testkit.DaemonOptions{Config: "rbd_timeout = 5\nlog_level = 1\n" + secretConfig(a) + extra})
	t.Cleanup(func() { keyNowhere(t, d) })
	return d
}

// keyNowhere checks that client.libvirt's key reached neither a command line
// nor the log of our daemon (which logs every command line at debug level),
// that its commands did read it from a key file, and that no key file was
// left behind in the runtime directory.
func keyNowhere(t *testing.T, d *testkit.Daemon) {
	t.Helper()
	b, err := os.ReadFile(d.LogPath)
	if err != nil {
		t.Error(err)
		return
	}
	raw, _ := base64.StdEncoding.DecodeString(libvirtKey)
	if bytes.Contains(b, []byte(libvirtKey)) || bytes.Contains(b, raw) {
		t.Errorf("the daemon's log (%s) holds client.libvirt's key", d.LogPath)
	}
	if !bytes.Contains(b, []byte("--keyfile")) || !bytes.Contains(b, []byte("virtstoraged-rbd-")) {
		t.Errorf("no rbd command line with a key file in the daemon's debug log: the check above proves nothing")
	}
	if left, _ := filepath.Glob(filepath.Join(d.StatusDir(), "virtstoraged-rbd-*")); len(left) != 0 {
		t.Errorf("key files left behind: %v", left)
	}
}

func netListen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

// startPool gives a test a Ceph pool of its own and our daemon with an rbd
// pool on it, started, connecting as client.libvirt with the key from
// libvirtd's secret driver (named by its usage); it returns libvirtd too.
func startPool(t *testing.T, name, cephPool string) (*testkit.Daemon, *testkit.Anchor) {
	t.Helper()
	newCephPool(t, cephPool)
	a := startSecrets(t)
	d := startDaemon(t, a, "")
	definePool(t, d, name, poolXML(name, cephPool, cephAuthUsage, ""))
	return d, a
}
