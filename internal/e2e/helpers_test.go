package e2e_test

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// target is what a scenario drives: our daemon or the libvirtd anchor.
type target interface {
	Virsh(args ...string) (stdout, stderr string, code int)
	URI() string
}

// startDaemon skips when virsh is missing and returns a running daemon.
func startDaemon(t *testing.T, opts testkit.DaemonOptions) *testkit.Daemon {
	t.Helper()
	testkit.RequireTool(t, "virsh")
	return testkit.StartDaemon(t, opts)
}

// poolBase makes a directory for pool targets whose path has a fixed length,
// so that virsh's column widths do not depend on it; removed at the end.
func poolBase(t *testing.T, tag string) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(os.TempDir(), "e2e"+tag+hex.EncodeToString(b))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// ok runs virsh and fails the test unless it exits 0; it returns stdout.
func ok(t *testing.T, tg target, args ...string) string {
	t.Helper()
	out, errOut, code := tg.Virsh(args...)
	if code != 0 {
		t.Errorf("virsh %s: rc=%d, want 0\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// wantOut runs virsh and checks exit 0 and the exact stdout.
func wantOut(t *testing.T, tg target, want string, args ...string) {
	t.Helper()
	out, errOut, code := tg.Virsh(args...)
	if code != 0 || out != want {
		t.Errorf("virsh %s:\n got rc=%d stdout=%q stderr=%q\nwant rc=0 stdout=%q", strings.Join(args, " "), code, out, errOut, want)
	}
}

// wantContains runs virsh and checks exit 0 and that stdout holds every want.
func wantContains(t *testing.T, tg target, args []string, wants ...string) string {
	t.Helper()
	out, errOut, code := tg.Virsh(args...)
	if code != 0 {
		t.Errorf("virsh %s: rc=%d stderr=%q", strings.Join(args, " "), code, errOut)
		return out
	}
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("virsh %s: stdout lacks %q:\n%s", strings.Join(args, " "), w, out)
		}
	}
	return out
}

// wantErr runs virsh and checks a non-zero exit and the exact stderr.
func wantErr(t *testing.T, tg target, want string, args ...string) {
	t.Helper()
	out, errOut, code := tg.Virsh(args...)
	if code == 0 || errOut != want {
		t.Errorf("virsh %s:\n got rc=%d stdout=%q stderr=%q\nwant rc!=0 stderr=%q", strings.Join(args, " "), code, out, errOut, want)
	}
}

// wantErrContains runs virsh and checks a non-zero exit and that stderr holds want.
func wantErrContains(t *testing.T, tg target, want string, args ...string) {
	t.Helper()
	out, errOut, code := tg.Virsh(args...)
	if code == 0 || !strings.Contains(errOut, want) {
		t.Errorf("virsh %s:\n got rc=%d stdout=%q stderr=%q\nwant rc!=0 and stderr containing %q", strings.Join(args, " "), code, out, errOut, want)
	}
}

// fileBlocks returns the size and the allocated bytes of a file.
func fileBlocks(t *testing.T, path string) (size, alloc int64) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return st.Size, st.Blocks * 512
}

// listDir returns the sorted entry names of dir ("" for none).
func listDir(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return strings.Join(names, " ")
}

var (
	uuidRE      = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	timestampRE = regexp.MustCompile(`<(atime|mtime|ctime|btime)>[0-9.]+</(atime|mtime|ctime|btime)>`)
	poolNumRE   = regexp.MustCompile(`<(capacity|allocation|available) unit='bytes'>[0-9]+</`)
	infoNumRE   = regexp.MustCompile(`(?m)^(Capacity|Allocation|Available):( +).*$`)
	sizeRE      = regexp.MustCompile(`[0-9]+(\.[0-9]+)? (B|KiB|MiB|GiB|TiB|PiB|EiB)`)
	spacesRE    = regexp.MustCompile(` {2,}`)
	dashesRE    = regexp.MustCompile(`(?m)^-+$`)
)

// normalize makes one daemon's output comparable with the other's: the base
// directory, UUIDs and timestamps become placeholders; with poolSizes the
// filesystem-dependent pool numbers do too (and column padding is collapsed,
// since those numbers set the column widths).
func normalize(s, base string, poolSizes bool) string {
	s = strings.ReplaceAll(s, base, "<DIR>")
	s = uuidRE.ReplaceAllString(s, "<UUID>")
	s = timestampRE.ReplaceAllString(s, "<$1>TS</$2>")
	if poolSizes {
		s = poolNumRE.ReplaceAllString(s, "<$1 unit='bytes'>N</")
		s = infoNumRE.ReplaceAllString(s, "$1:$2N")
		s = sizeRE.ReplaceAllString(s, "SIZE")
		s = spacesRE.ReplaceAllString(s, " ")
		s = dashesRE.ReplaceAllString(s, "---")
	}
	return s
}

// daemonSide is one daemon of a differential test, libvirtd's or ours, with the
// directory its pools live under.
type daemonSide struct {
	tg   target
	sock string
	base string
}

// bothDaemons starts libvirtd and our daemon, libvirtd first, and runs the
// same virsh steps on each; steps gets the side's own base directory so the
// two never share a pool target.
func bothDaemons(t *testing.T, steps func(base string) [][]string) []daemonSide {
	t.Helper()
	a := testkit.StartAnchor(t)
	a.CleanupPools("e2e")
	t.Cleanup(func() { a.CleanupPools("e2e") })
	d := startDaemon(t, testkit.DaemonOptions{})
	sides := []daemonSide{{tg: a, sock: a.SocketPath()}, {tg: d, sock: d.SocketPath()}}
	for i, tag := range []string{"a", "o"} {
		sides[i].base = poolBase(t, tag)
		for _, step := range steps(sides[i].base) {
			ok(t, sides[i].tg, step...)
		}
	}
	return sides
}
