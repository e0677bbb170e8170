package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/gen/remote"
	"github.com/virtstoraged-go/virtstoraged/gen/virnet"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/xdr/rpcconn"
)

// polkitRules let "daemon" use the daemon and refuse "nobody"; "bin" has no
// rule, so libvirt's action defaults decide for it: monitoring yes, managing
// only with an administrator's password, which needs an authentication agent
// the test has not got.
const polkitRules = `polkit.addRule(function(action, subject) {
  if (action.id.indexOf("org.libvirt.unix.") == 0) {
    if (subject.user == "daemon") return polkit.Result.YES;
    if (subject.user == "nobody") return polkit.Result.NO;
  }
});
`

const polkitConfig = "auth_unix_rw = \"polkit\"\nauth_unix_ro = \"polkit\"\n"

// pyOpen opens a connection the way libvirt-python does, and prints what
// happened with the error's code and domain, which virsh does not show.
const pyOpen = `import libvirt, sys
libvirt.registerErrorHandler(lambda ctx, err: None, None)
try:
    if sys.argv[2] == "ro":
        c = libvirt.openReadOnly(sys.argv[1])
    else:
        c = libvirt.open(sys.argv[1])
    print("ok", len(c.listAllStoragePools()))
except libvirt.libvirtError as e:
    print("error", e.get_error_code(), e.get_error_domain(), e.get_error_message())
`

// polkitSide is one daemon as the polkit test drives it.
type polkitSide struct {
	name     string
	rw, ro   string // URIs
	sockDir  string
	sockets  []string // rw, ro and admin socket names in sockDir
	asRoot   func(args ...string) (string, string, int)
	asRootRO func(args ...string) (string, string, int)
}

// polkitOutcome is what one client got from one side.
type polkitOutcome struct {
	virsh  string
	python string
}

func (s polkitSide) run(t *testing.T, u *testkit.SystemUser, socket string) polkitOutcome {
	t.Helper()
	uri := s.rw
	if socket == "ro" {
		uri = s.ro
	}
	var out, errOut string
	var code int
	var pyOut, pyErr string
	switch {
	case u == nil && socket == "ro":
		out, errOut, code = s.asRootRO("pool-list", "--all", "--name")
	case u == nil:
		out, errOut, code = s.asRoot("pool-list", "--all", "--name")
	default:
		out, errOut, code = u.RunAs("virsh", "-c", uri, "pool-list", "--all", "--name")
		pyOut, pyErr, _ = u.RunAs(testkit.SystemPython, "-c", pyOpen, uri, socket)
	}
	return polkitOutcome{
		virsh:  fmt.Sprintf("rc=%d\nstdout: %q\nstderr: %q", code, out, errOut),
		python: strings.TrimSpace(pyOut + pyErr),
	}
}

func (s polkitSide) modes(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, name := range s.sockets {
		st, err := os.Stat(filepath.Join(s.sockDir, name))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%04o ", st.Mode().Perm())
	}
	return b.String()
}

// TestPolkit runs the real polkitd (on a private bus) with rules allowing one
// user and refusing another, and our daemon with auth_unix_rw and
// auth_unix_ro = "polkit", then has virsh and libvirt-python connect as
// root and as three other users, on both sockets: what each gets is what
// libvirtd 9.0 gives under the same polkitd, to the exit status and text, and
// to the error's code and domain.
func TestPolkit(t *testing.T) {
	testkit.RequireTool(t, "setpriv")
	testkit.RequirePythonLibvirt(t)
	pk := testkit.StartPolkit(t, polkitRules)
	d := startDaemon(t, testkit.DaemonOptions{Config: polkitConfig, Env: []string{"DBUS_SYSTEM_BUS_ADDRESS=" + pk.Bus.Address}})
	// The root directory is the test's private one; other users must reach
	// the sockets in it.
	if err := os.Chmod(d.Root, 0o755); err != nil {
		t.Fatal(err)
	}
	users := map[string]*testkit.SystemUser{}
	for _, name := range []string{"daemon", "nobody", "bin"} {
		u := testkit.LookupUser(t, name)
		users[name] = &u
	}
	ours := polkitSide{name: "virtstoraged", rw: d.URI(), ro: d.ROURI(), sockDir: filepath.Dir(d.SocketPath()),
		sockets: []string{"virtstoraged-sock", "virtstoraged-sock-ro", "virtstoraged-admin-sock"},
		asRoot:  d.Virsh, asRootRO: d.VirshRO}

	refused := func(msg string) polkitOutcome {
		return polkitOutcome{virsh: fmt.Sprintf("rc=1\nstdout: \"\"\nstderr: %q", "error: failed to connect to the hypervisor\nerror: "+msg+"\n")}
	}
	const denied = "authentication failed: access denied by policy"
	const noAgent = "authentication unavailable: no polkit agent available to authenticate action 'org.libvirt.unix.manage'"
	allowed := polkitOutcome{virsh: "rc=0\nstdout: \"\\n\"\nstderr: \"\"", python: "ok 0"}
	cases := []struct {
		user, socket string
		want         polkitOutcome
		wantPython   string
	}{
		{user: "root", socket: "rw", want: polkitOutcome{virsh: allowed.virsh}},
		{user: "root", socket: "ro", want: polkitOutcome{virsh: allowed.virsh}},
		{user: "daemon", socket: "rw", want: allowed},
		{user: "daemon", socket: "ro", want: allowed},
		{user: "nobody", socket: "rw", want: refused(denied), wantPython: "error 45 60 " + denied},
		{user: "nobody", socket: "ro", want: refused(denied), wantPython: "error 45 60 " + denied},
		{user: "bin", socket: "rw", want: refused(noAgent), wantPython: "error 94 60 " + noAgent},
		{user: "bin", socket: "ro", want: allowed},
	}
	got := map[string]polkitOutcome{}
	for _, c := range cases {
		key := c.user + " " + c.socket
		o := ours.run(t, users[c.user], c.socket)
		got[key] = o
		want := c.want
		if c.wantPython != "" {
			want.python = c.wantPython
		}
		if o != want {
			t.Errorf("%s:\n got %+v\nwant %+v", key, o, want)
		}
	}
	if m := ours.modes(t); m != "0777 0777 0700 " {
		t.Errorf("socket modes %s, want 0777 0777 0700 (the read-write socket open to all under polkit)", m)
	}

	// The same against libvirtd under the same polkitd.
	a := testkit.StartPolkitAnchor(t, pk)
	ref := polkitSide{name: "libvirtd", rw: a.URI(), ro: a.ROURI(), sockDir: filepath.Dir(a.SocketPath()),
		sockets: []string{"libvirt-sock", "libvirt-sock-ro", "libvirt-admin-sock"},
		asRoot:  a.Virsh, asRootRO: a.VirshRO}
	for _, c := range cases {
		key := c.user + " " + c.socket
		if o := ref.run(t, users[c.user], c.socket); o != got[key] {
			t.Errorf("%s:\n libvirtd:     %+v\n virtstoraged: %+v", key, o, got[key])
		}
	}
	if m, o := ref.modes(t), ours.modes(t); m != o {
		t.Errorf("socket modes: libvirtd %s, virtstoraged %s", m, o)
	}

	// Call by call, as root: what is refused before authentication, and the
	// authentication procedures' answers before and after.
	for _, sock := range []string{"rw", "ro"} {
		o, r := authSequence(t, d.SocketPath()), authSequence(t, a.SocketPath())
		if sock == "ro" {
			o, r = authSequence(t, d.ROSocketPath()), authSequence(t, filepath.Join(filepath.Dir(a.SocketPath()), "libvirt-sock-ro"))
		}
		if o != r {
			t.Errorf("root on %s, call by call:\n libvirtd:\n%s\n virtstoraged:\n%s", sock, r, o)
		}
	}
}

// authSequence makes calls on a fresh connection and reports each answer:
// the error's code, domain, message and fields, or success.
func authSequence(t *testing.T, socket string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := rpcconn.Dial(ctx, socket)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := remote.NewClient(conn)
	var b strings.Builder
	report := func(what string, v any, err error) {
		var ve *virnet.Error
		switch {
		case errors.As(err, &ve):
			fmt.Fprintf(&b, "%s: error code=%d domain=%d message=%q str1=%q str2=%q int1=%d int2=%d\n",
				what, ve.Code, ve.Domain, ve.Message, ve.Str1, ve.Str2, ve.Int1, ve.Int2)
		case err != nil:
			fmt.Fprintf(&b, "%s: transport %v\n", what, err)
		default:
			fmt.Fprintf(&b, "%s: %+v\n", what, v)
		}
	}
	r1, err := c.ConnectSupportsFeature(ctx, &remote.ConnectSupportsFeatureArgs{Feature: 10})
	report("feature", r1, err)
	err = c.ConnectOpen(ctx, &remote.ConnectOpenArgs{Name: remote.OptString{"storage:///system"}})
	report("open", nil, err)
	r2, err := c.AuthSaslInit(ctx)
	report("sasl init", r2, err)
	r3, err := c.AuthPolkit(ctx) // polkit answers yes for root
	report("polkit", r3, err)
	r4, err := c.AuthList(ctx)
	report("list", r4, err)
	// A second AUTH_POLKIT is not compared: libvirtd fails it without
	// reporting an error, and the reply carries whatever error its worker
	// thread last kept ("authentication required", "authentication failed",
	// or the "did not set virError" fallback we always give).
	err = c.ConnectOpen(ctx, &remote.ConnectOpenArgs{Name: remote.OptString{"storage:///system"}})
	report("open", nil, err)
	r6, err := c.ConnectNumOfStoragePools(ctx)
	report("pools", r6, err)
	return b.String()
}

// SASL is not served: a config asking for it stops the daemon at start with
// libvirt's words for an auth it was built without, rather than serving the
// socket unauthenticated.
func TestSASLRefusedAtStart(t *testing.T) {
	t.Parallel()
	bin := testkit.BuildDaemon(t)
	root := t.TempDir()
	conf := filepath.Join(root, "etc", "libvirt", "virtstoraged.conf")
	if err := os.MkdirAll(filepath.Dir(conf), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte("auth_unix_rw = \"sasl\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := testkit.Run("", bin, "--root", root)
	want := conf + ": auth_unix_rw: unsupported auth sasl"
	if code == 0 || !strings.Contains(out+errOut, want) {
		t.Errorf("rc=%d %s%s\nwant a failure saying %q", code, out, errOut, want)
	}
	if _, err := os.Stat(filepath.Join(root, "run", "libvirt", "virtstoraged-sock")); err == nil {
		t.Error("the socket was created")
	}
}
