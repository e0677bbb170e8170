// Package sockets opens the daemon's three UNIX sockets (read-write,
// read-only, admin), either itself or from systemd socket activation, and
// reads the credentials of the peer at the other end.
package sockets

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ErrInUse is wrapped by Listen's error when a live daemon answers on the path.
var ErrInUse = errors.New("sockets: socket in use")

// Listen listens on the UNIX socket path with the given permissions and,
// when group is set (a name or numeric gid), that group. It creates the
// parent directory, refuses to take over a socket a live daemon answers on,
// and replaces a stale one. Closing the listener removes the path.
func Listen(path string, perms os.FileMode, group string) (net.Listener, error) {
	gid := -1
	if group != "" {
		g, err := lookupGroup(group)
		if err != nil {
			return nil, err
		}
		gid = g
	}
	// 0755 as libvirt does for /run/libvirt: clients of every socket must be
	// able to reach it; the sockets' own modes do the access control.
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("sockets: create socket directory: %w", err)
	}
	if err := clearStale(path); err != nil {
		return nil, err
	}
	// The socket is bound under a temporary name, given its mode and group,
	// and only then renamed into place: a client never finds it with the
	// umask's mode, and whoever sees the path can rely on it being final.
	tmp := filepath.Join(filepath.Dir(path), fmt.Sprintf(".vs%d.%d", os.Getpid(), tmpSeq.Add(1)))
	_ = os.Remove(tmp)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("sockets: listen on %s: %w", path, err)
	}
	l.SetUnlinkOnClose(false)
	fail := func(err error) (net.Listener, error) {
		_ = l.Close()
		_ = os.Remove(tmp)
		return nil, err
	}
	if err := os.Chmod(tmp, perms); err != nil {
		return fail(fmt.Errorf("sockets: chmod %s: %w", path, err))
	}
	if gid >= 0 {
		if err := os.Lchown(tmp, -1, gid); err != nil {
			return fail(fmt.Errorf("sockets: chgrp %s to %s: %w", path, group, err))
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(fmt.Errorf("sockets: listen on %s: %w", path, err))
	}
	return &pathListener{UnixListener: l, path: path}, nil
}

var tmpSeq atomic.Uint64

// pathListener reports the socket's final path and removes it on Close; the
// kernel only knows the temporary name it was bound under.
type pathListener struct {
	*net.UnixListener
	path string
	once sync.Once
}

func (l *pathListener) Addr() net.Addr { return &net.UnixAddr{Name: l.path, Net: "unix"} }

func (l *pathListener) Close() error {
	err := l.UnixListener.Close()
	l.once.Do(func() { _ = os.Remove(l.path) })
	return err
}

// clearStale removes path if it is a socket nobody listens on, and refuses
// when someone does: two daemons on one socket would each get half the clients.
func clearStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sockets: %w", err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("sockets: %s exists and is not a socket; not removing it", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		_ = c.Close()
		return fmt.Errorf("%w: a daemon is already listening on %s", ErrInUse, path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, syscall.ENOENT) {
		// EACCES and the like: we cannot tell whether it is alive, so leave it.
		return fmt.Errorf("sockets: probe existing socket %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("sockets: remove stale socket: %w", err)
	}
	return nil
}

func lookupGroup(group string) (int, error) {
	if n, err := strconv.Atoi(group); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("sockets: invalid gid %d", n)
		}
		return n, nil
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		return 0, fmt.Errorf("sockets: unix_sock_group: %w", err)
	}
	n, err := strconv.Atoi(g.Gid)
	if err != nil {
		return 0, fmt.Errorf("sockets: group %s has non-numeric gid %q", group, g.Gid)
	}
	return n, nil
}
