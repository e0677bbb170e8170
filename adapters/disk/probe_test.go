package disk_test

import (
	"testing"

	"github.com/virtstoraged-go/virtstoraged/adapters/disk"
	"github.com/virtstoraged-go/virtstoraged/adapters/lib/blockdev"
)

func TestBlkidVerdict(t *testing.T) {
	t.Parallel()
	ext4, err := blockdev.ParseBlkid(readTestdata(t, "blkid-ext4.txt"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		give   blockdev.Probe
		format string
		want   disk.Verdict
	}{
		{"blank", blockdev.Probe{}, "dos", disk.Empty},
		{"same label", blockdev.Probe{PTType: "dos"}, "dos", disk.Match},
		{"gpt on a dos pool", blockdev.Probe{PTType: "gpt"}, "dos", disk.Different},
		{"a file system", ext4, "gpt", disk.Different},
		{"the default format unknown is never a label", blockdev.Probe{PTType: "dos"}, "unknown", disk.Different},
		{"dvh reads as sgi", blockdev.Probe{PTType: "sgi"}, "dvh", disk.AskParted},
		{"pc98 reads as dos", blockdev.Probe{PTType: "dos"}, "pc98", disk.AskParted},
		{"bsd is not seen", blockdev.Probe{}, "bsd", disk.AskParted},
		{"a file system before parted", ext4, "pc98", disk.Different},
	}
	for _, tt := range tests {
		if got := disk.BlkidVerdict(tt.give, tt.format); got != tt.want {
			t.Errorf("%s: verdict %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestPartedVerdict(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		failed      bool
		out, errOut string
		format      string
		want        disk.Verdict
		wantWhy     string
	}{
		{"no label", true, string(readTestdata(t, "parted-print-unlabeled.stdout")), string(readTestdata(t, "parted-print-unlabeled.stderr")), "pc98", disk.Empty, ""},
		{"pc98", false, string(readTestdata(t, "parted-print-pc98.stdout")), "", "pc98", disk.Match, ""},
		{"gpt on a pc98 pool", false, string(readTestdata(t, "parted-print-gpt.stdout")), "", "pc98", disk.Different, ""},
		{"a whole-disk file system (parted's loop label)", false, string(readTestdata(t, "parted-print-ext4.stdout")), "", "bsd", disk.Unreadable, "Unknown Partition Type, requires build --overwrite"},
		{"no label line", false, "Model: x\n", "", "dvh", disk.Unreadable, "Unable to determine Partition Type, requires build --overwrite"},
		{"parted fails otherwise", true, "", "Error: Could not stat device /dev/x", "dvh", disk.Unreadable, "Error checking for disk label, failed to get disk partition information"},
	}
	for _, tt := range tests {
		got, why := disk.PartedVerdict(tt.failed, tt.out, tt.errOut, tt.format)
		if got != tt.want || why != tt.wantWhy {
			t.Errorf("%s: verdict %v %q, want %v %q", tt.name, got, why, tt.want, tt.wantWhy)
		}
	}
}
