package e2e_test

import (
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// TestDaemonize runs `virtstoraged -d -p FILE`: the parent exits 0 once the
// sockets listen, and the pid file names the live child.
func TestDaemonize(t *testing.T) {
	t.Parallel()
	testkit.RequireTool(t, "virsh")
	bin := testkit.BuildDaemon(t)
	root, err := os.MkdirTemp("", "vs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(root) })
	pidFile := filepath.Join(root, "my.pid")
	sock := filepath.Join(root, "run/libvirt/virtstoraged-sock")
	out, err := exec.Command(bin, "--root", root, "-d", "-p", pidFile).CombinedOutput()
	if err != nil {
		t.Fatalf("virtstoraged -d: %v\n%s", err, out)
	}
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatalf("the parent exited before the socket listened: %v", err)
	}
	c.Close()
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("pid file: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		t.Fatalf("pid file holds %q", b)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	// The kernel keeps the first 15 bytes of the executable's name as comm.
	want := filepath.Base(bin)
	if len(want) > 15 {
		want = want[:15]
	}
	comm, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if strings.TrimSpace(string(comm)) != want {
		t.Errorf("pid %d from the pid file is %q, want the daemon", pid, comm)
	}
	if out, errOut, code := testkit.RunVirsh("storage:///system?socket="+sock, "pool-list", "--all"); code != 0 {
		t.Errorf("virsh against the daemonized child: rc=%d %s %s", code, out, errOut)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if syscall.Kill(pid, 0) == nil {
		t.Errorf("daemonized child still runs 20s after SIGTERM")
	}
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Errorf("pid file left after SIGTERM: %v", err)
	}
}

// TestIdleTimeout checks that -t 2 ends an idle daemon by itself, but not while
// a client stays connected.
func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, testkit.DaemonOptions{Args: []string{"-t", "2"}})
	c, err := net.Dial("unix", d.SocketPath())
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.Done():
		t.Fatalf("daemon exited with a client connected: %v", d.ExitErr())
	case <-time.After(3500 * time.Millisecond):
	}
	c.Close()
	select {
	case <-d.Done():
		if d.ExitErr() != nil {
			t.Errorf("idle exit status: %v", d.ExitErr())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("daemon with -t 2 still runs 10s after its last client left")
	}
	if _, err := os.Lstat(d.SocketPath()); err == nil {
		t.Errorf("socket left after the idle exit")
	}
}

// TestSighupReload changes log_level in the config, sends SIGHUP and expects
// debug messages to appear in the log output.
func TestSighupReload(t *testing.T) {
	t.Parallel()
	n := listenNotify(t)
	d := startDaemon(t, testkit.DaemonOptions{Config: "log_level = 3\n", Env: []string{"NOTIFY_SOCKET=" + n.path}})
	n.waitFor(t, "READY=1")
	ok(t, d, "pool-list", "--all")
	before, _ := os.ReadFile(d.LogPath)
	if strings.Contains(strings.ToLower(string(before)), "level=debug") || strings.Contains(string(before), "debug :") {
		t.Fatalf("debug output at log_level 3:\n%s", before)
	}
	d.WriteConfig(t, "log_level = 1\n")
	if err := d.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	n.waitFor(t, "RELOADING=1")
	n.waitFor(t, "READY=1")
	// The calls log at debug level before they answer.
	ok(t, d, "pool-list", "--all")
	ok(t, d, "pool-capabilities")
	after, _ := os.ReadFile(d.LogPath)
	grown := strings.ToLower(string(after[len(before):]))
	if !strings.Contains(grown, "debug") {
		t.Errorf("no debug output after SIGHUP with log_level = 1; new log output:\n%s", grown)
	}
	select {
	case <-d.Done():
		t.Fatalf("daemon exited on SIGHUP: %v", d.ExitErr())
	default:
	}
}

// TestMemoryLimitReload starts the daemon with memory_limit set, then
// changes it and removes it with SIGHUP: the log says the limit the runtime
// was given each time (it is the process's own, not visible from outside).
func TestMemoryLimitReload(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, testkit.DaemonOptions{Config: "log_level = 2\nmemory_limit = \"64MiB\"\n"})
	waitLog := func(want string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			b, _ := os.ReadFile(d.LogPath)
			if strings.Contains(string(b), want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %q in the daemon's log within 15 s:\n%s", want, b)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitLog("bytes=67108864")
	d.WriteConfig(t, "log_level = 2\nmemory_limit = \"1GiB\"\n")
	if err := d.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog("bytes=1073741824")
	d.WriteConfig(t, "log_level = 2\nmemory_limit = \"1MiB\"\n")
	if err := d.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog("memory_limit: \\\"1MiB\\\" is below the minimum of 32MiB")
	// Without the key, the limit the daemon started with: none, unless the
	// daemon inherited a GOMEMLIMIT.
	d.WriteConfig(t, "log_level = 2\n")
	if err := d.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		waitLog(fmt.Sprintf("bytes=%d", int64(math.MaxInt64)))
	}
	ok(t, d, "pool-list", "--all")
}

// TestSecondInstanceRefused starts a second daemon on the same root: it must
// fail with a clear message while the first keeps serving.
func TestSecondInstanceRefused(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, testkit.DaemonOptions{})
	cmd := exec.Command(d.Bin, "--root", d.Root)
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("second instance still runs after 15s")
	}
	if err == nil {
		t.Errorf("second instance exited 0:\n%s", out)
	}
	msg := strings.ToLower(string(out))
	if !strings.Contains(msg, "pid") && !strings.Contains(msg, "already") && !strings.Contains(msg, "running") {
		t.Errorf("second instance's message does not say why: %q", out)
	}
	ok(t, d, "pool-list", "--all")
	d.Stop(t)
}

// TestVersion checks --version and -V.
func TestVersion(t *testing.T) {
	t.Parallel()
	bin := testkit.BuildDaemon(t)
	for _, flag := range []string{"--version", "-V"} {
		out, err := exec.Command(bin, flag).CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "virtstoraged ") || strings.Count(string(out), "\n") != 1 {
			t.Errorf("virtstoraged %s: %v %q, want one line starting with \"virtstoraged \"", flag, err, out)
		}
	}
}

// TestSigtermRightAfterStart sends SIGTERM as soon as the socket accepts: the
// shutdown must be as clean as a later one (signal handling set up before the
// sockets listen).
func TestSigtermRightAfterStart(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, testkit.DaemonOptions{})
	d.Stop(t)
	for range 5 {
		d.Start(t)
		d.Stop(t)
		if t.Failed() {
			break
		}
	}
}
