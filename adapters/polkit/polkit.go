// Package polkit asks polkit whether a client may use the daemon, as libvirt
// does for auth_unix_rw/auth_unix_ro = "polkit": CheckAuthorization of
// org.freedesktop.PolicyKit1.Authority over the D-Bus system bus, for a
// unix-process subject (the client's pid, process start time and uid), with
// user interaction allowed, and libvirt's errors for each answer.
package polkit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/sirupsen/logrus"

	"github.com/virtstoraged-go/virtstoraged/adapters/lib/oserr"
	"github.com/virtstoraged-go/virtstoraged/domain"
)

// The actions libvirt's daemons check: read-write and read-only access.
const (
	ActionManage  = "org.libvirt.unix.manage"
	ActionMonitor = "org.libvirt.unix.monitor"
)

const (
	authorityName  = "org.freedesktop.PolicyKit1"
	authorityPath  = "/org/freedesktop/PolicyKit1/Authority"
	checkMethod    = "org.freedesktop.PolicyKit1.Authority.CheckAuthorization"
	allowUserInter = uint32(1) // CheckAuthorizationFlags AllowUserInteraction
)

// callTimeout is libvirt's bound on a D-Bus call (VIR_DBUS_METHOD_CALL_TIMEOUT_MILIS):
// with user interaction allowed, polkit may wait for the user to answer an
// authentication agent.
const callTimeout = 30 * time.Second

// Authority checks authorizations with polkit. It keeps one connection to the
// system bus, made at the first check and made again after it breaks (libvirt
// keeps a failed first connection failed until it restarts). Safe for
// concurrent use.
type Authority struct {
	log     *logrus.Entry
	procDir string
	connect func() (*dbus.Conn, error)

	mu   sync.Mutex
	conn *dbus.Conn
}

// New returns an Authority on the system bus (DBUS_SYSTEM_BUS_ADDRESS, or
// the standard socket).
func New(log *logrus.Entry) *Authority {
	return &Authority{log: log, procDir: "/proc", connect: func() (*dbus.Conn, error) { return dbus.ConnectSystemBus() }}
}

// NewWithAddress returns an Authority on the bus at address (tests run a
// private bus).
func NewWithAddress(log *logrus.Entry, address string) *Authority {
	a := New(log)
	a.connect = func() (*dbus.Conn, error) { return dbus.Connect(address) }
	return a
}

// subject is polkit's (sa{sv}) subject.
type subject struct {
	Kind    string
	Details map[string]dbus.Variant
}

// result is polkit's (bba{ss}) AuthorizationResult.
type result struct {
	IsAuthorized bool
	IsChallenge  bool
	Details      map[string]string
}

// CheckAuthorization asks polkit whether the process pid, running as uid, may
// do action. nil means yes; a refusal or a failure is a domain error with
// libvirt's code, domain and text ("authentication failed: access denied by
// policy", ...). The process start time, which makes the subject immune to a
// reused pid, is read here, as libvirt reads it when the client asks.
func (a *Authority) CheckAuthorization(ctx context.Context, action string, pid int32, uid uint32) error {
	start, err := StartTime(a.procDir, pid)
	if err != nil {
		return err
	}
	conn, err := a.bus()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	subj := subject{Kind: "unix-process", Details: map[string]dbus.Variant{
		"pid":        dbus.MakeVariant(uint32(pid)),
		"start-time": dbus.MakeVariant(start),
		"uid":        dbus.MakeVariant(int32(uid)),
	}}
	var res result
	err = conn.Object(authorityName, authorityPath).CallWithContext(ctx, checkMethod, 0,
		subj, action, map[string]string{}, allowUserInter, "").Store(&res)
	if err != nil {
		return a.callError(conn, ctx, err)
	}
	switch {
	case res.IsAuthorized:
		return nil
	case res.Details["polkit.dismissed"] == "true":
		return polkitError(domain.KindAuthCancelled, "user cancelled authentication process")
	case res.IsChallenge:
		return polkitError(domain.KindAuthUnavailable, "no polkit agent available to authenticate action '%s'", action)
	default:
		return polkitError(domain.KindAuthFailed, "access denied by policy")
	}
}

func polkitError(k domain.Kind, format string, args ...any) *domain.Error {
	e := domain.Errorf(k, format, args...)
	e.Domain = domain.FromPolkit
	return e
}

// bus returns the connection to the system bus, connecting when there is
// none or the last one broke.
func (a *Authority) bus() (*dbus.Conn, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.conn != nil && a.conn.Connected() {
		return a.conn, nil
	}
	conn, err := a.connect()
	if err != nil {
		e := domain.Errorf(domain.KindInternal, "Unable to get system bus connection: %s", connectText(err))
		e.Domain = domain.FromDBus
		e.Err = err
		return nil, e
	}
	if a.log != nil {
		a.log.Debug("polkit: connected to the system bus")
	}
	a.conn = conn
	return conn, nil
}

// connectText words a failure to reach the bus as GLib does, which libvirt
// passes on: "Could not connect: No such file or directory".
func connectText(err error) string {
	var en syscall.Errno
	if errors.As(err, &en) {
		return oserr.Errno(en, "Could not connect").Detail
	}
	return err.Error()
}

// callError is libvirt's VIR_ERR_DBUS_SERVICE for a failed call, with the
// text GDBus gives: the remote error's name and message, or its own words
// for a timeout or a lost connection.
func (a *Authority) callError(conn *dbus.Conn, ctx context.Context, err error) error {
	var text string
	var de dbus.Error
	switch {
	case errors.As(err, &de):
		text = "GDBus.Error:" + de.Name
		if msg := de.Error(); msg != de.Name {
			text += ": " + msg
		}
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		text = "Timeout was reached"
	case ctx.Err() != nil: // the client hung up
		text = "Operation was cancelled"
	default:
		// The transport failed: the next check connects again.
		text = err.Error()
		if errors.Is(err, dbus.ErrClosed) || !conn.Connected() {
			text = "The connection is closed"
		}
		a.drop(conn)
	}
	e := domain.Errorf(domain.KindDBusService, "%s", text)
	e.Domain = domain.FromDBus
	e.Err = err
	return e
}

// drop forgets a broken connection so that the next check connects again.
func (a *Authority) drop(conn *dbus.Conn) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.conn == conn {
		_ = a.conn.Close()
		a.conn = nil
	}
}

// Close hangs up from the bus.
func (a *Authority) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.conn == nil {
		return nil
	}
	err := a.conn.Close()
	a.conn = nil
	return err
}

// StartTime returns when process pid started, in clock ticks after boot
// (field 22 of procDir/PID/stat), the start-time polkit's unix-process
// subject takes.
func StartTime(procDir string, pid int32) (uint64, error) {
	path := filepath.Join(procDir, strconv.Itoa(int(pid)), "stat")
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, oserr.System(err, "Failed to open file '%s'", path)
	}
	return parseStartTime(string(b))
}

// parseStartTime reads the start time out of a stat line. The command name
// (field 2) is in parentheses and may itself hold spaces and parentheses, so
// the fields are counted from the last ')'.
func parseStartTime(stat string) (uint64, error) {
	end := strings.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, domain.Errorf(domain.KindInternal, "cannot parse process status data")
	}
	// After the name: field 3 (state) onwards; start time is field 22.
	fields := strings.Fields(stat[end+1:])
	const startField = 22 - 3
	if len(fields) <= startField {
		return 0, domain.Errorf(domain.KindInternal, "cannot parse process status data")
	}
	v, err := strconv.ParseUint(fields[startField], 10, 64)
	if err != nil {
		return 0, domain.Errorf(domain.KindInternal, "cannot parse process status data")
	}
	return v, nil
}
