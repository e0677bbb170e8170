package faults

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/virtstoraged-go/virtstoraged/ports"
)

// Fault is how one injected failure answers.
type Fault struct {
	// Exit is the exit status reported (1 when zero and Succeed is false).
	Exit int
	// Stderr is what the failed program "printed".
	Stderr string
	// Before runs first, to leave the side effects a program dying half-way
	// would leave (a partial image file).
	Before func(cmd ports.Command)
	// Succeed answers exit 0 without running the command at all: a tool that
	// claims success but did nothing (mount that mounted nothing).
	Succeed bool
}

// Injector is a ports.CommandRunner that passes every command to Next except
// the calls chosen with Fail, which it answers with their Fault instead, and
// the calls made with a context already done, which fail without running as
// they do with the real runner. It logs every command line it is given.
type Injector struct {
	// Next runs the commands that are not failed.
	Next ports.CommandRunner

	mu     sync.Mutex
	calls  int
	faults map[int]Fault
	log    [][]string
	failed []int
}

var _ ports.CommandRunner = (*Injector)(nil)

// NewInjector returns an injector over next that fails nothing yet.
func NewInjector(next ports.CommandRunner) *Injector {
	return &Injector{Next: next, faults: map[int]Fault{}}
}

// Fail makes call number n (0-based, counted from the injector's creation or
// its last Reset) answer with f.
func (i *Injector) Fail(n int, f Fault) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.faults[n] = f
}

// Reset forgets the faults, the call count and the log.
func (i *Injector) Reset() {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.calls, i.faults, i.log, i.failed = 0, map[int]Fault{}, nil, nil
}

// Run answers call number n with its fault, or runs it through Next.
func (i *Injector) Run(ctx context.Context, cmd ports.Command) ([]byte, error) {
	argv := append([]string{cmd.Path}, cmd.Args...)
	i.mu.Lock()
	n := i.calls
	i.calls++
	i.log = append(i.log, argv)
	f, ok := i.faults[n]
	if ok {
		i.failed = append(i.failed, n)
	}
	i.mu.Unlock()
	if err := ctx.Err(); err != nil && !ok {
		// As the real runner: a command whose context is done never starts.
		return nil, &ports.ExitError{Argv: argv, Code: -1, Err: err}
	}
	if !ok {
		return i.Next.Run(ctx, cmd)
	}
	if f.Before != nil {
		f.Before(cmd)
	}
	if f.Succeed {
		return nil, nil
	}
	code := f.Exit
	if code == 0 {
		code = 1
	}
	return nil, &ports.ExitError{Argv: argv, Code: code, Stderr: f.Stderr}
}

// RunLog returns every command line run so far, in order.
func (i *Injector) RunLog() [][]string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return slices.Clone(i.log)
}

// Failed returns the numbers of the calls that were answered with a fault.
func (i *Injector) Failed() []int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return slices.Clone(i.failed)
}

// RunLogString renders the log one command a line, for test failure messages.
func (i *Injector) RunLogString() string {
	var b strings.Builder
	for n, argv := range i.RunLog() {
		fmt.Fprintf(&b, "  #%d %s\n", n, strings.Join(argv, " "))
	}
	return b.String()
}

// Ran reports whether the log holds a command line starting with prefix,
// at or after call number from.
func (i *Injector) Ran(from int, prefix ...string) bool {
	for n, argv := range i.RunLog() {
		if n >= from && len(argv) >= len(prefix) && slices.Equal(argv[:len(prefix)], prefix) {
			return true
		}
	}
	return false
}
