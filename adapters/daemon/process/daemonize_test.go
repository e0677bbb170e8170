package process_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/adapters/daemon/process"
)

const helperEnv = "PROCESS_TEST_HELPER"

// TestDaemonHelper is not a test: it is the daemon that the Daemonize tests
// start by re-running this test binary (the os/exec helper-process pattern).
func TestDaemonHelper(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("helper process only")
	}
	child, err := process.Daemonize(process.DaemonConfig{})
	if err != nil || child == nil {
		os.Exit(10)
	}
	if _, ok := os.LookupEnv(process.ReadyFDEnv); ok {
		os.Exit(11)
	}
	if _, ok := os.LookupEnv("LISTEN_FDS"); ok {
		// Socket activation fds were the parent's; the child must not adopt fd 3.
		os.Exit(14)
	}
	dir := os.Getenv("HELPER_DIR")
	switch mode {
	case "fail":
		_ = child.Fail(errors.New("listen: address in use"))
		os.Exit(1)
	case "die":
		os.Exit(3)
	}
	sigs := process.NotifySignals()
	release, err := process.AcquirePidFile(filepath.Join(dir, "d.pid"))
	if err != nil {
		_ = child.Fail(err)
		os.Exit(1)
	}
	sid, _ := unix.Getsid(0)
	var st unix.Stat_t
	_ = unix.Fstat(0, &st)
	var null unix.Stat_t
	_ = unix.Stat(os.DevNull, &null)
	report := fmt.Sprintf("sid=%v stdin-null=%v", sid == os.Getpid(), st.Rdev == null.Rdev && st.Ino == null.Ino)
	_ = os.WriteFile(filepath.Join(dir, "report"), []byte(report), 0o644)
	if err := child.Ready(); err != nil {
		os.Exit(12)
	}
	if err := child.Ready(); err == nil {
		os.Exit(13)
	}
	select {
	case <-sigs.Shutdown:
	case <-time.After(30 * time.Second):
	}
	release()
	os.Exit(0)
}

func daemonConfig(t *testing.T, mode, dir string) process.DaemonConfig {
	t.Helper()
	return process.DaemonConfig{
		Executable: os.Args[0],
		Args:       []string{"-test.run=^TestDaemonHelper$"},
		Env:        append(os.Environ(), helperEnv+"="+mode, "HELPER_DIR="+dir, "LISTEN_FDS=3"),
	}
}

func TestDaemonizeReady(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	child, err := process.Daemonize(daemonConfig(t, "ready", dir))
	if err != nil || child != nil {
		t.Fatalf("Daemonize() in the parent = %v, %v; want nil, nil", child, err)
	}
	// Ready means the daemon already holds its pid file.
	pidPath := filepath.Join(dir, "d.pid")
	pid, err := process.ReadPidFile(pidPath)
	if err != nil {
		t.Fatal(err)
	}
	_, err = process.AcquirePidFile(pidPath)
	if !errors.Is(err, process.ErrPidFileLocked) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", pid)) {
		t.Fatalf("AcquirePidFile() while the daemon runs = %v", err)
	}
	report, _ := os.ReadFile(filepath.Join(dir, "report"))
	if string(report) != "sid=true stdin-null=true" {
		t.Fatalf("daemon reported %q", report)
	}

	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(pidPath); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("daemon did not remove its pid file after SIGTERM")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDaemonizeFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		give    string
		wantErr string
	}{
		{"child reports an error", "fail", "process: daemon failed to start: listen: address in use"},
		{"child dies silently", "die", "process: daemon exited during startup without reporting: exit status 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			child, err := process.Daemonize(daemonConfig(t, tt.give, t.TempDir()))
			if child != nil || err == nil || err.Error() != tt.wantErr {
				t.Fatalf("Daemonize() = %v, %v; want error %q", child, err, tt.wantErr)
			}
		})
	}
}

func TestDaemonizeBadExecutable(t *testing.T) {
	t.Parallel()
	_, err := process.Daemonize(process.DaemonConfig{Executable: filepath.Join(t.TempDir(), "nope"), Args: []string{}, Env: []string{}})
	if err == nil || !strings.Contains(err.Error(), "process: start daemon") {
		t.Fatalf("Daemonize() error = %v", err)
	}
}

func TestSignals(t *testing.T) {
	s := process.NotifySignals()
	defer s.Stop()
	for _, tc := range []struct {
		give syscall.Signal
		want <-chan os.Signal
	}{
		{syscall.SIGHUP, s.Reload},
		{syscall.SIGTERM, s.Shutdown},
		{syscall.SIGINT, s.Shutdown},
	} {
		if err := syscall.Kill(os.Getpid(), tc.give); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-tc.want:
			if got != tc.give {
				t.Fatalf("got %v, want %v", got, tc.give)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%v not delivered", tc.give)
		}
	}
}

func TestNotify(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	for _, tc := range []struct {
		give func() error
		want string
	}{
		{process.NotifyReady, "READY=1"},
		{process.NotifyReloading, "RELOADING=1"},
		{func() error { return process.NotifyStatus("3 pools active") }, "STATUS=3 pools active"},
		{process.NotifyStopping, "STOPPING=1"},
	} {
		if err := tc.give(); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 256)
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := conn.Read(buf)
		if err != nil || string(buf[:n]) != tc.want {
			t.Fatalf("notify socket got %q, %v; want %q", buf[:n], err, tc.want)
		}
	}

	t.Setenv("NOTIFY_SOCKET", "")
	if err := process.NotifyReady(); err != nil {
		t.Fatalf("NotifyReady() without NOTIFY_SOCKET = %v, want a no-op", err)
	}
}
