package disk_test

import (
	"strings"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/adapters/disk"
	"github.com/virtstoraged-go/virtstoraged/domain"
)

const mib = 1 << 20

// The geometry libparted gave the 200 MiB loop devices of the captures.
var loopGeometry = disk.Geometry{Cylinders: 803, Heads: 255, Sectors: 2}

// TestPlanPartitionLikeLibvirt replays the partitions libvirt 9.0 made on a
// 200 MiB loop device (its debug log, docs/semantics.md §1.2): the same
// tables must give the same mkpart lines.
func TestPlanPartitionLikeLibvirt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		capture   string
		format    string
		volFormat string
		capacity  uint64
		want      disk.Plan
	}{
		{"dos first", "msdos-empty", "dos", "none", 10 * mib, disk.Plan{PartType: "primary ext2", Start: 1024, End: 10705919}},
		// A logical partition starts a sector into its free extent, and its
		// end gives back the start's offset into its cylinder (1536 bytes).
		{"dos logical", "msdos-mixed", "dos", "linux-swap", 20 * mib, disk.Plan{PartType: "logical linux-swap", Start: 42564096, End: 63713279}},
		{"gpt", "gpt", "gpt", "none", 10 * mib, disk.Plan{PartType: "primary", Start: 20988928, End: 31474687}},
		{"mac", "mac", "mac", "none", 10 * mib, disk.Plan{PartType: "primary", Start: 32768, End: 10518527}},
		{"dvh skips the volume header", "dvh", "dvh", "none", 10 * mib, disk.Plan{PartType: "primary", Start: 12582912, End: 23068671}},
		// Beyond libvirt: bsd takes a file system type, not "primary".
		{"bsd", "bsd", "bsd", "none", 10 * mib, disk.Plan{PartType: "ext2", Start: 10486272, End: 20972031}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := disk.PlanPartition(tt.format, loopGeometry, layout(t, tt.capture), tt.volFormat, tt.capacity)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("plan = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestPlanPartitionDosSequence builds up the msdos table of libvirt's run
// one partition at a time, with each plan's partition added to the table as
// parted would, and checks every mkpart line libvirt ran.
func TestPlanPartitionDosSequence(t *testing.T) {
	t.Parallel()
	regions := layout(t, "msdos-empty")
	steps := []struct {
		volFormat string
		capacity  uint64
		want      disk.Plan
		wantErr   string
	}{
		{"none", 10 * mib, disk.Plan{PartType: "primary ext2", Start: 1024, End: 10705919}, ""},
		{"linux-swap", 20 * mib, disk.Plan{PartType: "primary linux-swap", Start: 10705920, End: 31856639}, ""},
		{"extended", 20 * mib, disk.Plan{PartType: "extended", Start: 31856640, End: 53007359}, ""},
		{"extended", 30 * mib, disk.Plan{}, "extended partition already exists"},
		{"none", 30 * mib, disk.Plan{PartType: "primary ext2", Start: 53007360, End: 84602879}, ""},
		// Four primary and extended partitions: the next goes into the
		// extended one, whose 20 MiB hold no 30 MiB partition.
		{"none", 30 * mib, disk.Plan{}, "no large enough free extent"},
		{"none", 10 * mib, disk.Plan{PartType: "logical ext2", Start: 31858176, End: 42562559}, ""},
	}
	for i, s := range steps {
		got, err := disk.PlanPartition("dos", loopGeometry, regions, s.volFormat, s.capacity)
		if s.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), s.wantErr) || domain.KindOf(err) != domain.KindInternal {
				t.Fatalf("step %d: err = %v, want internal error %q", i, err, s.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got != s.want {
			t.Fatalf("step %d: plan = %+v, want %+v", i, got, s.want)
		}
		regions = addPartition(regions, got, s.volFormat)
	}
}

// addPartition cuts a planned partition out of the free region holding it,
// as parted does (logical partitions keep a header sector before them).
func addPartition(regions []disk.Region, p disk.Plan, volFormat string) []disk.Region {
	num := 0
	for _, r := range regions {
		if !r.Free && r.Num > num && r.Num < 5 {
			num = r.Num
		}
	}
	var out []disk.Region
	for _, r := range regions {
		if !r.Free || p.Start < r.Start || p.End >= r.End {
			out = append(out, r)
			continue
		}
		part := disk.Region{Row: disk.Row{Num: num + 1, Start: p.Start, End: p.End + 1}, Kind: r.Kind}
		if r.Kind == disk.KindLogical {
			part.Num = 5
		}
		if volFormat == "extended" {
			part.Kind = disk.KindExtended
			out = append(out, part, disk.Region{Row: disk.Row{Free: true, Start: p.Start + 1024, End: p.End + 1}, Kind: disk.KindLogical})
		} else {
			out = append(out, part)
		}
		if p.End+1 < r.End {
			out = append(out, disk.Region{Row: disk.Row{Free: true, Start: p.End + 1, End: r.End}, Kind: r.Kind})
		}
	}
	return out
}

func TestPlanPartitionErrors(t *testing.T) {
	t.Parallel()
	// Four primary partitions and no extended one.
	var full []disk.Region
	for i := 1; i <= 4; i++ {
		full = append(full, disk.Region{Row: disk.Row{Num: i, Start: uint64(i) * mib, End: uint64(i+1) * mib}})
	}
	full = append(full, disk.Region{Row: disk.Row{Free: true, Start: 5 * mib, End: 100 * mib}})
	if _, err := disk.PlanPartition("dos", loopGeometry, full, "none", mib); err == nil || !strings.HasSuffix(err.Error(), "no extended partition found and no primary partition available") {
		t.Errorf("err = %v", err)
	}
	if _, err := disk.PlanPartition("dos", disk.Geometry{}, layout(t, "msdos-empty"), "none", mib); err == nil {
		t.Error("planned a dos partition without a geometry")
	}
	// pc98 is aligned like dos (beyond libvirt, whose unaligned end parted refuses).
	pc98 := []disk.Region{{Row: disk.Row{Free: true, Start: 261120, End: 209715200}}}
	p, err := disk.PlanPartition("pc98", loopGeometry, pc98, "none", 10*mib)
	if err != nil {
		t.Fatal(err)
	}
	if cyl := loopGeometry.CylinderBytes(); p.Start%cyl != 0 || (p.End+1)%cyl != 0 || p.PartType != "primary" {
		t.Errorf("pc98 plan %+v is not on cylinder boundaries", p)
	}
}
