package backende2e_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/adapters/fs"
	"github.com/virtstoraged-go/virtstoraged/adapters/lib/fsmount"
	"github.com/virtstoraged-go/virtstoraged/adapters/logical"
	"github.com/virtstoraged-go/virtstoraged/adapters/mpath"
	"github.com/virtstoraged-go/virtstoraged/adapters/netfs"
	"github.com/virtstoraged-go/virtstoraged/adapters/xmldef"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// The xml2argv tests are libvirt's storagepoolxml2argv and storagevolxml2argv
// for every backend, extended to every command the backend runs: a pool XML
// (and a volume XML) from testdata/xml2argv is parsed by the real codec, one
// backend runs its whole life cycle against a scripted runner, and the command
// lines it ran are compared with testdata/xml2argv/CASE.argv (-update
// rewrites them). They need no root and no tools: the devices and the target
// directories are temporary files standing in for the paths in the XML, and
// the golden files show the XML's paths.

var update = flag.Bool("update", false, "rewrite the golden testdata/xml2argv/*.argv files")

// readPool parses testdata/xml2argv/NAME.pool.xml with the daemon's codec and
// the backend's define-time rules.
func readPool(t *testing.T, b ports.PoolBackend, name string) *domain.PoolDef {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("testdata", "xml2argv", name+".pool.xml"))
	if err != nil {
		t.Fatal(err)
	}
	def, err := xmldef.New().ParsePool(string(doc), 0)
	if err != nil {
		t.Fatalf("%s.pool.xml: %v", name, err)
	}
	if err := b.ValidatePool(def); err != nil {
		t.Fatalf("%s.pool.xml: ValidatePool: %v", name, err)
	}
	return def
}

// readVol parses testdata/xml2argv/NAME.vol.xml for pool, as vol-create does.
func readVol(t *testing.T, b ports.PoolBackend, pool *domain.PoolDef, name string) *domain.VolDef {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("testdata", "xml2argv", name+".vol.xml"))
	if err != nil {
		t.Fatal(err)
	}
	vol, err := xmldef.New().ParseVol(string(doc), pool, 0)
	if err != nil {
		t.Fatalf("%s.vol.xml: %v", name, err)
	}
	if vol.Target.Format == "" {
		vol.Target.Format = b.DefaultVolFormat()
	}
	if err := b.PrepareVol(pool, vol); err != nil {
		t.Fatalf("%s.vol.xml: PrepareVol: %v", name, err)
	}
	return vol
}

// stand records the temporary stand-ins for the XML's paths, so that the
// golden files show the XML's own.
type stand struct{ repl []string }

// file makes a 4 MiB stand-in for a device.
func (s *stand) file(t *testing.T, path string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "dev")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(f, 4<<20); err != nil {
		t.Fatal(err)
	}
	s.repl = append(s.repl, f, path)
	return f
}

// dir makes a stand-in path for a target directory (not created: the build
// creates it).
func (s *stand) dir(t *testing.T, path string) string {
	t.Helper()
	d := filepath.Join(t.TempDir(), "target")
	s.repl = append(s.repl, d, path)
	return d
}

func golden(t *testing.T, name string, argvs [][]string, s *stand) {
	t.Helper()
	testkit.CheckGoldenArgv(t, filepath.Join("xml2argv", name), argvs, *update, s.repl...)
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// createdBy makes a scripted qemu-img create produce its file, as the tool
// would, so that the backend can set its mode afterwards.
func createdBy(cmd ports.Command) error {
	for _, a := range cmd.Args {
		if filepath.IsAbs(a) {
			return os.WriteFile(a, nil, 0o600)
		}
	}
	return fmt.Errorf("qemu-img create without a path: %q", cmd.Args)
}

// TestXML2ArgvFS: build (plain, --no-overwrite on a blank device,
// --overwrite), start, a qcow2 volume, stop, delete.
func TestXML2ArgvFS(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"pool-fs", "pool-fs-auto", "pool-fs-xfs-mountopts", "pool-fs-vfat"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			mt := testkit.NewMountTable(t)
			f := testkit.NewFakeRunner(t)
			b := fs.New(f, mt.Path, testkit.QuietLog())
			b.QemuImgOnly = true
			def := readPool(t, b, name)
			var s stand
			dev := s.file(t, def.Source.Devices[0].Path)
			def.Source.Devices[0].Path = dev
			def.Target.Path = s.dir(t, def.Target.Path)

			must(t, "build", b.BuildPool(ctx, def, 0))
			f.Expect("blkid", testkit.AnyRest).Exit = 2 // nothing found
			f.Expect("mkfs", testkit.AnyRest)
			must(t, "build --no-overwrite", b.BuildPool(ctx, def, domain.PoolBuildNoOverwrite))
			f.Expect("mkfs", testkit.AnyRest)
			must(t, "build --overwrite", b.BuildPool(ctx, def, domain.PoolBuildOverwrite))
			f.Expect("mount", testkit.AnyRest).Do = mt.Mounting(def.Target.Path, fsmount.SourceFormat(def), dev)
			must(t, "start", b.StartPool(ctx, def))
			must(t, "start again (mounted)", b.StartPool(ctx, def))
			vol := readVol(t, b, def, "vol-qcow2")
			f.Expect("qemu-img", testkit.AnyRest).Do = createdBy
			must(t, "vol create", b.BuildVol(ctx, def, vol, 0))
			must(t, "vol delete", b.DeleteVol(ctx, def, vol, 0))
			f.Expect("umount", testkit.AnyRest).Do = mt.Unmounting(def.Target.Path)
			must(t, "stop", b.StopPool(ctx, def))
			must(t, "stop again (unmounted)", b.StopPool(ctx, def))
			must(t, "delete", b.DeletePool(ctx, def, 0))
			golden(t, name, f.RunLog(), &s)
		})
	}
}

// TestXML2ArgvNetFS: start, a qcow2 volume, stop, and source discovery on
// the pool's host.
func TestXML2ArgvNetFS(t *testing.T) {
	t.Parallel()
	showmount, err := os.ReadFile(filepath.Join("..", "..", "adapters", "netfs", "testdata", "showmount.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"pool-netfs", "pool-netfs-auto", "pool-netfs-protocol-ver", "pool-netfs-ns-mountopts", "pool-netfs-slash", "pool-netfs-gluster", "pool-netfs-cifs"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			mt := testkit.NewMountTable(t)
			f := testkit.NewFakeRunner(t)
			b := netfs.New(f, mt.Path, testkit.QuietLog())
			b.QemuImgOnly = true
			def := readPool(t, b, name)
			var s stand
			def.Target.Path = s.dir(t, def.Target.Path)
			if err := os.Mkdir(def.Target.Path, 0o755); err != nil {
				t.Fatal(err)
			}

			f.Expect("mount", testkit.AnyRest).Do = mt.Mounting(def.Target.Path, "nfs4", netfs.MountSource(def))
			must(t, "start", b.StartPool(ctx, def))
			vol := readVol(t, b, def, "vol-qcow2")
			f.Expect("qemu-img", testkit.AnyRest).Do = createdBy
			must(t, "vol create", b.BuildVol(ctx, def, vol, 0))
			must(t, "vol delete", b.DeleteVol(ctx, def, vol, 0))
			f.Expect("umount", testkit.AnyRest).Do = mt.Unmounting(def.Target.Path)
			must(t, "stop", b.StopPool(ctx, def))
			// Both discovery commands run at once, so their order is not
			// fixed: the golden file holds them sorted.
			f.ExactOrder = false
			f.Expect("showmount", testkit.AnyRest).Stdout = string(showmount)
			f.Expect("gluster", testkit.AnyRest).Err = ports.ErrCommandNotFound
			srcs, err := b.FindPoolSources(ctx, &domain.PoolSource{Hosts: def.Source.Hosts}, 0)
			if err != nil || len(srcs) != 4 {
				t.Fatalf("find sources: %v, %v; want the 4 exports of showmount.txt", srcs, err)
			}
			log := f.RunLog()
			tail := log[len(log)-2:]
			slices.SortFunc(tail, func(a, b []string) int { return strings.Compare(a[0], b[0]) })
			golden(t, name, log, &s)
		})
	}
}

// lvsRow is one row of logical.LVSArgv's report for an active linear LV.
func lvsRow(name string, size uint64) string {
	return fmt.Sprintf("  %s##UUID-%s#/dev/sdb1(0)#linear#1#%d#4194304#%d#-wi-a-----\n", name, name, size, size)
}

// TestXML2ArgvLogical: build --no-overwrite, start, refresh, each volume's
// create, resize (grow; shrink with the flag) and delete (refused once, so
// that the lvchange retry shows), source discovery, stop, delete.
func TestXML2ArgvLogical(t *testing.T) {
	t.Parallel()
	lvsText := func(name string) string {
		b, err := os.ReadFile(filepath.Join("..", "..", "adapters", "logical", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b) // its VG holds a thin pool named tpool, as the thin pool XML

	}
	tests := []struct {
		name   string
		pool   string
		vol    string
		resize bool
	}{
		{name: "pool-logical", pool: "pool-logical"},
		{name: "pool-logical-noname", pool: "pool-logical-noname"},
		{name: "pool-logical-thin", pool: "pool-logical-thin"},
		{name: "vol-logical", pool: "pool-logical", vol: "vol-logical", resize: true},
		{name: "vol-logical-sparse", pool: "pool-logical", vol: "vol-logical-sparse"},
		{name: "vol-logical-backing", pool: "pool-logical", vol: "vol-logical-backing"},
		{name: "vol-logical-thin", pool: "pool-logical-thin", vol: "vol-logical-thin", resize: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			f := testkit.NewFakeRunner(t)
			b := logical.New(f, testkit.QuietLog())
			def := readPool(t, b, tt.pool)
			src := logical.ParseSource(def)
			var s stand
			for i, d := range def.Source.Devices {
				def.Source.Devices[i].Path = s.file(t, d.Path)
			}
			pvs := ""
			for _, d := range def.Source.Devices {
				pvs += "  " + d.Path + " " + src.VG + "\n"
			}

			if tt.vol == "" {
				for range def.Source.Devices {
					f.Expect("blkid", testkit.AnyRest).Exit = 2 // blank
					f.Expect("pvcreate", testkit.AnyRest)
				}
				f.Expect("vgcreate", testkit.AnyRest)
				if src.ThinPool != "" {
					f.Expect("lvcreate", testkit.AnyRest)
				}
				must(t, "build --no-overwrite", b.BuildPool(ctx, def, domain.PoolBuildNoOverwrite))
			}
			f.Expect("vgscan")
			f.Expect("pvs", testkit.AnyRest).Stdout = pvs
			f.Expect("vgchange", testkit.AnyRest)
			must(t, "start", b.StartPool(ctx, def))
			if src.ThinPool != "" {
				f.Expect("lvs", testkit.AnyRest).Stdout = lvsText("lvs-mixed-thin.txt")
			} else {
				f.Expect("lvs", testkit.AnyRest).Stdout = lvsText("lvs-mixed.txt")
				f.Expect("vgs", testkit.AnyRest).Stdout = "  125829120:67108864\n"
			}
			_, _, err := b.RefreshPool(ctx, def)
			must(t, "refresh", err)

			if tt.vol != "" {
				vol := readVol(t, b, def, tt.vol)
				f.Expect("lvcreate", testkit.AnyRest)
				must(t, "vol create", b.BuildVol(ctx, def, vol, 0))
				if tt.resize {
					f.Expect("lvs", testkit.AnyRest).Stdout = lvsRow(vol.Name, vol.Capacity)
					f.Expect("lvresize", testkit.AnyRest)
					must(t, "vol grow", b.ResizeVol(ctx, def, vol, 2*vol.Capacity, 0))
					f.Expect("lvs", testkit.AnyRest).Stdout = lvsRow(vol.Name, 2*vol.Capacity)
					f.Expect("lvresize", testkit.AnyRest)
					must(t, "vol shrink", b.ResizeVol(ctx, def, vol, vol.Capacity, domain.VolResizeShrink))
				}
				busy := f.Expect("lvremove", testkit.AnyRest)
				busy.Exit, busy.Stderr = 5, "  Logical volume "+src.VG+"/"+vol.Name+" in use.\n"
				f.Expect("lvchange", testkit.AnyRest)
				f.Expect("lvremove", testkit.AnyRest)
				must(t, "vol delete", b.DeleteVol(ctx, def, vol, 0))
			}

			f.Expect("vgscan")
			f.Expect("pvs", testkit.AnyRest).Stdout = pvs
			_, err = b.FindPoolSources(ctx, &domain.PoolSource{}, 0)
			must(t, "find sources", err)
			f.Expect("vgchange", testkit.AnyRest)
			must(t, "stop", b.StopPool(ctx, def))
			if tt.vol == "" {
				if src.ThinPool != "" {
					f.Expect("lvremove", testkit.AnyRest)
				} else {
					f.Expect("vgremove", testkit.AnyRest)
					for range def.Source.Devices {
						f.Expect("pvremove", testkit.AnyRest)
					}
				}
				must(t, "delete", b.DeletePool(ctx, def, 0))
			}
			golden(t, tt.name, f.RunLog(), &s)
		})
	}
}

// TestXML2ArgvMpath: an mpath pool runs no command at all; device-mapper
// maps come from sysfs.
func TestXML2ArgvMpath(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := testkit.NewFakeRunner(t)
	sysfs := testkit.NewFakeSysfs(t, testkit.FakeDM{Minor: 3, Name: "mpatha", UUID: "mpath-3600", Sectors: 2048})
	b := mpath.New(f, sysfs, testkit.QuietLog())
	def := readPool(t, b, "pool-mpath")
	must(t, "build", b.BuildPool(ctx, def, 0))
	must(t, "start", b.StartPool(ctx, def))
	_, vols, err := b.RefreshPool(ctx, def)
	if err != nil || len(vols) != 1 || vols[0].Target.Path != "/dev/mapper/mpatha" {
		t.Fatalf("refresh: %v, %v; want dm-3 at /dev/mapper/mpatha", vols, err)
	}
	must(t, "stop", b.StopPool(ctx, def))
	golden(t, "pool-mpath", f.RunLog(), &stand{})
}
