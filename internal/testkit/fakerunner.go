package testkit

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/ports"
)

var _ ports.CommandRunner = (*FakeRunner)(nil)

// AnyArg in an expected argv matches any single argument (a temp path, a
// generated name).
const AnyArg = "\x00any\x00"

// AnyRest as the last element of an expected argv matches all remaining
// arguments, zero or more: golden-file tests take any command line and compare
// RunLog with the file afterwards.
const AnyRest = "\x00rest\x00"

// FakeCall is one scripted command: the argv it expects (program first) and
// what the fake answers.
type FakeCall struct {
	Argv   []string
	Stdout string
	Stderr string
	// Exit non-zero makes Run fail with an *ports.ExitError, as the real runner.
	Exit int
	// Err, when set, is returned as is (a program that cannot start).
	Err error
	// Do runs before the answer, to give the call its side effects (create the
	// file qemu-img would have created). Its error replaces the answer.
	Do func(cmd ports.Command) error
	// Cred and Umask are the identity and umask the command must run with:
	// nil and 0, the default, match only a command run as the daemon, so
	// that a test cannot miss a command that switched users.
	Cred  *ports.Credential
	Umask uint32
}

// As sets the credential and umask the call expects and returns the call.
func (c *FakeCall) As(cred *ports.Credential, umask uint32) *FakeCall {
	c.Cred, c.Umask = cred, umask
	return c
}

// FakeRunner is a scripted ports.CommandRunner for tests, after k8s FakeExec:
// a queue of expected command lines with canned answers, and a log of every
// command run.
type FakeRunner struct {
	t testing.TB

	// ExactOrder makes every command match the head of the queue; otherwise
	// any queued call with an equal argv is taken.
	ExactOrder bool

	mu     sync.Mutex
	script []*FakeCall
	runLog [][]string
	cmds   []ports.Command
}

// NewFakeRunner returns a fake expecting calls in ExactOrder. Unexpected
// commands fail t; leftover expectations fail t at cleanup.
func NewFakeRunner(t testing.TB, calls ...FakeCall) *FakeRunner {
	f := &FakeRunner{t: t, ExactOrder: true}
	for i := range calls {
		f.script = append(f.script, &calls[i])
	}
	t.Cleanup(func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, c := range f.script {
			t.Errorf("testkit: expected command never ran: %s%s", formatIdentity(c.Cred, c.Umask), FormatArgv(c.Argv))
		}
	})
	return f
}

// Expect queues one more expected command and returns it so that the caller can
// set its answer.
func (f *FakeRunner) Expect(argv ...string) *FakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := &FakeCall{Argv: argv}
	f.script = append(f.script, c)
	return c
}

// Run takes the matching scripted call and answers with it.
func (f *FakeRunner) Run(ctx context.Context, cmd ports.Command) ([]byte, error) {
	argv := append([]string{cmd.Path}, cmd.Args...)
	f.mu.Lock()
	f.runLog = append(f.runLog, argv)
	f.cmds = append(f.cmds, cmd)
	idx := -1
	for i, c := range f.script {
		if argvMatch(c.Argv, argv) && credMatch(c, cmd) {
			idx = i
			break
		}
		if f.ExactOrder {
			break
		}
	}
	if idx < 0 {
		want := "nothing"
		if len(f.script) > 0 {
			want = formatIdentity(f.script[0].Cred, f.script[0].Umask) + FormatArgv(f.script[0].Argv)
		}
		f.mu.Unlock()
		got := formatIdentity(cmd.Cred, cmd.Umask) + FormatArgv(argv)
		f.t.Errorf("testkit: unexpected command %s (next expected: %s)", got, want)
		return nil, fmt.Errorf("testkit: unexpected command %s", got)
	}
	c := f.script[idx]
	f.script = slices.Delete(f.script, idx, idx+1)
	f.mu.Unlock()

	if err := ctx.Err(); err != nil {
		return nil, &ports.ExitError{Argv: argv, Code: -1, Err: err}
	}
	if c.Do != nil {
		if err := c.Do(cmd); err != nil {
			return nil, err
		}
	}
	if c.Err != nil {
		return nil, c.Err
	}
	if c.Exit != 0 {
		return []byte(c.Stdout), &ports.ExitError{Argv: argv, Code: c.Exit, Stderr: c.Stderr}
	}
	return []byte(c.Stdout), nil
}

// RunLog returns every argv run so far, in order.
func (f *FakeRunner) RunLog() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.runLog)
}

// Commands returns every command run so far, with stdin and environment.
func (f *FakeRunner) Commands() []ports.Command {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.cmds)
}

// Pending returns how many scripted calls have not run yet.
func (f *FakeRunner) Pending() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.script)
}

// FormatArgv renders argv one argument per token, quoting arguments with
// spaces, the form golden .argv files use.
func FormatArgv(argv []string) string {
	parts := make([]string, len(argv))
	for i, a := range argv {
		switch {
		case a == AnyArg:
			parts[i] = "<any>"
		case a == AnyRest:
			parts[i] = "<any>..."
		case a == "" || strings.ContainsAny(a, " \t\n'\""):
			parts[i] = fmt.Sprintf("%q", a)
		default:
			parts[i] = a
		}
	}
	return strings.Join(parts, " ")
}

func credMatch(c *FakeCall, cmd ports.Command) bool {
	if c.Umask != cmd.Umask || (c.Cred == nil) != (cmd.Cred == nil) {
		return false
	}
	if c.Cred == nil {
		return true
	}
	return c.Cred.UID == cmd.Cred.UID && c.Cred.GID == cmd.Cred.GID && slices.Equal(c.Cred.Groups, cmd.Cred.Groups)
}

// formatIdentity renders who a command runs as, for failure messages; the
// daemon's own identity renders as nothing.
func formatIdentity(cred *ports.Credential, umask uint32) string {
	var s string
	if cred != nil {
		s = fmt.Sprintf("[uid=%d gid=%d groups=%v] ", cred.UID, cred.GID, cred.Groups)
	}
	if umask != 0 {
		s += fmt.Sprintf("[umask=%04o] ", umask)
	}
	return s
}

func argvMatch(want, got []string) bool {
	if n := len(want); n > 0 && want[n-1] == AnyRest {
		if len(got) < n-1 {
			return false
		}
		want, got = want[:n-1], got[:n-1]
	}
	if len(want) != len(got) {
		return false
	}
	for i := range want {
		if want[i] != AnyArg && want[i] != got[i] {
			return false
		}
	}
	return true
}
