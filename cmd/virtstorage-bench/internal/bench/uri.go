package bench

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// Endpoint is where a libvirt URI leads: the UNIX socket to dial and the name to send
// in CONNECT_OPEN.
type Endpoint struct {
	// Socket is the path of the daemon's read-write socket.
	Socket string
	// Name is the URI without the client-side parameters (socket=), as libvirt's
	// remote driver sends it to the daemon.
	Name string
}

// Default sockets of storage:///system, in the order libvirt's client tries them:
// the modular daemon first, then the monolithic libvirtd.
var systemSockets = []string{"/run/libvirt/virtstoraged-sock", "/run/libvirt/libvirt-sock"}

// ParseURI reads a libvirt URI such as storage:///system?socket=/path/sock. Without a
// socket parameter the daemon's default socket is used: the first of the system
// sockets that exists (the last one if none does) for /system, and
// $XDG_RUNTIME_DIR/libvirt/virtstoraged-sock for /session.
func ParseURI(uri string) (Endpoint, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return Endpoint{}, fmt.Errorf("bench: uri %q: %w", uri, err)
	}
	driver, _, _ := strings.Cut(u.Scheme, "+")
	if driver == "" {
		return Endpoint{}, fmt.Errorf("bench: uri %q: no scheme (want e.g. storage:///system)", uri)
	}
	if u.Host != "" {
		return Endpoint{}, fmt.Errorf("bench: uri %q: remote hosts are not supported, only local UNIX sockets", uri)
	}
	if u.Path != "/system" && u.Path != "/session" {
		return Endpoint{}, fmt.Errorf("bench: uri %q: path must be /system or /session", uri)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return Endpoint{}, fmt.Errorf("bench: uri %q: %w", uri, err)
	}
	sock := q.Get("socket")
	q.Del("socket")
	name := url.URL{Scheme: driver, Path: u.Path, RawQuery: q.Encode()}
	ep := Endpoint{Socket: sock, Name: name.String()}
	if sock != "" {
		return ep, nil
	}
	if u.Path == "/session" {
		dir := os.Getenv("XDG_RUNTIME_DIR")
		if dir == "" {
			return Endpoint{}, fmt.Errorf("bench: uri %q: XDG_RUNTIME_DIR unset, give ?socket=", uri)
		}
		ep.Socket = filepath.Join(dir, "libvirt", "virtstoraged-sock")
		return ep, nil
	}
	ep.Socket = systemSockets[len(systemSockets)-1]
	for _, s := range systemSockets {
		if _, err := os.Stat(s); err == nil {
			ep.Socket = s
			break
		}
	}
	return ep, nil
}

// SocketURI is the URI naming the storage daemon on socket, as libvirt writes it.
func SocketURI(socket string) string {
	return "storage:///system?socket=" + socket
}
