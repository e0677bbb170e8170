package testkit_test

import (
	"os"
	"strings"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testkit.CleanupBuild()
	os.Exit(code)
}

func TestStartDaemonAndStop(t *testing.T) {
	testkit.RequireTool(t, "virsh")
	d := testkit.StartDaemon(t, testkit.DaemonOptions{Config: "log_level = 3\n"})
	for _, p := range []string{d.SocketPath(), d.ROSocketPath(), d.AdminSocketPath()} {
		if len(p) >= 108 {
			t.Errorf("socket path %q is %d bytes, over the UNIX limit", p, len(p))
		}
		if !strings.HasPrefix(p, d.Root+"/run/libvirt/") {
			t.Errorf("socket %q is not under the root %q", p, d.Root)
		}
	}
	if b, err := os.ReadFile(d.ConfigPath()); err != nil || string(b) != "log_level = 3\n" {
		t.Errorf("config file: %q %v", b, err)
	}
	if out, errOut, code := d.Virsh("uri"); code != 0 || out != d.URI()+"\n\n" {
		t.Errorf("virsh uri: rc=%d stdout=%q stderr=%q", code, out, errOut)
	}
	if out, errOut, code := d.VirshRO("pool-list", "--all"); code != 0 || !strings.HasPrefix(out, " Name   State   Autostart\n") {
		t.Errorf("virsh on the ro socket: rc=%d stdout=%q stderr=%q", code, out, errOut)
	}
	pid := d.Pid()
	d.Restart(t)
	if d.Pid() == pid {
		t.Errorf("Restart kept pid %d", pid)
	}
	// one round trip first: a SIGTERM in the first milliseconds is
	// e2e.TestSigtermRightAfterStart's business, not the harness's
	if _, errOut, code := d.Virsh("pool-list"); code != 0 {
		t.Errorf("virsh after Restart: rc=%d %s", code, errOut)
	}
	d.Stop(t)
	if _, _, code := d.Virsh("pool-list"); code == 0 {
		t.Errorf("virsh still connects after Stop")
	}
}

func TestRunReportsExitCodes(t *testing.T) {
	tests := []struct {
		name     string
		give     []string
		wantOut  string
		wantCode int
	}{
		{name: "success", give: []string{"sh", "-c", "echo $LC_ALL"}, wantOut: "C\n", wantCode: 0},
		{name: "failure", give: []string{"sh", "-c", "exit 3"}, wantCode: 3},
		{name: "missing program", give: []string{"/nonexistent/prog"}, wantCode: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, code := testkit.Run("", tt.give[0], tt.give[1:]...)
			if out != tt.wantOut || code != tt.wantCode {
				t.Errorf("Run(%v) = %q, %d; want %q, %d", tt.give, out, code, tt.wantOut, tt.wantCode)
			}
		})
	}
}

func TestStartAnchor(t *testing.T) {
	a := testkit.StartAnchor(t)
	if out, errOut, code := a.Virsh("pool-capabilities"); code != 0 || !strings.Contains(out, "<storagepoolCapabilities>") {
		t.Errorf("virsh pool-capabilities on libvirtd: rc=%d stderr=%q", code, errOut)
	}
	if _, err := os.Stat(a.ConfigDir()); err != nil {
		t.Errorf("libvirtd's config dir: %v", err)
	}
}
