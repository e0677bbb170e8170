package sanlab_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/lab"
	"github.com/virtstoraged-go/virtstoraged/internal/labe2e/labkit"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// TestSCSIPool lists a scsi_debug host's LUNs through a pool that names the
// host, finds a LUN added later (start and refresh scan the host), and
// resolves the parentaddr form to the IDE controller's host.
func TestSCSIPool(t *testing.T) {
	lab.Require(t)
	labkit.SCSIHosts.Lock()
	defer labkit.SCSIHosts.Unlock()
	host := labkit.NewSCSIHost(t)
	d := labkit.StartDaemon(t)
	testkit.VirshOK(t, d, "pool-define", labkit.WriteTemp(t, "scsi.xml", labkit.SCSIPoolXML("sc", "<adapter type='scsi_host' name='"+host+"'/>")))
	testkit.VirshOK(t, d, "pool-start", "sc")
	rows := testkit.VolList(t, d, "sc")
	r, ok := rows["unit:0:0:0"]
	if len(rows) != 1 || !ok || !strings.HasPrefix(r.Path, "/dev/sd") || r.Capacity != "16.00 MiB" {
		t.Fatalf("vol-list sc = %+v; want unit:0:0:0, a 16 MiB /dev/sdX", rows)
	}
	if want := labkit.SdOf(t, host, "0"); r.Path != want {
		t.Errorf("unit:0:0:0 at %s, the LUN is %s", r.Path, want)
	}
	x := labkit.DumpVol(t, d, "sc", "unit:0:0:0")
	wantKey := strings.TrimSpace(lab.Run(t, "/lib/udev/scsi_id", "--replace-whitespace", "--whitelisted", "--device", r.Path))
	if x.Key != wantKey {
		t.Errorf("vol-dumpxml unit:0:0:0: key %q, want scsi_id's %q", x.Key, wantKey)
	}
	labkit.CheckNodeFacts(t, "vol-dumpxml unit:0:0:0", &x.Target)

	// A LUN the host reports from now on: the kernel sees it at the scan a
	// refresh triggers.
	labkit.WriteSys(t, filepath.Join(labkit.SCSIDebugDir, "max_luns"), "2")
	testkit.VirshOK(t, d, "pool-refresh", "sc")
	rows = testkit.VolList(t, d, "sc")
	if r := rows["unit:0:0:1"]; len(rows) != 2 || r.Path != labkit.SdOf(t, host, "1") {
		t.Errorf("after a LUN was added and a refresh, vol-list sc = %+v; want unit:0:0:1 too", rows)
	}
	data := labkit.Patterned(t, 16*labkit.MiB, 4)
	testkit.VirshOK(t, d, "vol-upload", "--pool", "sc", "unit:0:0:1", data)
	back := filepath.Join(t.TempDir(), "back")
	testkit.VirshOK(t, d, "vol-download", "--pool", "sc", "unit:0:0:1", back)
	if labkit.Sum(t, back, -1) != labkit.Sum(t, data, -1) {
		t.Errorf("what was uploaded into unit:0:0:1 differs from what was downloaded")
	}
	testkit.VirshOK(t, d, "pool-destroy", "sc")
	testkit.VirshOK(t, d, "pool-undefine", "sc")
	labkit.WriteSys(t, filepath.Join(labkit.SCSIDebugDir, "max_luns"), "1")
	labkit.DeleteSCSIDevice(t, strings.TrimPrefix(host, "host")+":0:0:1")

	// The parentaddr form: the IDE controller's hosts, which have a PCI
	// parent (scsi_debug's do not).
	pci, uid, ideHost := labkit.IDEHostAddr(t)
	testkit.VirshOK(t, d, "pool-define", labkit.WriteTemp(t, "pa.xml", labkit.SCSIPoolXML("pa", labkit.ParentAddr(pci, uid))))
	testkit.VirshOK(t, d, "pool-start", "pa")
	if info := testkit.VirshInfo(t, d, "pool-info", "pa"); info["State"] != "running" {
		t.Errorf("pool-info pa (host %s) = %v", ideHost, info)
	}
	testkit.VirshOK(t, d, "pool-destroy", "pa")
	testkit.VirshOK(t, d, "pool-undefine", "pa")
}
