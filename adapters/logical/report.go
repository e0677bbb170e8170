package logical

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// LV is one row of `lvs --reportformat json`: a logical volume, or one
// segment of it when the LV has several (lvs prints a row per segment as soon
// as a segment field such as seg_size is asked for).
type LV struct {
	Name        string
	UUID        string
	Attr        string
	Size        uint64
	Origin      string
	PoolLV      string
	DataPercent float64 // thin LVs and thin pools; 0 when unknown (inactive)
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

// VG is one row of `vgs --reportformat json`.
type VG struct {
	Name       string
	UUID       string
	Size       uint64
	Free       uint64
	ExtentSize uint64
}

// PV is one row of `pvs --reportformat json`; VGName is empty for a PV in no VG.
type PV struct {
	Name   string
	VGName string
	UUID   string
}

// report is the JSON shape of every LVM reporting command: a list of reports,
// each a map from the object kind ("lv", "vg", "pv") to its rows. Every value is
// a string, numbers included.
type report struct {
	Report []map[string][]map[string]string `json:"report"`
}

func parseReport(out []byte, kind string) ([]map[string]string, error) {
	var r report
	if err := json.Unmarshal(out, &r); err != nil {
		return nil, fmt.Errorf("logical: cannot parse %ss report: %w", kind, err)
	}
	var rows []map[string]string
	for _, part := range r.Report {
		rows = append(rows, part[kind]...)
	}
	return rows, nil
}

// parseBytes reads a size printed with --units b --nosuffix; an empty field
// (a figure that does not apply to the row) is 0.
func parseBytes(row map[string]string, field string) (uint64, error) {
	s := strings.TrimSpace(row[field])
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("logical: malformed %s %q", field, s)
	}
	return n, nil
}

// ParseLVS parses `lvs --reportformat json --units b --nosuffix -o` LVSFields.
func ParseLVS(out []byte) ([]LV, error) {
	rows, err := parseReport(out, "lv")
	if err != nil {
		return nil, err
	}
	lvs := make([]LV, 0, len(rows))
	for _, row := range rows {
		lv := LV{
			Name:    row["lv_name"],
			UUID:    row["lv_uuid"],
			Attr:    row["lv_attr"],
			Origin:  row["origin"],
			PoolLV:  row["pool_lv"],
			SegType: row["segtype"],
		}
		if lv.Name == "" {
			return nil, fmt.Errorf("logical: lvs row without lv_name")
		}
		for _, f := range []struct {
			name string
			dst  *uint64
		}{{"lv_size", &lv.Size}, {"stripes", &lv.Stripes}, {"seg_size", &lv.SegSize}, {"vg_extent_size", &lv.ExtentSize}} {
			if *f.dst, err = parseBytes(row, f.name); err != nil {
				return nil, err
			}
		}
		if s := strings.TrimSpace(row["data_percent"]); s != "" {
			p, err := strconv.ParseFloat(s, 64)
			if err != nil || p < 0 || p > 100 || math.IsNaN(p) {
				return nil, fmt.Errorf("logical: malformed data_percent %q", s)
			}
			lv.DataPercent = p
		}
		if lv.Devices, err = parseDevices(row["devices"]); err != nil {
			return nil, err
		}
		lvs = append(lvs, lv)
	}
	return lvs, nil
}

// parseDevices splits "/dev/loop0(2),/dev/loop1(0)". The device part is taken
// up to the last '(' so that a path holding parentheses still parses.
func parseDevices(s string) ([]Stripe, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var out []Stripe
	for _, part := range strings.Split(s, ",") {
		open := strings.LastIndexByte(part, '(')
		if open <= 0 || !strings.HasSuffix(part, ")") {
			return nil, fmt.Errorf("logical: malformed devices entry %q", part)
		}
		pe, err := strconv.ParseUint(part[open+1:len(part)-1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("logical: malformed devices entry %q", part)
		}
		out = append(out, Stripe{Device: part[:open], StartPE: pe})
	}
	return out, nil
}

// ParseVGS parses `vgs --reportformat json --units b --nosuffix -o` VGSFields.
func ParseVGS(out []byte) ([]VG, error) {
	rows, err := parseReport(out, "vg")
	if err != nil {
		return nil, err
	}
	vgs := make([]VG, 0, len(rows))
	for _, row := range rows {
		vg := VG{Name: row["vg_name"], UUID: row["vg_uuid"]}
		if vg.Name == "" {
			return nil, fmt.Errorf("logical: vgs row without vg_name")
		}
		for _, f := range []struct {
			name string
			dst  *uint64
		}{{"vg_size", &vg.Size}, {"vg_free", &vg.Free}, {"vg_extent_size", &vg.ExtentSize}} {
			if *f.dst, err = parseBytes(row, f.name); err != nil {
				return nil, err
			}
		}
		if vg.Free > vg.Size {
			return nil, fmt.Errorf("logical: vg %s has vg_free %d above vg_size %d", vg.Name, vg.Free, vg.Size)
		}
		vgs = append(vgs, vg)
	}
	return vgs, nil
}

// ParsePVS parses `pvs --reportformat json -o` PVSFields.
func ParsePVS(out []byte) ([]PV, error) {
	rows, err := parseReport(out, "pv")
	if err != nil {
		return nil, err
	}
	pvs := make([]PV, 0, len(rows))
	for _, row := range rows {
		pv := PV{Name: row["pv_name"], VGName: row["vg_name"], UUID: row["pv_uuid"]}
		if pv.Name == "" {
			return nil, fmt.Errorf("logical: pvs row without pv_name")
		}
		pvs = append(pvs, pv)
	}
	return pvs, nil
}

// ParseBlkid parses `blkid -p -o export DEV`: KEY=value lines, values with
// blkid's backslash escapes ("LVM2\ 001"). Empty output (exit status 2, no
// signature found) gives an empty map.
func ParseBlkid(out []byte) (map[string]string, error) {
	vals := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok || key == "" {
			return nil, fmt.Errorf("logical: malformed blkid line %q", line)
		}
		var b strings.Builder
		for i := 0; i < len(val); i++ {
			if val[i] == '\\' && i+1 < len(val) {
				i++
			}
			b.WriteByte(val[i])
		}
		vals[key] = b.String()
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("logical: reading blkid output: %w", err)
	}
	return vals, nil
}
