package faults_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/adapters/netfs"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/faults"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// stoppedLVMRig is a rig whose VG exists with one LV, all inactive: the
// state of a logical pool that is defined but not started.
func stoppedLVMRig(t *testing.T) *lvmRig {
	t.Helper()
	lr := newLVMRig(t)
	if err := lr.sim.AddVG(vgName, lr.devs...); err != nil {
		t.Fatal(err)
	}
	for _, argv := range [][]string{{"lvcreate", "--name", "lv1", "-L", "4096K", vgName, "--yes"}, {"vgchange", "-aln", vgName}} {
		if _, err := lr.sim.Run(context.Background(), ports.Command{Path: argv[0], Args: argv[1:]}); err != nil {
			t.Fatal(err)
		}
	}
	return lr
}

// TestLogicalStartFailsAtEveryStep fails each command of a logical pool's
// start in turn (the PV scan, the activation, the first refresh's lvs and
// vgs): the start reports the failed command, the LVs it activated are
// deactivated again, the pool stays inactive without a status file, and a
// start without the fault then serves what LVM holds.
func TestLogicalStartFailsAtEveryStep(t *testing.T) {
	steps := baseline(t, func(t *testing.T) (*faults.Injector, func() error) {
		lr := stoppedLVMRig(t)
		return lr.inj, func() error { return lr.svc.PoolCreate(lr.ctx, lr.pool, 0) }
	})
	if len(steps) < 3 || !slices.Contains(programs(steps), "vgchange") || !slices.Contains(programs(steps), "lvs") {
		t.Fatalf("start runs %v: want at least the activation and a refresh", programs(steps))
	}
	for k, step := range steps {
		t.Run(fmt.Sprintf("%d-%s", k, step[0]), func(t *testing.T) {
			lr := stoppedLVMRig(t)
			lr.inj.Reset()
			lr.inj.Fail(k, faults.Fault{Exit: 5, Stderr: "  injected failure"})
			err := lr.svc.PoolCreate(lr.ctx, lr.pool, 0)
			wantErrMentions(t, err, step[0])
			if !slices.Equal(lr.inj.Failed(), []int{k}) {
				t.Fatalf("the fault at call %d never fired; commands:\n%s", k, lr.inj.RunLogString())
			}
			if lr.active(lr.pool) {
				t.Error("pool active after a failed start")
			}
			if lr.hasStatus(vgName) {
				t.Error("status file written by a failed start")
			}
			if st := lr.sim.State(); len(st.ActiveLVs(vgName)) != 0 {
				t.Errorf("LVs left active by a failed start: %v; commands:\n%s", st.ActiveLVs(vgName), lr.inj.RunLogString())
			}
			lr.checkNoTemps()
			lr.inj.Reset()
			lr.start(lr.pool)
			if !lr.hasStatus(vgName) {
				t.Error("no status file after a good start")
			}
			lr.checkConsistent()
		})
	}
}

// TestLogicalStopFails fails the deactivation of a running logical pool (an
// LV still open): the pool stays active with its status file and LVs.
func TestLogicalStopFails(t *testing.T) {
	lr := stoppedLVMRig(t)
	lr.start(lr.pool)
	lr.inj.Reset()
	lr.inj.Fail(0, faults.Fault{Exit: 5, Stderr: "  Logical volume vsfaultsvg/lv1 in use."})
	err := lr.svc.PoolDestroy(lr.ctx, lr.pool)
	wantErrMentions(t, err, "vgchange")
	if !lr.active(lr.pool) {
		t.Error("pool inactive after a failed stop")
	}
	if !lr.hasStatus(vgName) {
		t.Error("status file removed by a failed stop")
	}
	lr.checkConsistent()
	lr.inj.Reset()
	if err := lr.svc.PoolDestroy(lr.ctx, lr.pool); err != nil {
		t.Fatalf("stop after the failed one: %v", err)
	}
	if lr.active(lr.pool) || lr.hasStatus(vgName) {
		t.Error("pool still active after a good stop")
	}
	if st := lr.sim.State(); len(st.ActiveLVs(vgName)) != 0 {
		t.Errorf("LVs active after the stop: %v", st.ActiveLVs(vgName))
	}
}

// hangingMount blocks a mount until its context ends, as a mount.nfs facing
// a server that does not answer; other commands go to next.
type hangingMount struct{ next ports.CommandRunner }

func (h hangingMount) Run(ctx context.Context, cmd ports.Command) ([]byte, error) {
	if cmd.Path != "mount" {
		return h.next.Run(ctx, cmd)
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

// netfsRig is the service over the netfs backend, whose mount and umount go
// to the simulated mount table, with the state store wrapped to fail writes.
type netfsRig struct {
	*rig
	tools *fsTools
	inj   *faults.Injector
	store *flakyStore
	pool  domain.PoolHandle
	mnt   string
}

func newNetFSRig(t *testing.T, hang bool) *netfsRig {
	t.Helper()
	tools := newFSTools(t)
	var next ports.CommandRunner = tools
	if hang {
		next = hangingMount{tools}
	}
	inj := faults.NewInjector(next)
	b := netfs.New(inj, tools.path, testkit.QuietLog())
	b.MountTimeout = 300 * time.Millisecond
	fl := &flakyStore{fail: map[string]bool{}}
	nr := &netfsRig{tools: tools, inj: inj, store: fl, mnt: filepath.Join(t.TempDir(), "mnt")}
	nr.rig = newRigWith(t, b, func(s ports.StateStore) ports.StateStore {
		fl.StateStore = s
		return fl
	})
	if err := os.Mkdir(nr.mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	nr.pool = nr.define(fmt.Sprintf(`<pool type='netfs'><name>nfs1</name>
  <source><host name='nfs.invalid'/><dir path='/export'/><format type='nfs'/></source>
  <target><path>%s</path></target></pool>`, nr.mnt))
	return nr
}

// checkInactive checks a netfs pool whose start failed.
func (nr *netfsRig) checkInactive() { nr.checkStartFailed(nr.pool, nr.tools.mounted()) }

// TestNetFSStartFailsAtEveryStep fails each step of a netfs pool's start:
// the mount (failing, claiming success without mounting, hanging past the
// bound), and the status write after it. Whatever was mounted is unmounted
// again, the pool stays inactive, and a start without the fault works.
func TestNetFSStartFailsAtEveryStep(t *testing.T) {
	tests := []struct {
		name       string
		giveHang   bool
		giveFault  *faults.Fault
		giveStore  bool // the status write fails
		wantErr    string
		wantUmount bool
	}{
		{name: "mount fails", giveFault: &faults.Fault{Exit: 32, Stderr: "mount.nfs: Connection refused"}, wantErr: "mount"},
		{name: "mount mounts nothing", giveFault: &faults.Fault{Succeed: true}, wantErr: "nfs1"},
		{name: "mount hangs", giveHang: true, wantErr: "timed out"},
		{name: "status write", giveStore: true, wantErr: "no space left", wantUmount: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nr := newNetFSRig(t, tt.giveHang)
			if tt.giveFault != nil {
				nr.inj.Fail(0, *tt.giveFault)
			}
			nr.store.set("SaveStatus", tt.giveStore)
			err := nr.svc.PoolCreate(nr.ctx, nr.pool, 0)
			wantErrMentions(t, err, tt.wantErr)
			if tt.giveStore && !errors.Is(err, errDiskWrite) {
				t.Errorf("start error %v does not wrap the write failure", err)
			}
			if got := nr.inj.Ran(1, "umount"); got != tt.wantUmount {
				t.Errorf("umount after the failure ran = %v, want %v; commands:\n%s", got, tt.wantUmount, nr.inj.RunLogString())
			}
			nr.checkInactive()
			if tt.giveHang {
				return // the simulated server never answers: no good start to try
			}
			nr.inj.Reset()
			nr.store.set("SaveStatus", false)
			nr.start(nr.pool)
			if !nr.hasStatus("nfs1") {
				t.Error("no status file after a good start")
			}
			if m := nr.tools.mounted(); len(m) != 1 {
				t.Errorf("mounts after a good start: %v", m)
			}
		})
	}
}

// TestNetFSStopFails fails the umount of a running netfs pool: it stays
// active, mounted and with its status file.
func TestNetFSStopFails(t *testing.T) {
	nr := newNetFSRig(t, false)
	nr.start(nr.pool)
	nr.inj.Reset()
	nr.inj.Fail(0, faults.Fault{Exit: 32, Stderr: "umount.nfs: /mnt: device is busy"})
	err := nr.svc.PoolDestroy(nr.ctx, nr.pool)
	wantErrMentions(t, err, "umount")
	if !nr.active(nr.pool) || !nr.hasStatus("nfs1") {
		t.Error("pool inactive or without status after a failed stop")
	}
	if m := nr.tools.mounted(); len(m) != 1 {
		t.Errorf("mounts after a failed stop: %v", m)
	}
	nr.inj.Reset()
	if err := nr.svc.PoolDestroy(nr.ctx, nr.pool); err != nil {
		t.Fatalf("stop after the failed one: %v", err)
	}
	nr.checkInactive()
}

// TestFSCreateWithBuildFailsAtEveryStep fails each command of
// pool-create --build on an fs pool (probe, mkfs, mount): build and start
// are one operation for the client, so whatever step fails, the pool is left
// inactive and unmounted, and the same call without the fault succeeds.
func TestFSCreateWithBuildFailsAtEveryStep(t *testing.T) {
	steps := baseline(t, func(t *testing.T) (*faults.Injector, func() error) {
		fr := newFSRig(t)
		return fr.inj, func() error { return fr.svc.PoolCreate(fr.ctx, fr.pool, domain.PoolCreateWithBuildNoOverwrite) }
	})
	if want := []string{"blkid", "mkfs", "mount"}; !slices.Equal(programs(steps), want) {
		t.Fatalf("pool-create --build runs %v, want %v", programs(steps), want)
	}
	for k, step := range steps {
		t.Run(step[0], func(t *testing.T) {
			fr := newFSRig(t)
			fr.inj.Reset()
			fr.inj.Fail(k, faults.Fault{Exit: 1, Stderr: "injected failure"})
			err := fr.svc.PoolCreate(fr.ctx, fr.pool, domain.PoolCreateWithBuildNoOverwrite)
			wantErrMentions(t, err, step[0])
			if got := programs(fr.inj.RunLog()); !slices.Equal(got, programs(steps[:k+1])) {
				t.Errorf("ran %v after failing %s", got, step[0])
			}
			fr.checkInactive()
			fr.inj.Reset()
			if err := fr.svc.PoolCreate(fr.ctx, fr.pool, domain.PoolCreateWithBuildNoOverwrite); err != nil {
				t.Fatalf("pool-create --build after the failed one: %v", err)
			}
			if !fr.active(fr.pool) || len(fr.tools.mounted()) != 1 {
				t.Errorf("after a good pool-create --build: active %v, mounts %v", fr.active(fr.pool), fr.tools.mounted())
			}
		})
	}
}
