package dir_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/adapters/dir"
	"github.com/virtstoraged-go/virtstoraged/adapters/osexec"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// How these tests tell "made as the owner" from "made as root, then
// chowned": both end with the same owner, but switching the filesystem uid
// away from 0 (and setuid in a child) also drops CAP_DAC_OVERRIDE, so a
// directory only root may write (0700 root) refuses the owner while root
// itself could still create there. A create that must happen as the owner
// therefore fails in such a directory and succeeds in the owner's own 0700
// directory; a command run as the owner shows the same in the run log.

const testOwner = 4321

// fsOwner is a dir.VolOwner acting as testOwner the way netfs does: it
// switches the filesystem ids of one locked thread.
type fsOwner struct {
	cred   *ports.Credential
	refuse error // when set, every step as the owner fails with it

	mu    sync.Mutex
	calls int
}

func (o *fsOwner) Do(p domain.Perms, fn func() error) error {
	o.mu.Lock()
	o.calls++
	o.mu.Unlock()
	if o.refuse != nil {
		return o.refuse
	}
	return asOwner(fn)
}

func (o *fsOwner) Credential(domain.Perms) *ports.Credential { return o.cred }

func (o *fsOwner) doCalls() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.calls
}

func asOwner(fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	prevGID, _ := unix.SetfsgidRetGid(testOwner)
	prevUID, _ := unix.SetfsuidRetUid(testOwner)
	defer func() {
		_, _ = unix.SetfsuidRetUid(prevUID)
		_, _ = unix.SetfsgidRetGid(prevGID)
	}()
	return fn()
}

func ownerPerms(mode int64) domain.Perms {
	p := domain.UnsetPerms()
	p.Owner, p.Group, p.Mode = testOwner, testOwner, mode
	return p
}

func wantOwnedFile(t *testing.T, path string, wantMode uint32) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != testOwner || st.Gid != testOwner || st.Mode&0o777 != wantMode {
		t.Errorf("%s is %d:%d %04o, want %d:%d %04o", path, st.Uid, st.Gid, st.Mode&0o777, testOwner, testOwner, wantMode)
	}
}

func TestOwnerMakesFiles(t *testing.T) {
	testkit.RequireRoot(t)
	ctx := context.Background()
	// The source sits where only root reads: a clone must read it as the
	// daemon, only the new file is the owner's.
	srcPool := &domain.PoolDef{Type: domain.PoolDir, Name: "src", Target: domain.PoolTarget{Path: testkit.OwnedDir(t, 0), Perms: domain.UnsetPerms()}}
	plain := dir.New(nil, testkit.QuietLog())
	src := newVol(t, plain, srcPool, "src.img", "raw", 1<<20, nil)
	if err := plain.BuildVol(ctx, srcPool, src, 0); err != nil {
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte("virtstoraged"), 1000)
	if err := os.WriteFile(src.Target.Path, payload, 0o600); err != nil {
		t.Fatal(err)
	}
	src.Capacity = uint64(len(payload))

	tests := []struct {
		name       string
		giveDir    int // uid owning the pool directory
		giveFormat string
		giveSrc    *domain.VolDef
		wantData   []byte
		wantErr    bool
	}{
		{name: "raw in the owner's dir", giveDir: testOwner, giveFormat: "raw"},
		{name: "clone a root-only source into the owner's dir", giveDir: testOwner, giveFormat: "raw", giveSrc: src, wantData: payload},
		{name: "qcow2 (native) in the owner's dir", giveDir: testOwner, giveFormat: "qcow2", wantData: []byte("QFI\xfb")},
		{name: "raw in a root-only dir", giveDir: 0, giveFormat: "raw", wantErr: true},
		{name: "clone into a root-only dir", giveDir: 0, giveFormat: "raw", giveSrc: src, wantErr: true},
		{name: "qcow2 (native) in a root-only dir", giveDir: 0, giveFormat: "qcow2", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			owner := &fsOwner{}
			b := dir.New(nil, testkit.QuietLog())
			b.Owner = owner
			pool := &domain.PoolDef{Type: domain.PoolDir, Name: "p", Target: domain.PoolTarget{Path: testkit.OwnedDir(t, tt.giveDir), Perms: domain.UnsetPerms()}}
			vol := newVol(t, b, pool, "v.img", tt.giveFormat, 64<<10, func(v *domain.VolDef) { v.Target.Perms = ownerPerms(0o640) })
			var err error
			if tt.giveSrc != nil {
				err = b.BuildVolFrom(ctx, pool, vol, srcPool, tt.giveSrc, 0)
			} else {
				err = b.BuildVol(ctx, pool, vol, 0)
			}
			if owner.doCalls() == 0 {
				t.Error("the file was not created through the Owner")
			}
			if tt.wantErr {
				wantErrText(t, err, domain.KindSystem, "Failed to create file '"+vol.Target.Path+"': Permission denied")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			wantOwnedFile(t, vol.Target.Path, 0o640)
			if tt.wantData != nil {
				got, err := os.ReadFile(vol.Target.Path)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.HasPrefix(got, tt.wantData) {
					t.Error("the clone does not hold the source's data")
				}
			}
		})
	}
}

// qemu-img as the owner: the fake checks argv, credential and umask (0640
// asks for umask 0137), and its side effects create the file as whoever the
// command would have run as.
func TestOwnerRunsQemuImg(t *testing.T) {
	testkit.RequireRoot(t)
	cred := &ports.Credential{UID: testOwner, GID: testOwner, Groups: []uint32{testOwner}}
	// qemu-img creates 0644 whatever its umask.
	createAsOwner := func(cmd ports.Command) error { return asOwner(func() error { return touchLastArg(cmd) }) }
	tests := []struct {
		name     string
		giveCred *ports.Credential
		script   func(f *testkit.FakeRunner, path string)
		// squashed: the owner's steps fail, and the daemon may not chown
		// (withoutChown), as root on an export that squashes it.
		squashed bool
		wantDo   int // steps done through the Owner: the chmod past qemu-img's 0644
	}{
		{
			name: "made by the owner, mode set by the owner", giveCred: cred, wantDo: 1,
			script: func(f *testkit.FakeRunner, path string) {
				f.Expect("qemu-img", "create", "-f", "qcow2", "-o", "compat=0.10", path, "64K").As(cred, 0o137).Do = createAsOwner
			},
		},
		{
			name: "made by the owner, whose chmod fails: the daemon sets the mode and chowns nothing", giveCred: cred, squashed: true, wantDo: 1,
			script: func(f *testkit.FakeRunner, path string) {
				f.Expect("qemu-img", "create", "-f", "qcow2", "-o", "compat=0.10", path, "64K").As(cred, 0o137).Do = createAsOwner
			},
		},
		{
			name: "the owner's run fails: the daemon runs it and chowns", giveCred: cred,
			script: func(f *testkit.FakeRunner, path string) {
				c := f.Expect("qemu-img", "create", "-f", "qcow2", "-o", "compat=0.10", path, "64K").As(cred, 0o137)
				c.Exit, c.Stderr = 1, "Permission denied"
				f.Expect("qemu-img", "create", "-f", "qcow2", "-o", "compat=0.10", path, "64K").Do = touchLastArg
			},
		},
		{
			name: "the owner's run makes nothing: the daemon runs it", giveCred: cred,
			script: func(f *testkit.FakeRunner, path string) {
				f.Expect("qemu-img", "create", "-f", "qcow2", "-o", "compat=0.10", path, "64K").As(cred, 0o137)
				f.Expect("qemu-img", "create", "-f", "qcow2", "-o", "compat=0.10", path, "64K").Do = touchLastArg
			},
		},
		{
			name: "no owner to become: the daemon runs it",
			script: func(f *testkit.FakeRunner, path string) {
				f.Expect("qemu-img", "create", "-f", "qcow2", "-o", "compat=0.10", path, "64K").Do = touchLastArg
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := testkit.NewFakeRunner(t)
			b := dir.New(f, testkit.QuietLog())
			b.QemuImgOnly = true
			owner := &fsOwner{cred: tt.giveCred}
			b.Owner = owner
			pool := &domain.PoolDef{Type: domain.PoolDir, Name: "p", Target: domain.PoolTarget{Path: testkit.OwnedDir(t, testOwner), Perms: domain.UnsetPerms()}}
			vol := newVol(t, b, pool, "v.qcow2", "qcow2", 64<<10, func(v *domain.VolDef) { v.Target.Perms = ownerPerms(0o640) })
			tt.script(f, vol.Target.Path)
			build := func() error { return b.BuildVol(context.Background(), pool, vol, 0) }
			if tt.squashed {
				owner.refuse = unix.EPERM
				asDaemon := build
				build = func() error { return withoutChown(t, asDaemon) }
			}
			if err := build(); err != nil {
				t.Fatal(err)
			}
			wantOwnedFile(t, vol.Target.Path, 0o640)
			if got := owner.doCalls(); got != tt.wantDo {
				t.Errorf("%d steps as the owner, want %d", got, tt.wantDo)
			}
		})
	}
}

// withoutChown runs fn on an OS thread where every chown fails with EPERM
// while chmod still works: root on an export that squashes it, as far as the
// ids of a file the owner made go. (Dropping CAP_CHOWN would not do: the
// kernel lets root without it "change" a file's ids to the ones it has.) A
// seccomp filter does it for this thread alone, which keeps it until it ends
// with its goroutine; the fake runner and the owner run their steps on the
// calling goroutine, so all of fn stays there.
func withoutChown(t *testing.T, fn func() error) error {
	t.Helper()
	probe := filepath.Join(t.TempDir(), "probe")
	if err := os.WriteFile(probe, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	eperm := uint32(unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM))
	filter := []unix.SockFilter{
		// x/sys makes every chown an fchownat or an fchown, the two that
		// every architecture has.
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 0}, // the system call's number
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: unix.SYS_FCHOWN, Jt: 2},
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: unix.SYS_FCHOWNAT, Jt: 1},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW},
		{Code: unix.BPF_RET | unix.BPF_K, K: eperm},
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the runtime drops the thread
		if err := unix.Prctl(unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&prog)), 0, 0); err != nil {
			done <- err
			return
		}
		if err := unix.Chown(probe, 0, 0); !errors.Is(err, unix.EPERM) {
			done <- fmt.Errorf("chown under the filter: %v, want EPERM", err)
			return
		}
		done <- fn()
	}()
	return <-done
}

// A clone grown past its source is resized by its owner too.
func TestOwnerConvertsClone(t *testing.T) {
	testkit.RequireRoot(t)
	cred := &ports.Credential{UID: testOwner, GID: testOwner, Groups: []uint32{testOwner}}
	f := testkit.NewFakeRunner(t)
	b := dir.New(f, testkit.QuietLog())
	b.Owner = &fsOwner{cred: cred}
	pool := &domain.PoolDef{Type: domain.PoolDir, Name: "p", Target: domain.PoolTarget{Path: testkit.OwnedDir(t, testOwner), Perms: domain.UnsetPerms()}}
	src := &domain.VolDef{Name: "src", Type: domain.VolFile, Capacity: 1 << 20, Target: domain.VolTarget{Path: "/src.img", Format: "raw", Perms: domain.UnsetPerms()}}
	// The larger capacity asked is not applied (libvirt's convert takes the
	// source's size): no qemu-img resize follows.
	vol := newVol(t, b, pool, "v.qcow2", "qcow2", 2<<20, func(v *domain.VolDef) { v.Target.Perms = ownerPerms(0o600) })
	f.Expect("qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-o", "compat=0.10", "/src.img", vol.Target.Path).As(cred, 0o177).Do =
		func(cmd ports.Command) error {
			return asOwner(func() error { return os.WriteFile(vol.Target.Path, []byte("QFI\xfb"), 0o600) })
		}
	if err := b.BuildVolFrom(context.Background(), pool, vol, nil, src, 0); err != nil {
		t.Fatal(err)
	}
	wantOwnedFile(t, vol.Target.Path, 0o600)
}

// recordingRunner runs real commands and notes who ran them and how it went.
type recordingRunner struct {
	ports.CommandRunner
	mu   sync.Mutex
	runs []recordedRun
}

type recordedRun struct {
	cmd ports.Command
	err error
}

func (r *recordingRunner) Run(ctx context.Context, cmd ports.Command) ([]byte, error) {
	out, err := r.CommandRunner.Run(ctx, cmd)
	r.mu.Lock()
	r.runs = append(r.runs, recordedRun{cmd, err})
	r.mu.Unlock()
	return out, err
}

// With the real qemu-img: in the owner's directory the one run, as the
// owner, makes the image; in a root-only one the owner is refused and the
// daemon's run makes it, chowned afterwards.
func TestOwnerRunsRealQemuImg(t *testing.T) {
	testkit.RequireRoot(t)
	requireQemuImg(t)
	cred := &ports.Credential{UID: testOwner, GID: testOwner, Groups: []uint32{testOwner}}
	tests := []struct {
		name      string
		giveDir   int
		wantCreds []bool // per run: did it carry the credential
	}{
		{name: "owner's dir", giveDir: testOwner, wantCreds: []bool{true}},
		{name: "root-only dir", giveDir: 0, wantCreds: []bool{true, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &recordingRunner{CommandRunner: osexec.New(testkit.QuietLog())}
			b := dir.New(r, testkit.QuietLog())
			b.QemuImgOnly = true
			b.Owner = &fsOwner{cred: cred}
			pool := &domain.PoolDef{Type: domain.PoolDir, Name: "p", Target: domain.PoolTarget{Path: testkit.OwnedDir(t, tt.giveDir), Perms: domain.UnsetPerms()}}
			vol := newVol(t, b, pool, "v.qcow2", "qcow2", 1<<20, func(v *domain.VolDef) { v.Target.Perms = ownerPerms(0o660) })
			if err := b.BuildVol(context.Background(), pool, vol, 0); err != nil {
				t.Fatal(err)
			}
			wantOwnedFile(t, vol.Target.Path, 0o660)
			if len(r.runs) != len(tt.wantCreds) {
				t.Fatalf("%d runs, want %d: %+v", len(r.runs), len(tt.wantCreds), r.runs)
			}
			for i, want := range tt.wantCreds {
				if got := r.runs[i].cmd.Cred != nil; got != want {
					t.Errorf("run %d with credential = %v, want %v", i, got, want)
				}
			}
			if last := r.runs[len(r.runs)-1]; last.err != nil {
				t.Errorf("last run failed: %v", last.err)
			}
		})
	}
}
