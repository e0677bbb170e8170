package faults_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/adapters/fs"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/faults"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// fsTools simulates blkid, mkfs, mount and umount over a fake mount table
// file that the fs backend reads instead of /proc/self/mountinfo.
type fsTools struct {
	mu     sync.Mutex
	path   string
	mounts map[string]string // target -> source
}

func newFSTools(t *testing.T) *fsTools {
	ft := &fsTools{path: filepath.Join(t.TempDir(), "mountinfo"), mounts: map[string]string{}}
	ft.writeLocked()
	return ft
}

func (f *fsTools) writeLocked() {
	var b strings.Builder
	b.WriteString("22 1 253:1 / / rw,relatime - ext4 /dev/vda1 rw\n")
	n := 100
	for _, target := range slices.Sorted(maps.Keys(f.mounts)) {
		n++
		fmt.Fprintf(&b, "%d 22 7:%d / %s rw,nosuid,nodev,noexec,relatime - ext4 %s rw\n", n, n, target, f.mounts[target])
	}
	if err := os.WriteFile(f.path, []byte(b.String()), 0o644); err != nil {
		panic(err)
	}
}

// mounted returns the mount table as "source on target" lines.
func (f *fsTools) mounted() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []string{}
	for t, s := range f.mounts {
		out = append(out, s+" on "+t)
	}
	slices.Sort(out)
	return out
}

func (f *fsTools) Run(ctx context.Context, cmd ports.Command) ([]byte, error) {
	argv := append([]string{cmd.Path}, cmd.Args...)
	f.mu.Lock()
	defer f.mu.Unlock()
	last := argv[len(argv)-1]
	switch cmd.Path {
	case "blkid":
		return nil, &ports.ExitError{Argv: argv, Code: 2}
	case "mkfs":
		return nil, nil
	case "mount":
		f.mounts[last] = argv[len(argv)-2]
	case "umount":
		delete(f.mounts, last)
	default:
		return nil, &ports.ExitError{Argv: argv, Code: 127, Stderr: "fs simulator: unknown command"}
	}
	f.writeLocked()
	return nil, nil
}

type fsRig struct {
	*rig
	tools *fsTools
	inj   *faults.Injector
	pool  domain.PoolHandle
	mnt   string
}

func newFSRig(t *testing.T) *fsRig {
	t.Helper()
	tools := newFSTools(t)
	inj := faults.NewInjector(tools)
	dir := t.TempDir()
	fr := &fsRig{rig: newRig(t, fs.New(inj, tools.path, testkit.QuietLog())), tools: tools, inj: inj, mnt: filepath.Join(dir, "mnt")}
	dev := filepath.Join(dir, "disk")
	makeFile(t, dev, 16<<20)
	fr.pool = fr.define(fmt.Sprintf(`<pool type='fs'><name>fs1</name>
  <source><device path='%s'/><format type='ext4'/></source>
  <target><path>%s</path></target></pool>`, dev, fr.mnt))
	return fr
}

// checkInactive checks the state of an fs pool whose start failed.
func (fr *fsRig) checkInactive() { fr.checkStartFailed(fr.pool, fr.tools.mounted()) }

// checkStartFailed checks a mounted pool whose start failed: inactive, no
// status file, nothing left mounted, no temporary files.
func (r *rig) checkStartFailed(pool domain.PoolHandle, mounts []string) {
	t := r.t
	t.Helper()
	if r.active(pool) {
		t.Error("pool active after the failure")
	}
	if r.hasStatus(pool.Name) {
		t.Error("status file left by the failure")
	}
	if len(mounts) != 0 {
		t.Errorf("mounts left: %v", mounts)
	}
	r.checkNoTemps()
}

// TestFSBuildFailsAtEveryStep fails blkid and mkfs of a NO_OVERWRITE build.
// The target directory made before them stays, as in libvirt: it is the
// pool's mount point, not a partial result, and a later build reuses it.
func TestFSBuildFailsAtEveryStep(t *testing.T) {
	for k, prog := range []string{"blkid", "mkfs"} {
		t.Run(prog, func(t *testing.T) {
			fr := newFSRig(t)
			fr.inj.Fail(k, faults.Fault{Exit: 1, Stderr: "injected failure"})
			err := fr.svc.PoolBuild(fr.ctx, fr.pool, domain.PoolBuildNoOverwrite)
			wantErrMentions(t, err, prog)
			if got := programs(fr.inj.RunLog()); !slices.Equal(got, []string{"blkid", "mkfs"}[:k+1]) {
				t.Errorf("build ran %v after failing %s", got, prog)
			}
			fr.checkInactive()
			fr.inj.Reset()
			if err := fr.svc.PoolBuild(fr.ctx, fr.pool, domain.PoolBuildNoOverwrite); err != nil {
				t.Fatalf("build after the failed one: %v", err)
			}
		})
	}
}

// TestFSStartFails fails the mount, and makes a mount that claims success
// without mounting: the refresh then finds nothing mounted and the start
// must fail cleanly, without a status file or a stray umount.
func TestFSStartFails(t *testing.T) {
	tests := []struct {
		name      string
		giveFault faults.Fault
		wantErr   string
	}{
		{name: "mount fails", giveFault: faults.Fault{Exit: 32, Stderr: "mount: wrong fs type"}, wantErr: "mount"},
		{name: "mount mounts nothing", giveFault: faults.Fault{Succeed: true}, wantErr: "fs1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fr := newFSRig(t)
			if err := os.MkdirAll(fr.mnt, 0o755); err != nil {
				t.Fatal(err)
			}
			fr.inj.Fail(0, tt.giveFault)
			err := fr.svc.PoolCreate(fr.ctx, fr.pool, 0)
			wantErrMentions(t, err, tt.wantErr)
			if fr.inj.Ran(1, "umount") {
				t.Errorf("umount run for a pool that was never mounted:\n%s", fr.inj.RunLogString())
			}
			fr.checkInactive()
			fr.inj.Reset()
			fr.start(fr.pool)
			if !fr.hasStatus("fs1") {
				t.Error("no status file after a good start")
			}
		})
	}
}

// TestFSStopFails fails the umount of a running pool: it must stay active,
// mounted, with its status file, and refresh as before.
func TestFSStopFails(t *testing.T) {
	fr := newFSRig(t)
	if err := os.MkdirAll(fr.mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	fr.start(fr.pool)
	makeFile(t, filepath.Join(fr.mnt, "disk.img"), 1<<20)
	fr.refresh(fr.pool)
	fr.inj.Reset()
	fr.inj.Fail(0, faults.Fault{Exit: 32, Stderr: "umount: target is busy."})
	err := fr.svc.PoolDestroy(fr.ctx, fr.pool)
	wantErrMentions(t, err, "umount")
	if !fr.active(fr.pool) {
		t.Error("pool inactive after a failed stop")
	}
	if !fr.hasStatus("fs1") {
		t.Error("status file removed by a failed stop")
	}
	if m := fr.tools.mounted(); len(m) != 1 {
		t.Errorf("mounts after a failed stop: %v", m)
	}
	fr.refresh(fr.pool)
	if got := fr.vols(fr.pool); !slices.Equal(got, listDir(t, fr.mnt)) {
		t.Errorf("vol-list %v, directory holds %v", got, listDir(t, fr.mnt))
	}
	fr.inj.Reset()
	if err := fr.svc.PoolDestroy(fr.ctx, fr.pool); err != nil {
		t.Fatalf("stop after the failed one: %v", err)
	}
	fr.checkInactive()
}
