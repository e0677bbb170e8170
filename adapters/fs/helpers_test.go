package fs_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

var update = flag.Bool("update", false, "rewrite the golden .argv files in testdata")

func quietLog() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(os.Stderr)
	l.SetLevel(logrus.ErrorLevel) // the expected warnings (tainted mount options, failed showmount) would drown the output
	return logrus.NewEntry(l)
}

// mountTable is a fake /proc/self/mountinfo in a temp file that a scripted
// mount or umount can change, as the kernel would.
type mountTable struct {
	mu    sync.Mutex
	path  string
	lines []string
	next  int
}

func newMountTable(t testing.TB) *mountTable {
	t.Helper()
	mt := &mountTable{path: filepath.Join(t.TempDir(), "mountinfo"), next: 100}
	mt.add("/", "ext4", "/dev/vda")
	return mt
}

// add records source mounted on target.
func (m *mountTable) add(target, fstype, source string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.next++
	m.lines = append(m.lines, fmt.Sprintf("%d 1 7:%d / %s rw,nosuid,nodev,noexec,relatime - %s %s rw",
		m.next, m.next, strings.ReplaceAll(target, " ", `\040`), fstype, source))
	m.writeLocked()
}

// remove forgets every mount on target.
func (m *mountTable) remove(target string) {
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

func (m *mountTable) writeLocked() {
	if err := os.WriteFile(m.path, []byte(strings.Join(m.lines, "\n")+"\n"), 0o644); err != nil {
		panic(err)
	}
}

// checkGolden compares the command lines run with testdata/name.argv, after
// replacing the temp paths in repl (old, new pairs).
func checkGolden(t *testing.T, name string, argvs [][]string, repl ...string) {
	t.Helper()
	r := strings.NewReplacer(repl...)
	var b strings.Builder
	for _, argv := range argvs {
		b.WriteString(r.Replace(testkit.FormatArgv(argv)))
		b.WriteString("\n")
	}
	got := b.String()
	path := filepath.Join("testdata", name+".argv")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("argv mismatch for %s:\n got: %s\nwant: %s", name, got, want)
	}
}

func wantErrText(t *testing.T, err error, wantKind domain.Kind, want string) {
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

// blockingRunner is a runner whose commands never finish on their own:
// an NFS server that does not answer. With ignoreCtx it does not even stop
// when ctx is cancelled (a mount stuck in the kernel).
type blockingRunner struct {
	ignoreCtx bool
	release   chan struct{}
	mu        sync.Mutex
	ran       [][]string
}

func newBlockingRunner(t testing.TB, ignoreCtx bool) *blockingRunner {
	r := &blockingRunner{ignoreCtx: ignoreCtx, release: make(chan struct{})}
	t.Cleanup(func() { close(r.release) })
	return r
}

func (r *blockingRunner) Run(ctx context.Context, cmd ports.Command) ([]byte, error) {
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
