package disk_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/adapters/disk"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func layout(t testing.TB, capture string) []disk.Region {
	t.Helper()
	l, err := disk.ParseLayout(readTestdata(t, "parted-"+capture+".txt"))
	if err != nil {
		t.Fatalf("%s: %v", capture, err)
	}
	return disk.Classify(l)
}

// helperRow is one 6-tuple of libvirt_parthelper's output.
type helperRow struct {
	path, kind, content string
	start, end          uint64
}

func (r helperRow) String() string {
	return fmt.Sprintf("%s %s %s %d %d", r.path, r.kind, r.content, r.start, r.end)
}

// TestClassifyMatchesParthelper compares our reading of parted's listing
// with libvirt_parthelper's on the same disks: every capture pair in
// testdata was taken from one loop device, parted's with ListArgv and the
// helper's from libvirt 9.0's /usr/lib/libvirt/libvirt_parthelper. The rows
// libvirt ignores (normal and logical metadata) are left out of the
// comparison; everything else must agree to the byte: paths, kinds, free
// regions and their bounds.
func TestClassifyMatchesParthelper(t *testing.T) {
	t.Parallel()
	for _, capture := range []string{"msdos-empty", "msdos-mixed", "msdos-empty-extended", "gpt", "mac", "dvh", "sun", "bsd"} {
		t.Run(capture, func(t *testing.T) {
			var want []string
			sc := bufio.NewScanner(bytes.NewReader(readTestdata(t, "parthelper-"+capture+".txt")))
			for sc.Scan() {
				f := strings.Split(sc.Text(), "\t")
				if len(f) != 6 {
					t.Fatalf("malformed helper row %q", sc.Text())
				}
				if f[2] == "metadata" && f[1] != "extended" {
					continue
				}
				start, _ := strconv.ParseUint(f[3], 10, 64)
				end, _ := strconv.ParseUint(f[4], 10, 64)
				want = append(want, helperRow{f[0], f[1], f[2], start, end}.String())
			}
			var got []string
			for _, r := range layout(t, capture) {
				row := helperRow{path: "-", kind: r.Kind.String(), content: "data", start: r.Start, end: r.End}
				switch {
				case r.Free:
					row.content = "free"
				case r.Kind == disk.KindExtended:
					row.content = "metadata"
				}
				if !r.Free {
					row.path = disk.PartitionPath("/dev/loop0", false, false, r.Num)
				}
				got = append(got, row.String())
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("rows differ from libvirt_parthelper's\n got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

func TestParseLayoutFields(t *testing.T) {
	t.Parallel()
	l, err := disk.ParseLayout(readTestdata(t, "parted-mac.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if l.Path != "/dev/loop0" || l.Sectors != 409600 || l.SectorSize != 512 || l.Label != "mac" {
		t.Errorf("disk line read as %+v", l)
	}
	if len(l.Rows) != 2 || l.Rows[0].Name != "Apple" || l.Rows[0].Num != 1 || !l.Rows[1].Free {
		t.Errorf("rows read as %+v", l.Rows)
	}
	// parted escapes ':' and '\' in names and models.
	out := "BYT;\n/dev/sdb:100s:scsi:4096:4096:gpt:ACME\\: disk:;\n1:34s:99s:66s:ext4:a\\:b\\\\c:boot, esp;\n"
	l, err = disk.ParseLayout([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if l.SectorSize != 4096 || l.Rows[0].Name != `a:b\c` || l.Rows[0].Flags != "boot, esp" || l.Rows[0].Start != 34*4096 || l.Rows[0].End != 100*4096 {
		t.Errorf("escaped line read as %+v %+v", l, l.Rows)
	}
}

func TestParseLayoutRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, give, wantErr string
	}{
		{"empty", "", "no disk line"},
		{"other unit", "CHS;\n", `want "BYT;"`},
		{"no disk line", "BYT;\n", "no disk line"},
		{"unterminated", "BYT;\n/dev/sdb:100s:scsi:512:512:gpt:m:\n", "does not end with ';'"},
		{"short disk line", "BYT;\n/dev/sdb:100s;\n", "want at least 6"},
		{"bytes not sectors", "BYT;\n/dev/sdb:100B:scsi:512:512:gpt:m:;\n", "not in sectors"},
		{"odd sector size", "BYT;\n/dev/sdb:100s:scsi:520:520:gpt:m:;\n", "power of two"},
		{"huge disk", "BYT;\n/dev/sdb:18446744073709551615s:scsi:512:512:gpt:m:;\n", "overflows"},
		{"end before start", "BYT;\n/dev/sdb:100s:scsi:512:512:gpt:m:;\n1:50s:40s:1s:::;\n", "bad extent"},
		{"bad number", "BYT;\n/dev/sdb:100s:scsi:512:512:gpt:m:;\nx:1s:40s:40s:::;\n", "bad partition number"},
		{"short row", "BYT;\n/dev/sdb:100s:scsi:512:512:gpt:m:;\n1:1s:40s;\n", "want at least 5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := disk.ParseLayout([]byte(tt.give))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// TestSummarize checks the pool figures libvirt derives from a table: an
// msdos disk with two primary partitions, an extended one holding a logical
// partition, and a fourth primary (parted-msdos-mixed.txt).
func TestSummarize(t *testing.T) {
	t.Parallel()
	names := func(num int) (string, string) {
		p := disk.PartitionPath("/dev/loop0", false, false, num)
		return p, p
	}
	extentSize := func(string) (uint64, bool) { return 0, false }
	stats, vols, free := disk.Summarize(layout(t, "msdos-mixed"), "/dev/loop0", names, extentSize)
	want := domain.PoolStats{Capacity: 209679360, Allocation: 10704896 + 21150720 + 10705920 + 21150720, Available: 42039296 + 103925760}
	if stats != want {
		t.Errorf("stats = %+v, want %+v", stats, want)
	}
	if want := []domain.Extent{{Start: 42563584, End: 84602880}, {Start: 105753600, End: 209679360}}; fmt.Sprint(free) != fmt.Sprint(want) {
		t.Errorf("free extents = %v, want %v", free, want)
	}
	var got []string
	for _, v := range vols {
		got = append(got, fmt.Sprintf("%s %s %d/%d %v", v.Name, v.Key, v.Capacity, v.Allocation, v.Extents))
	}
	wantVols := []string{
		"loop0p1 /dev/loop0p1 10704896/10704896 [{1024 10705920}]",
		"loop0p2 /dev/loop0p2 21150720/21150720 [{10705920 31856640}]",
		"loop0p3 /dev/loop0p3 52746240/10705920 [{31856640 84602880}]", // the extended one: its logical partitions' allocation
		"loop0p5 /dev/loop0p5 10705920/10705920 [{31857664 42563584}]",
		"loop0p4 /dev/loop0p4 21150720/21150720 [{84602880 105753600}]",
	}
	if strings.Join(got, "\n") != strings.Join(wantVols, "\n") {
		t.Errorf("volumes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantVols, "\n"))
	}
	// A free region starting at sector 0 starts at 512 for libvirt (sun).
	_, _, free = disk.Summarize(layout(t, "sun"), "/dev/loop0", names, extentSize)
	if len(free) != 1 || free[0].Start != 512 || free[0].End != 209679360 {
		t.Errorf("sun free extents = %v, want [{512 209679360}]", free)
	}
}

func TestPartitionPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		dev     string
		dm, sep bool
		num     int
		want    string
	}{
		{"/dev/sdb", false, false, 1, "/dev/sdb1"},
		{"/dev/sdb", false, true, 1, "/dev/sdb1"}, // part_separator only counts for device-mapper
		{"/dev/loop0", false, false, 3, "/dev/loop0p3"},
		{"/dev/nvme0n1", false, false, 12, "/dev/nvme0n1p12"},
		{"/dev/mmcblk0", false, false, 1, "/dev/mmcblk0p1"},
		{"/dev/mapper/mpatha", true, false, 1, "/dev/mapper/mpatha1"},
		{"/dev/mapper/mpatha", true, true, 1, "/dev/mapper/mpathap1"},
		{"/dev/mapper/disk0", true, false, 2, "/dev/mapper/disk0p2"},
	}
	for _, tt := range tests {
		if got := disk.PartitionPath(tt.dev, tt.dm, tt.sep, tt.num); got != tt.want {
			t.Errorf("PartitionPath(%s, dm=%v, sep=%v, %d) = %s, want %s", tt.dev, tt.dm, tt.sep, tt.num, got, tt.want)
		}
	}
}

func TestDevMapperMajor(t *testing.T) {
	t.Parallel()
	procDevices := "Character devices:\n  1 mem\n253 device-mapper-char\n\nBlock devices:\n  7 loop\n  8 sd\n252 device-mapper\n259 blkext\n"
	if m, ok := disk.DevMapperMajor([]byte(procDevices)); !ok || m != 252 {
		t.Errorf("DevMapperMajor = %d, %v, want 252", m, ok)
	}
	if _, ok := disk.DevMapperMajor([]byte("Block devices:\n  7 loop\n")); ok {
		t.Error("found device-mapper in a kernel without it")
	}
}

func TestParseGeometry(t *testing.T) {
	t.Parallel()
	g, err := disk.ParseGeometry(readTestdata(t, "parted-chs-msdos.txt"))
	if err != nil {
		t.Fatal(err)
	}
	// libvirt_parthelper -g gave the same figures on the same disk.
	want := strings.Fields(string(readTestdata(t, "parthelper-geometry-msdos.txt")))
	if got := fmt.Sprint(g.Cylinders, g.Heads, g.Sectors); got != strings.Join(want, " ") {
		t.Errorf("geometry = %s, parthelper says %s", got, want)
	}
	if g.CylinderBytes() != 255*2*512 {
		t.Errorf("cylinder = %d bytes", g.CylinderBytes())
	}
	for _, bad := range []string{"", "BYT;\n", "CHS;\n/dev/sdb:1,2,3:x;\n", "CHS;\n/dev/sdb:x;\nA:B:C:D;\n"} {
		if _, err := disk.ParseGeometry([]byte(bad)); err == nil {
			t.Errorf("ParseGeometry(%q) accepted", bad)
		}
	}
}

// Parsing splits lines into at most 16 fields and keeps one Row per line.
// Measured worst: a listing of minimal partition rows ("1:1s:1s:1s:::;"
// repeated), 37 bytes a byte (the Row slice growing); a line of 60,000
// colons, cut at the field limit, costs 4.3, the geometry parser 7.6. The
// bound is twice the worst: anything sized by a number read from the input
// (a sector count, a sector size) trips it.
const (
	layoutAllocPerByte = 80
	layoutAllocSlack   = 80 << 10 // the scanner's 64 KiB line buffer, grown
)

func checkLayoutAlloc(t *testing.T, what string, in []byte, parse func()) {
	t.Helper()
	if n, limit := testkit.AllocatedBytes(parse), layoutAllocPerByte*uint64(len(in))+layoutAllocSlack; n > limit {
		t.Fatalf("%s of %d bytes allocated %d, bound %d", what, len(in), n, limit)
	}
}

func FuzzParseLayout(f *testing.F) {
	for _, c := range []string{"msdos-mixed", "gpt", "mac", "dvh", "sun", "bsd", "unlabeled"} {
		name := "parted-" + c + ".txt"
		if c == "unlabeled" {
			name = "parted-unlabeled.stdout"
		}
		f.Add(readTestdata(f, name))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var l *disk.Layout
		var err error
		checkLayoutAlloc(t, "ParseLayout", b, func() { l, err = disk.ParseLayout(b) })
		if err != nil {
			return
		}
		regions := disk.Classify(l)
		names := func(num int) (string, string) { p := disk.PartitionPath(l.Path, false, false, num); return p, p }
		stats, vols, free := disk.Summarize(regions, l.Path, names, func(string) (uint64, bool) { return 0, false })
		for _, e := range free {
			if e.End <= e.Start || e.End > stats.Capacity {
				t.Fatalf("free extent %v outside the disk (capacity %d)", e, stats.Capacity)
			}
		}
		for _, v := range vols {
			if len(v.Extents) != 1 || v.Extents[0].End > stats.Capacity || v.Extents[0].End <= v.Extents[0].Start {
				t.Fatalf("volume %s extents %v outside the disk (capacity %d)", v.Name, v.Extents, stats.Capacity)
			}
		}
	})
}

func FuzzParseGeometry(f *testing.F) {
	f.Add(readTestdata(f, "parted-chs-msdos.txt"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var g disk.Geometry
		var err error
		checkLayoutAlloc(t, "ParseGeometry", b, func() { g, err = disk.ParseGeometry(b) })
		if err == nil && (g.Heads > 1<<32 || g.Sectors > 1<<32) {
			t.Fatalf("geometry %+v out of range", g)
		}
	})
}
