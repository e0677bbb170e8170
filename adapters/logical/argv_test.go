package logical_test

import (
	"flag"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/adapters/lib/blockdev"
	"github.com/virtstoraged-go/virtstoraged/adapters/logical"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

var update = flag.Bool("update", false, "rewrite the golden .argv files in testdata/argv")

const gib = 1 << 30

func vol(name string, capacity, alloc uint64) *domain.VolDef {
	return &domain.VolDef{Name: name, Capacity: capacity, Allocation: alloc, HasCapacity: true}
}

// TestArgv compares every command line with its golden file
// testdata/argv/NAME.argv (one command, testkit.FormatArgv form). Run with
// -update to rewrite them after a deliberate change.
func TestArgv(t *testing.T) {
	t.Parallel()
	vg := logical.Source{VG: "vg"}
	thin := logical.Source{VG: "vg", ThinPool: "tpool"}
	snap := vol("snap", gib, gib)
	snap.Backing = &domain.BackingStore{Path: "/dev/vg/base"}
	encrypted := func(v *domain.VolDef) *domain.VolDef {
		v.Target.Path = "/dev/vg/" + v.Name
		v.Target.Encryption = domain.VolEncryption{Format: "luks", Secrets: []domain.SecretRef{domain.SecretByUUID(domain.UUID{1})}}
		return v
	}
	tests := []struct {
		name string
		give []string
	}{
		{"lvcreate-plain", logical.LVCreateArgv(vg, vol("v1", gib, gib))},
		{"lvcreate-odd-size", logical.LVCreateArgv(vg, vol("v1", 1000, 1000))},
		{"lvcreate-sparse", logical.LVCreateArgv(vg, vol("v1", gib, 100<<20))},
		{"lvcreate-sparse-zero-alloc", logical.LVCreateArgv(vg, vol("v1", gib, 0))},
		{"lvcreate-snapshot", logical.LVCreateArgv(vg, snap)},
		{"lvcreate-thin", logical.LVCreateArgv(thin, vol("t1", 10*gib, 0))},
		// libvirt's room for the LUKS header: 2 MiB more than the capacity.
		{"lvcreate-luks", logical.LVCreateArgv(vg, encrypted(vol("v1", gib, gib)))},
		{"lvcreate-luks-sparse", logical.LVCreateArgv(vg, encrypted(vol("v1", gib, 100<<20)))},
		{"lvcreate-luks-thin", logical.LVCreateArgv(thin, encrypted(vol("t1", 10*gib, 0)))},
		{"qemu-img-luks", logical.LUKSFormatArgv(encrypted(vol("v1", gib, gib)), "/path/to/secretFile")},
		{"thinpool-create", logical.ThinPoolCreateArgv(thin)},
		{"blkid", blockdev.BlkidArgv("/dev/sdb")},
		{"pvcreate", logical.PVCreateArgv("/dev/sdb")},
		{"pvremove", logical.PVRemoveArgv("/dev/sdb")},
		{"vgcreate-two", logical.VGCreateArgv("vg", []string{"/dev/sdb", "/dev/sdc"})},
		{"vgcreate-none", logical.VGCreateArgv("vg", nil)},
		{"vgremove", logical.VGRemoveArgv("vg")},
		{"vgscan", logical.VGScanArgv()},
		{"vgchange-on", logical.VGChangeArgv("vg", true)},
		{"vgchange-off", logical.VGChangeArgv("vg", false)},
		{"pvs", logical.PVSArgv()},
		{"lvs", logical.LVSArgv(vg)},
		{"lvs-thin", logical.LVSArgv(thin)},
		{"vgs", logical.VGSArgv("vg")},
		{"lvremove", logical.LVRemoveArgv("/dev/vg/v1")},
		{"lvchange-off", logical.LVChangeDeactivateArgv("/dev/vg/v1")},
		{"lvresize-grow", logical.LVResizeArgv("vg", "v1", 2*gib, false)},
		{"lvresize-shrink", logical.LVResizeArgv("vg", "v1", gib/2, true)},
		{"qemu-img-convert", logical.QemuImgConvertArgv("qcow2", "/var/lib/libvirt/images/a.qcow2", "/dev/vg/v1")},
		{"scrub-nnsa", blockdev.ScrubArgv("/dev/vg/v1", domain.WipeNNSA)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testkit.GoldenArgv(t, tt.name, tt.give, *update)
		})
	}
}
