package systemdlab_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/internal/lab"
)

// checkBound bounds scripts/systemd-check.sh in the guest: about a minute
// under TCG on a loaded machine, of which the idle timeout's exit is 5 s.
const checkBound = 4 * time.Minute

// TestPackageUnderSystemd installs the package built by `make deb` and runs
// scripts/systemd-check.sh against it under systemd as PID 1. Every check the
// script reports is a line; a FAIL line fails the test with its text, and the
// checks the issue names must each have passed, so that a script cut short
// or trimmed cannot pass.
func TestPackageUnderSystemd(t *testing.T) {
	lab.Require(t)
	deb := os.Getenv(debEnv)
	if deb == "" {
		t.Fatalf("%s not set: the host's Prepare did not run", debEnv)
	}
	if b, _ := os.ReadFile("/proc/1/comm"); strings.TrimSpace(string(b)) != "systemd" {
		t.Fatalf("PID 1 is %q, not systemd: lab.Options.Systemd did not take", strings.TrimSpace(string(b)))
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	// Debian 12's monolithic daemon is installed (the Makefile's DEB_PKGS)
	// but not enabled, as on a host without libvirt-daemon-system: the
	// package must install beside it without --force and enable its units.
	requireInstalled(t, "libvirt-daemon")
	// The host's userland may be a container image's, whose policy-rc.d
	// forbids maintainer scripts to start anything (exit 101). A real host
	// has none: the guest drops it from its overlay, so that the package's
	// postinst is seen starting the sockets.
	if err := os.Remove("/usr/sbin/policy-rc.d"); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), checkBound)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "scripts", "systemd-check.sh"), deb)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	t.Logf("systemd-check.sh:\n%s", out)
	passed := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(line, "FAIL "):
			t.Error(line)
		case strings.HasPrefix(line, "ok   "):
			passed[strings.TrimPrefix(line, "ok   ")] = true
		}
	}
	if err != nil {
		journal(t)
		t.Fatalf("systemd-check.sh: %v", err)
	}
	for _, want := range []string{
		"dpkg -i " + deb,
		"virtstoraged.service enabled",
		"virtstoraged.socket started by the package",
		"virtstoraged-admin.socket started by the package",
		"/run/libvirt/virtstoraged-sock mode and group from virtstoraged.socket",
		"/run/libvirt/virtstoraged-sock-ro mode and group from virtstoraged-ro.socket",
		"/run/libvirt/virtstoraged-admin-sock mode and group from virtstoraged-admin.socket",
		"the daemon waits for its first client",
		"virsh -c storage:///system pool-list starts the daemon",
		"service active (running) after READY=1",
		"service is Type=notify",
		"one daemon served all three sockets",
		"reload kept the process",
		"reload applied the new log_filters",
		"reload defined systemdcheck from /etc/libvirt/storage",
		"stopped cleanly",
		"idle daemon exits by itself",
		"idle exit is a clean one",
		"a new process after the idle exit",
		"dpkg -P virtstoraged-go",
	} {
		if !passed[want] {
			t.Errorf("check %q did not pass", want)
		}
	}
	// The package took nothing of libvirt's away.
	requireInstalled(t, "libvirt-daemon")
}

func requireInstalled(t *testing.T, pkg string) {
	t.Helper()
	out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", pkg).CombinedOutput()
	if got := strings.TrimSpace(string(out)); err != nil || got != "install ok installed" {
		t.Fatalf("%s: dpkg status %q (%v), want installed", pkg, got, err)
	}
}

// journal logs what systemd and the daemon said, for a failed run.
func journal(t *testing.T) {
	t.Helper()
	out, _ := exec.Command("journalctl", "--no-pager", "-b", "-n", "150",
		"-u", "virtstoraged.service", "-u", "virtstoraged.socket", "-u", "virtstoraged-ro.socket",
		"-u", "virtstoraged-admin.socket", "-u", "init.scope").CombinedOutput()
	t.Logf("journal:\n%s", out)
}
