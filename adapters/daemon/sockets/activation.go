package sockets

import (
	"fmt"
	"net"
	"strings"

	"github.com/coreos/go-systemd/v22/activation"
)

// The names systemd gives the activated fds: FileDescriptorName= in our
// units, and the socket unit's name by default, which is the same string.
const (
	FDNameRW    = "virtstoraged.socket"
	FDNameRO    = "virtstoraged-ro.socket"
	FDNameAdmin = "virtstoraged-admin.socket"
)

// FromSystemd takes the listeners systemd passed (LISTEN_PID, LISTEN_FDS,
// LISTEN_FDNAMES) and clears those variables so that children do not see
// them. ok is false when the process was not socket activated. Fds are
// matched by name; without names they are taken in order: rw, ro, admin
// for three, rw and admin for two (session mode has no read-only socket),
// rw alone for one. Any listener may be nil when its socket was not passed.
func FromSystemd() (rw, ro, admin net.Listener, ok bool, err error) {
	files := activation.Files(true)
	if len(files) == 0 {
		return nil, nil, nil, false, nil
	}
	var lns []net.Listener
	closeAll := func() {
		for _, l := range lns {
			if l != nil {
				_ = l.Close()
			}
		}
	}
	named := map[string]net.Listener{}
	anyNamed := false
	for _, f := range files {
		l, err := net.FileListener(f)
		// FileListener dups the fd; the original is ours to close.
		_ = f.Close()
		if err != nil {
			closeAll()
			return nil, nil, nil, false, fmt.Errorf("sockets: activated fd %q: %w", f.Name(), err)
		}
		if ul, isUnix := l.(*net.UnixListener); isUnix {
			// systemd owns the socket file; removing it on close would
			// break the next activation.
			ul.SetUnlinkOnClose(false)
		}
		lns = append(lns, l)
		name := f.Name()
		if !strings.HasPrefix(name, "LISTEN_FD_") {
			anyNamed = true
		}
		if _, dup := named[name]; dup {
			closeAll()
			return nil, nil, nil, false, fmt.Errorf("sockets: systemd passed two fds named %q", name)
		}
		named[name] = l
	}
	if anyNamed {
		for name := range named {
			switch name {
			case FDNameRW, FDNameRO, FDNameAdmin:
			default:
				closeAll()
				return nil, nil, nil, false, fmt.Errorf("sockets: systemd passed an unexpected fd named %q (want %s, %s or %s)", name, FDNameRW, FDNameRO, FDNameAdmin)
			}
		}
		return named[FDNameRW], named[FDNameRO], named[FDNameAdmin], true, nil
	}
	switch len(lns) {
	case 1:
		return lns[0], nil, nil, true, nil
	case 2:
		return lns[0], nil, lns[1], true, nil
	case 3:
		return lns[0], lns[1], lns[2], true, nil
	}
	closeAll()
	return nil, nil, nil, false, fmt.Errorf("sockets: systemd passed %d unnamed fds, want 1 to 3", len(lns))
}
