// Package labkit holds what the storage lab's end-to-end packages share
// (internal/labe2e/...): our daemon and go-libvirt in the guest, data with
// checksums, LVM reports, the volume XML facts libvirt reads from device
// nodes, and the differential runs against libvirtd (diff.go). It is test
// code: its functions take a *testing.T and fail it.
package labkit

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"
	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/internal/lab"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// PrepareDaemon is the lab.Options.Prepare of a package that runs our
// daemon in the guest: it is built on the host (a Go build under emulation
// would take minutes), or taken from VIRTSTORAGED_E2E_BIN, and reaches the
// guest through the shared root.
func PrepareDaemon() (env []string, cleanup func(), err error) {
	bin, err := testkit.DaemonBinary()
	if err != nil {
		return nil, nil, err
	}
	return []string{testkit.DaemonBinEnv + "=" + bin}, testkit.CleanupBuild, nil
}

// StartDaemon starts our daemon under a fresh --root in the guest.
func StartDaemon(t *testing.T) *testkit.Daemon {
	t.Helper()
	testkit.RequireTool(t, "virsh")
	return testkit.StartDaemon(t, testkit.DaemonOptions{})
}

// WriteTemp writes text to a new file in the test's temporary directory.
func WriteTemp(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Patterned writes a file of n bytes no run of which repeats within a
// block, so that a misplaced or lost block changes the checksum, and returns
// its path.
func Patterned(t *testing.T, n int, seed byte) string {
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

// Sum is the SHA-256 of the first n bytes of path (all of it when n < 0).
func Sum(t *testing.T, path string, n int64) string {
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

// FirstOther is the offset of the first of the first n bytes of path that
// is not c, and that byte; -1 when they all are c.
func FirstOther(t *testing.T, path string, n int64, c byte) (int64, byte) {
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

// DialGoLibvirt connects go-libvirt to the daemon's read-write socket; the
// connection closes with the test.
func DialGoLibvirt(t *testing.T, d *testkit.Daemon) *libvirt.Libvirt {
	t.Helper()
	l := libvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket(d.SocketPath()), dialers.WithLocalTimeout(5*time.Second)))
	if err := l.ConnectToURI(libvirt.ConnectURI("storage:///system")); err != nil {
		t.Fatalf("go-libvirt ConnectToURI: %v", err)
	}
	t.Cleanup(func() { l.Disconnect() })
	return l
}

// MiB is a mebibyte.
const MiB = 1 << 20

// LVM runs an LVM reporting command and returns its rows split on '|'.
func LVM(t *testing.T, args ...string) [][]string {
	t.Helper()
	args = append(args, "--noheadings", "--separator", "|", "--units", "b", "--nosuffix")
	var rows [][]string
	for _, line := range strings.Split(lab.Run(t, args[0], args[1:]...), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			rows = append(rows, strings.Split(line, "|"))
		}
	}
	return rows
}

// LVSize is an LV's size in bytes, or -1 when LVM does not know the LV.
func LVSize(t *testing.T, vg, lv string) int64 {
	t.Helper()
	for _, r := range LVM(t, "lvs", "-o", "lv_name,lv_size", vg) {
		if r[0] == lv {
			n, err := strconv.ParseInt(r[1], 10, 64)
			if err != nil {
				t.Fatalf("lvs: size %q", r[1])
			}
			return n
		}
	}
	return -1
}

// IsBlockDevice reports whether path is (a link to) a block device node.
func IsBlockDevice(path string) bool {
	var st unix.Stat_t
	return unix.Stat(path, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFBLK
}

// VolXML is what the tests read from vol-dumpxml.
type VolXML struct {
	Name     string `xml:"name"`
	Key      string `xml:"key"`
	Capacity uint64 `xml:"capacity"`
	Alloc    uint64 `xml:"allocation"`
	Physical *struct {
		Value uint64 `xml:",chardata"`
	} `xml:"physical"`
	Target  VolTargetXML  `xml:"target"`
	Backing *VolTargetXML `xml:"backingStore"`
}

// VolTargetXML is a volume's <target> or <backingStore>.
type VolTargetXML struct {
	Path  string `xml:"path"`
	Perms *struct {
		Mode  string `xml:"mode"`
		Owner string `xml:"owner"`
		Group string `xml:"group"`
	} `xml:"permissions"`
	Timestamps *struct {
		Atime string `xml:"atime"`
		Mtime string `xml:"mtime"`
		Ctime string `xml:"ctime"`
	} `xml:"timestamps"`
}

// DumpVol runs vol-dumpxml and parses it.
func DumpVol(t *testing.T, d testkit.Virsher, pool, vol string) VolXML {
	t.Helper()
	return VirshXML[VolXML](t, d, "vol-dumpxml", "--pool", pool, vol)
}

// VirshXML runs a virsh command that prints XML (a dumpxml) and parses what
// it printed into T.
func VirshXML[T any](t *testing.T, d testkit.Virsher, args ...string) T {
	t.Helper()
	out := testkit.VirshOK(t, d, args...)
	var v T
	if err := xml.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("virsh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return v
}

// CheckNodeFacts checks what libvirt reads from a volume's device node
// (virStorageBackendUpdateVolTargetInfo): its owner, group and mode, and its
// times, against a stat of the node; what is checks a backing store.
func CheckNodeFacts(t *testing.T, what string, tg *VolTargetXML) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(tg.Path, &st); err != nil {
		t.Fatalf("%s: stat %s: %v", what, tg.Path, err)
	}
	if tg.Perms == nil {
		t.Errorf("%s %s: no <permissions>", what, tg.Path)
	} else {
		want := [3]string{fmt.Sprintf("0%o", st.Mode&0o777), strconv.Itoa(int(st.Uid)), strconv.Itoa(int(st.Gid))}
		if got := [3]string{tg.Perms.Mode, tg.Perms.Owner, tg.Perms.Group}; got != want {
			t.Errorf("%s %s: permissions (mode, owner, group) %q, the node has %q", what, tg.Path, got, want)
		}
	}
	if tg.Timestamps == nil {
		t.Errorf("%s %s: no <timestamps>", what, tg.Path)
	} else if sec, _, _ := strings.Cut(tg.Timestamps.Mtime, "."); sec != strconv.FormatInt(st.Mtim.Sec, 10) {
		t.Errorf("%s %s: mtime %s, the node's is %d", what, tg.Path, tg.Timestamps.Mtime, st.Mtim.Sec)
	}
}

// NFSMount is what /proc/self/mountinfo says is mounted on target.
func NFSMount(t *testing.T, target string) (fstype, source, options string, ok bool) {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pre, post, cut := strings.Cut(sc.Text(), " - ")
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if cut && len(fields) >= 5 && len(tail) >= 3 && fields[4] == target {
			fstype, source, options, ok = tail[0], tail[1], tail[2], true
		}
	}
	return fstype, source, options, ok
}

// VirshResult is a finished virsh call.
type VirshResult struct {
	Out, ErrOut string
	Code        int
}

// VirshAsync runs virsh in the background; the channel yields its result.
func VirshAsync(v testkit.Virsher, args ...string) <-chan VirshResult {
	ch := make(chan VirshResult, 1)
	go func() {
		o, e, c := v.Virsh(args...)
		ch <- VirshResult{o, e, c}
	}()
	return ch
}

// Done reports whether a background call has finished, without waiting.
func Done(ch <-chan VirshResult) (VirshResult, bool) {
	select {
	case r := <-ch:
		return r, true
	default:
		return VirshResult{}, false
	}
}
