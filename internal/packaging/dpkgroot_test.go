package packaging_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The package is installed, upgraded, removed and purged with the real dpkg,
// into a throwaway root: `dpkg --root DIR --force-script-chrootless` unpacks
// there, keeps its database there and runs the maintainer scripts on the
// host with DPKG_ROOT=DIR. The scripts honour DPKG_ROOT (deb-systemd-helper
// makes its links under it) and neither start nor reload anything then, so
// the host is left alone; each test checks that too.

// newDpkgRoot makes an empty root with an empty dpkg database.
func newDpkgRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"var/lib/dpkg/status", "var/lib/dpkg/available"} {
		if err := os.WriteFile(filepath.Join(root, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// dpkg runs dpkg on root; libc6 and the other dependencies live on the host,
// not in the empty root, hence --force-depends.
func dpkg(t *testing.T, root string, args ...string) string {
	t.Helper()
	args = append([]string{"--root=" + root, "--force-script-chrootless", "--force-depends"}, args...)
	cmd := exec.Command("dpkg", args...)
	cmd.Env = append(ownEnv(), sysPath)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// enableLinks are the links deb-systemd-helper makes when it enables our
// units: the service for boot, the three sockets.
var enableLinks = []string{
	"etc/systemd/system/multi-user.target.wants/virtstoraged.service",
	"etc/systemd/system/sockets.target.wants/virtstoraged.socket",
	"etc/systemd/system/sockets.target.wants/virtstoraged-ro.socket",
	"etc/systemd/system/sockets.target.wants/virtstoraged-admin.socket",
}

func linkTarget(root, link string) string {
	target, err := os.Readlink(filepath.Join(root, link))
	if err != nil {
		return ""
	}
	return target
}

func exists(root, p string) bool {
	_, err := os.Lstat(filepath.Join(root, p))
	return err == nil
}

// hostUntouched checks that the host has no trace of the package.
func hostUntouched(t *testing.T) {
	t.Helper()
	for _, l := range enableLinks {
		if exists("/", l) {
			t.Errorf("the host has /%s: a maintainer script escaped its root", l)
		}
	}
	if m, _ := filepath.Glob("/var/lib/systemd/deb-systemd-helper-enabled/*virtstoraged*"); len(m) > 0 {
		t.Errorf("the host has deb-systemd-helper state %v", m)
	}
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("dpkg --root installs files owned by root: run as root (CI does)")
	}
	requireTools(t, "dpkg", "deb-systemd-helper")
}

func dpkgRootTests(t *testing.T, d builtDeb) {
	requireRoot(t)
	hostUntouched(t)

	t.Run("install, remove, purge", func(t *testing.T) {
		root := newDpkgRoot(t)
		dpkg(t, root, "-i", d.path)
		for _, l := range enableLinks {
			unit := filepath.Base(l)
			if got := linkTarget(root, l); got != "/lib/systemd/system/"+unit {
				t.Errorf("after install, %s -> %q, want the shipped unit", l, got)
			}
		}
		for _, f := range []string{"usr/sbin/virtstoraged", "etc/libvirt/virtstoraged.conf", "lib/systemd/system/virtstoraged.socket"} {
			if !exists(root, f) {
				t.Errorf("after install, %s missing", f)
			}
		}
		// A pool defined meanwhile is the administrator's, and shared with
		// libvirt: neither a removal nor a purge may take it.
		pool := "etc/libvirt/storage/default.xml"
		if err := os.WriteFile(filepath.Join(root, pool), []byte("<pool type='dir'/>\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "var/log/libvirt/virtstoraged.log"), []byte("log\n"), 0o600); err != nil {
			t.Fatal(err)
		}

		dpkg(t, root, "-r", "virtstoraged-go")
		for _, f := range []string{"usr/sbin/virtstoraged", "lib/systemd/system/virtstoraged.socket"} {
			if exists(root, f) {
				t.Errorf("after remove, %s is still there", f)
			}
		}
		for _, f := range []string{"etc/libvirt/virtstoraged.conf", "etc/default/virtstoraged", pool} {
			if !exists(root, f) {
				t.Errorf("after remove, %s is gone (conffiles and pools stay until purge, pools beyond)", f)
			}
		}

		dpkg(t, root, "-P", "virtstoraged-go")
		for _, f := range append([]string{"etc/libvirt/virtstoraged.conf", "etc/default/virtstoraged", "var/log/libvirt/virtstoraged.log",
			"var/lib/systemd/deb-systemd-helper-enabled/virtstoraged.service.dsh-also"}, enableLinks...) {
			if exists(root, f) {
				t.Errorf("after purge, %s is still there", f)
			}
		}
		if !exists(root, pool) {
			t.Errorf("purge removed the pool definition %s", pool)
		}
		hostUntouched(t)
	})

	t.Run("libvirtd in use", func(t *testing.T) {
		// Debian 12's monolithic libvirtd, enabled: it serves storage
		// itself, and our service Conflicts= with it.
		root := newDpkgRoot(t)
		wants := filepath.Join(root, "etc/systemd/system/multi-user.target.wants")
		if err := os.MkdirAll(wants, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("/lib/systemd/system/libvirtd.service", filepath.Join(wants, "libvirtd.service")); err != nil {
			t.Fatal(err)
		}
		out := dpkg(t, root, "-i", d.path)
		if !strings.Contains(out, "libvirtd is in use on this host") {
			t.Errorf("install did not say why it left the units alone:\n%s", out)
		}
		for _, l := range enableLinks {
			if exists(root, l) {
				t.Errorf("with libvirtd in use, install enabled %s", l)
			}
		}
		if linkTarget(root, "etc/systemd/system/multi-user.target.wants/libvirtd.service") != "/lib/systemd/system/libvirtd.service" {
			t.Error("install touched libvirtd's enablement")
		}
		hostUntouched(t)
	})

	t.Run("upgrade keeps the administrator's choice", func(t *testing.T) {
		root := newDpkgRoot(t)
		dpkg(t, root, "-i", d.path)
		// What `systemctl disable` does: it removes the units' links.
		for _, l := range enableLinks {
			if err := os.Remove(filepath.Join(root, l)); err != nil {
				t.Fatal(err)
			}
		}
		// The same version again goes through the upgrade path
		// (postinst configure with the old version).
		dpkg(t, root, "-i", d.path)
		for _, l := range enableLinks {
			if exists(root, l) {
				t.Errorf("an upgrade enabled %s again", l)
			}
		}
		hostUntouched(t)
	})
}
