package sanlab_test

import (
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/internal/lab"
	"github.com/virtstoraged-go/virtstoraged/internal/labe2e/labkit"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// TestISCSIPool runs an iscsi pool's life against tgtd through virsh and
// go-libvirt: discovery, a login as the pool's initiator IQN, the LUNs
// under libvirt's names with their keys and capacities, a LUN added on the
// target that a refresh shows, data through a LUN, and the logout.
func TestISCSIPool(t *testing.T) {
	lab.Require(t)
	labkit.DropInitiatorIfaces(t)
	iqn, tid := labkit.Target(t, "pool", 16)
	d := labkit.StartDaemon(t)

	out := testkit.VirshOK(t, d, "find-storage-pool-sources-as", "iscsi", "127.0.0.1")
	if !strings.Contains(out, "<device path='"+iqn+"'/>") || !strings.Contains(out, "<host name='127.0.0.1' port='3260'/>") {
		t.Errorf("find-storage-pool-sources-as iscsi 127.0.0.1 lacks the target %s at 127.0.0.1:3260:\n%s", iqn, out)
	}

	pool := labkit.WriteTemp(t, "pool.xml", labkit.ISCSIPoolXML("sp", labkit.Portal, iqn, "<initiator><iqn name='"+labkit.InitiatorIQN+"'/></initiator>"))
	testkit.VirshOK(t, d, "pool-define", pool)
	testkit.VirshOK(t, d, "pool-start", "sp")
	if !labkit.SessionTo(iqn) {
		t.Fatalf("no iSCSI session to %s after pool-start", iqn)
	}
	if got := labkit.TargetInitiators(t, tid); !slices.Contains(got, labkit.InitiatorIQN) {
		t.Errorf("tgtd sees initiators %q on the target, want the pool's %s", got, labkit.InitiatorIQN)
	}
	rows := testkit.VolList(t, d, "sp")
	if r, ok := rows["unit:0:0:1"]; len(rows) != 1 || !ok || r.Path != labkit.LUNPath(iqn, 1) || r.Type != "block" || r.Capacity != "16.00 MiB" {
		t.Fatalf("vol-list sp = %+v; want unit:0:0:1 at %s, a 16 MiB block volume", rows, labkit.LUNPath(iqn, 1))
	}
	x := labkit.DumpVol(t, d, "sp", "unit:0:0:1")
	wantKey := strings.TrimSpace(lab.Run(t, "/lib/udev/scsi_id", "--replace-whitespace", "--whitelisted", "--device", labkit.LUNPath(iqn, 1)))
	if x.Key != wantKey || x.Capacity != 16*labkit.MiB {
		t.Errorf("vol-dumpxml unit:0:0:1: key %q, capacity %d; want scsi_id's %q and 16 MiB", x.Key, x.Capacity, wantKey)
	}
	labkit.CheckNodeFacts(t, "vol-dumpxml unit:0:0:1", &x.Target)

	// A LUN added on the target shows after a refresh.
	labkit.AddLUN(t, tid, 2, 24)
	testkit.VirshOK(t, d, "pool-refresh", "sp")
	rows = testkit.VolList(t, d, "sp")
	if r := rows["unit:0:0:2"]; len(rows) != 2 || r.Path != labkit.LUNPath(iqn, 2) || r.Capacity != "24.00 MiB" {
		t.Errorf("after LUN 2 was added and a refresh, vol-list sp = %+v; want unit:0:0:2 at %s, 24 MiB", rows, labkit.LUNPath(iqn, 2))
	}
	if info := testkit.VirshInfo(t, d, "pool-info", "--bytes", "sp"); info["Capacity"] != strconv.Itoa(40*labkit.MiB) {
		t.Errorf("pool-info sp: capacity %q, want both LUNs' 40 MiB", info["Capacity"])
	}

	// Data through the LUN, and the same through go-libvirt's view.
	data := labkit.Patterned(t, 24*labkit.MiB, 3)
	testkit.VirshOK(t, d, "vol-upload", "--pool", "sp", "unit:0:0:2", data)
	back := filepath.Join(t.TempDir(), "back")
	testkit.VirshOK(t, d, "vol-download", "--pool", "sp", "unit:0:0:2", back)
	if labkit.Sum(t, back, -1) != labkit.Sum(t, data, -1) || labkit.Sum(t, labkit.LUNPath(iqn, 2), -1) != labkit.Sum(t, data, -1) {
		t.Errorf("what was uploaded into unit:0:0:2 differs from what was downloaded or what the LUN holds")
	}
	l := labkit.DialGoLibvirt(t, d)
	p, err := l.StoragePoolLookupByName("sp")
	if err != nil {
		t.Fatalf("go-libvirt StoragePoolLookupByName: %v", err)
	}
	vols, _, err := l.StoragePoolListAllVolumes(p, 1, 0)
	if err != nil {
		t.Fatalf("go-libvirt StoragePoolListAllVolumes: %v", err)
	}
	var names []string
	for _, v := range vols {
		names = append(names, v.Name)
		_, capacity, _, err := l.StorageVolGetInfo(v)
		if err != nil || capacity == 0 {
			t.Errorf("go-libvirt StorageVolGetInfo(%s) = %d, %v", v.Name, capacity, err)
		}
		if v.Key == "" {
			t.Errorf("go-libvirt: %s has no key", v.Name)
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"unit:0:0:1", "unit:0:0:2"}) {
		t.Errorf("go-libvirt lists %q", names)
	}

	testkit.VirshOK(t, d, "pool-destroy", "sp")
	if labkit.SessionTo(iqn) {
		t.Errorf("the session to %s is still open after pool-destroy", iqn)
	}
	testkit.VirshOK(t, d, "pool-start", "sp")
	if n := len(testkit.VolList(t, d, "sp")); n != 2 || !labkit.SessionTo(iqn) {
		t.Errorf("after a second start: %d volumes, session open %v; want 2, true", n, labkit.SessionTo(iqn))
	}
	testkit.VirshOK(t, d, "pool-destroy", "sp")
	testkit.VirshOK(t, d, "pool-undefine", "sp")
}

// TestISCSICHAP logs in with CHAP, the password from libvirtd's secret
// driver (the daemon's secret client pointed at the guest's libvirtd): the
// right password logs in, a wrong one fails clearly and leaves no session
// and the other pool running, a secret that does not exist fails clearly.
func TestISCSICHAP(t *testing.T) {
	a := labkit.StartAnchor(t)
	good, goodTID := labkit.Target(t, "chap", 8)
	bad, badTID := labkit.Target(t, "chapbad", 8)
	labkit.RequireCHAP(t, goodTID, "labuser", "right-password-1")
	labkit.RequireCHAP(t, badTID, "labuser2", "right-password-2")
	const goodUUID, wrongUUID = "6f1d6d2e-8a51-4c1e-9d3f-0a0b0c0d0e01", "6f1d6d2e-8a51-4c1e-9d3f-0a0b0c0d0e02"
	a.DefineSecret(t, goodUUID, "<usage type='iscsi'><target>labchap</target></usage>", true, []byte("right-password-1"))
	a.DefineSecret(t, wrongUUID, "<usage type='iscsi'><target>labwrong</target></usage>", true, []byte("wrong-password"))
	d := testkit.StartDaemon(t, testkit.DaemonOptions{Config: labkit.SecretConfig(a)})

	auth := func(user, usage string) string {
		return "<auth type='chap' username='" + user + "'><secret usage='" + usage + "'/></auth>"
	}
	testkit.VirshOK(t, d, "pool-define", labkit.WriteTemp(t, "good.xml", labkit.ISCSIPoolXML("chapok", labkit.Portal, good, auth("labuser", "labchap"))))
	testkit.VirshOK(t, d, "pool-start", "chapok")
	if rows := testkit.VolList(t, d, "chapok"); len(rows) != 1 {
		t.Errorf("vol-list chapok = %+v, want its one LUN", rows)
	}

	testkit.VirshOK(t, d, "pool-define", labkit.WriteTemp(t, "wrong.xml", labkit.ISCSIPoolXML("chapwrong", labkit.Portal, bad, auth("labuser2", "labwrong"))))
	errOut := testkit.VirshErr(t, d, []string{"error: Failed to start pool chapwrong"}, "pool-start", "chapwrong")
	if !strings.Contains(strings.ToLower(errOut), "auth") {
		t.Errorf("a wrong CHAP password fails without saying it is the authentication: %s", errOut)
	}
	if strings.Contains(errOut, "wrong-password") {
		t.Errorf("the error text carries the secret's value: %s", errOut)
	}
	if labkit.SessionTo(bad) {
		t.Errorf("a session to %s is open after a login with a wrong password", bad)
	}
	if rows := testkit.VolList(t, d, "chapok"); len(rows) != 1 || !labkit.SessionTo(good) {
		t.Errorf("after the failed login the other pool lists %+v, its session open %v", rows, labkit.SessionTo(good))
	}

	testkit.VirshOK(t, d, "pool-undefine", "chapwrong")
	testkit.VirshOK(t, d, "pool-define", labkit.WriteTemp(t, "none.xml", labkit.ISCSIPoolXML("chapnone", labkit.Portal, bad, auth("labuser2", "nosuchsecret"))))
	testkit.VirshErr(t, d, []string{"no secret with matching usage 'nosuchsecret'"}, "pool-start", "chapnone")
	if labkit.SessionTo(bad) {
		t.Errorf("a session to %s is open after a start without its secret", bad)
	}
	if b, err := labkit.ReadText(d.LogPath); err == nil && (strings.Contains(b, "right-password") || strings.Contains(b, "wrong-password")) {
		t.Errorf("the daemon's log carries a CHAP password")
	}
	testkit.VirshOK(t, d, "pool-destroy", "chapok")
}

// TestISCSIBadInput: a portal where nothing listens fails within the
// backend's bound with a clear error while another pool answers at once; a
// target the portal does not have fails and leaves no session.
func TestISCSIBadInput(t *testing.T) {
	lab.Require(t)
	iqn, _ := labkit.Target(t, "bad", 8)
	d := labkit.StartDaemon(t)
	testkit.VirshOK(t, d, "pool-define", labkit.WriteTemp(t, "ok.xml", labkit.ISCSIPoolXML("okpool", labkit.Portal, iqn, "")))
	testkit.VirshOK(t, d, "pool-start", "okpool")

	testkit.VirshOK(t, d, "pool-define", labkit.WriteTemp(t, "dead.xml", labkit.ISCSIPoolXML("dead", "127.0.0.1:3261", labkit.IQNBase+"dead", "")))
	start := time.Now()
	ch := labkit.VirshAsync(d, "pool-start", "dead")
	// While the login retries, another pool answers: a listing that
	// completes while the start is still pending proves it.
	testkit.VirshOK(t, d, "pool-refresh", "okpool")
	rows := testkit.VolList(t, d, "okpool")
	res, done := labkit.Done(ch)
	if len(rows) != 1 {
		t.Errorf("vol-list okpool during the dead portal's start = %+v", rows)
	}
	if done {
		t.Errorf("the dead portal's start ended (rc=%d) before another pool was listed: iscsiadm gave up at once instead of retrying, so nothing shows the bound or calls side by side", res.Code)
	} else {
		select {
		case res = <-ch:
		case <-time.After(3 * time.Minute):
			t.Fatalf("pool-start of a pool on a portal where nothing listens still runs after 3 minutes")
		}
	}
	if res.Code == 0 || !strings.Contains(res.ErrOut, "127.0.0.1:3261") {
		t.Errorf("pool-start dead: rc=%d, want a failure naming the portal:\n%s", res.Code, res.ErrOut)
	}
	t.Logf("pool-start on a dead portal failed after %v: %s", time.Since(start), strings.TrimSpace(res.ErrOut))

	testkit.VirshOK(t, d, "pool-define", labkit.WriteTemp(t, "missing.xml", labkit.ISCSIPoolXML("missing", labkit.Portal, labkit.IQNBase+"nosuchtarget", "")))
	testkit.VirshErr(t, d, []string{"error: Failed to start pool missing"}, "pool-start", "missing")
	if labkit.SessionTo(labkit.IQNBase + "nosuchtarget") {
		t.Errorf("a session to a target the portal does not have")
	}
	testkit.VirshErr(t, d, []string{"Expected exactly 1 host"}, "find-storage-pool-sources", "iscsi",
		labkit.WriteTemp(t, "spec.xml", "<source><host name='127.0.0.1'/><host name='127.0.0.2'/></source>"))
	if rows := testkit.VolList(t, d, "okpool"); len(rows) != 1 {
		t.Errorf("vol-list okpool after the failures = %+v", rows)
	}
	testkit.VirshOK(t, d, "pool-destroy", "okpool")
}
