package reliability_test

import (
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/gen/remote"
	"github.com/virtstoraged-go/virtstoraged/internal/reliability/daemonclient"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/xdr"
)

// callRaw calls info's procedure with zero-valued arguments.
func callRaw(t testing.TB, c *remote.Client, info xdr.ProcInfo) error {
	t.Helper()
	var args, ret xdr.Message
	if info.NewArgs != nil {
		args = info.NewArgs()
	}
	if info.NewRet != nil {
		ret = info.NewRet()
	}
	return c.Conn().Call(ctxFor(t), info.Program, info.Version, info.Proc, args, ret)
}

// TestReadOnlyRefusesEveryWriteProcedure walks the whole dispatch table: every
// procedure not marked read-only is refused with libvirt's 29/18 "operation
// forbidden" on the -ro socket and on a rw-socket connection opened read-only
// (29/30 for the secret driver's GET_VALUE, which the daemon does not serve).
func TestReadOnlyRefusesEveryWriteProcedure(t *testing.T) {
	tg := startProcess(t, testkit.DaemonOptions{})
	conns := []struct {
		name string
		c    *remote.Client
	}{
		{"ro socket", dial(t, tg.ro, 0)},
		{"rw socket, flag 1", dial(t, tg.rw, 1)},
	}
	refused := 0
	for _, info := range remote.Procedures {
		if info.ReadOnly || info.Async {
			continue
		}
		refused++
		for _, cn := range conns {
			err := callRaw(t, cn.c, info)
			want := "operation forbidden: read only access prevents " + info.API
			wantDomain := int32(18)
			if strings.Contains(info.Name, "SECRET") {
				wantDomain = 30
			}
			e := daemonclient.WireError(err)
			if e == nil || e.Code != 29 || e.Domain != wantDomain || len(e.Message) == 0 || e.Message[0] != want {
				t.Errorf("%s: %s: got %s, want 29/%d %q", cn.name, info.Name, daemonclient.ErrText(err), wantDomain, want)
			}
		}
	}
	if refused < 15 {
		t.Errorf("only %d write procedures in remote.Procedures: the table looks wrong", refused)
	}
	// The connections still serve read-only calls after all those refusals.
	for _, cn := range conns {
		if _, err := cn.c.ConnectNumOfStoragePools(ctxFor(t)); err != nil {
			t.Errorf("%s: read-only call after refusals: %v", cn.name, err)
		}
	}
}

// TestSocketPermissions checks that the sockets get the modes and group the
// config asks for.
func TestSocketPermissions(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("changing a socket's group needs root")
	}
	var grp *user.Group
	for _, name := range []string{"daemon", "adm", "users", "nogroup"} {
		if g, err := user.LookupGroup(name); err == nil {
			grp = g
			break
		}
	}
	if grp == nil {
		t.Skip("no usable group (daemon, adm, users, nogroup) on this machine")
	}
	conf := "unix_sock_group = \"" + grp.Name + "\"\n" +
		"unix_sock_rw_perms = \"0770\"\n" +
		"unix_sock_ro_perms = \"0777\"\n" +
		"unix_sock_admin_perms = \"0700\"\n"
	tg := startProcess(t, testkit.DaemonOptions{Config: conf})
	gid, err := strconv.Atoi(grp.Gid)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		givePath string
		wantPerm os.FileMode
	}{
		{name: "rw", givePath: tg.rw, wantPerm: 0o770},
		{name: "ro", givePath: tg.ro, wantPerm: 0o777},
		{name: "admin", givePath: tg.daemon.AdminSocketPath(), wantPerm: 0o700},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fi, err := os.Lstat(tt.givePath)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode()&os.ModeSocket == 0 {
				t.Errorf("%s is not a socket: %v", tt.givePath, fi.Mode())
			}
			if got := fi.Mode().Perm(); got != tt.wantPerm {
				t.Errorf("mode of %s = %#o, want %#o", tt.givePath, got, tt.wantPerm)
			}
			if got := fi.Sys().(*syscall.Stat_t).Gid; int(got) != gid {
				t.Errorf("group of %s = %d, want %d (%s)", tt.givePath, got, gid, grp.Name)
			}
		})
	}
}
