// Package oserr turns operating-system and external-command failures into
// domain errors with libvirt's texts, for every backend: virReportSystemError's
// "<what>: <strerror>" and virCommandRun's "Child process (...) unexpected exit
// status N: stderr".
package oserr

import (
	"errors"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf8"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// errnoText is an errno whose message reads as glibc's strerror ("No such file
// or directory"), since libvirt's system errors end with that text and clients
// and people compare it. Go's own table is the same text starting lower-case.
type errnoText struct{ errno syscall.Errno }

func (e errnoText) Error() string {
	s := e.errno.Error()
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:]
}

func (e errnoText) Unwrap() error { return e.errno }

// System builds libvirt's virReportSystemError from an error carrying an errno
// (or any error, whose own text is then used).
func System(err error, format string, args ...any) *domain.Error {
	var en syscall.Errno
	if errors.As(err, &en) {
		return Errno(en, format, args...)
	}
	return domain.SystemError(0, err, format, args...)
}

// Errno is System for a bare errno.
func Errno(en syscall.Errno, format string, args ...any) *domain.Error {
	return domain.SystemError(int32(en), errnoText{en}, format, args...)
}

// FromUtil marks e as reported by libvirt's util code (virfile.c,
// vircommand.c), which sends its errors with no error domain (0) where the
// storage driver's carry VIR_FROM_STORAGE.
func FromUtil(e *domain.Error) *domain.Error {
	e.NoDomain = true
	return e
}

// Command turns a runner failure into libvirt's virCommandRun errors: a
// missing program is "Cannot find 'X' in path", a failed one reports its exit
// status and stderr as an internal error; a domain error passes through.
func Command(err error, argv []string) *domain.Error {
	if errors.Is(err, ports.ErrCommandNotFound) {
		return FromUtil(Errno(syscall.ENOENT, "Cannot find '%s' in path", argv[0]))
	}
	var xe *ports.ExitError
	if errors.As(err, &xe) {
		e := domain.Errorf(domain.KindInternal, "Child process (%s) unexpected exit status %d", CommandLine(argv), xe.Code)
		// The tool's stderr goes in as it came, its final newline and an
		// LVM tool's leading spaces included: libvirt adds nothing and takes
		// nothing away.
		if xe.Stderr != "" {
			e.Detail += ": " + xe.Stderr
		}
		e.Err = err
		return FromUtil(e)
	}
	var de *domain.Error
	if errors.As(err, &de) {
		return de
	}
	return &domain.Error{Kind: domain.KindInternal, Detail: err.Error(), Err: err}
}

// shellMeta are the characters for which libvirt's virBufferEscapeShell
// quotes an argument.
const shellMeta = "\r\t\n !\"#$&'()*;<>?[\\]^`{|}~"

// CommandLine formats argv as libvirt's virCommandToString does in its
// messages: arguments holding a shell metacharacter (a space, '#') or empty
// go in single quotes; a quote inside one ends them, is escaped with a
// backslash and starts them again.
func CommandLine(argv []string) string {
	var b strings.Builder
	for i, a := range argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		if a != "" && !strings.ContainsAny(a, shellMeta) {
			b.WriteString(a)
			continue
		}
		b.WriteByte('\'')
		b.WriteString(strings.ReplaceAll(a, "'", `'\''`))
		b.WriteByte('\'')
	}
	return b.String()
}
