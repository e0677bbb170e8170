package ports

import (
	"errors"
	"fmt"
	"strings"
)

// ErrCommandNotFound is what a CommandRunner's error is (errors.Is) when
// the program does not exist: libvirt's "Cannot find 'X' in path". The
// runner's error wraps its own cause too (os/exec's ErrNotFound for the
// real one), which a caller has no need to know.
var ErrCommandNotFound = errors.New("executable file not found")

// ExitError is a command that ran and failed: it exited with a non-zero
// status, or a signal ended it (Code -1; the runner kills a command whose
// context ends, and Err then carries the context's error). It is the one
// failure type of CommandRunner, produced by the real runner and by the
// scripted ones of the tests alike, as k8s.io/utils/exec's ExitError is for
// its Interface.
type ExitError struct {
	Argv   []string
	Code   int
	Stderr string
	// Err is the cause the runner saw (os/exec's error, the context's), or
	// nil.
	Err error
}

// Error formats the failure with the command's stderr, so that the user sees
// the tool's own explanation. The prefix names the one runner that makes
// these (and that the texts have always had).
func (e *ExitError) Error() string {
	msg := fmt.Sprintf("osexec: %s: exit status %d", strings.Join(e.Argv, " "), e.Code)
	if s := strings.TrimSpace(e.Stderr); s != "" {
		msg += ": " + s
	}
	return msg
}

// ExitStatus returns the command's exit status, -1 when a signal ended it.
func (e *ExitError) ExitStatus() int { return e.Code }

// Unwrap exposes the runner's cause.
func (e *ExitError) Unwrap() error { return e.Err }

// ExitStatus returns the exit status carried by err when it is (or wraps) an
// *ExitError, and ok=false otherwise.
func ExitStatus(err error) (code int, ok bool) {
	var xe *ExitError
	if errors.As(err, &xe) {
		return xe.Code, true
	}
	return 0, false
}
