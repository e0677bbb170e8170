package testkit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// MountTable is a fake /proc/self/mountinfo in a temp file that a scripted
// mount or umount can change, as the kernel would; backends read it from Path.
type MountTable struct {
	mu    sync.Mutex
	Path  string
	lines []string
	next  int
}

// NewMountTable returns a table holding only the root filesystem.
func NewMountTable(t testing.TB) *MountTable {
	t.Helper()
	mt := &MountTable{Path: filepath.Join(t.TempDir(), "mountinfo"), next: 100}
	mt.Add("/", "ext4", "/dev/vda")
	return mt
}

// Add records source mounted on target.
func (m *MountTable) Add(target, fstype, source string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.next++
	m.lines = append(m.lines, fmt.Sprintf("%d 1 7:%d / %s rw,nosuid,nodev,noexec,relatime - %s %s rw",
		m.next, m.next, strings.ReplaceAll(target, " ", `\040`), fstype, source))
	m.writeLocked()
}

// Remove forgets every mount on target.
func (m *MountTable) Remove(target string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	esc := " " + strings.ReplaceAll(target, " ", `\040`) + " "
	kept := m.lines[:0]
	for _, l := range m.lines {
		if !strings.Contains(l, esc) {
			kept = append(kept, l)
		}
	}
	m.lines = kept
	m.writeLocked()
}

// Mounting is the action of a scripted mount: it mounts source on target,
// as the real command would.
func (m *MountTable) Mounting(target, fstype, source string) func(ports.Command) error {
	return func(ports.Command) error {
		m.Add(target, fstype, source)
		return nil
	}
}

// Unmounting is the action of a scripted umount of target.
func (m *MountTable) Unmounting(target string) func(ports.Command) error {
	return func(ports.Command) error {
		m.Remove(target)
		return nil
	}
}

func (m *MountTable) writeLocked() {
	if err := os.WriteFile(m.Path, []byte(strings.Join(m.lines, "\n")+"\n"), 0o644); err != nil {
		panic(err)
	}
}

// WantErrText checks an error's kind and full text.
func WantErrText(t *testing.T, err error, wantKind domain.Kind, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %q", want)
	}
	if k := domain.KindOf(err); k != wantKind {
		t.Errorf("kind = %d, want %d (err %v)", k, wantKind, err)
	}
	if err.Error() != want {
		t.Errorf("error text\n got: %s\nwant: %s", err.Error(), want)
	}
}

// BlockingRunner is a runner whose commands never finish on their own: an NFS
// server that does not answer. With ignoreCtx it does not even stop when ctx is
// cancelled (a mount stuck in the kernel).
type BlockingRunner struct {
	ignoreCtx bool
	release   chan struct{}
	mu        sync.Mutex
	ran       [][]string
}

// NewBlockingRunner returns a runner released when the test ends.
func NewBlockingRunner(t testing.TB, ignoreCtx bool) *BlockingRunner {
	r := &BlockingRunner{ignoreCtx: ignoreCtx, release: make(chan struct{})}
	t.Cleanup(func() { close(r.release) })
	return r
}

var _ ports.CommandRunner = (*BlockingRunner)(nil)

// Run blocks until ctx is done (or, with ignoreCtx, until the test ends).
func (r *BlockingRunner) Run(ctx context.Context, cmd ports.Command) ([]byte, error) {
	r.mu.Lock()
	r.ran = append(r.ran, append([]string{cmd.Path}, cmd.Args...))
	r.mu.Unlock()
	if r.ignoreCtx {
		<-r.release
		return nil, fmt.Errorf("released")
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-r.release:
		return nil, fmt.Errorf("released")
	}
}

// Ran returns the command lines started so far.
func (r *BlockingRunner) Ran() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]string(nil), r.ran...)
}
