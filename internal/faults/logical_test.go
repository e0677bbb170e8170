package faults_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/adapters/dir"
	"github.com/virtstoraged-go/virtstoraged/adapters/logical"
	"github.com/virtstoraged-go/virtstoraged/adapters/osexec"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/faults"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// lvmRig is the service over the logical backend over the LVM simulator, with
// two 12 MiB device files (two data extents each).
type lvmRig struct {
	*rig
	sim  *faults.LVM
	inj  *faults.Injector
	devs []string
	pool domain.PoolHandle
	// images is a running dir pool next to the logical one (startedNodeRig
	// only), to clone images of other formats from.
	images domain.PoolHandle
}

// vgName is unusual so that no real /dev/VG/LV node can exist on the host.
const vgName = "vsfaultsvg"

func newLVMRig(t *testing.T) *lvmRig {
	t.Helper()
	dir := t.TempDir()
	sim := faults.NewLVM()
	inj := faults.NewInjector(sim)
	lr := &lvmRig{rig: newRig(t, logical.New(inj, testkit.QuietLog())), sim: sim, inj: inj}
	for i := 1; i <= 2; i++ {
		d := filepath.Join(dir, fmt.Sprintf("disk%d", i))
		makeFile(t, d, 12<<20)
		lr.devs = append(lr.devs, d)
	}
	lr.pool = lr.define(fmt.Sprintf(`<pool type='logical'><name>%s</name>
  <source><device path='%s'/><device path='%s'/><name>%s</name><format type='lvm2'/></source>
  </pool>`, vgName, lr.devs[0], lr.devs[1], vgName))
	return lr
}

// checkConsistent refreshes the pool and compares what the service reports
// with the simulated VG: figures, and one volume per active LV.
func (lr *lvmRig) checkConsistent() {
	t := lr.t
	t.Helper()
	lr.refresh(lr.pool)
	st := lr.sim.State()
	info := lr.info(lr.pool)
	want := domain.PoolInfo{State: info.State, Capacity: st.Size[vgName], Available: st.Free[vgName], Allocation: st.Size[vgName] - st.Free[vgName]}
	if info != want {
		t.Errorf("pool-info after refresh = %+v, LVM says %+v", info, want)
	}
	wantVols := st.ActiveLVs(vgName)
	if wantVols == nil {
		wantVols = []string{}
	}
	if got := lr.vols(lr.pool); !slices.Equal(got, wantVols) {
		t.Errorf("vol-list = %v, active LVs = %v", got, wantVols)
	}
	lr.checkNoTemps()
}

// calls runs op on a fresh rig without faults and returns its command lines:
// the steps a matrix fails one by one.
func baseline(t *testing.T, setup func(*testing.T) (*faults.Injector, func() error)) [][]string {
	t.Helper()
	inj, op := setup(t)
	inj.Reset()
	if err := op(); err != nil {
		t.Fatalf("baseline run failed: %v", err)
	}
	return inj.RunLog()
}

// TestLogicalBuildFailsAtEveryStep fails each command of a two-device build
// in turn and checks that every PV label written so far is removed, no VG is
// left, the pool stays inactive without a status file, and a second build
// then succeeds on the same devices.
func TestLogicalBuildFailsAtEveryStep(t *testing.T) {
	setup := func(t *testing.T) (*faults.Injector, func() error) {
		lr := newLVMRig(t)
		return lr.inj, func() error { return lr.svc.PoolBuild(lr.ctx, lr.pool, 0) }
	}
	steps := baseline(t, setup)
	if want := []string{"blkid", "pvcreate", "blkid", "pvcreate", "vgcreate"}; !slices.Equal(programs(steps), want) {
		t.Fatalf("build runs %v, want %v", programs(steps), want)
	}
	for k, step := range steps {
		t.Run(fmt.Sprintf("%d-%s", k, step[0]), func(t *testing.T) {
			lr := newLVMRig(t)
			lr.inj.Reset()
			lr.inj.Fail(k, faults.Fault{Exit: 5, Stderr: "  injected failure"})
			err := lr.svc.PoolBuild(lr.ctx, lr.pool, 0)
			wantErrMentions(t, err, step[0])
			lr.checkBuildRolledBack(k)
		})
	}
	// The header wipe runs in process between blkid and pvcreate: a second
	// device that cannot be opened fails it after the first one was labelled.
	t.Run("wipe-of-second-device", func(t *testing.T) {
		lr := newLVMRig(t)
		missing := lr.devs[1] + ".gone"
		if err := lr.svc.PoolUndefine(lr.ctx, lr.pool); err != nil {
			t.Fatal(err)
		}
		lr.pool = lr.define(fmt.Sprintf(`<pool type='logical'><name>%s</name>
  <source><device path='%s'/><device path='%s'/><name>%s</name><format type='lvm2'/></source>
  </pool>`, vgName, lr.devs[0], missing, vgName))
		lr.inj.Reset()
		err := lr.svc.PoolBuild(lr.ctx, lr.pool, 0)
		wantErrMentions(t, err, missing)
		lr.checkBuildRolledBack(-1)
	})
}

func programs(log [][]string) []string {
	out := make([]string, len(log))
	for i, argv := range log {
		out[i] = argv[0]
	}
	return out
}

// checkBuildRolledBack checks the state after a failed build whose call
// failed (-1: an in-process step) was number failed.
func (lr *lvmRig) checkBuildRolledBack(failed int) {
	t := lr.t
	t.Helper()
	log := lr.inj.RunLog()
	if failed >= 0 && !slices.Equal(lr.inj.Failed(), []int{failed}) {
		t.Fatalf("the fault at call %d never fired; commands:\n%s", failed, lr.inj.RunLogString())
	}
	// Every device labelled before the failure must be unlabelled after it.
	for i, argv := range log {
		if argv[0] != "pvcreate" || i == failed {
			continue
		}
		dev := argv[len(argv)-1]
		if !lr.inj.Ran(i+1, "pvremove", dev) {
			t.Errorf("pvcreate %s was not rolled back; commands:\n%s", dev, lr.inj.RunLogString())
		}
	}
	if st := lr.sim.State(); len(st.PVs) != 0 || len(st.VGs) != 0 {
		t.Errorf("LVM state after a failed build:\n%swant no PV and no VG", st)
	}
	if lr.active(lr.pool) {
		t.Error("pool active after a failed build")
	}
	if lr.hasStatus(vgName) {
		t.Error("status file written by a failed build")
	}
	lr.checkNoTemps()
	if len(lr.devs) == 2 && failed >= 0 {
		lr.inj.Reset()
		if err := lr.svc.PoolBuild(lr.ctx, lr.pool, 0); err != nil {
			t.Fatalf("build after the rolled-back one: %v", err)
		}
		if st := lr.sim.State(); len(st.VGs[vgName]) != 0 || st.Size[vgName] != 16<<20 {
			t.Errorf("LVM state after the second build:\n%s", st)
		}
	}
}

// TestLogicalDeleteFailsAtEveryStep fails vgremove and each pvremove of a
// pool delete. A delete cannot be rolled back: the test checks that the
// error names the failed step, that only that step's effect is missing (the
// remaining PV labels are still removed), that the pool stays defined and
// inactive, and that a second delete finishes the job.
func TestLogicalDeleteFailsAtEveryStep(t *testing.T) {
	tests := []struct {
		name    string
		giveK   int
		wantErr string
		wantPVs func(devs []string) map[string]string
		wantVG  bool
	}{
		{name: "vgremove", giveK: 0, wantErr: "vgremove", wantVG: true,
			wantPVs: func(d []string) map[string]string { return map[string]string{d[0]: vgName, d[1]: vgName} }},
		{name: "pvremove first", giveK: 1, wantErr: "pvremove",
			wantPVs: func(d []string) map[string]string { return map[string]string{d[0]: ""} }},
		{name: "pvremove second", giveK: 2, wantErr: "pvremove",
			wantPVs: func(d []string) map[string]string { return map[string]string{d[1]: ""} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lr := newLVMRig(t)
			if err := lr.sim.AddVG(vgName, lr.devs...); err != nil {
				t.Fatal(err)
			}
			lr.inj.Reset()
			lr.inj.Fail(tt.giveK, faults.Fault{Exit: 5, Stderr: "  injected failure"})
			err := lr.svc.PoolDelete(lr.ctx, lr.pool, 0)
			wantErrMentions(t, err, tt.wantErr)
			if got := programs(lr.inj.RunLog()); tt.giveK > 0 && !slices.Equal(got, []string{"vgremove", "pvremove", "pvremove"}) {
				t.Errorf("delete ran %v: a failed pvremove must not stop the others", got)
			}
			st := lr.sim.State()
			if want := tt.wantPVs(lr.devs); fmt.Sprint(st.PVs) != fmt.Sprint(want) {
				t.Errorf("PVs after the failed delete = %v, want %v", st.PVs, want)
			}
			if _, ok := st.VGs[vgName]; ok != tt.wantVG {
				t.Errorf("VG present = %v, want %v", ok, tt.wantVG)
			}
			if lr.active(lr.pool) {
				t.Error("pool active after a failed delete")
			}
			if _, err := lr.svc.PoolLookupByName(lr.ctx, vgName); err != nil {
				t.Errorf("pool undefined by a failed delete: %v", err)
			}
			if lr.hasStatus(vgName) {
				t.Error("status file after a failed delete")
			}
			lr.checkNoTemps()
			// The delete must be finishable through the API: a second try
			// removes what the first one left, whatever step failed.
			lr.inj.Reset()
			if err := lr.svc.PoolDelete(lr.ctx, lr.pool, 0); err != nil {
				t.Errorf("second delete after a failed %s: %v; commands:\n%s", tt.name, err, lr.inj.RunLogString())
			}
			if st := lr.sim.State(); len(st.PVs) != 0 || len(st.VGs) != 0 {
				t.Errorf("LVM state after the second delete:\n%swant no PV and no VG", st)
			}
		})
	}
}

// startedLVMRig is a rig whose pool runs over an existing VG.
func startedLVMRig(t *testing.T) *lvmRig {
	t.Helper()
	lr := newLVMRig(t)
	if err := lr.sim.AddVG(vgName, lr.devs...); err != nil {
		t.Fatal(err)
	}
	lr.start(lr.pool)
	lr.inj.Reset()
	return lr
}

// lvXML asks for no permissions: libvirt forces a logical pool's target to
// /dev/VG, where the simulator cannot make device nodes, and a create that
// sets no mode needs none.
const lvXML = `<volume><name>lv1</name><capacity unit='MiB'>4</capacity></volume>`

// lvPermsXML asks for a mode, which the create applies to the (missing) node.
const lvPermsXML = `<volume><name>lv1</name><capacity unit='MiB'>4</capacity>
  <target><permissions><mode>0640</mode></permissions></target></volume>`

// TestLogicalVolCreateFailsAtEveryStep fails lvcreate, the chmod of the new
// device node and the refresh (lvs) that follows, and checks that the LV is
// removed when it was made, the ledger gives the reservation back and the
// name can be used again.
func TestLogicalVolCreateFailsAtEveryStep(t *testing.T) {
	tests := []struct {
		name       string
		giveK      int  // call to fail; -1 none
		giveNoNode bool // ask for a mode on a device node that does not exist
		wantErr    string
		wantRemove bool
	}{
		{name: "lvcreate", giveK: 0, wantErr: "lvcreate"},
		{name: "chmod of the node", giveK: -1, giveNoNode: true, wantErr: "cannot set file mode", wantRemove: true},
		{name: "refresh after create", giveK: 1, wantErr: "lvs", wantRemove: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lr := startedLVMRig(t)
			before, beforeVols := lr.info(lr.pool), lr.vols(lr.pool)
			xml := lvXML
			if tt.giveNoNode {
				xml = lvPermsXML
			}
			if tt.giveK >= 0 {
				lr.inj.Fail(tt.giveK, faults.Fault{Exit: 5, Stderr: "  injected failure"})
			}
			_, err := lr.svc.VolCreateXML(lr.ctx, lr.pool, xml, 0)
			wantErrMentions(t, err, tt.wantErr)
			if got := lr.inj.Ran(1, "lvremove", "-f"); got != tt.wantRemove {
				t.Errorf("lvremove after the failure ran = %v, want %v; commands:\n%s", got, tt.wantRemove, lr.inj.RunLogString())
			}
			if st := lr.sim.State(); len(st.VGs[vgName]) != 0 {
				t.Errorf("LV left behind: %v", st.VGs[vgName])
			}
			if got := lr.info(lr.pool); got != before {
				t.Errorf("pool-info after the failed create = %+v, before = %+v", got, before)
			}
			if got := lr.vols(lr.pool); !slices.Equal(got, beforeVols) {
				t.Errorf("vol-list after the failed create = %v, before = %v", got, beforeVols)
			}
			lr.checkConsistent()
			lr.inj.Reset()
			if _, err := lr.svc.VolCreateXML(lr.ctx, lr.pool, lvXML, 0); err != nil {
				t.Fatalf("create after the failed one: %v", err)
			}
			lr.checkConsistent()
		})
	}
}

// TestLogicalVolDeleteRetries checks libvirt's delete sequence for an LV
// that is in use: lvremove, lvchange -aln, lvremove again, with each step
// failing.
func TestLogicalVolDeleteRetries(t *testing.T) {
	tests := []struct {
		name       string
		giveFail   []int
		wantErr    string
		wantLV     string // "", "active" or "inactive"
		wantListed bool   // still a volume after a refresh
	}{
		{name: "busy then deactivate and retry succeed"},
		{name: "deactivate fails", giveFail: []int{1}, wantErr: "lvremove", wantLV: "active", wantListed: true},
		{name: "retry fails", giveFail: []int{2}, wantErr: "lvremove", wantLV: "inactive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lr := startedLVMRig(t)
			if _, err := lr.svc.VolCreateXML(lr.ctx, lr.pool, lvXML, 0); err != nil {
				t.Fatal(err)
			}
			v := lr.vol(lr.pool, "lv1")
			lr.sim.Busy[vgName+"/lv1"] = true
			lr.inj.Reset()
			for _, k := range tt.giveFail {
				lr.inj.Fail(k, faults.Fault{Exit: 5, Stderr: "  injected failure"})
			}
			err := lr.svc.VolDelete(lr.ctx, v, 0)
			if got := programs(lr.inj.RunLog()); !slices.Equal(got, []string{"lvremove", "lvchange", "lvremove"}) && len(tt.giveFail) == 0 {
				t.Errorf("delete ran %v", got)
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("delete: %v", err)
				}
			} else {
				wantErrMentions(t, err, tt.wantErr)
			}
			st := lr.sim.State()
			gotLV := ""
			for _, e := range st.VGs[vgName] {
				gotLV = e[strings.LastIndex(e, ":")+1:]
			}
			if gotLV != tt.wantLV {
				t.Errorf("LV after delete = %q, want %q", gotLV, tt.wantLV)
			}
			if tt.wantErr != "" {
				// The failed delete must leave the volume known until the next refresh.
				if got := lr.vols(lr.pool); !slices.Contains(got, "lv1") {
					t.Errorf("vol-list right after a failed delete = %v, want lv1 in it", got)
				}
			}
			lr.checkConsistent()
			if got := slices.Contains(lr.vols(lr.pool), "lv1"); got != tt.wantListed {
				t.Errorf("lv1 listed after refresh = %v, want %v", got, tt.wantListed)
			}
		})
	}
}

// TestLogicalThinBuildRollsBackVG builds a VG/THINPOOL pool over two devices
// and fails the last step, the thin pool's lvcreate: the VG and PV labels
// made by the earlier steps must be removed as for any other failed build.
func TestLogicalThinBuildRollsBackVG(t *testing.T) {
	lr := newLVMRig(t)
	if err := lr.svc.PoolUndefine(lr.ctx, lr.pool); err != nil {
		t.Fatal(err)
	}
	lr.pool = lr.define(fmt.Sprintf(`<pool type='logical'><name>thin</name>
  <source><device path='%s'/><device path='%s'/><name>%s/tp</name><format type='lvm2'/></source>
  </pool>`, lr.devs[0], lr.devs[1], vgName))
	lr.inj.Reset()
	// The simulator refuses thin pools by itself; the fault makes that explicit.
	lr.inj.Fail(5, faults.Fault{Exit: 5, Stderr: "  injected failure"})
	err := lr.svc.PoolBuild(lr.ctx, lr.pool, 0)
	wantErrMentions(t, err, "lvcreate")
	if got, want := programs(lr.inj.RunLog())[:6], []string{"blkid", "pvcreate", "blkid", "pvcreate", "vgcreate", "lvcreate"}; !slices.Equal(got, want) {
		t.Fatalf("thin build ran %v, want %v first", got, want)
	}
	if st := lr.sim.State(); len(st.PVs) != 0 || len(st.VGs) != 0 {
		t.Errorf("a failed thin pool build left LVM state behind:\n%s(want no VG and no PV label; commands:\n%s)", st, lr.inj.RunLogString())
	}
	if lr.active(lr.pool) {
		t.Error("pool active after a failed build")
	}
}

// TestLogicalVolResizeFails fails lvresize (and the lvs before it) and
// checks that the volume and the pool figures are those from before.
func TestLogicalVolResizeFails(t *testing.T) {
	for k, prog := range []string{"lvs", "lvresize"} {
		t.Run(prog, func(t *testing.T) {
			lr := startedLVMRig(t)
			if _, err := lr.svc.VolCreateXML(lr.ctx, lr.pool, lvXML, 0); err != nil {
				t.Fatal(err)
			}
			v := lr.vol(lr.pool, "lv1")
			before := lr.info(lr.pool)
			lr.inj.Reset()
			lr.inj.Fail(k, faults.Fault{Exit: 5, Stderr: "  injected failure"})
			err := lr.svc.VolResize(lr.ctx, v, 8<<20, 0)
			wantErrMentions(t, err, prog)
			info, err := lr.svc.VolGetInfo(lr.ctx, v, 0)
			if err != nil {
				t.Fatal(err)
			}
			if info.Capacity != 4<<20 {
				t.Errorf("capacity after the failed resize = %d, want %d", info.Capacity, 4<<20)
			}
			if got := lr.info(lr.pool); got != before {
				t.Errorf("pool-info after the failed resize = %+v, before = %+v", got, before)
			}
			lr.checkConsistent()
			lr.inj.Reset()
			if err := lr.svc.VolResize(lr.ctx, v, 8<<20, 0); err != nil {
				t.Fatalf("resize without the fault: %v", err)
			}
			lr.checkConsistent()
		})
	}
}

// TestLogicalVolResizeChargesLedger grows an LV (which LVM always allocates
// in full) and checks that pool-info counts the growth at once, not only
// after the next refresh: the admission of later creates relies on it.
func TestLogicalVolResizeChargesLedger(t *testing.T) {
	lr := startedLVMRig(t)
	if _, err := lr.svc.VolCreateXML(lr.ctx, lr.pool, lvXML, 0); err != nil {
		t.Fatal(err)
	}
	if err := lr.svc.VolResize(lr.ctx, lr.vol(lr.pool, "lv1"), 8<<20, 0); err != nil {
		t.Fatal(err)
	}
	st := lr.sim.State()
	want := domain.PoolInfo{State: domain.PoolRunning, Capacity: st.Size[vgName], Allocation: st.Size[vgName] - st.Free[vgName], Available: st.Free[vgName]}
	if got := lr.info(lr.pool); got != want {
		t.Errorf("pool-info right after growing lv1 to 8 MiB = %+v, LVM says %+v", got, want)
	}
}

// TestLogicalBuildHangUpRollsBack cancels the build's context while vgcreate
// runs, as a client hanging up (or the daemon shutting down) does: the PV
// labels already written must still be removed. The rollback cannot use the
// cancelled context, or it never runs.
func TestLogicalBuildHangUpRollsBack(t *testing.T) {
	lr := newLVMRig(t)
	ctx, cancel := context.WithCancel(lr.ctx)
	defer cancel()
	lr.inj.Reset()
	lr.inj.Fail(4, faults.Fault{Exit: -1, Stderr: "signal: killed", Before: func(ports.Command) { cancel() }})
	if err := lr.svc.PoolBuild(ctx, lr.pool, 0); err == nil {
		t.Fatal("build whose vgcreate was killed succeeded")
	}
	if st := lr.sim.State(); len(st.PVs) != 0 || len(st.VGs) != 0 {
		t.Errorf("LVM state after a build cancelled in vgcreate:\n%swant no PV label; commands:\n%s", st, lr.inj.RunLogString())
	}
}

// TestLogicalVolCreateHangUpRemovesLV cancels a volume create's context
// right after lvcreate succeeded, as a client hanging up does. The service
// finishes a create whose volume exists (its refresh runs without the
// client's context), so the create either succeeds, and the LV is a volume
// of the pool, or fails, and the LV is gone: never an LV that the pool does
// not list, nor a listed volume without an LV.
func TestLogicalVolCreateHangUpRemovesLV(t *testing.T) {
	lr := startedLVMRig(t)
	ctx, cancel := context.WithCancel(lr.ctx)
	defer cancel()
	lr.sim.AfterRun = func(argv []string) {
		if argv[0] == "lvcreate" {
			cancel()
		}
	}
	_, err := lr.svc.VolCreateXML(ctx, lr.pool, lvXML, 0)
	lr.sim.AfterRun = nil
	want := []string{"lv1"}
	if err != nil {
		want = []string{}
	}
	if got := lr.vols(lr.pool); !slices.Equal(got, want) {
		t.Errorf("create after a hang-up returned %v; vol-list = %v, want %v; commands:\n%s", err, got, want, lr.inj.RunLogString())
	}
	lr.checkConsistent()
	if got := lr.vols(lr.pool); !slices.Equal(got, want) {
		t.Errorf("create after a hang-up returned %v; vol-list after a refresh = %v, want %v", err, got, want)
	}
}

// nodeTarget is the logical backend with the pool's target moved from /dev/VG
// to the simulator's Nodes directory, so that the operations that open an
// LV's device (clone, wipe) find a file there. The codec forces the target to
// /dev/VG as libvirt does, so the move happens after it, in ValidatePool;
// every other step is the real backend's.
type nodeTarget struct {
	ports.PoolBackend
	nodes string
}

func (b nodeTarget) ValidatePool(def *domain.PoolDef) error {
	if err := b.PoolBackend.ValidatePool(def); err != nil {
		return err
	}
	def.Target.Path = filepath.Join(b.nodes, logical.ParseSource(def).VG)
	return nil
}

// startedNodeRig is startedLVMRig with LV node files (see nodeTarget) and a
// running dir pool, lr.images. The dir backend writes its qcow2 images in
// process and runs its commands outside the injector, whose log and faults
// therefore concern the logical pool alone.
func startedNodeRig(t *testing.T) *lvmRig {
	t.Helper()
	root := t.TempDir()
	sim := faults.NewLVM()
	sim.Nodes = filepath.Join(root, "dev")
	inj := faults.NewInjector(sim)
	backends := []ports.PoolBackend{
		nodeTarget{PoolBackend: logical.New(inj, testkit.QuietLog()), nodes: sim.Nodes},
		dir.New(osexec.New(testkit.QuietLog()), testkit.QuietLog()),
	}
	lr := &lvmRig{rig: newRigOver(t, backends, nil), sim: sim, inj: inj}
	for i := 1; i <= 2; i++ {
		d := filepath.Join(root, fmt.Sprintf("disk%d", i))
		makeFile(t, d, 12<<20)
		lr.devs = append(lr.devs, d)
	}
	if err := sim.AddVG(vgName, lr.devs...); err != nil {
		t.Fatal(err)
	}
	lr.pool = lr.define(fmt.Sprintf(`<pool type='logical'><name>%s</name>
  <source><device path='%s'/><device path='%s'/><name>%s</name><format type='lvm2'/></source>
  </pool>`, vgName, lr.devs[0], lr.devs[1], vgName))
	lr.start(lr.pool)
	images := filepath.Join(root, "images")
	if err := os.Mkdir(images, 0o755); err != nil {
		t.Fatal(err)
	}
	lr.images = lr.define(fmt.Sprintf(`<pool type='dir'><name>images</name><target><path>%s</path></target></pool>`, images))
	lr.start(lr.images)
	lr.inj.Reset()
	return lr
}

// node is the file standing in for LV name's device node.
func (lr *lvmRig) node(name string) string { return filepath.Join(lr.sim.Nodes, vgName, name) }

// fillLV writes a pattern over LV name's node and returns it: data a copy
// must carry over and a zeroing must clear.
func (lr *lvmRig) fillLV(name string) []byte {
	lr.t.Helper()
	st, err := os.Stat(lr.node(name))
	if err != nil {
		lr.t.Fatal(err)
	}
	data := make([]byte, st.Size())
	for i := range data {
		data[i] = byte(i*7 + i>>12)
	}
	if err := os.WriteFile(lr.node(name), data, 0o600); err != nil {
		lr.t.Fatal(err)
	}
	return data
}

// hasLV reports whether the simulated VG holds LV name.
func (lr *lvmRig) hasLV(name string) bool {
	for _, e := range lr.sim.State().VGs[vgName] {
		if strings.HasPrefix(e, name+":") {
			return true
		}
	}
	return false
}

const cloneXML = `<volume><name>clone</name></volume>`

// TestLogicalVolCloneFailsAtEveryStep clones into a new LV from an LV of the
// same pool (copied in process) and from a qcow2 image of a dir pool (copied
// by qemu-img convert), failing each step in turn: lvcreate, the copy and
// the refresh after it. Once the LV exists it must be removed again; the
// error must name the failed step; the pool's figures and volumes must be
// those from before and match the VG; and the clone must then succeed.
func TestLogicalVolCloneFailsAtEveryStep(t *testing.T) {
	sources := []struct {
		name      string
		wantSteps []string
		// give makes the clone's source and returns it with the data the
		// clone must hold (nil: not checked, qemu-img is simulated).
		give func(lr *lvmRig) (domain.VolHandle, []byte)
	}{
		{name: "lv", wantSteps: []string{"lvcreate", "lvs"}, give: func(lr *lvmRig) (domain.VolHandle, []byte) {
			v, err := lr.svc.VolCreateXML(lr.ctx, lr.pool, `<volume><name>src</name><capacity unit='MiB'>4</capacity></volume>`, 0)
			if err != nil {
				lr.t.Fatal(err)
			}
			return v, lr.fillLV("src")
		}},
		{name: "qcow2", wantSteps: []string{"lvcreate", "qemu-img", "lvs"}, give: func(lr *lvmRig) (domain.VolHandle, []byte) {
			v, err := lr.svc.VolCreateXML(lr.ctx, lr.images, qcow2XML("img.qcow2", 4), 0)
			if err != nil {
				lr.t.Fatal(err)
			}
			return v, nil
		}},
	}
	for _, src := range sources {
		t.Run(src.name, func(t *testing.T) {
			clone := func(lr *lvmRig, v domain.VolHandle, want []byte) error {
				_, err := lr.svc.VolCreateXMLFrom(lr.ctx, lr.pool, cloneXML, v, 0)
				if err == nil && want != nil {
					if got, rerr := os.ReadFile(lr.node("clone")); rerr != nil || !bytes.Equal(got, want) {
						lr.t.Errorf("clone holds %d bytes (%v) unlike its %d-byte source", len(got), rerr, len(want))
					}
				}
				return err
			}
			lr := startedNodeRig(t)
			v, data := src.give(lr)
			lr.inj.Reset()
			if err := clone(lr, v, data); err != nil {
				t.Fatalf("baseline clone: %v", err)
			}
			steps := lr.inj.RunLog()
			if got := programs(steps); !slices.Equal(got, src.wantSteps) {
				t.Fatalf("clone runs %v, want %v", got, src.wantSteps)
			}
			for k, step := range steps {
				t.Run(fmt.Sprintf("%d-%s", k, step[0]), func(t *testing.T) {
					lr := startedNodeRig(t)
					v, data := src.give(lr)
					lr.inj.Reset()
					lr.inj.Fail(k, faults.Fault{Exit: 1, Stderr: "injected failure"})
					lr.checkCloneFails(k > 0, step[0], func() error { return clone(lr, v, data) })
					if !slices.Equal(lr.inj.Failed(), []int{k}) {
						t.Errorf("the fault at call %d never fired; commands:\n%s", k, lr.inj.RunLogString())
					}
					lr.inj.Reset()
					if err := clone(lr, v, data); err != nil {
						t.Fatalf("clone after the failed one: %v", err)
					}
					lr.checkConsistent()
				})
			}
		})
	}
	// The in-process copy opens the new LV's node right after lvcreate; a
	// node that udev has not made yet fails it.
	t.Run("lv/copy-without-node", func(t *testing.T) {
		lr := startedNodeRig(t)
		v, _ := sources[0].give(lr)
		lr.inj.Reset()
		lr.sim.AfterRun = func(argv []string) {
			if argv[0] == "lvcreate" {
				_ = os.Remove(lr.node("clone"))
			}
		}
		lr.checkCloneFails(true, "could not open output path '"+lr.node("clone")+"'", func() error {
			_, err := lr.svc.VolCreateXMLFrom(lr.ctx, lr.pool, cloneXML, v, 0)
			return err
		})
	})
}

// checkCloneFails runs a clone that must fail with an error mentioning
// wantErr, then checks that the new LV was removed (by lvremove when
// lvcreate had made it) and that the pool is as before and matches the VG.
func (lr *lvmRig) checkCloneFails(made bool, wantErr string, clone func() error) {
	t := lr.t
	t.Helper()
	before, beforeVols := lr.info(lr.pool), lr.vols(lr.pool)
	wantErrMentions(t, clone(), wantErr)
	if got := lr.inj.Ran(1, "lvremove", "-f", lr.node("clone")); got != made {
		t.Errorf("lvremove of the new LV ran = %v, want %v; commands:\n%s", got, made, lr.inj.RunLogString())
	}
	if lr.hasLV("clone") {
		t.Errorf("LV left behind by the failed clone: %v", lr.sim.State().VGs[vgName])
	}
	if _, err := os.Stat(lr.node("clone")); !os.IsNotExist(err) {
		t.Errorf("node of the removed LV still there: %v", err)
	}
	if got := lr.info(lr.pool); got != before {
		t.Errorf("pool-info after the failed clone = %+v, before = %+v", got, before)
	}
	if got := lr.vols(lr.pool); !slices.Equal(got, beforeVols) {
		t.Errorf("vol-list after the failed clone = %v, before = %v", got, beforeVols)
	}
	lr.checkConsistent()
}

// TestLogicalVolWipeFails fails each step of a wipe with a scrub pattern
// (the lvs that finds the LV, scrub, the refresh after it) and of a zeroing
// (the lvs, the in-process writes into a node that is gone, the refresh).
// The error must name the step, and the volume, its figures and the pool's
// must be those from before and match the VG. The wipe must then succeed.
func TestLogicalVolWipeFails(t *testing.T) {
	tests := []struct {
		name     string
		giveAlg  domain.WipeAlgorithm
		giveK    int  // call to fail; -1 none
		giveGone bool // remove the LV's node first
		wantErr  string
	}{
		{name: "nnsa/lvs", giveAlg: domain.WipeNNSA, giveK: 0, wantErr: "lvs"},
		{name: "nnsa/scrub", giveAlg: domain.WipeNNSA, giveK: 1, wantErr: "scrub"},
		{name: "nnsa/refresh", giveAlg: domain.WipeNNSA, giveK: 2, wantErr: "lvs"},
		{name: "zero/lvs", giveAlg: domain.WipeZero, giveK: 0, wantErr: "lvs"},
		{name: "zero/write", giveAlg: domain.WipeZero, giveK: -1, giveGone: true, wantErr: "Failed to open storage volume"},
		{name: "zero/refresh", giveAlg: domain.WipeZero, giveK: 1, wantErr: "lvs"},
	}
	// The matrix's call numbers are those of a wipe without faults.
	for alg, want := range map[domain.WipeAlgorithm][]string{
		domain.WipeNNSA: {"lvs", "scrub", "lvs"},
		domain.WipeZero: {"lvs", "lvs"},
	} {
		lr := startedNodeRig(t)
		if _, err := lr.svc.VolCreateXML(lr.ctx, lr.pool, lvXML, 0); err != nil {
			t.Fatal(err)
		}
		data := lr.fillLV("lv1")
		lr.inj.Reset()
		if err := lr.svc.VolWipe(lr.ctx, lr.vol(lr.pool, "lv1"), alg, 0); err != nil {
			t.Fatalf("wipe (algorithm %d) without a fault: %v", alg, err)
		}
		if got := programs(lr.inj.RunLog()); !slices.Equal(got, want) {
			t.Fatalf("wipe (algorithm %d) runs %v, want %v", alg, got, want)
		}
		if alg == domain.WipeZero {
			got, err := os.ReadFile(lr.node("lv1"))
			if err != nil || len(got) != len(data) || bytes.ContainsFunc(got, func(r rune) bool { return r != 0 }) {
				t.Errorf("zeroed LV holds %d bytes (%v), not %d zero bytes", len(got), err, len(data))
			}
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lr := startedNodeRig(t)
			if _, err := lr.svc.VolCreateXML(lr.ctx, lr.pool, lvXML, 0); err != nil {
				t.Fatal(err)
			}
			v := lr.vol(lr.pool, "lv1")
			beforeVol, err := lr.svc.VolGetInfo(lr.ctx, v, 0)
			if err != nil {
				t.Fatal(err)
			}
			before, beforeLVM := lr.info(lr.pool), lr.sim.State().String()
			if tt.giveGone {
				if err := os.Remove(lr.node("lv1")); err != nil {
					t.Fatal(err)
				}
			}
			lr.inj.Reset()
			if tt.giveK >= 0 {
				lr.inj.Fail(tt.giveK, faults.Fault{Exit: 1, Stderr: "injected failure"})
			}
			wantErrMentions(t, lr.svc.VolWipe(lr.ctx, v, tt.giveAlg, 0), tt.wantErr)
			if tt.giveK >= 0 && !slices.Equal(lr.inj.Failed(), []int{tt.giveK}) {
				t.Errorf("the fault at call %d never fired; commands:\n%s", tt.giveK, lr.inj.RunLogString())
			}
			if got := lr.sim.State().String(); got != beforeLVM {
				t.Errorf("LVM state after the failed wipe:\n%sbefore:\n%s", got, beforeLVM)
			}
			if got, err := lr.svc.VolGetInfo(lr.ctx, v, 0); err != nil || got != beforeVol {
				t.Errorf("vol-info after the failed wipe = %+v (%v), before = %+v", got, err, beforeVol)
			}
			if got := lr.info(lr.pool); got != before {
				t.Errorf("pool-info after the failed wipe = %+v, before = %+v", got, before)
			}
			lr.checkConsistent()
			if got := lr.vols(lr.pool); !slices.Equal(got, []string{"lv1"}) {
				t.Errorf("vol-list after the failed wipe = %v, want [lv1]", got)
			}
			if tt.giveGone {
				makeFile(t, lr.node("lv1"), int64(beforeVol.Capacity))
			}
			lr.inj.Reset()
			if err := lr.svc.VolWipe(lr.ctx, v, tt.giveAlg, 0); err != nil {
				t.Fatalf("wipe after the failed one: %v", err)
			}
			lr.checkConsistent()
		})
	}
}
