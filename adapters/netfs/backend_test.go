package netfs_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/adapters/netfs"
	"github.com/virtstoraged-go/virtstoraged/adapters/osexec"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// netfsPool is the domain form of libvirt's storagepoolxml2argvdata
// pool-netfs*.xml definitions.
func netfsPool(host, dir, format, target string, mod func(*domain.PoolDef)) *domain.PoolDef {
	def := &domain.PoolDef{
		Type: domain.PoolNetFS, Name: "netfs",
		Source: domain.PoolSource{Hosts: []domain.SourceHost{{Name: host}}, Dir: dir, Format: format},
		Target: domain.PoolTarget{Path: target, Perms: domain.UnsetPerms()},
	}
	if mod != nil {
		mod(def)
	}
	return def
}

func readTestdata(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestStartStopArgv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		giveDef  *domain.PoolDef
		wantType string // what the kernel would show as the fs type
	}{
		{name: "pool-netfs", giveDef: netfsPool("localhost", "/var/lib/libvirt/images", "nfs", "/mnt", nil)},
		{name: "pool-netfs-auto", giveDef: netfsPool("localhost", "/var/lib/libvirt/images", "auto", "/mnt", nil)},
		{name: "pool-netfs-default", giveDef: netfsPool("localhost", "/var/lib/libvirt/images", "", "/mnt", nil)},
		{name: "pool-netfs-slash", giveDef: netfsPool("localhost", "/var/lib/libvirt/images/", "nfs", "/mnt/", nil)},
		{name: "pool-netfs-protocol-ver", giveDef: netfsPool("localhost", "/var/lib/libvirt/images", "nfs", "/mnt",
			func(d *domain.PoolDef) { d.Source.ProtocolVer = "4.1" })},
		{name: "pool-netfs-auto-protocol-ver", giveDef: netfsPool("localhost", "/var/lib/libvirt/images", "auto", "/mnt",
			func(d *domain.PoolDef) { d.Source.ProtocolVer = "3" })},
		{name: "pool-netfs-ns-mountopts", giveDef: netfsPool("localhost", "/var/lib/libvirt/images", "nfs", "/mnt",
			func(d *domain.PoolDef) {
				d.Source.ProtocolVer = "3"
				d.MountOpts = []string{"sync", "lazytime"}
			})},
		{name: "pool-netfs-gluster", giveDef: netfsPool("example.com", "/volume", "glusterfs", "/mnt/gluster",
			func(d *domain.PoolDef) { d.Source.ProtocolVer = "3" })},
		{name: "pool-netfs-gluster-mountopts", giveDef: netfsPool("example.com", "/volume", "glusterfs", "/mnt/gluster",
			func(d *domain.PoolDef) { d.MountOpts = []string{"backup-volfile-servers=g2:g3"} })},
		{name: "pool-netfs-cifs", giveDef: netfsPool("example.com", "samba_share", "cifs", "/mnt/cifs", nil)},
		{name: "pool-netfs-cifs-mountopts", giveDef: netfsPool("example.com", "samba_share", "cifs", "/mnt/cifs",
			func(d *domain.PoolDef) { d.MountOpts = []string{"vers=3.0"} })},
		{name: "pool-netfs-port-ignored", giveDef: netfsPool("localhost", "/export", "nfs", "/mnt",
			func(d *domain.PoolDef) { d.Source.Hosts[0].Port = 2049 })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			mt := newMountTable(t)
			f := testkit.NewFakeRunner(t)
			b := netfs.New(f, mt.Path, testkit.QuietLog())
			def := tt.giveDef
			if err := b.ValidatePool(def); err != nil {
				t.Fatal(err)
			}
			target := def.Target.Path
			f.Expect(netfs.MountArgv(def)...).Do = mt.Mounting(filepath.Clean(target), "nfs4", netfs.MountSource(def))
			f.Expect("umount", target).Do = mt.Unmounting(filepath.Clean(target))
			ctx := context.Background()
			for range 2 { // the second start finds it mounted
				if err := b.StartPool(ctx, def); err != nil {
					t.Fatal(err)
				}
			}
			if ok, err := b.CheckPool(ctx, def); err != nil || !ok {
				// CheckPool stats the target, which may not exist here.
				if _, serr := os.Stat(target); serr == nil {
					t.Errorf("CheckPool = %v, %v", ok, err)
				}
			}
			for range 2 { // the second stop finds it unmounted
				if err := b.StopPool(ctx, def); err != nil {
					t.Fatal(err)
				}
			}
			checkGolden(t, tt.name, f.RunLog())
		})
	}
}

func TestValidatePool(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		giveDef *domain.PoolDef
		wantErr string
	}{
		{name: "ok", giveDef: netfsPool("h", "/e", "nfs", "/mnt", nil)},
		{name: "no host", giveDef: netfsPool("h", "/e", "nfs", "/mnt", func(d *domain.PoolDef) { d.Source.Hosts = nil }),
			wantErr: "XML error: missing storage pool source host name"},
		{name: "empty host", giveDef: netfsPool("", "/e", "nfs", "/mnt", nil), wantErr: "XML error: missing storage pool source host name"},
		{name: "no dir", giveDef: netfsPool("h", "", "nfs", "/mnt", nil), wantErr: "XML error: missing storage pool source path"},
		{name: "no target", giveDef: netfsPool("h", "/e", "nfs", "", nil), wantErr: "XML error: missing storage pool target path"},
		{name: "bad format", giveDef: netfsPool("h", "/e", "ext4", "/mnt", nil), wantErr: "XML error: unknown netfs pool format type ext4"},
	}
	b := netfs.New(testkit.NewFakeRunner(t), "", testkit.QuietLog())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := b.ValidatePool(tt.giveDef)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantErrText(t, err, domain.KindXMLError, tt.wantErr)
		})
	}
}

func TestStartInvalid(t *testing.T) {
	t.Parallel()
	b := netfs.New(testkit.NewFakeRunner(t), newMountTable(t).Path, testkit.QuietLog())
	def := netfsPool("a", "/e", "nfs", "/mnt", func(d *domain.PoolDef) {
		d.Source.Hosts = append(d.Source.Hosts, domain.SourceHost{Name: "b"})
	})
	wantErrText(t, b.StartPool(context.Background(), def), domain.KindInternal, "internal error: expected exactly 1 host for the storage pool")
}

// An unreachable server must give a clear error within the bound, not hang
// the daemon: the runner below never answers.
func TestMountUnreachableServer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		giveIgnoreCtx bool
	}{
		{name: "mount killed"},
		{name: "mount stuck in the kernel", giveIgnoreCtx: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newBlockingRunner(t, tt.giveIgnoreCtx)
			b := netfs.New(r, newMountTable(t).Path, testkit.QuietLog())
			b.MountTimeout = 200 * time.Millisecond
			def := netfsPool("nfs.example.com", "/export", "nfs", "/mnt", nil)
			start := time.Now()
			err := b.StartPool(context.Background(), def)
			wantErrText(t, err, domain.KindOperationFailed, "operation failed: cannot mount nfs.example.com:/export on /mnt: timed out after 200ms")
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %s", d)
			}
		})
	}
}

func TestBuildPool(t *testing.T) {
	t.Parallel()
	f := testkit.NewFakeRunner(t)
	b := netfs.New(f, "", testkit.QuietLog())
	target := filepath.Join(t.TempDir(), "a", "pool")
	def := netfsPool("h", "/e", "nfs", target, nil)
	if err := b.BuildPool(context.Background(), def, 0); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(target); err != nil || st.Mode().Perm() != 0o711 {
		t.Fatalf("target %v, %v", st, err)
	}
	wantErrText(t, b.BuildPool(context.Background(), def, domain.PoolBuildOverwrite), domain.KindOperationInvalid,
		"Requested operation is not valid: No source device specified when formatting pool 'netfs'")
	wantErrText(t, b.BuildPool(context.Background(), def, domain.PoolBuildOverwrite|domain.PoolBuildNoOverwrite), domain.KindInvalidArg,
		"Flags 'VIR_STORAGE_POOL_BUILD_OVERWRITE' and 'VIR_STORAGE_POOL_BUILD_NO_OVERWRITE' are mutually exclusive")
	if err := b.DeletePool(context.Background(), def, 0); err != nil {
		t.Fatal(err)
	}
	if len(f.RunLog()) != 0 {
		t.Errorf("ran %v", f.RunLog())
	}
}

func TestRefreshUnmounted(t *testing.T) {
	t.Parallel()
	mt := newMountTable(t)
	b := netfs.New(testkit.NewFakeRunner(t), mt.Path, testkit.QuietLog())
	target := t.TempDir()
	def := netfsPool("nfs.example.com", "/export", "nfs", target, nil)
	_, _, err := b.RefreshPool(context.Background(), def)
	wantErrText(t, err, domain.KindOperationInvalid, "Requested operation is not valid: storage pool 'netfs' is not mounted on '"+target+
		"': the filesystem was unmounted behind our back")
	mt.Add(target, "nfs4", "nfs.example.com:/export")
	if _, vols, err := b.RefreshPool(context.Background(), def); err != nil || len(vols) != 0 {
		t.Fatalf("refresh mounted = %v, %v", vols, err)
	}
}

func TestFindPoolSources(t *testing.T) {
	t.Parallel()
	host := []domain.SourceHost{{Name: "nfs.example.com"}}
	src := func(dir, format string) domain.PoolSource {
		return domain.PoolSource{Hosts: host, Dir: dir, Format: format}
	}
	tests := []struct {
		name     string
		giveSpec *domain.PoolSource
		giveNFS  testkit.FakeCall
		giveGl   testkit.FakeCall
		want     []domain.PoolSource
		wantKind domain.Kind
		wantErr  string
	}{
		{
			name:     "nfs exports, no gluster CLI",
			giveSpec: &domain.PoolSource{Hosts: host},
			giveNFS:  testkit.FakeCall{Stdout: readTestdata(t, "showmount.txt")},
			giveGl:   testkit.FakeCall{Err: ports.ErrCommandNotFound},
			want: []domain.PoolSource{src("/srv/nfs/images", "nfs"), src("/export/my share", "nfs"), src("/home", "nfs"),
				src("/var/lib/libvirt/images", "nfs")},
		},
		{
			name:     "gluster only",
			giveSpec: &domain.PoolSource{Hosts: host},
			giveNFS:  testkit.FakeCall{Exit: 1, Stderr: "clnt_create: RPC: Program not registered\n"},
			giveGl:   testkit.FakeCall{Stdout: readTestdata(t, "gluster-volinfo.xml")},
			want:     []domain.PoolSource{src("gv0", "glusterfs"), src("vmstore", "glusterfs")},
		},
		{
			name:     "both",
			giveSpec: &domain.PoolSource{Hosts: host, Format: "nfs"},
			giveNFS:  testkit.FakeCall{Stdout: "/export *\n"},
			giveGl:   testkit.FakeCall{Stdout: readTestdata(t, "gluster-volinfo.xml")},
			want:     []domain.PoolSource{src("/export", "nfs"), src("gv0", "glusterfs"), src("vmstore", "glusterfs")},
		},
		{
			name:     "no exports",
			giveSpec: &domain.PoolSource{Hosts: host},
			giveNFS:  testkit.FakeCall{Stdout: ""},
			giveGl:   testkit.FakeCall{Stdout: readTestdata(t, "gluster-error.xml"), Exit: 1},
			want:     []domain.PoolSource{},
		},
		{
			name:     "nothing found",
			giveSpec: &domain.PoolSource{Hosts: host},
			giveNFS:  testkit.FakeCall{Exit: 1, Stderr: "clnt_create: RPC: Unable to receive\n"},
			giveGl:   testkit.FakeCall{Stdout: readTestdata(t, "gluster-error.xml")},
			wantKind: domain.KindOperationFailed,
			wantErr:  "operation failed: no storage pools were found on host 'nfs.example.com'",
		},
		{
			name:     "garbled gluster answer",
			giveSpec: &domain.PoolSource{Hosts: host},
			giveNFS:  testkit.FakeCall{Stdout: "/export *\n"},
			giveGl:   testkit.FakeCall{Stdout: "<cliOutput><opRet>0</opRet><volInfo><volumes><volume><id>x</id></volume></volumes></volInfo></cliOutput>"},
			wantKind: domain.KindXMLError,
			wantErr:  "XML error: failed to extract gluster volume name: netfs: failed to extract gluster volume name",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := testkit.NewFakeRunner(t)
			f.ExactOrder = false // both commands run at once
			nfs, gl := tt.giveNFS, tt.giveGl
			nfs.Argv = netfs.ShowmountArgv("nfs.example.com")
			gl.Argv = netfs.GlusterArgv("nfs.example.com")
			*f.Expect(nfs.Argv...) = nfs
			*f.Expect(gl.Argv...) = gl
			b := netfs.New(f, "", testkit.QuietLog())
			got, err := b.FindPoolSources(context.Background(), tt.giveSpec, 0)
			if tt.wantErr != "" {
				wantErrText(t, err, tt.wantKind, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestFindPoolSourcesArgv(t *testing.T) {
	t.Parallel()
	f := testkit.NewFakeRunner(t)
	f.ExactOrder = false
	f.Expect(netfs.ShowmountArgv("nfs.example.com")...).Stdout = "/export *\n"
	f.Expect(netfs.GlusterArgv("nfs.example.com")...).Exit = 1
	b := netfs.New(f, "", testkit.QuietLog())
	if _, err := b.FindPoolSources(context.Background(), &domain.PoolSource{Hosts: []domain.SourceHost{{Name: "nfs.example.com"}}}, 0); err != nil {
		t.Fatal(err)
	}
	log := f.RunLog()
	if len(log) == 2 && log[0][0] == "gluster" {
		log[0], log[1] = log[1], log[0]
	}
	checkGolden(t, "find-sources", log)
}

func TestFindPoolSourcesErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		giveSpec  *domain.PoolSource
		giveFlags uint32
		wantKind  domain.Kind
		wantErr   string
	}{
		{name: "nil spec", wantKind: domain.KindInvalidArg, wantErr: "invalid argument: hostname must be specified for netfs sources"},
		{name: "no host", giveSpec: &domain.PoolSource{}, wantKind: domain.KindInvalidArg, wantErr: "invalid argument: hostname must be specified for netfs sources"},
		{name: "two hosts", giveSpec: &domain.PoolSource{Hosts: []domain.SourceHost{{Name: "a"}, {Name: "b"}}},
			wantKind: domain.KindInvalidArg, wantErr: "invalid argument: hostname must be specified for netfs sources"},
		{name: "flags", giveSpec: &domain.PoolSource{Hosts: []domain.SourceHost{{Name: "a"}}}, giveFlags: 1,
			wantKind: domain.KindInvalidArg, wantErr: "unsupported flags (0x1) in function virStorageBackendFileSystemNetFindPoolSources"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := netfs.New(testkit.NewFakeRunner(t), "", testkit.QuietLog())
			_, err := b.FindPoolSources(context.Background(), tt.giveSpec, tt.giveFlags)
			wantErrText(t, err, tt.wantKind, tt.wantErr)
		})
	}
}

// A host that never answers showmount fails within ShowmountTimeout.
func TestFindPoolSourcesTimeout(t *testing.T) {
	t.Parallel()
	r := newBlockingRunner(t, false)
	b := netfs.New(r, "", testkit.QuietLog())
	b.ShowmountTimeout = 150 * time.Millisecond
	start := time.Now()
	_, err := b.FindPoolSources(context.Background(), &domain.PoolSource{Hosts: []domain.SourceHost{{Name: "192.0.2.1"}}}, 0)
	wantErrText(t, err, domain.KindOperationFailed, "operation failed: cannot list the NFS exports of 192.0.2.1: timed out after 150ms")
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %s", d)
	}
}

// The real showmount against this machine, which serves no NFS: it must fail
// quickly with libvirt's text.
func TestRealShowmountLocalhost(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("showmount"); err != nil {
		t.Skip("showmount not found (install nfs-common): skipping the real source discovery test")
	}
	log := testkit.QuietLog()
	b := netfs.New(osexec.New(log), "", log)
	b.ShowmountTimeout = 5 * time.Second
	got, err := b.FindPoolSources(context.Background(), &domain.PoolSource{Hosts: []domain.SourceHost{{Name: "127.0.0.1"}}}, 0)
	if err == nil {
		t.Skipf("this machine serves NFS exports (%v): nothing to check", got)
	}
	if domain.KindOf(err) != domain.KindOperationFailed {
		t.Fatalf("err = %v (kind %d)", err, domain.KindOf(err))
	}
	if err.Error() != "operation failed: no storage pools were found on host '127.0.0.1'" &&
		err.Error() != "operation failed: cannot list the NFS exports of 127.0.0.1: timed out after 5s" {
		t.Errorf("err = %v", err)
	}
}

func TestParseShowmount(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		give string
		want []string
	}{
		{name: "man page format", give: readTestdata(t, "showmount.txt"),
			want: []string{"/srv/nfs/images", "/export/my share", "/home", "/var/lib/libvirt/images"}},
		// showmount 2.6.2 against nfs-ganesha 4.3 serving three exports on
		// this machine: a subnet, everyone, and a host list.
		{name: "captured from ganesha", give: readTestdata(t, "showmount-ganesha.txt"),
			want: []string{"/tmp/gx/exp1", "/tmp/gx/my share", "/tmp/gx/images"}},
		{name: "header is skipped", give: "Export list for nfs:\n/export 10.0.0.0/8\n", want: []string{"/export"}},
		{name: "no clients", give: "/export\n"},
		{name: "relative", give: "export *\n"},
		{name: "crlf", give: "/a *\r\n", want: []string{"/a"}},
		{name: "empty", give: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := netfs.ParseShowmount([]byte(tt.give)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseGlusterVolumes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		give    string
		want    []string
		wantErr bool
	}{
		{name: "two volumes", give: readTestdata(t, "gluster-volinfo.xml"), want: []string{"gv0", "vmstore"}},
		{name: "cli error", give: readTestdata(t, "gluster-error.xml")},
		{name: "no volumes", give: "<cliOutput><opRet>0</opRet><volInfo><volumes><count>0</count></volumes></volInfo></cliOutput>", want: []string{}},
		{name: "not xml", give: "Connection failed", wantErr: true},
		{name: "nameless volume", give: "<cliOutput><opRet>0</opRet><volInfo><volumes><volume/></volumes></volInfo></cliOutput>", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := netfs.ParseGlusterVolumes([]byte(tt.give))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// ParseShowmount's worst is regexp's backtracker, whose job stack grows with a
// line like "/ x x x ..." until the line is too long for it (about 8 KB): 66
// bytes per input byte there, 5 beyond; its first match costs 42 KB however
// short the input. ParseGlusterVolumes is encoding/xml's: 65 bytes per byte
// for "<a/>" repeated, under 16 KB for a small answer. Both bounds are twice
// the measured, which a copy of the output per line or per volume exceeds.
const (
	showmountAllocPerByte = 128
	showmountAllocSlack   = 96 << 10
	glusterAllocPerByte   = 128
	glusterAllocSlack     = 32 << 10
)

func checkSourcesAlloc(t *testing.T, what, out string, perByte, slack uint64, parse func()) {
	t.Helper()
	n := testkit.AllocatedBytes(parse)
	if limit := perByte*uint64(len(out)) + slack; n > limit {
		t.Fatalf("%s of %d bytes allocated %d, bound %d", what, len(out), n, limit)
	}
}

func FuzzParseShowmount(f *testing.F) {
	b, err := os.ReadFile(filepath.Join("testdata", "showmount.txt"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(b))
	f.Add("Export list for h:\n/a *\n")
	f.Add("/ (everyone)\n")
	f.Fuzz(func(t *testing.T, s string) {
		var dirs []string
		checkSourcesAlloc(t, "ParseShowmount", s, showmountAllocPerByte, showmountAllocSlack,
			func() { dirs = netfs.ParseShowmount([]byte(s)) })
		for _, d := range dirs {
			// Every export is an absolute path without surrounding blanks:
			// it becomes a <dir path> a pool will mount.
			if d == "" || d[0] != '/' || d[len(d)-1] == ' ' || d[len(d)-1] == '\t' {
				t.Fatalf("bad export %q from %q", d, s)
			}
		}
	})
}

func FuzzParseGlusterVolumes(f *testing.F) {
	f.Add([]byte(readTestdata(f, "gluster-volinfo.xml")))
	f.Add([]byte(readTestdata(f, "gluster-error.xml")))
	f.Add([]byte("<cliOutput><opRet>0</opRet><volInfo><volumes><count>0</count></volumes></volInfo></cliOutput>"))
	f.Add([]byte("<cliOutput><opRet>0</opRet><volInfo><volumes><volume/></volumes></volInfo></cliOutput>"))
	f.Add([]byte("Connection failed"))
	f.Fuzz(func(t *testing.T, out []byte) {
		var names []string
		var err error
		checkSourcesAlloc(t, "ParseGlusterVolumes", string(out), glusterAllocPerByte, glusterAllocSlack,
			func() { names, err = netfs.ParseGlusterVolumes(out) })
		if err != nil && names != nil {
			t.Fatalf("volumes %q along with error %v", names, err)
		}
		for _, n := range names {
			// Each name becomes a pool's <source><name>: a nameless or
			// blank-padded one would not match the volume gluster mounts.
			if n == "" || strings.TrimSpace(n) != n {
				t.Fatalf("bad volume name %q", n)
			}
		}
	})
}

func TestTypeAndFormat(t *testing.T) {
	t.Parallel()
	b := netfs.New(testkit.NewFakeRunner(t), "", testkit.QuietLog())
	if b.Type() != domain.PoolNetFS || b.DefaultVolFormat() != "raw" {
		t.Errorf("type %v, default format %q", b.Type(), b.DefaultVolFormat())
	}
}
