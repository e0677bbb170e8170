package e2e_test

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// notifyListener receives what the daemon tells its service manager
// (sd_notify on NOTIFY_SOCKET): READY=1 once up and after each reload,
// RELOADING=1 when a reload begins. That tells a test when a SIGHUP has been
// dealt with, without guessing how long it takes.
type notifyListener struct {
	path string
	conn *net.UnixConn
}

func listenNotify(t *testing.T) *notifyListener {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &notifyListener{path: path, conn: conn}
}

// notifyTimeout only bounds a daemon that never reports: reloads take
// milliseconds, a slow CI machine seconds.
const notifyTimeout = 60 * time.Second

// waitFor reads messages until one carries the line state.
func (n *notifyListener) waitFor(t *testing.T, state string) {
	t.Helper()
	if err := n.conn.SetReadDeadline(time.Now().Add(notifyTimeout)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	for {
		k, err := n.conn.Read(buf)
		if err != nil {
			t.Fatalf("waiting for %s from the daemon: %v", state, err)
		}
		for _, line := range bytes.Split(buf[:k], []byte("\n")) {
			if string(line) == state {
				return
			}
		}
	}
}

// reloadSide is one daemon of the reload scenario: where its pool configs are,
// the directory its autostart links must name, and how to make it reload
// (returning once it has).
type reloadSide struct {
	tg      target
	cfgDir  string
	linkDir string
	base    string
	reload  func()
}

// reloadScenario puts pools in several states, changes their config files
// behind the daemon's back as a user would, reloads, and returns what virsh
// shows, normalised for comparison between daemons.
func reloadScenario(t *testing.T, s reloadSide) []string {
	t.Helper()
	b := s.base
	for _, step := range [][]string{
		{"pool-define-as", "e2e-run", "dir", "--target", b + "/run"},
		{"pool-start", "e2e-run", "--build"},
		{"pool-define-as", "e2e-idle", "dir", "--target", b + "/idle"},
		{"pool-define-as", "e2e-gone", "dir", "--target", b + "/gone"},
		{"pool-define-as", "e2e-auto", "dir", "--target", b + "/auto"},
		{"pool-build", "e2e-auto"},
		{"pool-autostart", "e2e-auto"},
		{"pool-create-as", "e2e-tr", "dir", "--target", b + "/tr", "--build"},
	} {
		ok(t, s.tg, step...)
	}
	uuid := func(pool string) string { return strings.TrimSpace(ok(t, s.tg, "pool-uuid", pool)) }
	dirPool := func(name, uuid, path string) string {
		u := ""
		if uuid != "" {
			u = "<uuid>" + uuid + "</uuid>"
		}
		return "<pool type='dir'><name>" + name + "</name>" + u + "<target><path>" + path + "</path></target></pool>\n"
	}
	cfg := func(name string) string { return filepath.Join(s.cfgDir, name+".xml") }
	if err := os.MkdirAll(filepath.Join(b, "newauto"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(s.cfgDir, "autostart"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, cfg("e2e-run"), dirPool("e2e-run", uuid("e2e-run"), b+"/run2"))
	writeFile(t, cfg("e2e-idle"), dirPool("e2e-idle", uuid("e2e-idle"), b+"/idle2"))
	writeFile(t, cfg("e2e-tr"), dirPool("e2e-tr", uuid("e2e-tr"), b+"/tr"))
	writeFile(t, cfg("e2e-new"), dirPool("e2e-new", "", b+"/new"))
	writeFile(t, cfg("e2e-newauto"), dirPool("e2e-newauto", "", b+"/newauto"))
	if err := os.Symlink(filepath.Join(s.linkDir, "e2e-newauto.xml"), filepath.Join(s.cfgDir, "autostart", "e2e-newauto.xml")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, cfg("e2e-broken"), "<pool type='dir'><name>e2e-broken</name><target><path>")
	writeFile(t, cfg("e2e-misnamed"), dirPool("e2e-other", "", b+"/other"))
	if err := os.Remove(cfg("e2e-gone")); err != nil {
		t.Fatal(err)
	}

	s.reload()

	out := []string{ok(t, s.tg, "pool-list", "--all", "--details")}
	for _, p := range []string{"e2e-run", "e2e-idle", "e2e-tr", "e2e-new"} {
		live := ok(t, s.tg, "pool-dumpxml", p)
		inactive := ok(t, s.tg, "pool-dumpxml", "--inactive", p)
		out = append(out, p+" live "+pathLine(live), p+" inactive "+pathLine(inactive))
	}
	// The pending config takes over when the running pool stops.
	ok(t, s.tg, "pool-destroy", "e2e-run")
	out = append(out, "e2e-run after destroy "+pathLine(ok(t, s.tg, "pool-dumpxml", "e2e-run")))
	for i := range out {
		out[i] = normalize(out[i], b, true)
	}
	return out
}

func pathLine(xml string) string {
	for _, l := range strings.Split(xml, "\n") {
		if strings.Contains(l, "<path>") {
			return strings.TrimSpace(l)
		}
	}
	return "(no path)"
}

// ourReloadSide starts our daemon with a notify socket; its reload sends
// SIGHUP and waits for the daemon to report the reload done.
func ourReloadSide(t *testing.T, tag string) (reloadSide, *testkit.Daemon) {
	t.Helper()
	n := listenNotify(t)
	d := startDaemon(t, testkit.DaemonOptions{Env: []string{"NOTIFY_SOCKET=" + n.path}})
	n.waitFor(t, "READY=1")
	return reloadSide{
		tg: d, cfgDir: d.StorageDir(), linkDir: d.StorageDir(), base: poolBase(t, tag),
		reload: func() {
			if err := d.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			n.waitFor(t, "RELOADING=1")
			n.waitFor(t, "READY=1")
		},
	}, d
}

// TestSighupReloadsPools checks what a SIGHUP does with pool configs placed,
// changed or removed in ROOT/etc/libvirt/storage, as libvirtd 9.0 does it
// (TestDifferentialSighup compares the two directly).
func TestSighupReloadsPools(t *testing.T) {
	t.Parallel()
	side, d := ourReloadSide(t, "h")
	got := reloadScenario(t, side)
	want := []string{
		` Name State Autostart Persistent Capacity Allocation Available
---
 e2e-auto running yes yes SIZE SIZE SIZE
 e2e-gone inactive no yes - - -
 e2e-idle inactive no yes - - -
 e2e-new inactive no yes - - -
 e2e-newauto running yes yes SIZE SIZE SIZE
 e2e-run running no yes SIZE SIZE SIZE
 e2e-tr running no yes SIZE SIZE SIZE

`,
		"e2e-run live <path><DIR>/run</path>", "e2e-run inactive <path><DIR>/run2</path>",
		"e2e-idle live <path><DIR>/idle2</path>", "e2e-idle inactive <path><DIR>/idle2</path>",
		"e2e-tr live <path><DIR>/tr</path>", "e2e-tr inactive <path><DIR>/tr</path>",
		"e2e-new live <path><DIR>/new</path>", "e2e-new inactive <path><DIR>/new</path>",
		"e2e-run after destroy <path><DIR>/run2</path>",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("after SIGHUP:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// libvirtd keeps the pool whose config vanished and then fails to
	// undefine it ("cannot remove config"); we let it go.
	wantOut(t, d, "Pool e2e-gone has been undefined\n\n", "pool-undefine", "e2e-gone")
	// The daemon lives on, and a second SIGHUP changes nothing.
	before := ok(t, d, "pool-list", "--all", "--details")
	side.reload()
	if after := ok(t, d, "pool-list", "--all", "--details"); after != before {
		t.Errorf("a second SIGHUP changed the pools:\n%s\nwas:\n%s", after, before)
	}
}

// TestDifferentialSighup runs the reload scenario on libvirtd and on our
// daemon and compares what virsh shows after it.
func TestDifferentialSighup(t *testing.T) {
	t.Parallel() // StartAnchor serialises the libvirtd tests among themselves
	a := testkit.StartAnchor(t)
	pidText, err := os.ReadFile(filepath.Join(a.Dir, "libvirtd.pid"))
	pid, perr := strconv.Atoi(strings.TrimSpace(string(pidText)))
	if err != nil || perr != nil {
		t.Skipf("libvirtd shared with someone else (no pid file of ours: %v): not sending it SIGHUP", err)
	}
	a.CleanupPools("e2e")
	t.Cleanup(func() {
		a.CleanupPools("e2e")
		for _, f := range []string{"e2e-broken.xml", "e2e-misnamed.xml", "e2e-gone.xml", "autostart/e2e-newauto.xml"} {
			_ = os.Remove(filepath.Join(a.ConfigDir(), f))
		}
	})
	ref := reloadSide{
		tg: a, cfgDir: a.ConfigDir(), linkDir: "/etc/libvirt/storage", base: poolBase(t, "a"),
		reload: func() {
			if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			// libvirtd reports nothing when a reload ends. Its last step starts
			// the autostart pools, so wait until the new one runs (or, should
			// libvirtd not start it, give up and let the comparison show it).
			running := func(pool string) bool {
				out, _, _ := a.Virsh("pool-info", pool)
				return strings.Contains(out, "State:          running\n")
			}
			deadline := time.Now().Add(30 * time.Second)
			for time.Now().Before(deadline) && !(running("e2e-newauto") && running("e2e-auto")) {
				time.Sleep(100 * time.Millisecond)
			}
		},
	}
	refOut := reloadScenario(t, ref)
	ours, _ := ourReloadSide(t, "o")
	ourOut := reloadScenario(t, ours)
	if strings.Join(refOut, "\n") != strings.Join(ourOut, "\n") {
		t.Errorf("after SIGHUP:\n--- libvirtd:\n%s\n--- virtstoraged:\n%s", strings.Join(refOut, "\n"), strings.Join(ourOut, "\n"))
	}
}
