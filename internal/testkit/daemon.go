package testkit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// commandTimeout bounds every client command a harness runs, so that a daemon
// that stops answering fails the test instead of hanging the whole test binary.
const commandTimeout = 90 * time.Second

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// ModuleRoot returns the directory holding go.mod, as `go env GOMOD` reports it.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("testkit: go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("testkit: not inside a Go module")
	}
	return filepath.Dir(gomod), nil
}

// DaemonBinEnv names a prebuilt daemon for BuildDaemon to use instead of
// building one (for test binaries run outside the module).
const DaemonBinEnv = "VIRTSTORAGED_E2E_BIN"

// BuildDaemon builds ./cmd/virtstoraged once per test binary and returns the
// path of the executable.
func BuildDaemon(t testing.TB) string {
	t.Helper()
	bin, err := DaemonBinary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// DaemonBinary is BuildDaemon for callers without a test (a TestMain): the
// daemon named by VIRTSTORAGED_E2E_BIN, else one built once per test binary
// (CleanupBuild removes it).
func DaemonBinary() (string, error) {
	buildOnce.Do(func() {
		if bin := os.Getenv(DaemonBinEnv); bin != "" {
			buildPath = bin
			return
		}
		root, err := moduleRoot()
		if err != nil {
			buildErr = err
			return
		}
		dir, err := os.MkdirTemp("", "vsbin")
		if err != nil {
			buildErr = err
			return
		}
		bin := filepath.Join(dir, "virtstoraged")
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/virtstoraged")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			_ = os.RemoveAll(dir)
			buildErr = fmt.Errorf("testkit: go build ./cmd/virtstoraged: %v\n%s", err, out)
			return
		}
		buildPath = bin
	})
	return buildPath, buildErr
}

// CleanupBuild removes what BuildDaemon built; call it from TestMain after
// m.Run.
func CleanupBuild() {
	if buildPath != "" && os.Getenv(DaemonBinEnv) == "" {
		_ = os.RemoveAll(filepath.Dir(buildPath))
	}
}

// RequireTool skips the test when an external program it drives is missing.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("testkit: %s not installed (apt-get install libvirt-clients qemu-utils scrub)", name)
	}
	return p
}

// SystemPython is the interpreter python3-libvirt is installed for; a pyenv
// python3 earlier in PATH does not see Debian's packages.
const SystemPython = "/usr/bin/python3"

// RequirePythonLibvirt skips the test when python3-libvirt is not importable.
func RequirePythonLibvirt(t testing.TB) {
	t.Helper()
	if err := exec.Command(SystemPython, "-c", "import libvirt").Run(); err != nil {
		t.Skipf("testkit: python3-libvirt not importable by %s (apt-get install python3-libvirt): %v", SystemPython, err)
	}
}

// DaemonOptions tune StartDaemon.
type DaemonOptions struct {
	// Config, when not empty, is written to DIR/etc/libvirt/virtstoraged.conf.
	Config string
	// Args are appended after --root DIR.
	Args []string
	// Env is added to the daemon's environment (later entries win).
	Env []string
	// ExtraFiles are inherited by the daemon as descriptors 3, 4, ...
	ExtraFiles []*os.File
}

// Daemon is one virtstoraged process living under its own root directory.
type Daemon struct {
	// Root is the --root directory; every file of the daemon lives under it.
	Root string
	// Bin is the daemon executable.
	Bin string
	// LogPath is the file that receives the daemon's stdout and stderr.
	LogPath string

	opts DaemonOptions
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// StartDaemon starts virtstoraged under a fresh short root directory (UNIX
// socket paths are limited to 108 bytes) and waits until its rw socket accepts.
// The process is killed and the directory removed when the test ends.
func StartDaemon(t testing.TB, opts DaemonOptions) *Daemon {
	t.Helper()
	bin := BuildDaemon(t)
	root, err := os.MkdirTemp("", "vs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(root) })
	d := &Daemon{Root: root, Bin: bin, LogPath: filepath.Join(root, "daemon.log"), opts: opts}
	if opts.Config != "" {
		d.WriteConfig(t, opts.Config)
	}
	t.Cleanup(func() {
		d.Kill()
		if t.Failed() {
			if b, err := os.ReadFile(d.LogPath); err == nil {
				t.Logf("virtstoraged log (%s):\n%s", d.LogPath, tail(b, 20000))
			}
		}
	})
	d.Start(t)
	return d
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// WriteConfig replaces DIR/etc/libvirt/virtstoraged.conf.
func (d *Daemon) WriteConfig(t testing.TB, text string) {
	t.Helper()
	p := d.ConfigPath()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Start starts a stopped daemon again on the same root, with the same options.
func (d *Daemon) Start(t testing.TB) {
	t.Helper()
	logf, err := os.OpenFile(d.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	args := append([]string{"--root", d.Root}, d.opts.Args...)
	cmd := exec.Command(d.Bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(append(os.Environ(), "LC_ALL=C"), d.opts.Env...)
	cmd.ExtraFiles = d.opts.ExtraFiles
	if err := cmd.Start(); err != nil {
		t.Fatalf("testkit: start virtstoraged: %v", err)
	}
	d.cmd, d.done, d.err = cmd, make(chan struct{}), nil
	go func() {
		d.err = cmd.Wait()
		close(d.done)
	}()
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-d.done:
			b, _ := os.ReadFile(d.LogPath)
			t.Fatalf("testkit: virtstoraged exited before listening (%v):\n%s", d.err, tail(b, 8000))
		default:
		}
		// The daemon opens its sockets one after another; it is ready for a
		// test once all three answer.
		if allDialable(d.SocketPath(), d.ROSocketPath(), d.AdminSocketPath()) {
			return
		}
		if time.Now().After(deadline) {
			d.Kill()
			b, _ := os.ReadFile(d.LogPath)
			t.Fatalf("testkit: virtstoraged did not listen on %s within 15s:\n%s", d.SocketPath(), tail(b, 8000))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Pid returns the daemon's process id.
func (d *Daemon) Pid() int { return d.cmd.Process.Pid }

// Done is closed when the daemon process has exited.
func (d *Daemon) Done() <-chan struct{} { return d.done }

// ExitErr is the daemon's exit status once Done is closed (nil for exit 0).
func (d *Daemon) ExitErr() error { return d.err }

// ConfigPath is the daemon's config file.
func (d *Daemon) ConfigPath() string {
	return filepath.Join(d.Root, "etc/libvirt/virtstoraged.conf")
}

// StorageDir is where pool configs live.
func (d *Daemon) StorageDir() string { return filepath.Join(d.Root, "etc/libvirt/storage") }

// StatusDir is where the runtime status of active pools lives.
func (d *Daemon) StatusDir() string { return filepath.Join(d.Root, "run/libvirt/storage") }

// SocketPath is the read-write socket.
func (d *Daemon) SocketPath() string { return filepath.Join(d.Root, "run/libvirt/virtstoraged-sock") }

// ROSocketPath is the read-only socket.
func (d *Daemon) ROSocketPath() string {
	return filepath.Join(d.Root, "run/libvirt/virtstoraged-sock-ro")
}

// AdminSocketPath is the admin socket.
func (d *Daemon) AdminSocketPath() string {
	return filepath.Join(d.Root, "run/libvirt/virtstoraged-admin-sock")
}

// PidFilePath is the default pid file under the root.
func (d *Daemon) PidFilePath() string { return filepath.Join(d.Root, "run/virtstoraged.pid") }

// URI addresses the read-write socket.
func (d *Daemon) URI() string { return "storage:///system?socket=" + d.SocketPath() }

// ROURI addresses the read-only socket.
func (d *Daemon) ROURI() string { return "storage:///system?socket=" + d.ROSocketPath() }

// AdminURI addresses the admin socket, for virt-admin.
func (d *Daemon) AdminURI() string { return "virtstoraged:///system?socket=" + d.AdminSocketPath() }

// Virsh runs `virsh -c URI args...` with LC_ALL=C.
func (d *Daemon) Virsh(args ...string) (stdout, stderr string, code int) {
	return RunVirsh(d.URI(), args...)
}

// VirshRO runs virsh against the read-only socket.
func (d *Daemon) VirshRO(args ...string) (stdout, stderr string, code int) {
	return RunVirsh(d.ROURI(), args...)
}

// VirtAdmin runs `virt-admin -c AdminURI args...` with LC_ALL=C.
func (d *Daemon) VirtAdmin(args ...string) (stdout, stderr string, code int) {
	return Run("", "virt-admin", append([]string{"-c", d.AdminURI()}, args...)...)
}

// Python runs script with the system python3; the environment carries URI,
// RO_URI and ADMIN_URI for the script to use.
func (d *Daemon) Python(script string) (stdout, stderr string, code int) {
	env := []string{"URI=" + d.URI(), "RO_URI=" + d.ROURI(), "ADMIN_URI=" + d.AdminURI()}
	return runEnv("", env, SystemPython, "-c", script)
}

// RunVirsh runs `virsh -c uri args...` with LC_ALL=C.
func RunVirsh(uri string, args ...string) (stdout, stderr string, code int) {
	return Run("", "virsh", append([]string{"-c", uri}, args...)...)
}

// Run runs a program with LC_ALL=C (and stdin, when not empty), bounded by a
// timeout; code is the exit status, or -1 when it could not run or was killed.
func Run(stdin, name string, args ...string) (stdout, stderr string, code int) {
	return runEnvIn(stdin, nil, name, args...)
}

func runEnv(stdin string, env []string, name string, args ...string) (string, string, int) {
	return runEnvIn(stdin, env, name, args...)
}

func runEnvIn(stdin string, env []string, name string, args ...string) (string, string, int) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(append(filteredEnv(), "LC_ALL=C"), env...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else {
			code = -1
			e.WriteString(err.Error())
		}
		if ctx.Err() != nil {
			e.WriteString("\ntestkit: killed after " + commandTimeout.String())
		}
	}
	return o.String(), e.String(), code
}

// filteredEnv drops variables that would point libvirt clients elsewhere.
func filteredEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "LIBVIRT_DEFAULT_URI=") || strings.HasPrefix(kv, "LIBVIRT_ADMIN_DEFAULT_URI=") ||
			strings.HasPrefix(kv, "LC_ALL=") || strings.HasPrefix(kv, "VIRSH_DEFAULT_CONNECT_URI=") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// Signal sends sig to the daemon.
func (d *Daemon) Signal(sig syscall.Signal) error { return d.cmd.Process.Signal(sig) }

// Stop sends SIGTERM, waits for the exit and checks a clean shutdown: exit
// status 0, sockets and pid file removed.
func (d *Daemon) Stop(t testing.TB) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("testkit: SIGTERM: %v", err)
	}
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		d.Kill()
		t.Fatalf("testkit: virtstoraged did not exit within 30s of SIGTERM")
	}
	if d.err != nil {
		t.Errorf("testkit: virtstoraged exit after SIGTERM: %v", d.err)
	}
	for _, p := range []string{d.SocketPath(), d.ROSocketPath(), d.AdminSocketPath(), d.PidFilePath()} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("testkit: %s still exists after a clean shutdown", p)
		}
	}
}

// Restart stops the daemon cleanly and starts it again on the same root.
func (d *Daemon) Restart(t testing.TB) {
	t.Helper()
	d.Stop(t)
	d.Start(t)
}

// Kill ends the daemon with SIGKILL (no-op when it already exited).
func (d *Daemon) Kill() {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	select {
	case <-d.done:
		return
	default:
	}
	_ = d.cmd.Process.Kill()
	<-d.done
}

// anchorMu and the lock file serialise libvirtd instances, within this test
// binary and across the test binaries of `go test ./...`: anchor.sh runs one
// at a time in AnchorDir.
var anchorMu sync.Mutex

// lockAnchor takes the anchor for this caller until the returned func runs.
func lockAnchor() (unlock func(), err error) {
	anchorMu.Lock()
	f, err := os.OpenFile(AnchorDir+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		anchorMu.Unlock()
		return nil, fmt.Errorf("anchor lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		anchorMu.Unlock()
		return nil, fmt.Errorf("anchor lock: %w", err)
	}
	return func() {
		_ = f.Close() // releases the flock
		anchorMu.Unlock()
	}, nil
}

// AnchorDir is where anchor.sh keeps the reference libvirtd's sockets and log.
const AnchorDir = "/tmp/anchor-e2e"

// Anchor is libvirt's own libvirtd 9.0, the reference implementation.
type Anchor struct {
	// Dir is anchor.sh's state directory.
	Dir string
	// Script is the anchor.sh path.
	Script string

	sockDir   string
	hostPaths bool
}

// ConfigDir is where this libvirtd writes its persistent pool configs: its own
// directory when it runs in a private mount namespace, else the host's
// /etc/libvirt/storage.
func (a *Anchor) ConfigDir() string {
	if a.hostPaths {
		return "/etc/libvirt/storage"
	}
	return filepath.Join(a.Dir, "etc-storage")
}

// AnchorScript finds shared/tools/anchor.sh beside the module, as CI lays it
// out: paths are relative to the checkout, never absolute.
func AnchorScript(t testing.TB) string {
	t.Helper()
	if root, err := moduleRoot(); err == nil {
		p := filepath.Join(root, "..", "shared", "tools", "anchor.sh")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	SkipOrFailInCI(t, "testkit: ../shared/tools/anchor.sh not found beside the checkout")
	return ""
}

// StartAnchor starts libvirtd through anchor.sh and stops it when the test
// ends. It skips when libvirtd is missing or the test does not run as root.
// Anchor tests never run in parallel: this call blocks until the previous one
// has stopped.
func StartAnchor(t testing.TB) *Anchor {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("testkit: the libvirtd anchor needs root")
	}
	if _, err := exec.LookPath("libvirtd"); err != nil {
		t.Skip("testkit: libvirtd not installed (apt-get install libvirt-daemon)")
	}
	RequireTool(t, "virsh")
	script := AnchorScript(t)
	if err := exec.Command("sh", "-c", "getent group libvirt-qemu >/dev/null || groupadd -r libvirt-qemu").Run(); err != nil {
		t.Fatalf("testkit: create group libvirt-qemu: %v", err)
	}
	unlock, err := lockAnchor()
	if err != nil {
		t.Fatalf("testkit: %v", err)
	}
	a := &Anchor{Dir: AnchorDir, Script: script, sockDir: filepath.Join(AnchorDir, "run")}
	a.stop()
	_ = os.RemoveAll(a.Dir)
	if err := os.MkdirAll(a.ConfigDir(), 0o755); err != nil {
		unlock()
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(a.Dir, "run-libvirt"), 0o755); err != nil {
		unlock()
		t.Fatal(err)
	}
	out, stderr, code := a.startIsolated()
	switch {
	case code == 0:
		t.Cleanup(func() {
			a.stop()
			unlock()
		})
	default:
		t.Logf("testkit: no private mount namespace for libvirtd (%s %s); using the host's paths", out, stderr)
		a.hostPaths = true
		if dir, ok := runningLibvirtd(); ok {
			// a second libvirtd cannot start beside it: share the one that
			// runs, leave it running, and touch only our own pools.
			t.Logf("testkit: sharing the libvirtd already listening in %s", dir)
			a.sockDir = dir
			t.Cleanup(unlock)
			break
		}
		out, stderr, code = Run("", "bash", script, "start", a.Dir)
		if code != 0 {
			unlock()
			t.Fatalf("testkit: anchor.sh start: rc=%d %s %s", code, out, stderr)
		}
		t.Cleanup(func() {
			a.stop()
			unlock()
		})
	}
	a.waitReady(t)
	return a
}

// startIsolated runs anchor.sh in a private mount namespace: libvirtd keeps
// host-wide pid files under /run/libvirt and its pools in /etc/libvirt/storage,
// so it gets its own of both (directories under Dir, kept across Restart) and
// runs beside any other libvirtd, leaving the host's pools alone.
func (a *Anchor) startIsolated() (stdout, stderr string, code int) {
	isolate := `mkdir -p /run/libvirt /etc/libvirt/storage && ` +
		`unshare -m --propagation private sh -c 'mount --bind "$1" /run/libvirt && ` +
		`mount --bind "$2" /etc/libvirt/storage && exec bash "$3" start "$4"' sh "$@"`
	return Run("", "sh", "-c", isolate, "sh", filepath.Join(a.Dir, "run-libvirt"), a.ConfigDir(), a.Script, a.Dir)
}

// Restart stops libvirtd and starts it again on the same state, as a daemon
// restart (not a reboot: the runtime state under /run/libvirt survives).
func (a *Anchor) Restart(t testing.TB) {
	t.Helper()
	if a.hostPaths {
		t.Skip("testkit: restarting libvirtd needs the private mount namespace")
	}
	a.stop()
	if out, stderr, code := a.startIsolated(); code != 0 {
		t.Fatalf("testkit: anchor.sh start: rc=%d %s %s", code, out, stderr)
	}
	a.waitReady(t)
}

func (a *Anchor) waitReady(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, _, code := a.Virsh("uri"); code == 0 {
			return
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(a.Dir, "libvirtd.log"))
			t.Fatalf("testkit: libvirtd does not answer on %s:\n%s", a.URI(), tail(b, 4000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop ends a running libvirtd and waits for it to go, so that the next start
// does not find the old sockets.
func (a *Anchor) stop() {
	b, err := os.ReadFile(filepath.Join(a.Dir, "libvirtd.pid"))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return
	}
	_, _, _ = Run("", "bash", a.Script, "stop", a.Dir)
	for i := 0; i < 300; i++ {
		if syscall.Kill(pid, 0) != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for _, s := range []string{"libvirt-sock", "libvirt-sock-ro", "libvirt-admin-sock"} {
		_ = os.Remove(filepath.Join(a.Dir, "run", s))
	}
	_ = os.Remove(filepath.Join(a.Dir, "libvirtd.pid"))
}

// runningLibvirtd finds a libvirtd started by someone else whose config names
// a socket directory that answers, and returns that directory.
func runningLibvirtd() (string, bool) {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		argv := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(argv) == 0 || filepath.Base(argv[0]) != "libvirtd" {
			continue
		}
		for i, arg := range argv {
			if (arg != "-f" && arg != "--config") || i+1 >= len(argv) {
				continue
			}
			conf, err := os.ReadFile(argv[i+1])
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(conf), "\n") {
				k, v, ok := strings.Cut(line, "=")
				if !ok || strings.TrimSpace(k) != "unix_sock_dir" {
					continue
				}
				dir := strings.Trim(strings.TrimSpace(v), `"`)
				if c, err := net.Dial("unix", filepath.Join(dir, "libvirt-sock")); err == nil {
					c.Close()
					return dir, true
				}
			}
		}
	}
	return "", false
}

// Pid is the process id of the libvirtd this anchor started, or 0 when it
// shares one that someone else runs (whose CPU the caller must not measure).
func (a *Anchor) Pid() int {
	if a.sockDir != filepath.Join(a.Dir, "run") {
		return 0
	}
	b, err := os.ReadFile(filepath.Join(a.Dir, "libvirtd.pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 || syscall.Kill(pid, 0) != nil {
		return 0
	}
	return pid
}

// SocketPath is libvirtd's read-write socket.
func (a *Anchor) SocketPath() string { return filepath.Join(a.sockDir, "libvirt-sock") }

// URI addresses libvirtd's read-write socket.
func (a *Anchor) URI() string { return "storage:///system?socket=" + a.SocketPath() }

// ROURI addresses libvirtd's read-only socket.
func (a *Anchor) ROURI() string {
	return "storage:///system?socket=" + filepath.Join(a.sockDir, "libvirt-sock-ro")
}

// Virsh runs `virsh -c URI args...` against libvirtd with LC_ALL=C.
func (a *Anchor) Virsh(args ...string) (stdout, stderr string, code int) {
	return RunVirsh(a.URI(), args...)
}

// VirshRO runs virsh against libvirtd's read-only socket.
func (a *Anchor) VirshRO(args ...string) (stdout, stderr string, code int) {
	return RunVirsh(a.ROURI(), args...)
}

// CleanupPools destroys and undefines every pool of libvirtd whose name starts
// with prefix, so that tests leave the host's /etc/libvirt/storage as found.
func (a *Anchor) CleanupPools(prefix string) {
	out, _, _ := a.Virsh("pool-list", "--all", "--name")
	for _, name := range strings.Fields(out) {
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		a.Virsh("pool-destroy", name)
		a.Virsh("pool-undefine", name)
	}
}

func allDialable(paths ...string) bool {
	for _, p := range paths {
		c, err := net.Dial("unix", p)
		if err != nil {
			return false
		}
		c.Close()
	}
	return true
}
