package iscsi

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
)

// maxLines bounds what the parsers keep of one output: far above the
// sessions, targets or interfaces of any host.
const maxLines = 4096

// Session is one line of `iscsiadm --mode session`:
// "tcp: [1] 192.168.122.170:3260,1 iqn.2004-04.com:target (non-flash)".
type Session struct {
	ID, Portal, Target string
}

func lines(out []byte, each func(line string) error) error {
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	n := 0
	for sc.Scan() {
		if n++; n > maxLines {
			return fmt.Errorf("more than %d lines", maxLines)
		}
		if err := each(sc.Text()); err != nil {
			return err
		}
	}
	return sc.Err()
}

// ParseSessions reads the session list, keeping the lines libvirt's regular
// expression keeps ("tcp:", the id in brackets, the portal, the target).
func ParseSessions(out []byte) ([]Session, error) {
	var ss []Session
	err := lines(out, func(line string) error {
		f := strings.Fields(line)
		if len(f) < 4 || f[0] != "tcp:" || len(f[1]) < 3 || f[1][0] != '[' || f[1][len(f[1])-1] != ']' {
			return nil
		}
		ss = append(ss, Session{ID: f[1][1 : len(f[1])-1], Portal: f[2], Target: f[3]})
		return nil
	})
	return ss, err
}

// SessionOf is the first session with target, as libvirt takes it.
func SessionOf(ss []Session, target string) (Session, bool) {
	for _, s := range ss {
		if s.Target == target {
			return s, true
		}
	}
	return Session{}, false
}

// Target is one line of a sendtargets discovery: "PORTAL,TPGT IQN".
type Target struct {
	Portal, IQN string
}

// ParseTargets reads a discovery's answer: every line of exactly two
// fields, as libvirt's regular expression.
func ParseTargets(out []byte) ([]Target, error) {
	var ts []Target
	err := lines(out, func(line string) error {
		if f := strings.Fields(line); len(f) == 2 {
			ts = append(ts, Target{Portal: f[0], IQN: f[1]})
		}
		return nil
	})
	return ts, err
}

// IfaceOf finds, in `iscsiadm --mode iface`, the interface whose initiator
// name is iqn: each line is "NAME TRANSPORT,HWADDR,IPADDR,NETIF,INITIATORNAME".
// A line of another shape fails as libvirt's virStorageBackendIQNFound does.
func IfaceOf(out []byte, iqn string) (string, bool, error) {
	name, found := "", false
	err := lines(out, func(line string) error {
		if found {
			return nil
		}
		iface, rest, ok := strings.Cut(line, " ")
		if !ok {
			return fmt.Errorf("malformed output of iscsiadm: %s", line)
		}
		f := strings.SplitN(rest, ",", 5)
		if len(f) != 5 {
			return fmt.Errorf("malformed output of iscsiadm: %s", line)
		}
		if f[4] == iqn {
			name, found = iface, true
		}
		return nil
	})
	return name, found, err
}
