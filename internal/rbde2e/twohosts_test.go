package rbde2e_test

import (
	"strings"
	"testing"
)

// TestTwoHosts is two storage daemons (two --root, as two hosts would run
// them) sharing one Ceph pool: a volume created on one appears on the other
// after a refresh, is deleted from the other, and is gone from the first
// after its refresh.
func TestTwoHosts(t *testing.T) {
	needLab(t)
	newCephPool(t, "shared")
	// Both hosts read client.libvirt's key from one secret driver (two real
	// hosts would each define the secret in their own).
	secrets := startSecrets(t)
	// Host b re-reads an image on every call, as libvirt does; host a keeps
	// the default, which answers from a refresh's figures for a while.
	a := startDaemon(t, secrets, "")
	b := startDaemon(t, secrets, "rbd_listing_ttl = 0\n")
	xml := poolXML("shared", "shared", cephAuthUsage, "")
	definePool(t, a, "shared", xml)
	definePool(t, b, "shared", xml)

	must(t, a, "vol-create-as", "shared", "vm1-disk", "8M")
	src, want := dataFile(t, 8<<20)
	must(t, a, "vol-upload", "--pool", "shared", "vm1-disk", src)
	must(t, b, "pool-refresh", "shared")
	if list := must(t, b, "vol-list", "shared", "--details"); !strings.Contains(list, "vm1-disk") {
		t.Fatalf("host b does not see host a's volume:\n%s", list)
	}
	if got := sum(download(t, b, "shared", "vm1-disk")); got != want {
		t.Errorf("host b reads %s, host a wrote %s", got, want)
	}
	must(t, b, "vol-delete", "--pool", "shared", "vm1-disk")
	must(t, a, "pool-refresh", "shared")
	if list := must(t, a, "vol-list", "shared"); strings.Contains(list, "vm1-disk") {
		t.Errorf("host a still lists the volume host b deleted:\n%s", list)
	}
	// Before a refresh, a volume deleted elsewhere answers as gone (on a
	// host that does not reuse a refresh's figures).
	must(t, a, "vol-create-as", "shared", "vm2-disk", "4M")
	must(t, b, "pool-refresh", "shared")
	must(t, a, "vol-delete", "--pool", "shared", "vm2-disk")
	if got := fails(t, b, "vol-info", "--pool", "shared", "vm2-disk"); !strings.Contains(got, "No such file or directory") {
		t.Errorf("info of a volume deleted on the other host: %q", got)
	}
}
