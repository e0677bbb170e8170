package testkit

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// busConfig is a system-type message bus on a private socket where anyone may
// own any name and call anything: the tests' stand-in for the host's system
// bus, which they never touch.
const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=SOCKET</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
`

// Bus is a private dbus-daemon.
type Bus struct {
	// Address is the bus address for DBUS_SYSTEM_BUS_ADDRESS.
	Address string
	// Socket is the bus socket's path.
	Socket string

	cmd *exec.Cmd
}

// StartDBus runs a private message bus for the test and stops it at the end.
// It skips when dbus-daemon is not installed (package dbus-daemon).
func StartDBus(t testing.TB) *Bus {
	t.Helper()
	RequireTool(t, "dbus-daemon")
	// Short: UNIX socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "bus")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	// Other users' clients (the polkit tests' virsh) must reach the socket.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return StartDBusAt(t, filepath.Join(dir, "bus"))
}

// StartDBusAt runs a private message bus on the socket path (a bus coming
// back where an earlier one was).
func StartDBusAt(t testing.TB, socket string) *Bus {
	t.Helper()
	bin := RequireTool(t, "dbus-daemon")
	_ = os.Remove(socket) // a killed bus leaves its socket behind
	b := &Bus{Socket: socket}
	conf := socket + ".conf"
	if err := os.WriteFile(conf, []byte(strings.Replace(busConfig, "SOCKET", b.Socket, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	b.cmd = exec.Command(bin, "--config-file="+conf, "--nofork", "--nopidfile", "--print-address=1")
	out, err := b.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("testkit: start dbus-daemon: %v", err)
	}
	t.Cleanup(func() {
		_ = b.cmd.Process.Kill()
		_ = b.cmd.Wait()
	})
	// The address is printed once the bus listens.
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case b.Address = <-line:
	case <-time.After(15 * time.Second):
		t.Fatal("testkit: dbus-daemon printed no address within 15s")
	}
	if b.Address == "" {
		t.Fatal("testkit: dbus-daemon exited without an address")
	}
	return b
}

// Stop ends the bus before the test does.
func (b *Bus) Stop() {
	_ = b.cmd.Process.Kill()
	_ = b.cmd.Wait()
}
