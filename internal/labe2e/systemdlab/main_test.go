// Package systemdlab_test proves the Debian package under real systemd: in a
// storage lab guest booted with systemd as PID 1 (lab.Options.Systemd), the
// .deb that `make deb` builds on the host is installed with dpkg next to
// Debian 12's libvirt-daemon, and scripts/systemd-check.sh checks what a
// system daemon must do: units enabled, the three sockets with their units'
// modes and group, activation by the first client, READY=1 seen by systemd,
// reload (SIGHUP rereads the config and the pool definitions), stop, the idle
// timeout and activation again, then removal and purge.
package systemdlab_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/internal/lab"
)

// debEnv names the package built on the host, for the guest.
const debEnv = "VIRTSTORAGED_SYSTEMDLAB_DEB"

// TestMain builds the package on the host and boots the guest with systemd.
func TestMain(m *testing.M) {
	lab.Main(m, lab.Options{Systemd: true, Timeout: 12 * time.Minute, Prepare: prepareDeb})
}

// prepareDeb runs `make deb` on the host, into a directory of its own: the
// build is the one an administrator runs, and faster there than in the guest.
func prepareDeb() (env []string, cleanup func(), err error) {
	root, err := repoRoot()
	if err != nil {
		return nil, nil, err
	}
	dir, err := os.MkdirTemp("", "systemdlab-deb-")
	if err != nil {
		return nil, nil, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	cmd := exec.Command("make", "--no-print-directory", "-C", root, "deb", "DEB_OUT="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, cleanup, fmt.Errorf("make deb: %w\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	deb := lines[len(lines)-1]
	if !strings.HasSuffix(deb, ".deb") || filepath.Dir(deb) != dir {
		return nil, cleanup, fmt.Errorf("make deb: no package path on its last line:\n%s", out)
	}
	return []string{debEnv + "=" + deb}, cleanup, nil
}

// repoRoot is the directory of go.mod above the working directory (the
// package's directory under go test, on the host as in the guest).
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}
