package e2e_test

import (
	"fmt"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// diffFormats are the volume formats libvirt 9.0 lists for file pools, and
// vhdx, which it refuses by name. "dir" is only created: cloning to or from
// a directory volume is one of our deliberate differences (README).
var diffFormats = []string{"raw", "bochs", "cloop", "dmg", "iso", "vpc", "vdi", "fat", "vhd", "ploop",
	"cow", "qcow", "qcow2", "qed", "vmdk", "vhdx", "dir"}

// TestDifferentialFormats creates a volume of every format, clones a raw
// volume into each (asking the same and a slightly larger capacity, which
// libvirt does not apply to a qemu-img convert) and each back into raw, and
// compares what virsh shows of both daemons: the errors of the formats
// qemu-img cannot make, and the capacity and format of the others.
func TestDifferentialFormats(t *testing.T) {
	t.Parallel() // StartAnchor serialises the libvirtd tests among themselves
	testkit.RequireTool(t, "qemu-img")
	a := testkit.StartAnchor(t)
	a.CleanupPools("e2ef")
	t.Cleanup(func() { a.CleanupPools("e2ef") })
	d := startDaemon(t, testkit.DaemonOptions{})
	ref := diffSide{a, poolBase(t, "a")}
	ours := diffSide{d, poolBase(t, "o")}

	files := map[string]string{}
	cloneXML := func(name, format string, capacity int) string {
		file := name + ".xml"
		files[file] = fmt.Sprintf("<volume><name>%s</name><capacity>%d</capacity><target><format type='%s'/></target></volume>", name, capacity, format)
		return "{B}/" + file
	}
	show := func(what, vol string) []diffCase {
		return []diffCase{
			{name: what + " vol-info", args: args("vol-info", "--bytes", vol, "--pool", "e2ef")},
			{name: what + " vol-dumpxml", args: args("vol-dumpxml", vol, "--pool", "e2ef")},
		}
	}
	var cases []diffCase
	for _, f := range diffFormats {
		created := "c-" + f
		cases = append(cases, diffCase{name: "create " + f, args: args("vol-create-as", "e2ef", created, "1100000", "--format", f)})
		cases = append(cases, show("created "+f, created)...)
		if f == "dir" {
			continue
		}
		for _, c := range []struct {
			tag      string
			capacity int
		}{{"same", 1 << 20}, {"larger", 1100000}} {
			name := "k-" + c.tag + "-" + f
			cases = append(cases, diffCase{name: "clone raw into " + f + " " + c.tag,
				args: args("vol-create-from", "e2ef", cloneXML(name, f, c.capacity), "src.raw", "--inputpool", "e2ef")})
			cases = append(cases, show("clone into "+f+" "+c.tag, name)...)
		}
		back := "r-" + f
		cases = append(cases, diffCase{name: "clone " + f + " into raw larger",
			args: args("vol-create-from", "e2ef", cloneXML(back, "raw", 2<<20), created, "--inputpool", "e2ef")})
		cases = append(cases, show("clone of "+f+" into raw", back)...)
	}
	// qcow2-only options on other formats, refused before qemu-img runs.
	files["vmdk-compat.xml"] = "<volume><name>o-compat</name><capacity>1048576</capacity><target><format type='vmdk'/><compat>1.1</compat></target></volume>"
	files["qed-features.xml"] = "<volume><name>o-features</name><capacity>1048576</capacity><target><format type='qed'/><features/></target></volume>"
	cases = append(cases,
		diffCase{name: "vmdk with prealloc-metadata", args: args("vol-create-as", "e2ef", "o-prealloc", "1M", "--format", "vmdk", "--prealloc-metadata")},
		diffCase{name: "vmdk with compat", args: args("vol-create", "e2ef", "{B}/vmdk-compat.xml")},
		diffCase{name: "qed with features", args: args("vol-create", "e2ef", "{B}/qed-features.xml")},
	)
	cases = append(cases, diffCase{name: "vol-list after a refresh", setup: [][]string{{"pool-refresh", "e2ef"}},
		args: args("vol-list", "e2ef", "--details")})

	for _, s := range []diffSide{ref, ours} {
		for _, step := range [][]string{
			{"pool-create-as", "e2ef", "dir", "--target", "{B}/pf", "--build"},
			{"vol-create-as", "e2ef", "src.raw", "1M"},
		} {
			if out, errOut, code := s.run(t, files, step); code != 0 {
				t.Fatalf("%v on %s: rc=%d %s %s", step, s.tg.URI(), code, out, errOut)
			}
		}
		t.Cleanup(func() { s.run(t, nil, []string{"pool-destroy", "e2ef"}) })
	}
	runDiffCases(t, cases, ref, ours)
}
