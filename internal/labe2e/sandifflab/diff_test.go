package sandifflab_test

import (
	"fmt"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/lab"
	"github.com/virtstoraged-go/virtstoraged/internal/labe2e/labkit"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// TestDifferential runs the iscsi and scsi scenarios on libvirtd 9.0 and on
// our daemon, both in the guest on the same target and hosts, and compares
// the transcripts (RunBoth).
func TestDifferential(t *testing.T) {
	a := labkit.StartAnchor(t)
	testkit.RequireTool(t, "virsh")
	d := testkit.StartDaemon(t, testkit.DaemonOptions{Config: labkit.SecretConfig(a)})
	t.Run("iscsi", func(t *testing.T) { diffISCSI(t, a, d) })
	t.Run("chap", func(t *testing.T) { diffCHAP(t, a, d) })
	t.Run("scsi", func(t *testing.T) { diffSCSI(t, a, d) })
}

// diffCHAP: CHAP logins with the password from libvirtd's secret driver,
// which both read (ours through its secret client): the right one, a wrong
// one, and a secret that does not exist.
func diffCHAP(t *testing.T, a *testkit.Anchor, d *testkit.Daemon) {
	good, goodTID := labkit.Target(t, "dchap", 8)
	bad, badTID := labkit.Target(t, "dchapbad", 8)
	labkit.RequireCHAP(t, goodTID, "duser", "d-right-password")
	labkit.RequireCHAP(t, badTID, "duser2", "d-right-password-2")
	a.DefineSecret(t, "7a1d6d2e-8a51-4c1e-9d3f-0a0b0c0d0e01", "<usage type='iscsi'><target>dchapok</target></usage>", false, []byte("d-right-password"))
	a.DefineSecret(t, "7a1d6d2e-8a51-4c1e-9d3f-0a0b0c0d0e02", "<usage type='iscsi'><target>dchapwrong</target></usage>", false, []byte("d-wrong-password"))
	session := func(iqn string) labkit.Step {
		return labkit.Step{Check: func(t *testing.T, s *labkit.Side) string {
			return fmt.Sprintf("session to %s open: %v", iqn, labkit.SessionTo(iqn))
		}}
	}
	steps := []labkit.Step{
		labkit.Vsh("pool-define", "{DIR}/ok.xml"),
		labkit.Vsh("pool-dumpxml", "dcok"),
		labkit.Vsh("pool-start", "dcok"),
		session(good),
		labkit.Vsh("vol-list", "dcok", "--details"),
		labkit.Vsh("pool-define", "{DIR}/wrong.xml"),
		labkit.Vsh("pool-start", "dcwrong"),
		session(bad),
		labkit.Vsh("pool-info", "dcok"),
		labkit.Vsh("pool-undefine", "dcwrong"),
		labkit.Vsh("pool-define", "{DIR}/none.xml"),
		labkit.Vsh("pool-start", "dcnone"),
		session(bad),
		labkit.Vsh("pool-undefine", "dcnone"),
		labkit.Vsh("pool-destroy", "dcok"),
		session(good),
		labkit.Vsh("pool-undefine", "dcok"),
	}
	auth := func(user, usage string) string {
		return "<auth type='chap' username='" + user + "'><secret usage='" + usage + "'/></auth>"
	}
	runs := labkit.RunBoth(t, a, d, steps, func(t *testing.T, s *labkit.Side) func() {
		labkit.WriteSideFile(t, s, "ok.xml", labkit.ISCSIPoolXML("dcok", labkit.Portal, good, auth("duser", "dchapok")))
		labkit.WriteSideFile(t, s, "wrong.xml", labkit.ISCSIPoolXML("dcwrong", labkit.Portal, bad, auth("duser2", "dchapwrong")))
		labkit.WriteSideFile(t, s, "none.xml", labkit.ISCSIPoolXML("dcnone", labkit.Portal, bad, auth("duser2", "dchapnosuch")))
		return func() {
			for _, p := range []string{"dcok", "dcwrong", "dcnone"} {
				s.V.Virsh("pool-destroy", p)
				s.V.Virsh("pool-undefine", p)
			}
			for _, iqn := range []string{good, bad} {
				lab.Try("iscsiadm", "-m", "node", "-T", iqn, "--logout")
			}
		}
	})
	labkit.CompareTranscripts(t, steps, runs[0], runs[1], nil)
}

// diffISCSI: discovery, a login as an initiator IQN, the LUNs described,
// a LUN added on the target, the logout, and a target the portal lacks.
func diffISCSI(t *testing.T, a *testkit.Anchor, d *testkit.Daemon) {
	labkit.DropInitiatorIfaces(t)
	iqn, tid := labkit.Target(t, "diff", 16)
	steps := []labkit.Step{
		labkit.Vsh("find-storage-pool-sources-as", "iscsi", "127.0.0.1"),
		labkit.Vsh("find-storage-pool-sources-as", "iscsi", "127.0.0.1", "3260"),
		labkit.Vsh("pool-define", "{DIR}/pool.xml"),
		labkit.Vsh("pool-build", "dis"),
		labkit.Vsh("pool-start", "dis"),
		{Check: func(t *testing.T, s *labkit.Side) string {
			return fmt.Sprintf("session open: %v", labkit.SessionTo(iqn))
		}},
		labkit.Vsh("pool-info", "dis"),
		labkit.Vsh("pool-dumpxml", "dis"),
		labkit.Vsh("vol-list", "dis", "--details"),
		labkit.Vsh("vol-dumpxml", "--pool", "dis", "unit:0:0:1"),
		labkit.Vsh("vol-info", "--pool", "dis", "unit:0:0:1"),
		labkit.Vsh("vol-create-as", "dis", "new", "4M"),
		labkit.Vsh("vol-delete", "--pool", "dis", "unit:0:0:1"),
		labkit.Vsh("vol-resize", "--pool", "dis", "unit:0:0:1", "32M"),
		{Check: func(t *testing.T, s *labkit.Side) string {
			labkit.AddLUN(t, tid, 2, 8)
			return "LUN 2 added"
		}},
		labkit.Vsh("pool-refresh", "dis"),
		labkit.Vsh("vol-list", "dis", "--details"),
		labkit.Vsh("vol-dumpxml", "--pool", "dis", "unit:0:0:2"),
		labkit.Vsh("vol-upload", "--pool", "dis", "unit:0:0:2", "{DATA}"),
		labkit.Vsh("vol-download", "--pool", "dis", "unit:0:0:2", "{DIR}/back"),
		{Check: func(t *testing.T, s *labkit.Side) string {
			same := labkit.Sum(t, filepath.Join(s.Vars["DIR"], "back"), -1) == labkit.Sum(t, s.Vars["DATA"], -1)
			return fmt.Sprintf("downloaded what was uploaded: %v", same)
		}},
		labkit.Vsh("vol-wipe", "--pool", "dis", "unit:0:0:2"),
		labkit.Vsh("pool-destroy", "dis"),
		{Check: func(t *testing.T, s *labkit.Side) string {
			return fmt.Sprintf("session open: %v", labkit.SessionTo(iqn))
		}},
		labkit.Vsh("pool-delete", "dis"),
		labkit.Vsh("pool-undefine", "dis"),
		labkit.Vsh("pool-define", "{DIR}/missing.xml"),
		labkit.Vsh("pool-start", "dmiss"),
		labkit.Vsh("pool-undefine", "dmiss"),
		labkit.Vsh("pool-define", "{DIR}/nohost.xml"),
		labkit.Vsh("pool-start", "dnohost"),
		labkit.Vsh("pool-undefine", "dnohost"),
		labkit.Vsh("find-storage-pool-sources", "iscsi"),
		labkit.Vsh("pool-define", "{DIR}/nodevice.xml"),
		labkit.Vsh("pool-start", "dnodev"),
		labkit.Vsh("pool-undefine", "dnodev"),
	}
	data := labkit.Patterned(t, 8*labkit.MiB, 9)
	runs := labkit.RunBoth(t, a, d, steps, func(t *testing.T, s *labkit.Side) func() {
		s.Vars["DATA"], s.Vars["IQN"] = data, iqn
		labkit.WriteSideFile(t, s, "pool.xml", labkit.ISCSIPoolXML("dis", labkit.Portal, iqn, "<initiator><iqn name='"+labkit.InitiatorIQN+"'/></initiator>"))
		labkit.WriteSideFile(t, s, "missing.xml", labkit.ISCSIPoolXML("dmiss", labkit.Portal, labkit.IQNBase+"nosuchtarget", ""))
		labkit.WriteSideFile(t, s, "nohost.xml", "<pool type='iscsi'><name>dnohost</name><source><device path='"+iqn+"'/></source><target><path>/dev/disk/by-path</path></target></pool>")
		labkit.WriteSideFile(t, s, "nodevice.xml", "<pool type='iscsi'><name>dnodev</name><source><host name='127.0.0.1'/></source><target><path>/dev/disk/by-path</path></target></pool>")
		return func() {
			for _, p := range []string{"dis", "dmiss", "dnohost", "dnodev"} {
				s.V.Virsh("pool-destroy", p)
				s.V.Virsh("pool-undefine", p)
			}
			lab.Try("iscsiadm", "-m", "node", "-T", iqn, "--logout")
			// The other side adds LUN 2 again, when its pool is running.
			lab.Try("tgtadm", "--lld", "iscsi", "--op", "delete", "--mode", "logicalunit", "--tid", strconv.Itoa(tid), "--lun", "2")
		}
	})
	labkit.CompareTranscripts(t, steps, runs[0], runs[1], nil)
}

// diffSCSI: a scsi_debug host by name, the parentaddr form on the IDE
// controller's host, an fc_host on a machine without Fibre Channel, and
// adapters that do not exist.
func diffSCSI(t *testing.T, a *testkit.Anchor, d *testkit.Daemon) {
	labkit.SCSIHosts.Lock()
	defer labkit.SCSIHosts.Unlock()
	host := labkit.NewSCSIHost(t)
	pci, uid, _ := labkit.IDEHostAddr(t)
	steps := []labkit.Step{
		labkit.Vsh("pool-define", "{DIR}/byname.xml"),
		labkit.Vsh("pool-start", "dsc"),
		labkit.Vsh("pool-info", "dsc"),
		labkit.Vsh("pool-dumpxml", "dsc"),
		labkit.Vsh("vol-list", "dsc", "--details"),
		labkit.Vsh("vol-dumpxml", "--pool", "dsc", "unit:0:0:0"),
		labkit.Vsh("vol-info", "--pool", "dsc", "unit:0:0:0"),
		labkit.Vsh("vol-create-as", "dsc", "new", "4M"),
		labkit.Vsh("find-storage-pool-sources", "scsi"),
		labkit.Vsh("pool-destroy", "dsc"),
		labkit.Vsh("pool-undefine", "dsc"),
		labkit.Vsh("pool-define", "{DIR}/parent.xml"),
		labkit.Vsh("pool-start", "dpa"),
		labkit.Vsh("pool-dumpxml", "dpa"),
		labkit.Vsh("vol-list", "dpa"),
		labkit.Vsh("pool-destroy", "dpa"),
		labkit.Vsh("pool-undefine", "dpa"),
		labkit.Vsh("pool-define", "{DIR}/badparent.xml"),
		labkit.Vsh("pool-start", "dbadpa"),
		labkit.Vsh("pool-undefine", "dbadpa"),
		labkit.Vsh("pool-define", "{DIR}/nohost.xml"),
		labkit.Vsh("pool-start", "dnohost"),
		labkit.Vsh("pool-undefine", "dnohost"),
		labkit.Vsh("pool-define", "{DIR}/fc.xml"),
		labkit.Vsh("pool-dumpxml", "dfc"),
		labkit.Vsh("pool-start", "dfc"),
		labkit.Vsh("pool-undefine", "dfc"),
	}
	runs := labkit.RunBoth(t, a, d, steps, func(t *testing.T, s *labkit.Side) func() {
		s.Vars["HOST"] = host
		labkit.WriteSideFile(t, s, "byname.xml", labkit.SCSIPoolXML("dsc", "<adapter type='scsi_host' name='"+host+"'/>"))
		labkit.WriteSideFile(t, s, "parent.xml", labkit.SCSIPoolXML("dpa", labkit.ParentAddr(pci, uid)))
		labkit.WriteSideFile(t, s, "badparent.xml", labkit.SCSIPoolXML("dbadpa", labkit.ParentAddr([4]string{"0x0000", "0x00", "0x1f", "0x7"}, "99")))
		labkit.WriteSideFile(t, s, "nohost.xml", labkit.SCSIPoolXML("dnohost", "<adapter type='scsi_host' name='host999'/>"))
		labkit.WriteSideFile(t, s, "fc.xml", labkit.SCSIPoolXML("dfc", "<adapter type='fc_host' wwnn='20000000c9831b4b' wwpn='10000000c9831b4b'/>"))
		return func() {
			for _, p := range []string{"dsc", "dpa", "dbadpa", "dnohost", "dfc"} {
				s.V.Virsh("pool-destroy", p)
				s.V.Virsh("pool-undefine", p)
			}
		}
	})
	labkit.CompareTranscripts(t, steps, runs[0], runs[1], nil)
}
