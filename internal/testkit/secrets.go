package testkit

import (
	"os"
	"path/filepath"
	"testing"
)

// SecretURI addresses libvirtd's secret driver on its read-write socket.
func (a *Anchor) SecretURI() string { return "secret:///system?socket=" + a.SocketPath() }

// SystemTokenFile is where this libvirtd keeps the token libvirt's daemons
// share (RUNSTATEDIR/libvirt/common/system.token), which a client presents to
// read private secrets: in its own run directory when it runs in a private
// mount namespace, else the host's.
func (a *Anchor) SystemTokenFile() string {
	if a.hostPaths {
		return "/run/libvirt/common/system.token"
	}
	return filepath.Join(a.Dir, "run-libvirt", "common", "system.token")
}

// DefineSecret defines an ephemeral secret in libvirtd (virsh secret-define)
// with the given <usage> element, and sets its value from a 0600 file (virsh
// secret-set-value --file --plain) unless value is nil. Ephemeral secrets live
// in libvirtd's memory only, so the host's /etc/libvirt/secrets is never
// written; the secret is undefined when the test ends all the same.
func (a *Anchor) DefineSecret(t testing.TB, uuid, usage string, private bool, value []byte) {
	t.Helper()
	priv := "no"
	if private {
		priv = "yes"
	}
	dir := t.TempDir()
	xmlPath := filepath.Join(dir, "secret.xml")
	xml := "<secret ephemeral='yes' private='" + priv + "'><uuid>" + uuid + "</uuid>" + usage + "</secret>"
	if err := os.WriteFile(xmlPath, []byte(xml), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, stderr, code := RunVirsh(a.SecretURI(), "secret-define", xmlPath); code != 0 {
		t.Fatalf("testkit: secret-define: rc=%d %s %s", code, out, stderr)
	}
	t.Cleanup(func() { RunVirsh(a.SecretURI(), "secret-undefine", uuid) })
	if value == nil {
		return
	}
	valPath := filepath.Join(dir, "value")
	if err := os.WriteFile(valPath, value, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, stderr, code := RunVirsh(a.SecretURI(), "secret-set-value", uuid, "--file", valPath, "--plain"); code != 0 {
		t.Fatalf("testkit: secret-set-value: rc=%d %s %s", code, out, stderr)
	}
}

// VolumeUsage is the <usage> element of a volume secret for path.
func VolumeUsage(path string) string {
	return "<usage type='volume'><volume>" + path + "</volume></usage>"
}
