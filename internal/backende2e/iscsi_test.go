package backende2e_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// iscsiTestTargets are the target IQNs the iSCSI tests name; their node
// records, which iscsiadm --op new leaves in /etc/iscsi/nodes for both
// daemons, are removed afterwards.
var iscsiTestTargets = []string{"iqn.2026-12.org.virtstoraged:e2e", "iqn.2026-12.org.virtstoraged:e2e-auth"}

func cleanNodeRecords(t *testing.T) {
	t.Cleanup(func() {
		for _, tgt := range iscsiTestTargets {
			run("iscsiadm", "--mode", "node", "--targetname", tgt, "--op", "delete")
		}
	})
}

// TestISCSILikeLibvirt compares with libvirtd 9.0 what both daemons answer
// where no iSCSI initiator can work (this machine's kernel has no
// iscsi_tcp and no iscsid runs): the same iscsiadm command lines fail the
// same way, for discovery and for a login, and the XML checks of an iscsi
// source agree. Logins that succeed, LUNs and CHAP run in the storage lab
// against a tgt target.
func TestISCSILikeLibvirt(t *testing.T) {
	requireRoot(t)
	requireTools(t, "virsh", "iscsiadm")
	if _, err := os.Stat("/usr/bin/iscsiadm"); err != nil {
		t.Skip("backende2e: libvirt runs /usr/bin/iscsiadm, which is missing")
	}
	if out, _ := run("iscsiadm", "--mode", "session"); !strings.Contains(out, "No active sessions") {
		t.Skipf("backende2e: this host has iSCSI sessions; the comparison needs an initiator that cannot log in:\n%s", out)
	}
	cleanNodeRecords(t)
	anchor := testkit.StartAnchor(t)
	t.Cleanup(func() { anchor.CleanupPools("isc") })
	d := startDaemon(t, testkit.DaemonOptions{})
	dir := t.TempDir()
	write := func(name, src string) string {
		p := filepath.Join(dir, name)
		xml := "<pool type='iscsi'><name>isc</name><source>" + src + "</source><target><path>/dev/disk/by-path</path></target></pool>"
		if err := os.WriteFile(p, []byte(xml), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	full := write("full.xml", "<host name='127.0.0.1'/><device path='"+iscsiTestTargets[0]+"'/>")
	noDevice := write("nodev.xml", "<host name='127.0.0.1'/>")
	noHost := write("nohost.xml", "<device path='"+iscsiTestTargets[0]+"'/>")
	ceph := write("ceph.xml", "<host name='127.0.0.1'/><device path='"+iscsiTestTargets[1]+"'/><auth type='ceph' username='u'><secret usage='x'/></auth>")
	for _, args := range [][]string{
		{"find-storage-pool-sources-as", "iscsi", "--host", "127.0.0.1"},
		{"find-storage-pool-sources-as", "iscsi", "--host", "127.0.0.1", "--port", "3261"},
		{"find-storage-pool-sources-as", "iscsi"},
		{"find-storage-pool-sources-as", "iscsi", "--host", "127.0.0.1", "--initiator", "iqn.1994-05.com.redhat:abc"},
		{"pool-create", full},
		{"pool-create", noDevice},
		{"pool-create", noHost},
		{"pool-create", ceph},
		{"pool-define", full},
		{"pool-dumpxml", "--inactive", "isc"},
		{"pool-undefine", "isc"},
	} {
		wo, we, wc := anchor.Virsh(args...)
		go_, ge, gc := d.Virsh(args...)
		norm := func(s string) string { return uuidLine.ReplaceAllString(s, "") }
		if gc != wc || norm(go_) != norm(wo) || ge != we {
			t.Errorf("virsh %s differs\n--- virtstoraged rc=%d:\n%s%s\n--- libvirtd rc=%d:\n%s%s", strings.Join(args, " "), gc, go_, ge, wc, wo, we)
		}
	}
}
