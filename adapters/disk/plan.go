package disk

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/virtstoraged-go/virtstoraged/domain"
)

// sectorSize is libvirt's SECTOR_SIZE: the disk backend counts in 512-byte
// sectors whatever the device's logical sector size.
const sectorSize = 512

// Geometry is a disk's BIOS geometry as libparted reports it.
type Geometry struct {
	Cylinders, Heads, Sectors uint64
}

// CylinderBytes is libvirt's cylinder size: heads × sectors × 512.
func (g Geometry) CylinderBytes() uint64 { return g.Heads * g.Sectors * sectorSize }

// ParseGeometry reads the geometry line of `parted -m DEV unit chs print`:
// "CHS;", the disk line, then "CYLINDERS:HEADS:SECTORS:CYLSIZE;".
func ParseGeometry(out []byte) (Geometry, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	n := 0
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		n++
		switch n {
		case 1:
			if line != "CHS;" {
				return Geometry{}, fmt.Errorf("parted geometry starts with %q, want \"CHS;\"", line)
			}
			continue
		case 2:
			continue // the disk line
		}
		f := strings.SplitN(strings.TrimSuffix(line, ";"), ":", 4)
		if len(f) < 3 {
			return Geometry{}, fmt.Errorf("parted geometry line %q has %d fields, want 4", line, len(f))
		}
		var v [3]uint64
		for i := range v {
			x, err := strconv.ParseUint(f[i], 10, 32)
			if err != nil {
				return Geometry{}, fmt.Errorf("parted geometry line %q: %q is not a number", line, f[i])
			}
			v[i] = x
		}
		return Geometry{Cylinders: v[0], Heads: v[1], Sectors: v[2]}, nil
	}
	if err := sc.Err(); err != nil {
		return Geometry{}, fmt.Errorf("reading parted geometry: %w", err)
	}
	return Geometry{}, fmt.Errorf("parted output has no geometry line")
}

// partedFSTypes maps a disk volume format to the file system type libvirt
// hands parted on msdos labels, which picks the partition's type id.
var partedFSTypes = map[string]string{
	"":           "ext2",
	"none":       "ext2",
	"linux":      "ext2",
	"fat16":      "fat16",
	"fat32":      "fat32",
	"linux-swap": "linux-swap",
	"linux-lvm":  "ext2",
	"linux-raid": "ext2",
	"extended":   "extended",
}

// Plan is where and how a new partition is made.
type Plan struct {
	PartType   string // mkpart's type argument, as in MkpartArgv
	Start, End uint64 // bytes, End inclusive
}

// PlanPartition chooses the partition libvirt would make for a volume of
// capacity bytes and format on a pool of label format (dos, gpt, ...; the
// pool's configured format, unknown already read as dos): its type on dos
// labels (primary while fewer than four primary and extended partitions
// exist, then logical inside the extended one), then the smallest free
// extent that fits, with dos cylinder alignment (libvirt's
// virStorageBackendDiskPartBoundaries).
//
// Two labels differ from libvirt, where libvirt cannot create any partition:
// on pc98 labels, which parted only cuts on cylinder boundaries, the dos
// alignment applies too; on bsd labels, which have neither partition types
// nor names, mkpart gets the file system type instead of libvirt's "primary",
// which parted rejects there.
func PlanPartition(format string, geom Geometry, regions []Region, volFormat string, capacity uint64) (Plan, error) {
	partType, logical, err := partitionType(format, regions, volFormat)
	if err != nil {
		return Plan{}, err
	}
	dos := format == "dos"
	aligned := dos || format == "pc98"
	cyl := geom.CylinderBytes()
	if aligned && cyl == 0 {
		return Plan{}, domain.Errorf(domain.KindInternal, "disk geometry has no cylinder size")
	}
	var extra uint64
	if aligned {
		extra = cyl - capacity%cyl
	}
	best, bestSize, bestNeeded := -1, uint64(0), uint64(0)
	for i, r := range regions {
		if !r.Free {
			continue
		}
		start := freeStart(r.Start)
		size := r.End - start
		needed := capacity
		if aligned {
			needed += extra
			if start%cyl > extra {
				needed += cyl
			}
			if logical {
				if size < sectorSize {
					continue
				}
				size -= sectorSize
			}
		}
		if size <= needed || (bestSize != 0 && size >= bestSize) {
			continue
		}
		if (r.Kind == KindLogical) != logical {
			continue
		}
		best, bestSize, bestNeeded = i, size, needed
	}
	if best < 0 {
		return Plan{}, domain.Errorf(domain.KindInternal, "no large enough free extent")
	}
	start := freeStart(regions[best].Start)
	if logical {
		start += sectorSize
	}
	end := start + bestNeeded
	if aligned {
		end -= start % cyl
	}
	return Plan{PartType: partType, Start: start, End: end - 1}, nil
}

// freeStart is libvirt's reading of a free extent's start: the first block
// is reported as free even when it is not.
func freeStart(start uint64) uint64 {
	if start == 0 {
		return sectorSize
	}
	return start
}

// partitionType is libvirt's virStorageBackendDiskPartFormat: the mkpart
// type argument, and whether the partition goes into a logical free extent
// (on dos, once four primary and extended partitions exist; libvirt decides
// this apart from the type, so an extended partition asked for then is
// looked for there too, and not found).
func partitionType(format string, regions []Region, volFormat string) (string, bool, error) {
	switch format {
	case "dos":
	case "bsd":
		return fsType(volFormat), false, nil
	default:
		return "primary", false, nil
	}
	fs := fsType(volFormat)
	hasExtended, primaries := false, 0
	for _, r := range regions {
		if r.Free {
			continue
		}
		switch r.Kind {
		case KindExtended:
			hasExtended = true
			primaries++
		case KindNormal:
			primaries++
		}
	}
	logical := primaries >= 4
	if volFormat == "extended" {
		if hasExtended {
			return "", false, domain.Errorf(domain.KindInternal, "extended partition already exists")
		}
		return fs, logical, nil
	}
	if !logical {
		return "primary " + fs, false, nil
	}
	if !hasExtended {
		return "", false, domain.Errorf(domain.KindInternal, "no extended partition found and no primary partition available")
	}
	return "logical " + fs, true, nil
}

func fsType(volFormat string) string {
	if t, ok := partedFSTypes[volFormat]; ok {
		return t
	}
	return "ext2"
}
