package testkit_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// recorder is a testing.TB that records failures instead of failing.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) { r.errs = append(r.errs, format) }

func TestFakeRunnerAnswers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f := testkit.NewFakeRunner(t,
		testkit.FakeCall{Argv: []string{"qemu-img", "info", testkit.AnyArg}, Stdout: "{}"},
		testkit.FakeCall{Argv: []string{"lvs"}, Exit: 5, Stderr: "not found"},
		testkit.FakeCall{Argv: []string{"touch"}, Do: func(ports.Command) error {
			return os.WriteFile(filepath.Join(dir, "made"), nil, 0o600)
		}},
	)
	ctx := context.Background()
	out, err := f.Run(ctx, ports.Command{Path: "qemu-img", Args: []string{"info", "/x"}})
	if err != nil || string(out) != "{}" {
		t.Fatalf("Run = %q, %v", out, err)
	}
	_, err = f.Run(ctx, ports.Command{Path: "lvs"})
	var xe *ports.ExitError
	if !errors.As(err, &xe) || xe.ExitStatus() != 5 || xe.Stderr != "not found" {
		t.Fatalf("err = %#v", err)
	}
	if _, err := f.Run(ctx, ports.Command{Path: "touch"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "made")); err != nil {
		t.Errorf("Do did not run: %v", err)
	}
	if got := len(f.RunLog()); got != 3 {
		t.Errorf("RunLog has %d entries", got)
	}
	if f.Pending() != 0 {
		t.Errorf("pending = %d", f.Pending())
	}
}

func TestFakeRunnerOrder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		giveExact    bool
		wantFailures int
	}{
		{name: "exact order rejects out of order", giveExact: true, wantFailures: 1},
		{name: "any order accepts", giveExact: false, wantFailures: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{TB: t}
			f := testkit.NewFakeRunner(rec)
			f.ExactOrder = tt.giveExact
			f.Expect("a")
			f.Expect("b")
			_, errB := f.Run(context.Background(), ports.Command{Path: "b"})
			if len(rec.errs) != tt.wantFailures {
				t.Fatalf("failures = %v, want %d", rec.errs, tt.wantFailures)
			}
			if (errB != nil) != (tt.wantFailures > 0) {
				t.Errorf("err = %v", errB)
			}
			// Drain the queue so that cleanup has nothing to report.
			for _, p := range []string{"a", "b"} {
				if f.Pending() > 0 {
					_, _ = f.Run(context.Background(), ports.Command{Path: p})
				}
			}
		})
	}
}

func TestFakeRunnerCancelled(t *testing.T) {
	t.Parallel()
	f := testkit.NewFakeRunner(t, testkit.FakeCall{Argv: []string{"x"}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := f.Run(ctx, ports.Command{Path: "x"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

func TestFakeRunnerAnyRest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		giveArgv  []string
		wantMatch bool
	}{
		{name: "no more args", giveArgv: []string{"qemu-img"}, wantMatch: true},
		{name: "many args", giveArgv: []string{"qemu-img", "create", "-f", "qcow2"}, wantMatch: true},
		{name: "other program", giveArgv: []string{"scrub", "-f"}, wantMatch: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{TB: t}
			f := testkit.NewFakeRunner(rec)
			f.Expect("qemu-img", testkit.AnyRest)
			_, err := f.Run(context.Background(), ports.Command{Path: tt.giveArgv[0], Args: tt.giveArgv[1:]})
			if (err == nil) != tt.wantMatch {
				t.Errorf("err = %v, wantMatch %v", err, tt.wantMatch)
			}
			if !tt.wantMatch {
				_, _ = f.Run(context.Background(), ports.Command{Path: "qemu-img"})
			}
		})
	}
}

func TestFormatArgv(t *testing.T) {
	t.Parallel()
	got := testkit.FormatArgv([]string{"qemu-img", "create", "-f", "qcow2", "/a b", testkit.AnyArg})
	want := `qemu-img create -f qcow2 "/a b" <any>`
	if got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// A call expecting a credential takes only a command run with it, and a
// plain call only a command run as the daemon.
func TestFakeRunnerCredential(t *testing.T) {
	t.Parallel()
	owner := &ports.Credential{UID: 107, GID: 107, Groups: []uint32{107}}
	tests := []struct {
		name         string
		giveCred     *ports.Credential
		giveUmask    uint32
		wantFailures int
	}{
		{name: "same identity", giveCred: owner, giveUmask: 0o177},
		{name: "as the daemon", wantFailures: 1},
		{name: "other groups", giveCred: &ports.Credential{UID: 107, GID: 107}, giveUmask: 0o177, wantFailures: 1},
		{name: "other umask", giveCred: owner, giveUmask: 0o077, wantFailures: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{TB: t}
			f := testkit.NewFakeRunner(rec)
			f.Expect("qemu-img", "create").As(owner, 0o177)
			_, err := f.Run(context.Background(), ports.Command{Path: "qemu-img", Args: []string{"create"}, Cred: tt.giveCred, Umask: tt.giveUmask})
			if len(rec.errs) != tt.wantFailures || (err != nil) != (tt.wantFailures > 0) {
				t.Errorf("failures = %v, err = %v, want %d failures", rec.errs, err, tt.wantFailures)
			}
			if got := f.Commands(); len(got) != 1 || got[0].Cred != tt.giveCred || got[0].Umask != tt.giveUmask {
				t.Errorf("recorded %+v", got)
			}
		})
	}
}
