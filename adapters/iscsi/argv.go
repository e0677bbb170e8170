package iscsi

// The argv builders below are pure: each returns one iscsiadm command line,
// with prog (the configured iscsiadm) first, as libvirt 9.0's viriscsi.c
// runs it. Tests compare them with testdata/argv/*.argv. No builder takes a
// secret: the CHAP password never goes on a command line (see record.go).

// SessionArgv lists the open sessions.
func SessionArgv(prog string) []string { return []string{prog, "--mode", "session"} }

// NodeNewArgv creates the static node record of target at portal, which a
// login needs.
func NodeNewArgv(prog, portal, target string) []string {
	return []string{prog, "--mode", "node", "--portal", portal, "--targetname", target, "--op", "new"}
}

// NodeUpdateArgv sets one setting of target's node record.
func NodeUpdateArgv(prog, portal, target, name, value string) []string {
	return []string{prog, "--mode", "node", "--portal", portal, "--target", target, "--op", "update", "--name", name, "--value", value}
}

// LoginArgv logs in to target at portal, through iface when set.
func LoginArgv(prog, portal, target, iface string) []string {
	return withIface([]string{prog, "--mode", "node", "--portal", portal, "--targetname", target, "--login"}, iface)
}

// LogoutArgv logs out of target at portal, through iface when set.
func LogoutArgv(prog, portal, target, iface string) []string {
	return withIface([]string{prog, "--mode", "node", "--portal", portal, "--targetname", target, "--logout"}, iface)
}

func withIface(argv []string, iface string) []string {
	if iface != "" {
		argv = append(argv, "--interface", iface)
	}
	return argv
}

// RescanArgv rescans the LUNs of session sid.
func RescanArgv(prog, sid string) []string {
	return []string{prog, "--mode", "session", "-r", sid, "-R"}
}

// DiscoveryArgv asks the portal for its targets. Find-sources keeps no
// record (nonpersistent); the discovery that prepares a login through an
// interface of its own keeps them.
func DiscoveryArgv(prog, portal, iface string, persist bool) []string {
	argv := []string{prog, "--mode", "discovery", "--type", "sendtargets", "--portal", portal}
	if !persist {
		argv = append(argv, "--op", "nonpersistent")
	}
	return withIface(argv, iface)
}

// IfaceListArgv lists the interfaces with their initiator names.
func IfaceListArgv(prog string) []string { return []string{prog, "--mode", "iface"} }

// IfaceNewArgv creates an interface.
func IfaceNewArgv(prog, iface string) []string {
	return []string{prog, "--mode", "iface", "--interface", iface, "--op", "new"}
}

// IfaceUpdateArgv gives an interface its initiator name.
func IfaceUpdateArgv(prog, iface, iqn string) []string {
	return []string{prog, "--mode", "iface", "--interface", iface, "--op", "update", "--name", "iface.initiatorname", "--value", iqn}
}
