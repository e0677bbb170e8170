package disk_test

import (
	"flag"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/adapters/disk"
	"github.com/virtstoraged-go/virtstoraged/adapters/lib/blockdev"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

var update = flag.Bool("update", false, "rewrite the golden .argv files in testdata/argv")

// TestArgv compares every command line with its golden file
// testdata/argv/NAME.argv. The mklabel, mkpart and rm lines are libvirt
// 9.0's, as its debug log showed them on a loop device (docs/semantics.md
// §1.2 disk); the listing and geometry lines replace libvirt_parthelper.
// Run with -update to rewrite them after a deliberate change.
func TestArgv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		give []string
	}{
		{"list", disk.ListArgv("/dev/sdb")},
		{"geometry", disk.GeometryArgv("/dev/sdb")},
		{"label", disk.LabelArgv("/dev/sdb")},
		{"blkid", blockdev.BlkidArgv("/dev/sdb")},
		{"mklabel-msdos", disk.MklabelArgv("/dev/sdb", "msdos")},
		{"mklabel-gpt", disk.MklabelArgv("/dev/sdb", "gpt")},
		{"mkpart-primary", disk.MkpartArgv("/dev/loop0", "primary ext2", 1024, 10705919)},
		{"mkpart-swap", disk.MkpartArgv("/dev/loop0", "primary linux-swap", 10705920, 31856639)},
		{"mkpart-extended", disk.MkpartArgv("/dev/loop0", "extended", 31856640, 53007359)},
		{"mkpart-gpt", disk.MkpartArgv("/dev/loop0", "primary", 17408, 10503167)},
		{"rm", disk.RmArgv("/dev/loop0", 3)},
		{"partx-delete", disk.PartxDeleteArgv("/dev/loop0", 3)},
		{"settle", disk.SettleArgv()},
		{"scrub-dod", blockdev.ScrubArgv("/dev/loop0p1", domain.WipeDOD)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testkit.GoldenArgv(t, tt.name, tt.give, *update)
		})
	}
}
