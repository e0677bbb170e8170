package disk

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Layout is a partition table as parted reads it: the disk, its label and,
// in disk order, its partitions and free regions. Positions are in bytes.
//
// libvirt reads the same facts through libvirt_parthelper, a small program of
// its own linked with libparted. We ask parted itself, in machine mode and in
// sectors (`parted -m -s -a cylinder DEV unit s print free`): the same
// library answers, sector-exact, without a helper binary of our own. Two
// things differ from the helper and are made up for here: parted's command
// line turns off libparted's cylinder alignment of msdos labels unless told
// otherwise (hence -a cylinder, which restores the trailing partial cylinder
// the helper reports as metadata), and the machine format has no column for
// the partition type, which Classify derives (see there).
type Layout struct {
	Path       string
	Sectors    uint64 // disk length, in logical sectors
	SectorSize uint64 // logical sector size, bytes
	Label      string // parted's name: msdos, gpt, mac, bsd, pc98, sun, dvh, loop, unknown
	Rows       []Row
}

// Row is one line of the listing: a partition, or free space (Num 0).
type Row struct {
	Num        int
	Start, End uint64 // bytes; End is exclusive
	Free       bool
	FS, Name   string
	Flags      string
}

// maxRows bounds a listing: far above any label's partition limit (GPT
// allows 128 by default, 256 rows with the free regions between them), low
// enough that hostile output cannot make the parser hold much.
const maxRows = 4096

// maxSectorSize is the largest logical sector size accepted; Linux block
// devices have at most 64 KiB (the page size) sectors.
const maxSectorSize = 1 << 16

// ParseLayout reads `parted -m ... unit s print free`. Fields are separated
// by ':' and lines end with ';'; parted escapes ':' and '\' inside a field
// (a model or partition name) with a backslash.
func ParseLayout(out []byte) (*Layout, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	var l *Layout
	sawUnit := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if !sawUnit {
			if line != "BYT;" {
				return nil, fmt.Errorf("parted listing starts with %q, want \"BYT;\"", line)
			}
			sawUnit = true
			continue
		}
		body, ok := strings.CutSuffix(line, ";")
		if !ok {
			return nil, fmt.Errorf("parted line %q does not end with ';'", line)
		}
		f, err := splitFields(body)
		if err != nil {
			return nil, err
		}
		if l == nil {
			var err error
			if l, err = parseDiskLine(f); err != nil {
				return nil, err
			}
			continue
		}
		if len(l.Rows) == maxRows {
			return nil, fmt.Errorf("parted listing has more than %d rows", maxRows)
		}
		r, err := parseRow(f, l.SectorSize)
		if err != nil {
			return nil, fmt.Errorf("parted line %q: %w", line, err)
		}
		l.Rows = append(l.Rows, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading parted listing: %w", err)
	}
	if l == nil {
		return nil, fmt.Errorf("parted listing has no disk line")
	}
	return l, nil
}

// maxFields bounds the fields of a line: the disk line has 8, a row 7.
const maxFields = 16

// splitFields splits a machine-mode line body at unescaped ':' and removes
// the escapes.
func splitFields(s string) ([]string, error) {
	f := make([]string, 0, 8)
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		case c == ':':
			if len(f) == maxFields-1 {
				return nil, fmt.Errorf("parted line has more than %d fields", maxFields)
			}
			f = append(f, b.String())
			b.Reset()
		default:
			b.WriteByte(c)
		}
	}
	return append(f, b.String()), nil
}

// parseDiskLine reads "path:LENGTHs:transport:logical:physical:label:model:flags".
func parseDiskLine(f []string) (*Layout, error) {
	if len(f) < 6 {
		return nil, fmt.Errorf("parted disk line has %d fields, want at least 6", len(f))
	}
	n, err := sectors(f[1])
	if err != nil {
		return nil, fmt.Errorf("parted disk length: %w", err)
	}
	ss, err := strconv.ParseUint(f[3], 10, 32)
	if err != nil || ss == 0 || ss > maxSectorSize || ss&(ss-1) != 0 {
		return nil, fmt.Errorf("parted sector size %q is not a power of two up to %d", f[3], maxSectorSize)
	}
	if n > (1<<64-1)/ss {
		return nil, fmt.Errorf("parted disk length %s overflows", f[1])
	}
	return &Layout{Path: f[0], Sectors: n, SectorSize: ss, Label: f[5]}, nil
}

// parseRow reads "N:STARTs:ENDs:SIZEs:fs:name:flags" or "N:STARTs:ENDs:SIZEs:free".
func parseRow(f []string, sectorSize uint64) (Row, error) {
	if len(f) < 5 {
		return Row{}, fmt.Errorf("%d fields, want at least 5", len(f))
	}
	start, err := sectors(f[1])
	if err != nil {
		return Row{}, err
	}
	last, err := sectors(f[2])
	if err != nil {
		return Row{}, err
	}
	if last < start || last >= (1<<64-1)/sectorSize {
		return Row{}, fmt.Errorf("bad extent %s-%s", f[1], f[2])
	}
	r := Row{Start: start * sectorSize, End: (last + 1) * sectorSize}
	if len(f) == 5 && f[4] == "free" {
		r.Free = true
		return r, nil
	}
	num, err := strconv.Atoi(f[0])
	if err != nil || num < 1 || num > 1<<20 {
		return Row{}, fmt.Errorf("bad partition number %q", f[0])
	}
	r.Num = num
	r.FS = f[4]
	if len(f) > 5 {
		r.Name = f[5]
	}
	if len(f) > 6 {
		r.Flags = f[6]
	}
	return r, nil
}

func sectors(s string) (uint64, error) {
	v, ok := strings.CutSuffix(s, "s")
	if !ok {
		return 0, fmt.Errorf("%q is not in sectors", s)
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a sector count", s)
	}
	return n, nil
}

// Kind is what libvirt_parthelper calls a region's type.
type Kind int

// Region kinds.
const (
	KindNormal   Kind = iota // a primary partition, or free space outside any extended one
	KindLogical              // inside an extended partition
	KindExtended             // the container of logical partitions
)

// String is parthelper's word for the kind.
func (k Kind) String() string {
	switch k {
	case KindLogical:
		return "logical"
	case KindExtended:
		return "extended"
	}
	return "normal"
}

// Region is a Row with the kind libparted gives it.
type Region struct {
	Row
	Kind Kind
}

// Classify gives every row its kind. The machine format does not print the
// partition type, but libparted nests logical partitions and the free space
// between them inside their extended partition (msdos; dvh's volume header
// likewise holds its own free space), and lists them right after it: so a
// partition is extended when rows follow that lie within it, and those rows
// are logical. An extended partition with nothing inside, not even free
// space, cannot be told from a primary one this way; libparted always leaves
// free space behind the first logical partition's header unless the extended
// partition is a single header long, which no volume libvirt creates is.
func Classify(l *Layout) []Region {
	out := make([]Region, len(l.Rows))
	for i := range l.Rows {
		out[i].Row = l.Rows[i]
	}
	for i := 0; i < len(out); i++ {
		c := out[i]
		if c.Free || c.Kind != KindNormal {
			continue
		}
		j := i + 1
		for j < len(out) && out[j].Start >= c.Start && out[j].End <= c.End {
			out[j].Kind = KindLogical
			j++
		}
		if j > i+1 {
			out[i].Kind = KindExtended
			i = j - 1
		}
	}
	return out
}
