package logical

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// LV is one row of LVSArgv's report: a logical volume, or one segment of it
// when the LV has several (lvs prints a row per segment as soon as a segment
// field such as seg_size is asked for).
type LV struct {
	Name        string
	UUID        string
	Attr        string
	Size        uint64
	Origin      string
	PoolLV      string  // thin fields only
	DataPercent float64 // thin fields only; 0 when unknown (inactive)
	SegType     string
	Stripes     uint64
	SegSize     uint64
	Devices     []Stripe
	ExtentSize  uint64
}

// Stripe is one entry of the devices field: a PV (or, for a thin pool, its
// hidden data LV) and the first physical extent used on it.
type Stripe struct {
	Device  string
	StartPE uint64
}

// VG is VGSArgv's report of one VG.
type VG struct {
	Size uint64
	Free uint64
}

// PV is one row of PVSArgv's report; VGName is empty for a PV in no VG.
type PV struct {
	Name   string
	VGName string
}

// reportLines returns the non-blank lines of a --noheadings report, without
// the indentation LVM puts before each row.
func reportLines(out []byte) ([]string, error) {
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			lines = append(lines, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("logical: reading the report: %w", err)
	}
	return lines, nil
}

func parseUint(field, s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("logical: malformed %s %q", field, s)
	}
	return n, nil
}

// lvsColumns and lvsThinColumns name the columns of the two lvs reports, in
// the order LVSArgv asks for them.
var (
	lvsColumns     = strings.Split(LVSFields, ",")
	lvsThinColumns = strings.Split(LVSThinFields, ",")
)

// lvsRow is one row of an lvs report, its fields looked up by column name so
// that the parser follows the field lists rather than positions.
type lvsRow struct {
	columns []string
	fields  []string
}

func (r lvsRow) get(column string) string {
	for i, c := range r.columns {
		if c == column {
			return r.fields[i]
		}
	}
	return ""
}

// ParseLVS parses the '#'-separated report of LVSArgv, with either field
// list. Some lvs builds end each row with the separator (libvirt's regex
// allows it too), so one empty trailing field is dropped.
func ParseLVS(out []byte) ([]LV, error) {
	lines, err := reportLines(out)
	if err != nil {
		return nil, err
	}
	lvs := make([]LV, 0, len(lines))
	for _, line := range lines {
		f := strings.Split(line, "#")
		if (len(f) == len(lvsColumns)+1 || len(f) == len(lvsThinColumns)+1) && f[len(f)-1] == "" {
			f = f[:len(f)-1]
		}
		var row lvsRow
		switch len(f) {
		case len(lvsColumns):
			row = lvsRow{lvsColumns, f}
		case len(lvsThinColumns):
			row = lvsRow{lvsThinColumns, f}
		default:
			return nil, fmt.Errorf("logical: malformed lvs row %q: %d fields", line, len(f))
		}
		lv := LV{Name: row.get("lv_name"), Origin: row.get("origin"), UUID: row.get("uuid"),
			SegType: row.get("segtype"), Attr: row.get("lv_attr"), PoolLV: row.get("pool_lv")}
		if lv.Name == "" || lv.UUID == "" || lv.Attr == "" {
			return nil, fmt.Errorf("logical: malformed lvs row %q: no name, uuid or attributes", line)
		}
		for _, n := range []struct {
			column string
			dst    *uint64
		}{{"stripes", &lv.Stripes}, {"seg_size", &lv.SegSize}, {"vg_extent_size", &lv.ExtentSize}, {"size", &lv.Size}} {
			if *n.dst, err = parseUint(n.column, row.get(n.column)); err != nil {
				return nil, err
			}
		}
		if lv.Devices, err = parseDevices(row.get("devices")); err != nil {
			return nil, err
		}
		if s := row.get("data_percent"); s != "" {
			p, err := strconv.ParseFloat(s, 64)
			if err != nil || p < 0 || p > 100 || math.IsNaN(p) {
				return nil, fmt.Errorf("logical: malformed data_percent %q", s)
			}
			lv.DataPercent = p
		}
		lvs = append(lvs, lv)
	}
	return lvs, nil
}

// parseDevices splits "/dev/loop0(2),/dev/loop1(0)". An entry ends at a ','
// that follows "(N)", so a path holding commas or parentheses still parses;
// the device part is taken up to the last '(' of its entry.
func parseDevices(s string) ([]Stripe, error) {
	if s == "" {
		return nil, nil
	}
	var out []Stripe
	for start := 0; start < len(s); {
		end := len(s)
		for i := start; i < len(s); i++ {
			if s[i] == ',' && endsWithExtent(s[start:i]) {
				end = i
				break
			}
		}
		part := s[start:end]
		open := strings.LastIndexByte(part, '(')
		if open <= 0 || !strings.HasSuffix(part, ")") {
			return nil, fmt.Errorf("logical: malformed devices entry %q", part)
		}
		pe, err := strconv.ParseUint(part[open+1:len(part)-1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("logical: malformed devices entry %q", part)
		}
		out = append(out, Stripe{Device: part[:open], StartPE: pe})
		start = end + 1
		if end < len(s) && start == len(s) {
			return nil, fmt.Errorf("logical: malformed devices field %q: ends with ','", s)
		}
	}
	return out, nil
}

// endsWithExtent reports whether s ends with "(N)", N decimal digits.
func endsWithExtent(s string) bool {
	if !strings.HasSuffix(s, ")") {
		return false
	}
	open := strings.LastIndexByte(s, '(')
	if open < 0 || open+1 == len(s)-1 {
		return false
	}
	for _, c := range s[open+1 : len(s)-1] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// ParseVGS parses VGSArgv's report, one "SIZE:FREE" row for the one VG asked.
func ParseVGS(out []byte) (VG, error) {
	lines, err := reportLines(out)
	if err != nil {
		return VG{}, err
	}
	if len(lines) != 1 {
		return VG{}, fmt.Errorf("logical: vgs printed %d rows, want 1", len(lines))
	}
	size, free, ok := strings.Cut(lines[0], ":")
	if !ok || strings.Contains(free, ":") {
		return VG{}, fmt.Errorf("logical: malformed vgs row %q", lines[0])
	}
	var vg VG
	if vg.Size, err = parseUint("vg_size", size); err != nil {
		return VG{}, err
	}
	if vg.Free, err = parseUint("vg_free", free); err != nil {
		return VG{}, err
	}
	if size == "" || free == "" || vg.Free > vg.Size {
		return VG{}, fmt.Errorf("logical: malformed vgs row %q", lines[0])
	}
	return vg, nil
}

// ParsePVS parses PVSArgv's report: a device and its VG, blank-separated,
// or the device alone for a PV in no VG. As libvirt's regex does, a line of
// any other shape (a message that reached stdout) is skipped.
func ParsePVS(out []byte) ([]PV, error) {
	lines, err := reportLines(out)
	if err != nil {
		return nil, err
	}
	pvs := make([]PV, 0, len(lines))
	for _, line := range lines {
		switch f := strings.Fields(line); len(f) {
		case 1:
			pvs = append(pvs, PV{Name: f[0]})
		case 2:
			pvs = append(pvs, PV{Name: f[0], VGName: f[1]})
		}
	}
	return pvs, nil
}
