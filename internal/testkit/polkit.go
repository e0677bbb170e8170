package testkit

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// PolkitdPath is where Debian's package polkitd installs the daemon.
const PolkitdPath = "/usr/lib/polkit-1/polkitd"

// polkitd reads its actions and rules from fixed host directories only, so a
// test's files go there for the test's duration, under names that say whose
// they are.
const (
	polkitActionsDir = "/usr/share/polkit-1/actions"
	polkitRulesDir   = "/etc/polkit-1/rules.d"
	libvirtPolicy    = "org.libvirt.unix.policy"
	testPolicyName   = "zz-virtstoraged-test-org.libvirt.unix.policy"
	testRulesName    = "00-virtstoraged-test.rules"
	polkitLockPath   = "/tmp/virtstoraged-polkit-test.lock"
)

// Polkit is polkitd on a private system bus with libvirt's org.libvirt.unix
// actions and a test's rules.
type Polkit struct {
	Bus *Bus
}

// StartPolkit runs the real polkitd on a private bus with rules (polkit's
// JavaScript) for the test's duration, and libvirt's actions (the daemon's
// own dist/polkit file where libvirt did not install them). Needs root;
// skips without polkitd. The rules and action files are the host's
// directories' (polkitd reads no others): they are removed at the end, and
// the tests that use them run one at a time.
func StartPolkit(t testing.TB, rules string) *Polkit {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("testkit: polkitd reads its rules from /etc: the polkit tests need root (CI runs as root)")
	}
	if _, err := os.Stat(PolkitdPath); err != nil {
		t.Skipf("testkit: %s not installed (apt-get install polkitd)", PolkitdPath)
	}
	unlock := lockFile(t, polkitLockPath)
	t.Cleanup(unlock)

	if _, err := os.Stat(filepath.Join(polkitActionsDir, libvirtPolicy)); err != nil {
		root, err := moduleRoot()
		if err != nil {
			t.Fatal(err)
		}
		installFile(t, filepath.Join(root, "dist", "polkit", libvirtPolicy), filepath.Join(polkitActionsDir, testPolicyName))
	}
	if err := os.MkdirAll(polkitRulesDir, 0o755); err != nil {
		t.Fatal(err)
	}
	rulesPath := filepath.Join(polkitRulesDir, testRulesName)
	if err := os.WriteFile(rulesPath, []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(rulesPath) })

	p := &Polkit{Bus: StartDBus(t)}
	cmd := exec.Command(PolkitdPath, "--no-debug")
	cmd.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+p.Bus.Address)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("testkit: start polkitd: %v", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	// Ready once it answers for libvirt's action on the bus: name taken,
	// actions read (its rules are read before it takes the name).
	deadline := time.Now().Add(15 * time.Second)
	for {
		check := exec.Command("pkaction", "--action-id", "org.libvirt.unix.manage")
		check.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+p.Bus.Address)
		if check.Run() == nil {
			return p
		}
		select {
		case <-done:
			t.Fatalf("testkit: polkitd exited: %s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("testkit: polkitd did not answer within 15s: %s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// installFile copies src to dst for the test's duration.
func installFile(t testing.TB, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(dst) })
}

// lockFile holds an exclusive flock on path until the returned func runs.
func lockFile(t testing.TB, path string) func() {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatal(err)
	}
	return func() { _ = f.Close() }
}

// SystemUser is an account a test runs clients as.
type SystemUser struct {
	Name     string
	UID, GID int
	// Home is a directory of the user's for virsh's and python's files.
	Home string
}

// LookupUser finds an existing account (Debian's base system has daemon,
// bin and nobody), skipping the test when it is missing, and gives it a
// scratch home directory.
func LookupUser(t testing.TB, name string) SystemUser {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		t.Skipf("testkit: no user %s: %v", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	home, err := os.MkdirTemp("", "home-"+name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(home) })
	if err := os.Chown(home, uid, gid); err != nil {
		t.Fatal(err)
	}
	return SystemUser{Name: name, UID: uid, GID: gid, Home: home}
}

// RunAs runs a program as the user (setpriv, no supplementary groups), with
// HOME and XDG dirs in the user's scratch home, as Run does.
func (u SystemUser) RunAs(name string, args ...string) (stdout, stderr string, code int) {
	argv := []string{fmt.Sprintf("--reuid=%d", u.UID), fmt.Sprintf("--regid=%d", u.GID), "--clear-groups",
		"env", "HOME=" + u.Home, "XDG_CONFIG_HOME=" + filepath.Join(u.Home, ".config"),
		"XDG_CACHE_HOME=" + filepath.Join(u.Home, ".cache"), "XDG_RUNTIME_DIR=" + u.Home, name}
	return Run("", "setpriv", append(argv, args...)...)
}

// StartPolkitAnchor starts libvirtd 9.0 as StartAnchor does, but with
// auth_unix_rw and auth_unix_ro = "polkit" and p's bus as its system bus: the
// reference for polkit authentication. It skips where libvirtd cannot have a
// private mount namespace, and stops when the test ends.
func StartPolkitAnchor(t testing.TB, p *Polkit) *Anchor {
	t.Helper()
	if _, err := exec.LookPath("libvirtd"); err != nil {
		t.Skip("testkit: libvirtd not installed (apt-get install libvirt-daemon)")
	}
	script := AnchorScript(t)
	// The QEMU driver, loaded alongside, refuses to start without these.
	for _, c := range []string{
		"getent group kvm >/dev/null || groupadd -r kvm",
		"getent group libvirt-qemu >/dev/null || groupadd -r libvirt-qemu",
		"id libvirt-qemu >/dev/null 2>&1 || useradd -r -g kvm -s /usr/sbin/nologin libvirt-qemu",
	} {
		if out, err := exec.Command("sh", "-c", c).CombinedOutput(); err != nil {
			t.Fatalf("testkit: %s: %v %s", c, err, out)
		}
	}
	unlock, err := lockAnchor()
	if err != nil {
		t.Fatalf("testkit: %v", err)
	}
	a := &Anchor{Dir: AnchorDir, Script: script, sockDir: filepath.Join(AnchorDir, "run")}
	a.stop()
	_ = os.RemoveAll(a.Dir)
	for _, d := range []string{a.ConfigDir(), filepath.Join(a.Dir, "run-libvirt"), a.sockDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			unlock()
			t.Fatal(err)
		}
	}
	conf := filepath.Join(a.Dir, "libvirtd.conf")
	text := fmt.Sprintf("unix_sock_dir = %q\nauth_unix_rw = \"polkit\"\nauth_unix_ro = \"polkit\"\nlog_outputs = \"3:file:%s\"\n",
		a.sockDir, filepath.Join(a.Dir, "libvirtd.log"))
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		unlock()
		t.Fatal(err)
	}
	// As Anchor.startIsolated, with libvirtd started here rather than by
	// anchor.sh, which writes its own configuration.
	isolate := `unshare -m --propagation private sh -c 'mount --bind "$1" /run/libvirt && ` +
		`mount --bind "$2" /etc/libvirt/storage && exec libvirtd -d -f "$3" -p "$4"' sh "$@"`
	_, _, _ = Run("", "mkdir", "-p", "/run/libvirt", "/etc/libvirt/storage")
	out, stderr, code := runEnv("", []string{"DBUS_SYSTEM_BUS_ADDRESS=" + p.Bus.Address}, "sh", "-c", isolate, "sh",
		filepath.Join(a.Dir, "run-libvirt"), a.ConfigDir(), conf, filepath.Join(a.Dir, "libvirtd.pid"))
	if code != 0 {
		unlock()
		t.Skipf("testkit: no private mount namespace for a polkit libvirtd: %s %s", out, stderr)
	}
	t.Cleanup(func() {
		a.stop()
		unlock()
	})
	a.waitReady(t) // as root, let through without asking polkit
	return a
}
