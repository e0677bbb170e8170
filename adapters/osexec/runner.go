// Package osexec runs external programs for the backends: the one place in the
// daemon that calls os/exec. Every command is bound to a context, runs with
// LC_ALL=C so that its output and messages can be parsed, and keeps its stderr
// for the error the caller reports.
package osexec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/ports"
)

var _ ports.CommandRunner = (*Runner)(nil)

// DefaultWaitDelay is how long Run waits for a killed or finished child's pipes
// to close before giving up on them.
const DefaultWaitDelay = 5 * time.Second

// Runner runs commands on the host.
type Runner struct {
	log *logrus.Entry
	// WaitDelay bounds the wait for the output pipes after the child exits or is
	// killed: a grandchild that inherited stdout (e.g. a daemon forked by mount
	// helpers) would otherwise keep Run blocked forever.
	WaitDelay time.Duration
}

// New returns a Runner that logs every command line at debug level on log.
func New(log *logrus.Entry) *Runner {
	return &Runner{log: log, WaitDelay: DefaultWaitDelay}
}

// ExitError is ports.ExitError, the runner's failure contract.
//
// Deprecated: test for *ports.ExitError; this name stays only so that code
// written before the type moved to ports still builds.
type ExitError = ports.ExitError

// Run runs cmd and returns its stdout. A command that cannot be started returns
// the exec error, which is ports.ErrCommandNotFound too when the program is
// missing; a command that fails returns *ports.ExitError.
func (r *Runner) Run(ctx context.Context, cmd ports.Command) ([]byte, error) {
	argv := append([]string{cmd.Path}, cmd.Args...)
	if r.log != nil {
		r.log.WithField("argv", argv).Debug("osexec: running command")
	}
	// CommandContext, not Command: when the client hangs up or the daemon stops,
	// ctx is cancelled and the child is killed instead of being left running
	// (topolvm found orphaned lvm processes after timeouts without it).
	c := exec.CommandContext(ctx, cmd.Path, cmd.Args...)
	c.Env = append(append(os.Environ(), cmd.Env...), "LC_ALL=C")
	c.WaitDelay = r.WaitDelay
	// Each command gets its own process group and cancellation kills the group:
	// a shell wrapper or helper that forked (mount.nfs, scrub) must not leave its
	// children running after we gave up on it.
	// Pdeathsig: if the daemon itself dies (SIGKILL, OOM), its tools die with it
	// instead of writing on behind the back of the next daemon, which would list
	// a half-made image as a volume. The signal follows the forking OS thread,
	// so the goroutine stays on that thread until the child is reaped.
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if cr := cmd.Cred; cr != nil {
		// An unprivileged daemon may not call setgroups at all; asking for it
		// would make every such command fail to start instead of letting the
		// kernel judge the uid and gid.
		c.SysProcAttr.Credential = &syscall.Credential{Uid: cr.UID, Gid: cr.GID, Groups: cr.Groups, NoSetGroups: os.Geteuid() != 0}
	}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	if cmd.Stdin != nil {
		c.Stdin = bytes.NewReader(cmd.Stdin)
	}
	if cmd.StdinStream != nil {
		c.Stdin = cmd.StdinStream
	}
	var stdout, stderr bytes.Buffer
	c.Stdout = &stdout
	if cmd.StdoutStream != nil {
		c.Stdout = cmd.StdoutStream
	}
	c.Stderr = &stderr
	var err error
	if cmd.Umask != 0 {
		err = runWithUmask(c, cmd.Umask)
	} else {
		runtime.LockOSThread()
		err = c.Run()
		runtime.UnlockOSThread()
	}
	if err == nil {
		return stdout.Bytes(), nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		xe := &ports.ExitError{Argv: argv, Code: ee.ExitCode(), Stderr: stderr.String(), Err: err}
		if ctxErr := ctx.Err(); ctxErr != nil {
			xe.Err = errors.Join(ctxErr, err)
		}
		if r.log != nil {
			r.log.WithFields(logrus.Fields{"argv": argv, "exit": xe.Code}).Debug("osexec: command failed")
		}
		return stdout.Bytes(), xe
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		// The child exited cleanly but something still held its pipes open.
		return stdout.Bytes(), nil
	}
	return nil, startError{argv: argv, err: err}
}

// startError is a command that could not be started. It is
// ports.ErrCommandNotFound when os/exec found no program, so that callers
// need not know os/exec.
type startError struct {
	argv []string
	err  error
}

func (e startError) Error() string {
	return fmt.Sprintf("osexec: %s: %v", strings.Join(e.argv, " "), e.err)
}

func (e startError) Unwrap() error { return e.err }

func (e startError) Is(target error) bool {
	return target == ports.ErrCommandNotFound && errors.Is(e.err, exec.ErrNotFound)
}

// ExitCode is ports.ExitStatus.
//
// Deprecated: use ports.ExitStatus.
func ExitCode(err error) (code int, ok bool) { return ports.ExitStatus(err) }

// runWithUmask runs c with the given umask. The umask belongs to the whole
// process, and setting it around the fork would change the mode of files the
// daemon's other threads create meanwhile. So a goroutine takes an OS thread
// of its own, unshares its filesystem attributes (umask, cwd, root) from the
// rest of the process, sets the umask there and forks from that thread: the
// child copies that thread's attributes. The goroutine ends still locked, so
// that the runtime destroys the thread instead of handing goroutines a thread
// that no longer follows the process's umask and working directory; the old
// umask is put back first for the one thread the runtime cannot destroy (the
// main one, which it parks instead, and whose umask /proc reports).
func runWithUmask(c *exec.Cmd, umask uint32) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			done <- fmt.Errorf("osexec: unshare(CLONE_FS) for the umask of %s: %w", c.Path, err)
			return
		}
		old := unix.Umask(int(umask))
		err := c.Run()
		unix.Umask(old)
		done <- err
	}()
	return <-done
}
