package iscsi

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/virtstoraged-go/virtstoraged/adapters/lib/blockdev"
	"github.com/virtstoraged-go/virtstoraged/adapters/statefile"
	"github.com/virtstoraged-go/virtstoraged/domain"
)

// passwordKey is the node record setting holding the CHAP password.
const passwordKey = "node.session.auth.password"

// libvirt sets the password as it sets the user name, with `iscsiadm
// --op update --name node.session.auth.password --value PASSWORD`: the
// secret then sits in the process table, readable by every user, for as
// long as iscsiadm runs. We write it into the node records ourselves instead.
// open-iscsi keeps one record per target, portal and interface, as
// NODES/TARGET/HOST,PORT,TPGT/IFACE, a file of "name = value" lines, mode
// 0600, which iscsiadm reads at login: the same file iscsiadm would write.

// recordDir is where open-iscsi keeps target's records for a portal given as
// "HOST:PORT,TPGT" (HOST in brackets for IPv6).
func recordDir(nodesDir, portal, target string) string {
	hostPort, tpgt, _ := strings.Cut(portal, ",")
	i := strings.LastIndex(hostPort, ":")
	host, port := hostPort[:i], hostPort[i+1:]
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return filepath.Join(nodesDir, target, host+","+port+","+tpgt)
}

// SetRecordPassword writes the CHAP password into every interface's record
// of target at portal (one per interface a pool may log in through),
// replacing the one there or adding it after the user name. Each file is
// replaced atomically and keeps mode 0600.
func SetRecordPassword(nodesDir, portal, target string, password []byte) error {
	if bytes.ContainsAny(password, "\n\r") {
		return domain.Errorf(domain.KindConfigUnsupported, "the CHAP secret of target '%s' holds a line break, which an iSCSI node record cannot store", target)
	}
	dir := recordDir(nodesDir, portal, target)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return blockdev.SysErr(err, "cannot read the iSCSI node records of target '%s' in '%s'", target, dir)
	}
	n := 0
	for _, e := range ents {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		old, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return blockdev.SysErr(err, "cannot read iSCSI node record '%s'", filepath.Join(dir, e.Name()))
		}
		updated := WithPassword(old, password)
		err = statefile.WriteAtomic(dir, e.Name(), updated)
		clear(updated)
		if err != nil {
			return domain.Errorf(domain.KindOperationFailed, "cannot write iSCSI node record '%s': %s", filepath.Join(dir, e.Name()), err.Error())
		}
		n++
	}
	if n == 0 {
		return domain.Errorf(domain.KindOperationFailed, "no iSCSI node record of target '%s' in '%s'", target, dir)
	}
	return nil
}

// WithPassword returns the record with its password line set: the existing
// one replaced, or a new one after the user name (at the end without one).
// The copies of the password it made on the way are zeroed; the result is
// the caller's to zero.
func WithPassword(record, password []byte) []byte {
	line := make([]byte, 0, len(passwordKey)+len(password)+4)
	line = append(append(append(line, passwordKey...), " = "...), password...)
	line = append(line, '\n')
	defer clear(line)
	var out [][]byte
	done := false
	for _, l := range bytes.SplitAfter(record, []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		key, _, _ := bytes.Cut(l, []byte("="))
		switch strings.TrimSpace(string(key)) {
		case passwordKey:
			if !done {
				out, done = append(out, line), true
			}
			continue
		case "node.session.auth.username":
			out = append(out, l)
			if !done {
				out, done = append(out, line), true
			}
			continue
		}
		out = append(out, l)
	}
	if !done {
		if n := len(out); n > 0 && !bytes.HasSuffix(out[n-1], []byte("\n")) {
			out = append(out, []byte("\n"))
		}
		out = append(out, line)
	}
	return bytes.Join(out, nil)
}

// portalOf is libvirt's portal string of a pool's host: "HOST:PORT,1",
// "[ADDR]:PORT,1" for an IPv6 address, the port 3260 by default.
func portalOf(h domain.SourceHost) string {
	port := h.Port
	if port == 0 {
		port = defaultPort
	}
	if strings.Contains(h.Name, ":") {
		return "[" + h.Name + "]:" + strconv.Itoa(port) + ",1"
	}
	return h.Name + ":" + strconv.Itoa(port) + ",1"
}
