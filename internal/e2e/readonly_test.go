package e2e_test

import (
	"path/filepath"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// TestReadOnly checks the read-only socket and virsh -r: reads work, writes are
// refused with libvirt's exact message.
func TestReadOnly(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, testkit.DaemonOptions{})
	base := poolBase(t, "r")
	ok(t, d, "pool-create-as", "e2er", "dir", "--target", filepath.Join(base, "p"), "--build")
	ok(t, d, "vol-create-as", "e2er", "v.img", "1M")
	ro := roTarget{d}

	wantContains(t, ro, []string{"pool-list", "--all"}, " e2er   active   no")
	out, errOut, code := testkit.RunVirsh(d.URI(), "-r", "pool-list", "--all")
	if code != 0 || out != " Name   State    Autostart\n----------------------------\n e2er   active   no\n\n" {
		t.Errorf("virsh -r pool-list --all: rc=%d stdout=%q stderr=%q", code, out, errOut)
	}
	wantContains(t, ro, []string{"vol-dumpxml", "v.img", "--pool", "e2er"}, "<name>v.img</name>", "<format type='raw'/>")
	wantContains(t, ro, []string{"pool-info", "e2er"}, "State:          running\n")
	wantErr(t, ro, "error: Failed to define pool e2ex\nerror: operation forbidden: read only access prevents virStoragePoolDefineXML\n",
		"pool-define-as", "e2ex", "dir", "--target", filepath.Join(base, "x"))
	wantErr(t, ro, "error: Failed to refresh pool e2er\nerror: operation forbidden: read only access prevents virStoragePoolRefresh\n",
		"pool-refresh", "e2er")
	wantErr(t, ro, "error: Failed to delete vol v.img\nerror: operation forbidden: read only access prevents virStorageVolDelete\n",
		"vol-delete", "v.img", "--pool", "e2er")
	out, errOut, code = testkit.RunVirsh(d.URI(), "-r", "pool-define-as", "e2ex", "dir", "--target", filepath.Join(base, "x"))
	if want := "error: Failed to define pool e2ex\nerror: operation forbidden: read only access prevents virStoragePoolDefineXML\n"; code == 0 || errOut != want {
		t.Errorf("virsh -r pool-define-as: rc=%d stdout=%q stderr=%q, want %q", code, out, errOut, want)
	}
	if got := listDir(t, filepath.Join(base, "p")); got != "v.img" {
		t.Errorf("after refused writes the pool holds %q, want v.img", got)
	}
	wantOut(t, d, "e2er                \n\n", "pool-list", "--all", "--name")
}

// roTarget drives the daemon through its read-only socket.
type roTarget struct{ d *testkit.Daemon }

func (r roTarget) Virsh(args ...string) (string, string, int) { return r.d.VirshRO(args...) }
func (r roTarget) URI() string                                { return r.d.ROURI() }
