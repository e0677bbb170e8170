package scsi_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/adapters/scsi"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// devices makes a fake /dev: a regular file of size bytes per name, and a
// disk/by-path directory with a link to each of links.
func devices(t *testing.T, sizes map[string]int64, links map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, size := range sizes {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(size); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	byPath := filepath.Join(dir, "disk", "by-path")
	if err := os.MkdirAll(byPath, 0o755); err != nil {
		t.Fatal(err)
	}
	for link, dev := range links {
		if err := os.Symlink(filepath.Join("..", "..", dev), filepath.Join(byPath, link)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

var host7 = testkit.FakeSCSIHost{Host: 7, PCI: "0000:00:1f.2", UniqueID: 1, LUNs: []testkit.FakeLUN{
	{Bus: 0, Target: 0, Unit: 2, Type: 0, Block: "sdc", OldStyle: true},
	{Bus: 0, Target: 0, Unit: 1, Type: 0, Block: "sdb"},
	{Bus: 0, Target: 0, Unit: 3, Type: 1, Block: "st0"}, // a tape: not a volume
	{Bus: 0, Target: 1, Unit: 0, Type: 5, Block: "sr0"},
	{Bus: 0, Target: 2, Unit: 0, Type: 0}, // no block device (yet)
}}

func pool(target string, a domain.SourceAdapter) *domain.PoolDef {
	return &domain.PoolDef{Type: domain.PoolSCSI, Name: "sp", Target: domain.PoolTarget{Path: target}, Source: domain.PoolSource{Adapter: &a}}
}

func scanner(f *testkit.FakeRunner, sysfs, dev string) *scsi.LUNScanner {
	s := scsi.NewLUNScanner(f, sysfs, dev, "/lib/udev/scsi_id", nil)
	s.StableWait = 0
	return s
}

func settle() testkit.FakeCall { return testkit.FakeCall{Argv: scsi.SettleArgv()} }

func serial(path, answer string, exit int) testkit.FakeCall {
	return testkit.FakeCall{Argv: scsi.SerialArgv("/lib/udev/scsi_id", path), Stdout: answer, Exit: exit}
}

func wantErr(t *testing.T, err error, kind domain.Kind, text string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %q", text)
	}
	if domain.KindOf(err) != kind {
		t.Errorf("kind = %v, want %v (%v)", domain.KindOf(err), kind, err)
	}
	if err.Error() != text {
		t.Errorf("err = %q\nwant  %q", err, text)
	}
}

func TestScanDevDir(t *testing.T) {
	t.Parallel()
	sysfs := t.TempDir()
	testkit.AddFakeSCSIHost(t, sysfs, host7)
	testkit.AddFakeSCSIHost(t, sysfs, testkit.FakeSCSIHost{Host: 8, PCI: "0000:00:1f.3", LUNs: []testkit.FakeLUN{{Block: "sdz"}}})
	dev := devices(t, map[string]int64{"sdb": 1 << 20, "sdc": 2 << 20, "sr0": 3 << 20}, nil)
	f := testkit.NewFakeRunner(t, settle(),
		serial(dev+"/sdb", "36001405abcdef\n", 0),
		serial(dev+"/sdc", "", 1), // no serial: the path is the key
		serial(dev+"/sr0", "", 0),
	)
	stats, vols, err := scanner(f, sysfs, dev).Scan(context.Background(), pool(dev, domain.SourceAdapter{Type: domain.AdapterSCSIHost, Name: "host7"}), 7)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range vols {
		got = append(got, v.Name+" "+v.Target.Path+" "+v.Key)
		if v.Capacity != v.Allocation || v.Type != domain.VolBlock || v.Target.Perms.Mode != 0o644 {
			t.Errorf("volume %+v", v)
		}
	}
	want := []string{
		"unit:0:0:1 " + dev + "/sdb 36001405abcdef",
		"unit:0:0:2 " + dev + "/sdc " + dev + "/sdc",
		"unit:0:1:0 " + dev + "/sr0 " + dev + "/sr0",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("volumes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if stats != (domain.PoolStats{Capacity: 6 << 20, Allocation: 6 << 20}) {
		t.Errorf("stats = %+v", stats)
	}
}

func TestScanStableLinks(t *testing.T) {
	t.Parallel()
	sysfs := t.TempDir()
	testkit.AddFakeSCSIHost(t, sysfs, host7)
	dev := devices(t, map[string]int64{"sdb": 1 << 20, "sdc": 2 << 20, "sr0": 3 << 20},
		map[string]string{"pci-0000:00:1f.2-scsi-0:0:0:1": "sdb", "pci-0000:00:1f.2-scsi-0:0:1:0": "sr0"})
	target := filepath.Join(dev, "disk", "by-path")
	f := testkit.NewFakeRunner(t, settle(),
		serial(target+"/pci-0000:00:1f.2-scsi-0:0:0:1", "s1\n", 0),
		serial(target+"/pci-0000:00:1f.2-scsi-0:0:1:0", "s2\n", 0),
	)
	_, vols, err := scanner(f, sysfs, dev).Scan(context.Background(), pool(target, domain.SourceAdapter{Name: "host7"}), 7)
	if err != nil {
		t.Fatal(err)
	}
	// sdc has no link: it is left out, as libvirt leaves out a LUN without
	// a stable path.
	if len(vols) != 2 || vols[0].Target.Path != target+"/pci-0000:00:1f.2-scsi-0:0:0:1" || vols[1].Name != "unit:0:1:0" {
		t.Errorf("volumes %+v %+v", vols[0], vols[1])
	}
}

func TestScanErrors(t *testing.T) {
	t.Parallel()
	sysfs := t.TempDir()
	testkit.AddFakeSCSIHost(t, sysfs, host7)
	dev := devices(t, map[string]int64{"sdb": 1 << 20}, nil)
	f := testkit.NewFakeRunner(t, settle())
	_, _, err := scanner(f, sysfs, dev).Scan(context.Background(), pool("/srv/luns", domain.SourceAdapter{Name: "host7"}), 7)
	wantErr(t, err, domain.KindInvalidArg, "invalid argument: unable to use target path '/srv/luns' for dev 'sdb'")

	if err := os.Remove(filepath.Join(sysfs, "bus", "scsi", "devices", "7:0:0:1", "type")); err != nil {
		t.Fatal(err)
	}
	f = testkit.NewFakeRunner(t, settle())
	_, _, err = scanner(f, sysfs, dev).Scan(context.Background(), pool(dev, domain.SourceAdapter{Name: "host7"}), 7)
	wantErr(t, err, domain.KindInternal, "internal error: Failed to determine if 7:0:0:1 is a Direct-Access LUN")
}

func TestParseLUN(t *testing.T) {
	t.Parallel()
	if l, ok := scsi.ParseLUN("7:0:12:3"); !ok || l != (scsi.LUN{Host: 7, Target: 12, Unit: 3}) || l.Name() != "unit:0:12:3" {
		t.Errorf("ParseLUN = %+v, %v", l, ok)
	}
	for _, bad := range []string{"host7", "7:0:0", "7:0:0:x", "7:0:0:1:2", "-1:0:0:0", "target7:0:0"} {
		if _, ok := scsi.ParseLUN(bad); ok {
			t.Errorf("ParseLUN(%q) accepted", bad)
		}
	}
}

func TestHostNumber(t *testing.T) {
	t.Parallel()
	for give, want := range map[string]string{
		"host5": "5", "scsi_host5": "5", "fc_host3": "3",
		"sda":   "internal error: Invalid adapter name 'sda' for SCSI pool",
		"hostX": "internal error: Invalid adapter name 'X' for SCSI pool",
	} {
		n, err := scsi.HostNumber(give)
		got := fmt.Sprint(n)
		if err != nil {
			got = err.Error()
		}
		if got != want {
			t.Errorf("HostNumber(%q) = %q, want %q", give, got, want)
		}
	}
}

func TestRefreshPool(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sysfs := t.TempDir()
	testkit.AddFakeSCSIHost(t, sysfs, host7)
	dev := devices(t, map[string]int64{"sdb": 1 << 20, "sdc": 2 << 20, "sr0": 3 << 20}, nil)
	t.Run("by name: rescan, then the LUNs", func(t *testing.T) {
		f := testkit.NewFakeRunner(t, settle(), serial(dev+"/sdb", "", 1), serial(dev+"/sdc", "", 1), serial(dev+"/sr0", "", 1))
		_, vols, err := scsi.New(scanner(f, sysfs, dev)).RefreshPool(ctx, pool(dev, domain.SourceAdapter{Type: domain.AdapterSCSIHost, Name: "scsi_host7"}))
		if err != nil {
			t.Fatal(err)
		}
		if len(vols) != 3 {
			t.Errorf("%d volumes", len(vols))
		}
		scan, _ := os.ReadFile(filepath.Join(sysfs, "class", "scsi_host", "host7", "scan"))
		if string(scan) != "- - -\x00" {
			t.Errorf("scan file got %q, want libvirt's \"- - -\" with its NUL", scan)
		}
	})
	t.Run("by parent address and unique_id", func(t *testing.T) {
		f := testkit.NewFakeRunner(t, settle(), serial(dev+"/sdb", "", 1), serial(dev+"/sdc", "", 1), serial(dev+"/sr0", "", 1))
		a := domain.SourceAdapter{Type: domain.AdapterSCSIHost, ParentAddr: &domain.PCIAddress{Bus: 0, Slot: 0x1f, Function: 2}, UniqueID: 1}
		if _, _, err := scsi.New(scanner(f, sysfs, dev)).RefreshPool(ctx, pool(dev, a)); err != nil {
			t.Fatal(err)
		}
	})
	tests := []struct {
		name     string
		give     domain.SourceAdapter
		wantKind domain.Kind
		wantErr  string
	}{
		{"a host that is not there", domain.SourceAdapter{Type: domain.AdapterSCSIHost, Name: "host9"}, domain.KindSystem,
			"Could not open '" + sysfs + "/class/scsi_host/host9/scan' to trigger host scan: No such file or directory"},
		{"another unique_id", domain.SourceAdapter{Type: domain.AdapterSCSIHost, ParentAddr: &domain.PCIAddress{Slot: 0x1f, Function: 2}, UniqueID: 2}, domain.KindXMLError,
			"XML error: Failed to find scsi_host using PCI '0000:00:1f.2' and unique_id='2'"},
		{"an fc_host without its vHBA", domain.SourceAdapter{Type: domain.AdapterFCHost, WWNN: "20000000c9831b4b", WWPN: "10000000c9831b4b"}, domain.KindXMLError,
			"XML error: Failed to find SCSI host with wwnn='20000000c9831b4b', wwpn='10000000c9831b4b'"},
		{"a bad name", domain.SourceAdapter{Type: domain.AdapterSCSIHost, Name: "sda"}, domain.KindInternal,
			"internal error: Invalid adapter name 'sda' for SCSI pool"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := scsi.New(scanner(testkit.NewFakeRunner(t), sysfs, dev)).RefreshPool(ctx, pool(dev, tt.give))
			wantErr(t, err, tt.wantKind, tt.wantErr)
		})
	}
}

func TestCheckPool(t *testing.T) {
	t.Parallel()
	sysfs := t.TempDir()
	testkit.AddFakeSCSIHost(t, sysfs, host7)
	b := scsi.New(scanner(testkit.NewFakeRunner(t), sysfs, t.TempDir()))
	for _, tt := range []struct {
		give domain.SourceAdapter
		want bool
	}{
		{domain.SourceAdapter{Type: domain.AdapterSCSIHost, Name: "host7"}, true},
		{domain.SourceAdapter{Type: domain.AdapterSCSIHost, Name: "host8"}, false},
		{domain.SourceAdapter{Type: domain.AdapterFCHost, WWNN: "20000000c9831b4b", WWPN: "10000000c9831b4b"}, false},
	} {
		got, err := b.CheckPool(context.Background(), pool("/dev", tt.give))
		if err != nil || got != tt.want {
			t.Errorf("CheckPool(%+v) = %v, %v; want %v", tt.give, got, err, tt.want)
		}
	}
}

// TestStartFCHost covers libvirt's errors for a vHBA on a host without NPIV
// HBAs (all of them seen on libvirtd 9.0 here), and the parts of its
// lookup a fake sysfs can show.
func TestStartFCHost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fc := func(a domain.SourceAdapter) *domain.PoolDef {
		a.Type, a.WWNN, a.WWPN = domain.AdapterFCHost, "20000000c9831b4b", "10000000c9831b4b"
		return pool("/dev/disk/by-path", a)
	}
	bare := scsi.New(scanner(testkit.NewFakeRunner(t), t.TempDir(), t.TempDir()))
	tests := []struct {
		name    string
		give    domain.SourceAdapter
		wantErr string
	}{
		{"parent missing", domain.SourceAdapter{Parent: "scsi_host5"}, "XML error: parent 'scsi_host5' specified for vHBA does not exist"},
		{"no parent, no vport host", domain.SourceAdapter{}, "XML error: 'parent' for vHBA not specified, and cannot find one on this host"},
		{"parent wwns unknown", domain.SourceAdapter{ParentWWNN: "20000000c9831b4c", ParentWWPN: "10000000c9831b4c"}, "XML error: cannot find parent using provided wwnn/wwpn"},
		{"fabric unknown", domain.SourceAdapter{ParentFabricWWN: "20000000c9831b4d"}, "XML error: cannot find parent using provided fabric_wwn"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, bare.StartPool(ctx, fc(tt.give)), domain.KindXMLError, tt.wantErr)
		})
	}
	// A vHBA that exists serves; a vport-capable parent would need the node
	// device driver.
	sysfs := t.TempDir()
	testkit.AddFakeSCSIHost(t, sysfs, testkit.FakeSCSIHost{Host: 5, PCI: "0000:05:00.0"})
	for file, content := range map[string]string{
		"host5/vport_create": "", "host6/node_name": "0x20000000c9831b4b\n", "host6/port_name": "0x10000000c9831b4b\n",
	} {
		p := filepath.Join(sysfs, "class", "fc_host", file)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b := scsi.New(scanner(testkit.NewFakeRunner(t), sysfs, t.TempDir()))
	if err := b.StartPool(ctx, fc(domain.SourceAdapter{})); err != nil {
		t.Errorf("an existing vHBA: %v", err)
	}
	other := fc(domain.SourceAdapter{Parent: "scsi_host5"})
	other.Source.Adapter.WWPN = "10000000c9831b4c"
	err := b.StartPool(ctx, other)
	if domain.KindOf(err) != domain.KindNoSupport || !strings.Contains(err.Error(), "virsh nodedev-create") {
		t.Errorf("a vHBA to create: %v", err)
	}
}

func TestUnsupported(t *testing.T) {
	t.Parallel()
	b := scsi.New(scanner(testkit.NewFakeRunner(t), t.TempDir(), t.TempDir()))
	ctx := context.Background()
	p := pool("/dev", domain.SourceAdapter{Name: "host1"})
	wantErr(t, b.PrepareVol(p, &domain.VolDef{}), domain.KindNoSupport, "this function is not supported by the connection driver: storage pool does not support volume creation")
	wantErr(t, b.DeleteVol(ctx, p, &domain.VolDef{}, 0), domain.KindNoSupport, "this function is not supported by the connection driver: storage pool does not support vol deletion")
	wantErr(t, b.DeletePool(ctx, p, 0), domain.KindNoSupport, "this function is not supported by the connection driver: pool does not support pool deletion")
	_, err := b.FindPoolSources(ctx, &domain.PoolSource{}, 0)
	wantErr(t, err, domain.KindNoSupport, "this function is not supported by the connection driver: pool type 'scsi' does not support source discovery")
}

// TestRefreshVolGone: a LUN keeps its figures while its node exists and is
// no volume once the node is gone (found by the conformance suite in the
// lab: a LUN deleted from the kernel was still described).
func TestRefreshVolGone(t *testing.T) {
	dev := devices(t, map[string]int64{"sdb": 4096}, nil)
	b := scsi.New(scsi.NewLUNScanner(nil, t.TempDir(), dev, "", nil))
	vol := &domain.VolDef{Name: "unit:0:0:1", Capacity: 4096, Target: domain.VolTarget{Path: filepath.Join(dev, "sdb")}}
	if err := b.RefreshVol(context.Background(), nil, vol); err != nil || vol.Capacity != 4096 {
		t.Fatalf("RefreshVol of a LUN that is there = %v, capacity %d", err, vol.Capacity)
	}
	if err := os.Remove(vol.Target.Path); err != nil {
		t.Fatal(err)
	}
	err := b.RefreshVol(context.Background(), nil, vol)
	if domain.KindOf(err) != domain.KindNoStorageVol || !strings.Contains(err.Error(), "no storage vol with matching name 'unit:0:0:1'") {
		t.Errorf("RefreshVol of a LUN whose node is gone = %v", err)
	}
}

// FuzzParseLUN: names come from a sysfs directory listing; whatever is
// accepted prints back as the same four numbers.
func FuzzParseLUN(f *testing.F) {
	for _, s := range []string{"7:0:12:3", "0:0:0:0", "1:2:3", "a:b:c:d", "4294967296:0:0:0", "1:0:0:0:0", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		l, ok := scsi.ParseLUN(name)
		if !ok {
			return
		}
		again, ok := scsi.ParseLUN(l.String())
		if !ok || again != l {
			t.Fatalf("ParseLUN(%q) = %+v, whose String %q parses to %+v, %v", name, l, l.String(), again, ok)
		}
		if !strings.HasPrefix(l.Name(), "unit:") {
			t.Fatalf("Name() = %q", l.Name())
		}
	})
}

// FuzzHostNumber: adapter names come from pool XML; an accepted one
// is a known prefix and a number that hostN gives back.
func FuzzHostNumber(f *testing.F) {
	for _, s := range []string{"host0", "scsi_host12", "fc_host3", "host", "hostx", "host-1", "host4294967296", "sda"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		n, err := scsi.HostNumber(name)
		if err != nil {
			if !strings.Contains(err.Error(), "Invalid adapter name") {
				t.Fatalf("HostNumber(%q): %v", name, err)
			}
			return
		}
		if m, err := scsi.HostNumber(fmt.Sprintf("host%d", n)); err != nil || m != n {
			t.Fatalf("HostNumber(%q) = %d, but host%d gives %d, %v", name, n, n, m, err)
		}
	})
}
