package faults_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/adapters/dir"
	"github.com/virtstoraged-go/virtstoraged/adapters/osexec"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/faults"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// dirRig is a running dir pool whose qemu-img runs for real through an
// injector, for every non-raw image.
type dirRig struct {
	*rig
	inj  *faults.Injector
	pool domain.PoolHandle
	path string
}

func newDirRig(t *testing.T) *dirRig {
	t.Helper()
	testkit.RequireTool(t, "qemu-img")
	inj := faults.NewInjector(osexec.New(testkit.QuietLog()))
	b := dir.New(inj, testkit.QuietLog())
	// The native qcow2 writer would make images without qemu-img: the matrix
	// is about the steps qemu-img runs (disk-full tests cover the writer).
	b.QemuImgOnly = true
	dr := &dirRig{rig: newRig(t, b), inj: inj, path: filepath.Join(t.TempDir(), "pool")}
	if err := os.Mkdir(dr.path, 0o755); err != nil {
		t.Fatal(err)
	}
	dr.pool = dr.define(fmt.Sprintf(`<pool type='dir'><name>d1</name><target><path>%s</path></target></pool>`, dr.path))
	dr.start(dr.pool)
	return dr
}

// checkDirConsistent refreshes the pool and checks that its volumes are
// exactly the files in its directory.
func (dr *dirRig) checkDirConsistent() {
	dr.t.Helper()
	dr.refresh(dr.pool)
	if got, want := dr.vols(dr.pool), listDir(dr.t, dr.path); !slices.Equal(got, want) {
		dr.t.Errorf("vol-list = %v, directory holds %v", got, want)
	}
	dr.checkNoTemps()
}

func qcow2XML(name string, mib int) string {
	return fmt.Sprintf(`<volume><name>%s</name><capacity unit='MiB'>%d</capacity><target><format type='qcow2'/></target></volume>`, name, mib)
}

// halfWritten is a fault that leaves a partial file at path first, as a
// qemu-img killed half-way would.
func halfWritten(path string) faults.Fault {
	return faults.Fault{Exit: 1, Stderr: "qemu-img: injected failure", Before: func(ports.Command) {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err == nil {
			_, _ = f.WriteString("QFI\xfbpartial")
			f.Close()
		}
	}}
}

// TestQemuImgFailsAtEveryStep fails each qemu-img run of a qcow2 create and
// of a clone (one convert, even when the copy is asked larger: as in libvirt
// it keeps its source's size), each leaving a partial file, and checks that the file is gone, the error names
// qemu-img, the ledger is unchanged and the name can be used again.
func TestQemuImgFailsAtEveryStep(t *testing.T) {
	type op func(dr *dirRig) error
	create := func(dr *dirRig) error {
		_, err := dr.svc.VolCreateXML(dr.ctx, dr.pool, qcow2XML("new.qcow2", 8), 0)
		return err
	}
	cloneOf := func(mib int) op {
		return func(dr *dirRig) error {
			src := dr.vol(dr.pool, "src.qcow2")
			_, err := dr.svc.VolCreateXMLFrom(dr.ctx, dr.pool, qcow2XML("new.qcow2", mib), src, 0)
			return err
		}
	}
	tests := []struct {
		name      string
		giveOp    op
		wantSteps []string // qemu-img subcommands, in order
	}{
		{name: "create", giveOp: create, wantSteps: []string{"create"}},
		{name: "clone", giveOp: cloneOf(8), wantSteps: []string{"convert"}},
		{name: "clone larger", giveOp: cloneOf(16), wantSteps: []string{"convert"}},
	}
	for _, tt := range tests {
		for k, step := range tt.wantSteps {
			t.Run(tt.name+"/"+step, func(t *testing.T) {
				dr := newDirRig(t)
				if _, err := dr.svc.VolCreateXML(dr.ctx, dr.pool, qcow2XML("src.qcow2", 8), 0); err != nil {
					t.Fatal(err)
				}
				dr.refresh(dr.pool)
				beforeVols := dr.vols(dr.pool)
				dr.inj.Reset()
				newPath := filepath.Join(dr.path, "new.qcow2")
				dr.inj.Fail(k, halfWritten(newPath))
				err := tt.giveOp(dr)
				wantErrMentions(t, err, "qemu-img")
				var sub []string
				for _, argv := range dr.inj.RunLog() {
					sub = append(sub, argv[1])
				}
				if !slices.Equal(sub, tt.wantSteps[:k+1]) {
					t.Errorf("ran qemu-img %v, want %v", sub, tt.wantSteps[:k+1])
				}
				if _, err := os.Stat(newPath); err == nil {
					t.Errorf("partial file %s left behind", newPath)
				}
				if got := dr.vols(dr.pool); !slices.Equal(got, beforeVols) {
					t.Errorf("vol-list after the failure = %v, before = %v", got, beforeVols)
				}
				dr.checkDirConsistent()
				dr.inj.Reset()
				if err := tt.giveOp(dr); err != nil {
					t.Fatalf("same operation without the fault: %v", err)
				}
				dr.checkDirConsistent()
			})
		}
	}
	// qemu-img that exits 0 without writing anything: applying the mode
	// fails, and the create must fail rather than list a missing volume.
	t.Run("create makes no file", func(t *testing.T) {
		dr := newDirRig(t)
		dr.inj.Fail(0, faults.Fault{Succeed: true})
		err := create(dr)
		wantErrMentions(t, err, "new.qcow2")
		dr.checkDirConsistent()
	})
}

// TestQemuImgResizeFails fails `qemu-img resize` of a qcow2 volume: the
// volume keeps its capacity, for the service and on disk.
func TestQemuImgResizeFails(t *testing.T) {
	dr := newDirRig(t)
	if _, err := dr.svc.VolCreateXML(dr.ctx, dr.pool, qcow2XML("q.qcow2", 8), 0); err != nil {
		t.Fatal(err)
	}
	v := dr.vol(dr.pool, "q.qcow2")
	dr.inj.Reset()
	dr.inj.Fail(0, faults.Fault{Exit: 1, Stderr: "qemu-img: injected failure"})
	err := dr.svc.VolResize(dr.ctx, v, 16<<20, 0)
	wantErrMentions(t, err, "qemu-img")
	info, err := dr.svc.VolGetInfo(dr.ctx, v, 0)
	if err != nil {
		t.Fatal(err)
	}
	if info.Capacity != 8<<20 {
		t.Errorf("capacity after the failed resize = %d, want %d", info.Capacity, 8<<20)
	}
	dr.checkDirConsistent()
	dr.inj.Reset()
	if err := dr.svc.VolResize(dr.ctx, v, 16<<20, 0); err != nil {
		t.Fatalf("resize without the fault: %v", err)
	}
	if info, _ := dr.svc.VolGetInfo(dr.ctx, v, 0); info.Capacity != 16<<20 {
		t.Errorf("capacity after the resize = %d, want %d", info.Capacity, 16<<20)
	}
}
