package iscsi_test

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/adapters/iscsi"
	"github.com/virtstoraged-go/virtstoraged/adapters/scsi"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

var update = flag.Bool("update", false, "rewrite the golden .argv files in testdata/argv")

const (
	adm    = "iscsiadm"
	iqn    = "iqn.2013-06.com.example:t1"
	portal = "127.0.0.1:3260,1"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestArgv compares every command line with its golden file; the lines are
// libvirt 9.0's, as its debug log showed them (docs/semantics.md §1.2 iscsi).
func TestArgv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		give []string
	}{
		{"session", iscsi.SessionArgv("/usr/bin/iscsiadm")},
		{"node-new", iscsi.NodeNewArgv("/usr/bin/iscsiadm", portal, iqn)},
		{"node-update-username", iscsi.NodeUpdateArgv("/usr/bin/iscsiadm", portal, iqn, "node.session.auth.username", "admin")},
		{"login", iscsi.LoginArgv("/usr/bin/iscsiadm", portal, iqn, "")},
		{"login-iface", iscsi.LoginArgv("/usr/bin/iscsiadm", portal, iqn, "libvirt-iface-253db048")},
		{"logout", iscsi.LogoutArgv("/usr/bin/iscsiadm", "[fe80::1]:3260,1", iqn, "")},
		{"rescan", iscsi.RescanArgv("/usr/bin/iscsiadm", "3")},
		{"discovery", iscsi.DiscoveryArgv("/usr/bin/iscsiadm", portal, "", false)},
		{"discovery-iface-persist", iscsi.DiscoveryArgv("/usr/bin/iscsiadm", portal, "libvirt-iface-253db048", true)},
		{"iface-list", iscsi.IfaceListArgv("/usr/bin/iscsiadm")},
		{"iface-new", iscsi.IfaceNewArgv("/usr/bin/iscsiadm", "libvirt-iface-253db048")},
		{"iface-update", iscsi.IfaceUpdateArgv("/usr/bin/iscsiadm", "libvirt-iface-253db048", "iqn.2017-03.com.user:client")},
		{"scsi-id", scsi.SerialArgv("/lib/udev/scsi_id", "/dev/disk/by-path/ip-127.0.0.1:3260-iscsi-"+iqn+"-lun-1")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testkit.GoldenArgv(t, tt.name, tt.give, *update)
		})
	}
}

func TestParsers(t *testing.T) {
	t.Parallel()
	ss, err := iscsi.ParseSessions(readTestdata(t, "sessions.txt"))
	if err != nil || len(ss) != 3 || ss[1] != (iscsi.Session{ID: "2", Portal: "192.168.122.170:3260,1", Target: iqn}) {
		t.Errorf("sessions = %+v, %v", ss, err)
	}
	if s, ok := iscsi.SessionOf(ss, iqn); !ok || s.ID != "2" {
		t.Errorf("SessionOf = %+v, %v; want the first, 2", s, ok)
	}
	if ss, err := iscsi.ParseSessions([]byte("iscsiadm: No active sessions.\n")); err != nil || len(ss) != 0 {
		t.Errorf("no sessions = %+v, %v", ss, err)
	}
	ts, err := iscsi.ParseTargets(readTestdata(t, "sendtargets.txt"))
	if err != nil || len(ts) != 2 || ts[1].IQN != "iqn.2013-06.com.example:t2" || ts[0].Portal != portal {
		t.Errorf("targets = %+v, %v", ts, err)
	}
	name, ok, err := iscsi.IfaceOf(readTestdata(t, "ifaces.txt"), "iqn.2017-03.com.user:client")
	if err != nil || !ok || name != "libvirt-iface-253db048" {
		t.Errorf("IfaceOf = %q, %v, %v", name, ok, err)
	}
	if _, ok, err := iscsi.IfaceOf(readTestdata(t, "ifaces.txt"), "iqn.other"); ok || err != nil {
		t.Errorf("IfaceOf an unknown IQN = %v, %v", ok, err)
	}
	if _, _, err := iscsi.IfaceOf([]byte("default tcp,a,b\n"), "x"); err == nil || err.Error() != "malformed output of iscsiadm: default tcp,a,b" {
		t.Errorf("malformed iface line: %v", err)
	}
}

// Each parser keeps a few strings per line and at most 4,096 lines: the
// worst measured is 36 bytes a byte (a discovery answer of minimal "a b"
// lines; a session list of minimal lines takes 19); the bound is twice it.
const (
	allocPerByte = 72
	allocSlack   = 80 << 10
)

func checkAlloc(t *testing.T, what string, in []byte, parse func()) {
	t.Helper()
	if n, limit := testkit.AllocatedBytes(parse), allocPerByte*uint64(len(in))+allocSlack; n > limit {
		t.Fatalf("%s of %d bytes allocated %d, bound %d", what, len(in), n, limit)
	}
}

func FuzzParseSessions(f *testing.F) {
	f.Add(readTestdata(f, "sessions.txt"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var ss []iscsi.Session
		checkAlloc(t, "ParseSessions", b, func() { ss, _ = iscsi.ParseSessions(b) })
		for _, s := range ss {
			if s.ID == "" || s.Target == "" {
				t.Fatalf("session without id or target: %+v", s)
			}
		}
	})
}

func FuzzParseTargets(f *testing.F) {
	f.Add(readTestdata(f, "sendtargets.txt"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var ts []iscsi.Target
		checkAlloc(t, "ParseTargets", b, func() { ts, _ = iscsi.ParseTargets(b) })
		for _, tg := range ts {
			if strings.ContainsAny(tg.IQN, " \t\n") || tg.IQN == "" {
				t.Fatalf("target %+v", tg)
			}
		}
	})
}

func FuzzIfaceOf(f *testing.F) {
	f.Add(readTestdata(f, "ifaces.txt"), "iqn.2017-03.com.user:client")
	f.Fuzz(func(t *testing.T, b []byte, iqn string) {
		var name string
		var ok bool
		checkAlloc(t, "IfaceOf", b, func() { name, ok, _ = iscsi.IfaceOf(b, iqn) })
		if ok && strings.Contains(name, " ") {
			t.Fatalf("interface name %q", name)
		}
	})
}

func TestWithPassword(t *testing.T) {
	t.Parallel()
	rec := "node.name = t\nnode.session.auth.authmethod = CHAP\nnode.session.auth.username = bob\nnode.session.auth.chap_algs = MD5\n"
	got := string(iscsi.WithPassword([]byte(rec), []byte("s3cret")))
	want := "node.name = t\nnode.session.auth.authmethod = CHAP\nnode.session.auth.username = bob\nnode.session.auth.password = s3cret\nnode.session.auth.chap_algs = MD5\n"
	if got != want {
		t.Errorf("password added:\n%s\nwant:\n%s", got, want)
	}
	got = string(iscsi.WithPassword([]byte(want), []byte("new")))
	if strings.Count(got, "auth.password") != 1 || !strings.Contains(got, "auth.password = new\n") {
		t.Errorf("password replaced:\n%s", got)
	}
	if got := string(iscsi.WithPassword([]byte("a = b"), []byte("p"))); got != "a = b\nnode.session.auth.password = p\n" {
		t.Errorf("no user name, no final newline: %q", got)
	}
}

func pool(extra func(*domain.PoolDef)) *domain.PoolDef {
	def := &domain.PoolDef{Type: domain.PoolISCSI, Name: "ip", Target: domain.PoolTarget{Path: "/dev/disk/by-path"},
		Source: domain.PoolSource{Hosts: []domain.SourceHost{{Name: "127.0.0.1"}}, Devices: []domain.SourceDevice{{Path: iqn}}}}
	if extra != nil {
		extra(def)
	}
	return def
}

func backend(runner ports.CommandRunner, cfg iscsi.Config) *iscsi.Backend {
	cfg.Iscsiadm = adm
	if cfg.PortalTimeout == 0 {
		cfg.PortalTimeout = time.Minute
	}
	return iscsi.New(runner, cfg, nil)
}

func call(argv []string) testkit.FakeCall { return testkit.FakeCall{Argv: argv} }

var noSessions = testkit.FakeCall{Argv: iscsi.SessionArgv(adm), Exit: 21, Stderr: "iscsiadm: No active sessions.\n"}

func wantErr(t *testing.T, err error, kind domain.Kind, text string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %q", text)
	}
	if domain.KindOf(err) != kind {
		t.Errorf("kind = %v, want %v (%v)", domain.KindOf(err), kind, err)
	}
	if !strings.Contains(err.Error(), text) {
		t.Errorf("err = %q, want it to contain %q", err, text)
	}
}

func TestStartPool(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("node record, then login", func(t *testing.T) {
		f := testkit.NewFakeRunner(t, noSessions, call(iscsi.NodeNewArgv(adm, portal, iqn)), call(iscsi.LoginArgv(adm, portal, iqn, "")))
		if err := backend(f, iscsi.Config{}).StartPool(ctx, pool(nil)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a session is open already", func(t *testing.T) {
		f := testkit.NewFakeRunner(t, testkit.FakeCall{Argv: iscsi.SessionArgv(adm), Stdout: string(readTestdata(t, "sessions.txt"))})
		if err := backend(f, iscsi.Config{}).StartPool(ctx, pool(nil)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("an initiator IQN gets an interface of its own", func(t *testing.T) {
		ifaces := string(readTestdata(t, "ifaces.txt"))
		f := testkit.NewFakeRunner(t, noSessions, call(iscsi.NodeNewArgv(adm, portal, iqn)),
			testkit.FakeCall{Argv: iscsi.IfaceListArgv(adm), Stdout: "default tcp,<empty>,<empty>,<empty>,<empty>\n"},
			call(iscsi.IfaceNewArgv(adm, testkit.AnyArg)),
			call(iscsi.IfaceUpdateArgv(adm, testkit.AnyArg, "iqn.2017-03.com.user:client")),
			testkit.FakeCall{Argv: iscsi.IfaceListArgv(adm), Stdout: ifaces},
			call(iscsi.DiscoveryArgv(adm, portal, "libvirt-iface-253db048", true)),
			call(iscsi.LoginArgv(adm, portal, iqn, "libvirt-iface-253db048")),
		)
		def := pool(func(d *domain.PoolDef) { d.Source.Initiator = "iqn.2017-03.com.user:client" })
		if err := backend(f, iscsi.Config{}).StartPool(ctx, def); err != nil {
			t.Fatal(err)
		}
		if name := f.RunLog()[3][4]; !strings.HasPrefix(name, "libvirt-iface-") || len(name) != len("libvirt-iface-")+8 {
			t.Errorf("new interface named %q, want libvirt-iface-XXXXXXXX", name)
		}
	})
	t.Run("iscsiadm missing", func(t *testing.T) {
		f := testkit.NewFakeRunner(t, noSessions, testkit.FakeCall{Argv: iscsi.NodeNewArgv(adm, portal, iqn), Err: ports.ErrCommandNotFound})
		err := backend(f, iscsi.Config{}).StartPool(ctx, pool(nil))
		wantErr(t, err, domain.KindInternal, "internal error: iscsiadm failed new mode for target '"+iqn+"' with status '127'")
	})
	t.Run("login refused", func(t *testing.T) {
		f := testkit.NewFakeRunner(t, noSessions, call(iscsi.NodeNewArgv(adm, portal, iqn)),
			testkit.FakeCall{Argv: iscsi.LoginArgv(adm, portal, iqn, ""), Exit: 24, Stderr: "iscsiadm: initiator reported error (24 - iSCSI login failed due to authorization failure)\n"})
		err := backend(f, iscsi.Config{}).StartPool(ctx, pool(nil))
		wantErr(t, err, domain.KindInternal, "Child process (iscsiadm --mode node --portal "+portal+" --targetname "+iqn+" --login) unexpected exit status 24: iscsiadm: initiator reported error (24 - iSCSI login failed due to authorization failure)")
	})
	for _, tt := range []struct {
		name     string
		give     func(*domain.PoolDef)
		wantKind domain.Kind
		wantErr  string
	}{
		{"no device", func(d *domain.PoolDef) { d.Source.Devices = nil }, domain.KindInternal, "internal error: missing source device"},
		{"two hosts", func(d *domain.PoolDef) { d.Source.Hosts = append(d.Source.Hosts, domain.SourceHost{Name: "h2"}) }, domain.KindConfigUnsupported, "unsupported configuration: Expected exactly 1 host for the storage pool"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, backend(testkit.NewFakeRunner(t), iscsi.Config{}).StartPool(ctx, pool(tt.give)), tt.wantKind, tt.wantErr)
		})
	}
}

// fakeSecrets answers one password.
type fakeSecrets struct{ value string }

func (s fakeSecrets) ISCSISecret(ctx context.Context, auth domain.PoolAuth) ([]byte, error) {
	if auth.SecretUsage != "libvirtiscsi" {
		return nil, domain.Errorf(domain.KindOperationFailed, "no secret with matching usage '%s'", auth.SecretUsage)
	}
	return []byte(s.value), nil
}

func TestStartPoolCHAP(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	chap := func(d *domain.PoolDef) {
		d.Source.Auth = &domain.PoolAuth{Type: "chap", Username: "admin", SecretUsage: "libvirtiscsi"}
	}
	t.Run("the password goes into the node record, never on a command line", func(t *testing.T) {
		nodes := t.TempDir()
		rec := filepath.Join(nodes, iqn, "127.0.0.1,3260,1", "default")
		if err := os.MkdirAll(filepath.Dir(rec), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(rec, []byte("node.name = "+iqn+"\nnode.session.auth.authmethod = CHAP\nnode.session.auth.username = admin\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		f := testkit.NewFakeRunner(t, noSessions, call(iscsi.NodeNewArgv(adm, portal, iqn)),
			call(iscsi.NodeUpdateArgv(adm, portal, iqn, "node.session.auth.authmethod", "CHAP")),
			call(iscsi.NodeUpdateArgv(adm, portal, iqn, "node.session.auth.username", "admin")),
			call(iscsi.LoginArgv(adm, portal, iqn, "")),
		)
		if err := backend(f, iscsi.Config{NodesDir: nodes, Secrets: fakeSecrets{"pa55word"}}).StartPool(ctx, pool(chap)); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(rec)
		if !strings.Contains(string(b), "node.session.auth.password = pa55word\n") {
			t.Errorf("record:\n%s", b)
		}
		for _, argv := range f.RunLog() {
			if strings.Contains(strings.Join(argv, " "), "pa55word") {
				t.Errorf("the password is on a command line: %v", argv)
			}
		}
		if st, err := os.Stat(rec); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("record mode %v, %v", st.Mode(), err)
		}
	})
	t.Run("no secret driver", func(t *testing.T) {
		f := testkit.NewFakeRunner(t, noSessions, call(iscsi.NodeNewArgv(adm, portal, iqn)))
		err := backend(f, iscsi.Config{}).StartPool(ctx, pool(chap))
		wantErr(t, err, domain.KindNoSupport, "secret lookup not available: the CHAP password of the secret with usage 'libvirtiscsi' cannot be read")
	})
	t.Run("no such secret", func(t *testing.T) {
		f := testkit.NewFakeRunner(t, noSessions, call(iscsi.NodeNewArgv(adm, portal, iqn)))
		def := pool(func(d *domain.PoolDef) {
			chap(d)
			d.Source.Auth.SecretUsage = "other"
		})
		err := backend(f, iscsi.Config{Secrets: fakeSecrets{"x"}}).StartPool(ctx, def)
		wantErr(t, err, domain.KindOperationFailed, "no secret with matching usage 'other'")
	})
	t.Run("ceph auth", func(t *testing.T) {
		f := testkit.NewFakeRunner(t, noSessions, call(iscsi.NodeNewArgv(adm, portal, iqn)))
		def := pool(func(d *domain.PoolDef) {
			chap(d)
			d.Source.Auth.Type = "ceph"
		})
		err := backend(f, iscsi.Config{Secrets: fakeSecrets{"x"}}).StartPool(ctx, def)
		wantErr(t, err, domain.KindXMLError, "XML error: iscsi pool only supports 'chap' auth type")
	})
}

// blockingRunner answers from a FakeRunner, except that a command whose
// argv contains block waits for its context: an iscsiadm talking to a
// portal that never answers.
type blockingRunner struct {
	*testkit.FakeRunner
	block string
}

func (r blockingRunner) Run(ctx context.Context, cmd ports.Command) ([]byte, error) {
	if strings.Contains(strings.Join(cmd.Args, " "), r.block) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return r.FakeRunner.Run(ctx, cmd)
}

// TestUnreachablePortal checks that a login and a discovery of a portal
// that never answers end at PortalTimeout with a clear error. The runner
// waits for the deadline itself, so the test does not depend on how long
// anything takes.
func TestUnreachablePortal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := testkit.NewFakeRunner(t, noSessions, call(iscsi.NodeNewArgv(adm, "192.0.2.1:3260,1", iqn)))
	b := backend(blockingRunner{f, "--login"}, iscsi.Config{PortalTimeout: 10 * time.Millisecond})
	def := pool(func(d *domain.PoolDef) { d.Source.Hosts[0].Name = "192.0.2.1" })
	err := b.StartPool(ctx, def)
	wantErr(t, err, domain.KindOperationFailed, "operation failed: no answer from iSCSI portal '192.0.2.1:3260,1' within 10ms to log in to target '"+iqn+"'")

	b = backend(blockingRunner{testkit.NewFakeRunner(t), "discovery"}, iscsi.Config{PortalTimeout: 10 * time.Millisecond})
	_, err = b.FindPoolSources(ctx, &domain.PoolSource{Hosts: []domain.SourceHost{{Name: "192.0.2.1"}}}, 0)
	wantErr(t, err, domain.KindOperationFailed, "no answer from iSCSI portal '192.0.2.1:3260,1' within 10ms to discover its targets")
}

func TestFindPoolSources(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := testkit.NewFakeRunner(t, testkit.FakeCall{Argv: iscsi.DiscoveryArgv(adm, portal, "", false), Stdout: string(readTestdata(t, "sendtargets.txt"))})
	got, err := backend(f, iscsi.Config{}).FindPoolSources(ctx, &domain.PoolSource{Hosts: []domain.SourceHost{{Name: "127.0.0.1"}}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Hosts[0] != (domain.SourceHost{Name: "127.0.0.1", Port: 3260}) || got[1].Devices[0].Path != "iqn.2013-06.com.example:t2" {
		t.Errorf("sources %+v", got)
	}
	b := backend(testkit.NewFakeRunner(t), iscsi.Config{})
	_, err = b.FindPoolSources(ctx, &domain.PoolSource{}, 0)
	wantErr(t, err, domain.KindInvalidArg, "invalid argument: hostname must be specified for iscsi sources")
	_, err = b.FindPoolSources(ctx, &domain.PoolSource{Hosts: []domain.SourceHost{{Name: "a"}, {Name: "b"}}}, 0)
	wantErr(t, err, domain.KindConfigUnsupported, "unsupported configuration: Expected exactly 1 host for the storage pool")
	f = testkit.NewFakeRunner(t, testkit.FakeCall{Argv: iscsi.IfaceListArgv(adm), Stdout: string(readTestdata(t, "ifaces.txt"))})
	_, err = backend(f, iscsi.Config{}).FindPoolSources(ctx, &domain.PoolSource{Hosts: []domain.SourceHost{{Name: "127.0.0.1"}}, Initiator: "iqn.1994-05.com.redhat:abc"}, 0)
	wantErr(t, err, domain.KindOperationFailed, "operation failed: no iSCSI interface defined for IQN iqn.1994-05.com.redhat:abc")
}

func TestRefreshAndStop(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sessions := testkit.FakeCall{Argv: iscsi.SessionArgv(adm), Stdout: string(readTestdata(t, "sessions.txt"))}
	sysfs := t.TempDir()
	testkit.AddFakeISCSISession(t, sysfs, "2", 9)
	testkit.AddFakeSCSIHost(t, sysfs, testkit.FakeSCSIHost{Host: 9, PCI: "0000:00:00.0", LUNs: []testkit.FakeLUN{{Unit: 1, Block: "sdb"}}})
	dev := t.TempDir()
	if err := os.WriteFile(filepath.Join(dev, "sdb"), make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	f := testkit.NewFakeRunner(t, sessions, call(iscsi.RescanArgv(adm, "2")), call(scsi.SettleArgv()), call(scsi.SettleArgv()),
		testkit.FakeCall{Argv: scsi.SerialArgv("/lib/udev/scsi_id", dev+"/sdb"), Stdout: "360014051234\n"})
	def := pool(func(d *domain.PoolDef) { d.Target.Path = dev })
	stats, vols, err := backend(f, iscsi.Config{SysfsRoot: sysfs, DevDir: dev}).RefreshPool(ctx, def)
	if err != nil {
		t.Fatal(err)
	}
	if len(vols) != 1 || vols[0].Name != "unit:0:0:1" || vols[0].Key != "360014051234" || stats.Capacity != 4096 || stats.Available != 0 {
		t.Errorf("stats %+v volumes %+v", stats, vols)
	}

	f = testkit.NewFakeRunner(t, noSessions)
	_, _, err = backend(f, iscsi.Config{}).RefreshPool(ctx, pool(nil))
	wantErr(t, err, domain.KindInternal, "internal error: cannot find iscsiadm session: iscsiadm: No active sessions.")

	f = testkit.NewFakeRunner(t, sessions, call(iscsi.LogoutArgv(adm, portal, iqn, "")))
	if err := backend(f, iscsi.Config{}).StopPool(ctx, pool(nil)); err != nil {
		t.Fatal(err)
	}
	f = testkit.NewFakeRunner(t, noSessions)
	if err := backend(f, iscsi.Config{}).StopPool(ctx, pool(nil)); err != nil {
		t.Fatal(err)
	}
	f = testkit.NewFakeRunner(t, sessions)
	if ok, err := backend(f, iscsi.Config{}).CheckPool(ctx, pool(nil)); !ok || err != nil {
		t.Errorf("CheckPool with a session = %v, %v", ok, err)
	}
}
