package e2e_test

import (
	"path/filepath"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// qcow2VolXML is a volume XML of the qcow2 differential test; target holds
// the <target> children after the format.
func qcow2VolXML(name, target string) string {
	return "<volume><name>" + name + "</name><capacity>1048576</capacity><target><format type='qcow2'/>" +
		target + "</target></volume>"
}

// qcow2Defined are volumes made through each daemon: libvirt shows what the
// definition gave (compat, cluster size, features) until a pool refresh
// probes the image, which then shows the cluster size of every qcow2 and an
// empty <features/> for a version 3 image without features.
var qcow2Defined = []struct{ name, target string }{
	{"d-default", ""},
	{"d-010", "<compat>0.10</compat>"},
	{"d-11", "<compat>1.1</compat>"},
	{"d-11-lazy", "<compat>1.1</compat><features><lazy_refcounts/></features>"},
	{"d-11-ext", "<compat>1.1</compat><features><extended_l2/></features>"},
	{"d-both", "<features><lazy_refcounts/><extended_l2/></features>"},
	{"d-features-empty", "<features/>"},
	{"d-cluster", "<clusterSize unit='KiB'>128</clusterSize>"},
	{"d-010-cluster", "<compat>0.10</compat><clusterSize unit='KiB'>128</clusterSize>"},
}

// qcow2Dropped are images qemu-img writes straight into the pool directory,
// which the daemons only know from a pool refresh.
var qcow2Dropped = []struct {
	name string
	args []string
}{
	{"f-010.qcow2", []string{"-f", "qcow2", "-o", "compat=0.10"}},
	{"f-11.qcow2", []string{"-f", "qcow2", "-o", "compat=1.1"}},
	{"f-11-lazy.qcow2", []string{"-f", "qcow2", "-o", "compat=1.1,lazy_refcounts=on"}},
	{"f-11-ext.qcow2", []string{"-f", "qcow2", "-o", "compat=1.1,extended_l2=on"}},
	{"f-11-both.qcow2", []string{"-f", "qcow2", "-o", "compat=1.1,lazy_refcounts=on,extended_l2=on,cluster_size=32768"}},
	{"f-010-4k.qcow2", []string{"-f", "qcow2", "-o", "compat=0.10,cluster_size=4096"}},
	{"f.qcow", []string{"-f", "qcow"}},
	{"f.qed", []string{"-f", "qed"}},
}

// TestDifferentialQcow2XML compares the <target> of qcow2 volumes (and the
// qcow and qed images that have cluster sizes of their own) with libvirtd's,
// for volumes created, cloned and dropped into the pool, before and after a
// pool refresh.
func TestDifferentialQcow2XML(t *testing.T) {
	t.Parallel() // StartAnchor serialises the libvirtd tests among themselves
	testkit.RequireTool(t, "qemu-img")
	a := testkit.StartAnchor(t)
	a.CleanupPools("e2eq")
	t.Cleanup(func() { a.CleanupPools("e2eq") })
	d := startDaemon(t, testkit.DaemonOptions{})
	ref := diffSide{a, poolBase(t, "a")}
	ours := diffSide{d, poolBase(t, "o")}

	files := map[string]string{}
	var cases []diffCase
	for _, v := range qcow2Defined {
		files[v.name+".xml"] = qcow2VolXML(v.name, v.target)
		cases = append(cases, diffCase{name: "created " + v.name,
			setup: [][]string{{"vol-create", "e2eq", "{B}/" + v.name + ".xml"}},
			args:  args("vol-dumpxml", v.name, "--pool", "e2eq")})
	}
	cases = append(cases, diffCase{name: "clone of a created 1.1 image",
		setup: [][]string{{"vol-clone", "d-11", "c-11", "--pool", "e2eq"}},
		args:  args("vol-dumpxml", "c-11", "--pool", "e2eq")})
	for _, v := range qcow2Defined {
		cases = append(cases, diffCase{name: "refreshed " + v.name,
			setup: [][]string{{"pool-refresh", "e2eq"}},
			args:  args("vol-dumpxml", v.name, "--pool", "e2eq")})
	}
	for _, f := range qcow2Dropped {
		cases = append(cases, diffCase{name: "dropped " + f.name, args: args("vol-dumpxml", f.name, "--pool", "e2eq")})
	}
	// virsh vol-clone sends the refreshed source's XML, cluster size and
	// <features/> included, to CreateXMLFrom.
	cases = append(cases,
		diffCase{name: "clone of a refreshed 1.1 image",
			setup: [][]string{{"vol-clone", "f-11.qcow2", "c-f-11", "--pool", "e2eq"}},
			args:  args("vol-dumpxml", "c-f-11", "--pool", "e2eq")},
		diffCase{name: "clone of a refreshed 1.1 image after refresh",
			setup: [][]string{{"pool-refresh", "e2eq"}},
			args:  args("vol-dumpxml", "c-f-11", "--pool", "e2eq")},
		diffCase{name: "clone of a refreshed 4k 0.10 image",
			setup: [][]string{{"vol-clone", "f-010-4k.qcow2", "c-010-4k", "--pool", "e2eq"}},
			args:  args("vol-dumpxml", "c-010-4k", "--pool", "e2eq")},
	)

	for _, s := range []diffSide{ref, ours} {
		if out, errOut, code := s.run(t, files, []string{"pool-create-as", "e2eq", "dir", "--target", "{B}/pq", "--build"}); code != 0 {
			t.Fatalf("pool-create-as on %s: rc=%d %s %s", s.tg.URI(), code, out, errOut)
		}
		t.Cleanup(func() { s.run(t, nil, []string{"pool-destroy", "e2eq"}) })
		for _, f := range qcow2Dropped {
			argv := append(append([]string{"create", "-q"}, f.args...), filepath.Join(s.base, "pq", f.name), "1M")
			if out, errOut, code := testkit.Run("", "qemu-img", argv...); code != 0 {
				t.Fatalf("qemu-img %v: rc=%d %s %s", argv, code, out, errOut)
			}
		}
	}
	runDiffCases(t, cases, ref, ours)
}
