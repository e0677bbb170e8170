package e2e_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// diffCase is one step of the differential scenario: setup runs on both daemons
// without comparison, then args runs and the normalised stdout, stderr and exit
// codes must be the same; cleanup runs after. In every string {B} is the
// daemon's base directory and {UUID:name} the UUID of that pool there.
type diffCase struct {
	name      string
	files     map[string]string
	setup     [][]string
	args      []string
	poolSizes bool
	cleanup   [][]string
	// keep, when set, reduces both stdouts to the part compared.
	keep func(string) string
}

// servedPoolCaps keeps the <pool> blocks of the pool types virtstoraged serves.
func servedPoolCaps(out string) string {
	var b strings.Builder
	for _, typ := range []string{"dir", "fs", "netfs", "logical", "disk", "iscsi", "scsi", "mpath", "rbd"} {
		start := strings.Index(out, "<pool type='"+typ+"'")
		if start < 0 {
			b.WriteString("missing " + typ + "\n")
			continue
		}
		end := strings.Index(out[start:], "</pool>")
		if end < 0 {
			b.WriteString(out[start:])
			continue
		}
		b.WriteString(out[start:start+end+len("</pool>")] + "\n")
	}
	return b.String()
}

var diffBaseSetup = [][]string{
	{"pool-define-as", "e2ed", "dir", "--target", "{B}/pd"},
	{"pool-build", "e2ed"},
	{"pool-start", "e2ed"},
	{"vol-create-as", "e2ed", "r1.img", "10M"},
	{"vol-create-as", "e2ed", "q1.qcow2", "10M", "--format", "qcow2"},
	{"vol-create-as", "e2ed", "sp.img", "10M", "--allocation", "0"},
	{"vol-create-as", "e2ed", "ov.qcow2", "10M", "--format", "qcow2", "--backing-vol", "q1.qcow2", "--backing-vol-format", "qcow2"},
	{"pool-define-as", "e2ei", "dir", "--target", "{B}/pi"},
}

func args(a ...string) []string { return a }

var diffCases = []diffCase{
	// listings and descriptions
	{name: "pool-list", args: args("pool-list")},
	{name: "pool-list --all", args: args("pool-list", "--all")},
	{name: "pool-list --inactive", args: args("pool-list", "--inactive")},
	{name: "pool-list --all --details", args: args("pool-list", "--all", "--details"), poolSizes: true},
	{name: "pool-list --name --all", args: args("pool-list", "--name", "--all")},
	{name: "pool-list --persistent --type dir", args: args("pool-list", "--persistent", "--type", "dir")},
	{name: "pool-info running", args: args("pool-info", "e2ed"), poolSizes: true},
	{name: "pool-info --bytes", args: args("pool-info", "--bytes", "e2ed"), poolSizes: true},
	{name: "pool-info inactive", args: args("pool-info", "e2ei"), poolSizes: true},
	{name: "pool-dumpxml running", args: args("pool-dumpxml", "e2ed"), poolSizes: true},
	{name: "pool-dumpxml --inactive running", args: args("pool-dumpxml", "--inactive", "e2ed"), poolSizes: true},
	{name: "pool-dumpxml inactive", args: args("pool-dumpxml", "e2ei"), poolSizes: true},
	// pool-capabilities: the libvirtd under test may serve more (rbd, where
	// its driver package is installed); we list only the backends we serve,
	// so the comparison keeps the served types' blocks.
	{name: "pool-capabilities", args: args("pool-capabilities"), keep: servedPoolCaps},
	{name: "vol-list", args: args("vol-list", "e2ed")},
	{name: "vol-list --details", args: args("vol-list", "e2ed", "--details")},
	{name: "vol-info raw", args: args("vol-info", "r1.img", "--pool", "e2ed")},
	{name: "vol-info sparse --bytes", args: args("vol-info", "--bytes", "sp.img", "--pool", "e2ed")},
	{name: "vol-info qcow2", args: args("vol-info", "q1.qcow2", "--pool", "e2ed")},
	{name: "vol-info qcow2 --physical", args: args("vol-info", "--physical", "q1.qcow2", "--pool", "e2ed")},
	{name: "vol-info by path", args: args("vol-info", "{B}/pd/r1.img")},
	{name: "vol-dumpxml raw", args: args("vol-dumpxml", "r1.img", "--pool", "e2ed")},
	{name: "vol-dumpxml sparse", args: args("vol-dumpxml", "sp.img", "--pool", "e2ed")},
	{name: "vol-dumpxml qcow2", args: args("vol-dumpxml", "q1.qcow2", "--pool", "e2ed")},
	{name: "vol-dumpxml qcow2 with backing", args: args("vol-dumpxml", "ov.qcow2", "--pool", "e2ed")},
	{name: "vol-key", args: args("vol-key", "q1.qcow2", "--pool", "e2ed")},
	{name: "vol-pool", args: args("vol-pool", "{B}/pd/q1.qcow2")},
	{name: "vol-create-as zero capacity", args: args("vol-create-as", "e2ed", "zero.img", "0"),
		cleanup: [][]string{{"vol-delete", "zero.img", "--pool", "e2ed"}}},
	{name: "vol-info zero capacity", setup: [][]string{{"vol-create-as", "e2ed", "zero.img", "0"}},
		args: args("vol-info", "--bytes", "zero.img", "--pool", "e2ed"), cleanup: [][]string{{"vol-delete", "zero.img", "--pool", "e2ed"}}},
	{name: "vol-dumpxml qcow2 compat 1.1 lazy_refcounts", files: map[string]string{"lz.xml": "<volume><name>lz.qcow2</name><capacity unit='M'>1</capacity><target><format type='qcow2'/><compat>1.1</compat><features><lazy_refcounts/></features></target></volume>"},
		setup: [][]string{{"vol-create", "e2ed", "{B}/lz.xml"}}, args: args("vol-dumpxml", "lz.qcow2", "--pool", "e2ed"),
		cleanup: [][]string{{"vol-delete", "lz.qcow2", "--pool", "e2ed"}}},
	{name: "vol-dumpxml after resize --allocate", setup: [][]string{{"vol-create-as", "e2ed", "ra.img", "1M", "--allocation", "0"}, {"vol-resize", "ra.img", "2M", "--allocate", "--pool", "e2ed"}},
		args: args("vol-dumpxml", "ra.img", "--pool", "e2ed"), cleanup: [][]string{{"vol-delete", "ra.img", "--pool", "e2ed"}}},

	// error cases of semantics §2.4 that apply to dir pools
	{name: "unknown pool", args: args("pool-info", "nosuch")},
	{name: "unknown pool uuid", args: args("pool-info", "6a0cfa84-0000-4000-8000-000000000000")},
	{name: "duplicate name new uuid", args: args("pool-define-as", "e2ed", "dir", "--target", "{B}/other")},
	{name: "same uuid other name", files: map[string]string{"su.xml": "<pool type='dir'><name>e2ex</name><uuid>{UUID:e2ed}</uuid><target><path>{B}/other</path></target></pool>"},
		args: args("pool-define", "{B}/su.xml")},
	{name: "same target path", args: args("pool-define-as", "e2ex", "dir", "--target", "{B}/pd")},
	{name: "same target path trailing slash", args: args("pool-define-as", "e2ex", "dir", "--target", "{B}/pd/")},
	{name: "same target path double slash", args: args("pool-define-as", "e2ex", "dir", "--target", "{B}//pd")},
	{name: "transient create with a defined name", args: args("pool-create-as", "e2ei", "dir", "--target", "{B}/other")},
	{name: "missing target path", files: map[string]string{"nt.xml": "<pool type='dir'><name>e2ex</name></pool>"}, args: args("pool-define", "{B}/nt.xml")},
	{name: "missing pool name", files: map[string]string{"nn.xml": "<pool type='dir'><target><path>{B}/x</path></target></pool>"}, args: args("pool-define", "{B}/nn.xml")},
	{name: "truncated pool xml", files: map[string]string{"tr.xml": "<pool type='dir'>\n<name>e2ex</name>"}, args: args("pool-define", "{B}/tr.xml")},
	{name: "bad pool type", files: map[string]string{"bt.xml": "<pool type='bogus'><name>e2ex</name><target><path>{B}/x</path></target></pool>"}, args: args("pool-define", "{B}/bt.xml")},
	{name: "no pool type", files: map[string]string{"nty.xml": "<pool><name>e2ex</name><target><path>{B}/x</path></target></pool>"}, args: args("pool-define", "{B}/nty.xml")},
	{name: "malformed pool uuid", files: map[string]string{"mu.xml": "<pool type='dir'><name>e2ex</name><uuid>not-a-uuid</uuid><target><path>{B}/x</path></target></pool>"}, args: args("pool-define", "{B}/mu.xml")},
	{name: "pool name with slash", args: args("pool-define-as", "e2e/x", "dir", "--target", "{B}/x")},
	{name: "start an active pool", args: args("pool-start", "e2ed")},
	{name: "build an active pool", args: args("pool-build", "e2ed")},
	{name: "undefine an active pool", args: args("pool-undefine", "e2ed")},
	{name: "delete an active pool", args: args("pool-delete", "e2ed")},
	{name: "destroy an inactive pool", args: args("pool-destroy", "e2ei")},
	{name: "refresh an inactive pool", args: args("pool-refresh", "e2ei")},
	{name: "vol-list on an inactive pool", args: args("vol-list", "e2ei")},
	{name: "vol-create-as in an inactive pool", args: args("vol-create-as", "e2ei", "v.img", "1M")},
	{name: "start a pool whose directory is missing", args: args("pool-start", "e2ei")},
	{name: "delete an unbuilt inactive pool", args: args("pool-delete", "e2ei")},
	{name: "build with both overwrite flags", args: args("pool-build", "e2ei", "--overwrite", "--no-overwrite")},
	{name: "vol already exists", args: args("vol-create-as", "e2ed", "r1.img", "1M")},
	{name: "clone onto an existing vol", args: args("vol-clone", "r1.img", "q1.qcow2", "--pool", "e2ed")},
	{name: "vol not found with pool", args: args("vol-info", "nosuch", "--pool", "e2ed")},
	{name: "vol not found without pool", args: args("vol-info", "nosuch")},
	{name: "vol path lookup missing", args: args("vol-path", "{B}/pd/nosuch")},
	{name: "vol path with dotdot", args: args("vol-info", "{B}/pd/../pd/r1.img")},
	{name: "vol path with double slash", args: args("vol-key", "{B}//pd//r1.img")},
	{name: "negative size", args: args("vol-create-as", "e2ed", "neg.img", "-5M")},
	{name: "raw with prealloc-metadata", args: args("vol-create-as", "e2ed", "pm.img", "1M", "--prealloc-metadata")},
	{name: "capacity overflow", args: args("vol-create-as", "e2ed", "big.img", "100E")},
	{name: "capacity overflow in xml", files: map[string]string{"of.xml": "<volume><name>of.img</name><capacity unit='E'>100</capacity></volume>"}, args: args("vol-create", "e2ed", "{B}/of.xml")},
	{name: "unknown capacity unit", files: map[string]string{"uu.xml": "<volume><name>uu.img</name><capacity unit='QQ'>1</capacity></volume>"}, args: args("vol-create", "e2ed", "{B}/uu.xml")},
	{name: "malformed capacity", files: map[string]string{"mc.xml": "<volume><name>mc.img</name><capacity>-5</capacity></volume>"}, args: args("vol-create", "e2ed", "{B}/mc.xml")},
	{name: "missing capacity", files: map[string]string{"nc.xml": "<volume><name>nc.img</name></volume>"}, args: args("vol-create", "e2ed", "{B}/nc.xml")},
	{name: "missing volume name", files: map[string]string{"nvn.xml": "<volume><capacity>1024</capacity></volume>"}, args: args("vol-create", "e2ed", "{B}/nvn.xml")},
	{name: "unknown volume format", args: args("vol-create-as", "e2ed", "fmt.img", "1M", "--format", "bogus")},
	{name: "backing store for raw", args: args("vol-create-as", "e2ed", "br.img", "1M", "--format", "raw", "--backing-vol", "{B}/pd/q1.qcow2")},
	{name: "inaccessible backing store", args: args("vol-create-as", "e2ed", "ib.qcow2", "1M", "--format", "qcow2", "--backing-vol", "/nonexistent/x")},
	{name: "inaccessible backing store in xml", files: map[string]string{"ib.xml": "<volume><name>ib.qcow2</name><capacity unit='M'>1</capacity><target><format type='qcow2'/></target><backingStore><path>/nonexistent/x</path><format type='raw'/></backingStore></volume>"},
		args: args("vol-create", "e2ed", "{B}/ib.xml")},
	{name: "backing store with prealloc-metadata", args: args("vol-create-as", "e2ed", "bp.qcow2", "10M", "--format", "qcow2", "--backing-vol", "{B}/pd/q1.qcow2", "--backing-vol-format", "qcow2", "--prealloc-metadata")},
	{name: "lazy_refcounts with compat 0.10", files: map[string]string{"lr.xml": "<volume><name>lr.qcow2</name><capacity unit='M'>1</capacity><target><format type='qcow2'/><compat>0.10</compat><features><lazy_refcounts/></features></target></volume>"},
		args: args("vol-create", "e2ed", "{B}/lr.xml")},
	{name: "resize below capacity without shrink", args: args("vol-resize", "sp.img", "5M", "--pool", "e2ed")},
	{name: "resize below allocation", args: args("vol-resize", "r1.img", "5M", "--shrink", "--pool", "e2ed")},
	{name: "resize allocate beyond the pool", args: args("vol-resize", "sp.img", "100T", "--allocate", "--pool", "e2ed")},
	{name: "negative resize without shrink", args: args("vol-resize", "sp.img", "-1M", "--pool", "e2ed")},
	{name: "autostart a transient pool", setup: [][]string{{"pool-create-as", "e2et", "dir", "--target", "{B}/pt", "--build"}},
		args: args("pool-autostart", "e2et"), cleanup: [][]string{{"pool-destroy", "e2et"}}},
	{name: "undefine a transient pool", setup: [][]string{{"pool-create-as", "e2et", "dir", "--target", "{B}/pt", "--build"}},
		args: args("pool-undefine", "e2et"), cleanup: [][]string{{"pool-destroy", "e2et"}}},
	{name: "unsupported wipe algorithm", args: args("vol-wipe", "sp.img", "--pool", "e2ed", "--algorithm", "bogus")},
	{name: "find sources for dir", args: args("find-storage-pool-sources-as", "dir")},
	{name: "upload to a missing vol", files: map[string]string{"up.bin": "data"}, args: args("vol-upload", "nosuch", "{B}/up.bin", "--pool", "e2ed")},
	{name: "download from a vol of an inactive pool", args: args("vol-download", "x.img", "{B}/down.bin", "--pool", "e2ei")},
	{name: "vol-delete missing", args: args("vol-delete", "nosuch", "--pool", "e2ed")},
	{name: "vol-create-from without inputpool", files: map[string]string{"cf.xml": "<volume><name>cf.img</name><capacity unit='M'>1</capacity></volume>"},
		args: args("vol-create-from", "e2ed", "{B}/cf.xml", "r1.img")},
	{name: "vol-clone of a missing vol", args: args("vol-clone", "nosuch", "x.img", "--pool", "e2ed")},

	// --validate: libvirt's RelaxNG schemas, libxml2's messages, code 92
	// (diffapi_test.go compares the codes).
	{name: "pool-define --validate unknown element", files: map[string]string{"vpu.xml": "<pool type='dir'><name>e2ex</name><bogus/><target><path>{B}/x</path></target></pool>"},
		args: args("pool-define", "--validate", "{B}/vpu.xml")},
	{name: "pool-define --validate bad attribute value", files: map[string]string{"vpa.xml": "<pool type='bogus'><name>e2ex</name><target><path>{B}/x</path></target></pool>"},
		args: args("pool-define", "--validate", "{B}/vpa.xml")},
	{name: "pool-define --validate missing name", files: map[string]string{"vpn.xml": "<pool type='dir'><target><path>{B}/x</path></target></pool>"},
		args: args("pool-define", "--validate", "{B}/vpn.xml")},
	{name: "pool-define --validate wrong root", files: map[string]string{"vpr.xml": "<volume><name>e2ex</name></volume>"},
		args: args("pool-define", "--validate", "{B}/vpr.xml")},
	{name: "pool-define --validate bad mode", files: map[string]string{"vpm.xml": "<pool type='dir'><name>e2ex</name><target><path>{B}/x</path><permissions><mode>abc</mode></permissions></target></pool>"},
		args: args("pool-define", "--validate", "{B}/vpm.xml")},
	{name: "pool-define --validate malformed", files: map[string]string{"vpt.xml": "<pool type='dir'>\n<name>e2ex</name>"},
		args: args("pool-define", "--validate", "{B}/vpt.xml")},
	{name: "pool-define --validate netfs with mount options", files: map[string]string{"vpo.xml": "<pool type='netfs' xmlns:fs='http://libvirt.org/schemas/storagepool/fs/1.0'><name>e2ex</name><source><host name='h'/><dir path='/e'/><format type='nfs'/></source><target><path>{B}/x</path></target><fs:mount_opts><fs:option name='sync'/></fs:mount_opts></pool>"},
		args: args("pool-define", "--validate", "{B}/vpo.xml"), cleanup: [][]string{{"pool-undefine", "e2ex"}}},
	{name: "vol-create --validate unknown element", files: map[string]string{"vvu.xml": "<volume><name>vv.img</name><capacity>1024</capacity><bogus/></volume>"},
		args: args("vol-create", "--validate", "e2ed", "{B}/vvu.xml")},
	{name: "vol-create --validate bad attribute value", files: map[string]string{"vva.xml": "<volume type='weird'><name>vv.img</name><capacity>1024</capacity></volume>"},
		args: args("vol-create", "--validate", "e2ed", "{B}/vva.xml")},
	{name: "vol-create --validate missing name", files: map[string]string{"vvn.xml": "<volume><capacity>1024</capacity></volume>"},
		args: args("vol-create", "--validate", "e2ed", "{B}/vvn.xml")},
	{name: "vol-create --validate wrong root", files: map[string]string{"vvr.xml": "<pool type='dir'><name>x</name></pool>"},
		args: args("vol-create", "--validate", "e2ed", "{B}/vvr.xml")},
	{name: "vol-create --validate bad unit", files: map[string]string{"vvq.xml": "<volume><name>vv.img</name><capacity unit='QQ'>1024</capacity><target><format type='qcow2'/></target></volume>"},
		args: args("vol-create", "--validate", "e2ed", "{B}/vvq.xml")},
	{name: "vol-create --validate in an inactive pool", files: map[string]string{"vvi.xml": "<volume><name>vv.img</name><bogus/></volume>"},
		args: args("vol-create", "--validate", "e2ei", "{B}/vvi.xml")},
	{name: "vol-create-from --validate unknown element", files: map[string]string{"vfu.xml": "<volume><name>vf.img</name><capacity>1024</capacity><bogus/></volume>"},
		args: args("vol-create-from", "--validate", "e2ed", "{B}/vfu.xml", "r1.img", "--inputpool", "e2ed")},
}

// roDiffCases run through each daemon's read-only socket.
var roDiffCases = []diffCase{
	{name: "ro pool-list", args: args("pool-list", "--all")},
	{name: "ro pool-info", args: args("pool-info", "e2ed"), poolSizes: true},
	{name: "ro vol-dumpxml", args: args("vol-dumpxml", "r1.img", "--pool", "e2ed")},
	{name: "ro vol-list", args: args("vol-list", "e2ed", "--details")},
	{name: "ro pool-define-as", args: args("pool-define-as", "e2ex", "dir", "--target", "{B}/x")},
	{name: "ro pool-refresh", args: args("pool-refresh", "e2ed")},
	{name: "ro pool-autostart", args: args("pool-autostart", "e2ed")},
	{name: "ro pool-destroy", args: args("pool-destroy", "e2ed")},
	{name: "ro vol-create-as", args: args("vol-create-as", "e2ed", "x.img", "1M")},
	{name: "ro vol-delete", args: args("vol-delete", "r1.img", "--pool", "e2ed")},
	{name: "ro vol-wipe", args: args("vol-wipe", "r1.img", "--pool", "e2ed")},
	{name: "ro vol-resize", args: args("vol-resize", "r1.img", "20M", "--pool", "e2ed")},
	{name: "ro vol-upload", files: map[string]string{"ro.bin": "data"}, args: args("vol-upload", "r1.img", "{B}/ro.bin", "--pool", "e2ed")},
	{name: "ro vol-download", args: args("vol-download", "r1.img", "{B}/ro-down.bin", "--pool", "e2ed")},
}

// roSide drives a daemon through its read-only socket.
type roSide struct {
	uri string
}

func (r roSide) Virsh(a ...string) (string, string, int) { return testkit.RunVirsh(r.uri, a...) }
func (r roSide) URI() string                             { return r.uri }

// expand substitutes {B} and {UUID:pool} for one daemon.
func expand(tg target, base, s string) string {
	s = strings.ReplaceAll(s, "{B}", base)
	for {
		i := strings.Index(s, "{UUID:")
		if i < 0 {
			return s
		}
		j := strings.Index(s[i:], "}")
		name := s[i+6 : i+j]
		out, _, _ := tg.Virsh("pool-uuid", name)
		s = s[:i] + strings.TrimSpace(out) + s[i+j+1:]
	}
}

type diffSide struct {
	tg   target
	base string
}

func (s diffSide) run(t *testing.T, files map[string]string, a []string) (string, string, int) {
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(s.base, name), []byte(expand(s.tg, s.base, text)), 0o644); err != nil {
			t.Error(err)
		}
	}
	x := make([]string, len(a))
	for i, v := range a {
		x[i] = expand(s.tg, s.base, v)
	}
	return s.tg.Virsh(x...)
}

// TestDifferentialVirsh runs one scenario on our daemon and on libvirtd and
// compares the normalised outputs step by step.
func TestDifferentialVirsh(t *testing.T) {
	t.Parallel() // StartAnchor serialises the libvirtd tests among themselves
	a := testkit.StartAnchor(t)
	a.CleanupPools("e2e")
	t.Cleanup(func() { a.CleanupPools("e2e") })
	d := startDaemon(t, testkit.DaemonOptions{})
	ref := diffSide{a, poolBase(t, "a")}
	ours := diffSide{d, poolBase(t, "o")}
	for _, step := range diffBaseSetup {
		for _, s := range []diffSide{ref, ours} {
			if out, errOut, code := s.run(t, nil, step); code != 0 {
				t.Fatalf("setup %v on %s: rc=%d %s %s", step, s.tg.URI(), code, out, errOut)
			}
		}
	}
	roRef := diffSide{roSide{a.ROURI()}, ref.base}
	roOurs := diffSide{roSide{d.ROURI()}, ours.base}
	runDiffCases(t, diffCases, ref, ours)
	runDiffCases(t, roDiffCases, roRef, roOurs)
}

func runDiffCases(t *testing.T, cases []diffCase, ref, ours diffSide) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// the two daemons are independent: run each side's steps at once
			var res [2]struct {
				out, errOut string
				code        int
			}
			var wg sync.WaitGroup
			for i, s := range []diffSide{ref, ours} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for _, step := range c.setup {
						s.run(t, c.files, step)
					}
					o, e, code := s.run(t, c.files, c.args)
					for _, step := range c.cleanup {
						s.run(t, nil, step)
					}
					if c.keep != nil {
						o = c.keep(o)
					}
					res[i].out, res[i].errOut, res[i].code = normalize(o, s.base, c.poolSizes), normalize(e, s.base, c.poolSizes), code
				}()
			}
			wg.Wait()
			if res[0] != res[1] {
				t.Errorf("virsh %s\n--- libvirtd: rc=%d\nstdout:\n%s\nstderr:\n%s\n--- virtstoraged: rc=%d\nstdout:\n%s\nstderr:\n%s",
					strings.Join(c.args, " "), res[0].code, res[0].out, res[0].errOut, res[1].code, res[1].out, res[1].errOut)
			}
		})
	}
}
