package fs

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
)

// Probe is what blkid found on a device.
type Probe struct {
	Type   string // filesystem or other superblock type (ext4, xfs, LVM2_member, swap)
	PTType string // partition table type (gpt, dos)
}

// Empty reports whether no signature was found.
func (p Probe) Empty() bool { return p.Type == "" && p.PTType == "" }

// ParseBlkid parses `blkid -p -o export DEV`: KEY=value lines whose values
// carry blkid's backslash escapes ("LVM2\ 001"). Empty output (blkid's exit
// status 2, nothing found) is an empty probe.
func ParseBlkid(out []byte) (Probe, error) {
	var p Probe
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" {
			return Probe{}, fmt.Errorf("fs: malformed blkid line %q", line)
		}
		v = unescapeBlkid(v)
		switch k {
		case "TYPE":
			p.Type = v
		case "PTTYPE":
			p.PTType = v
		}
	}
	if err := sc.Err(); err != nil {
		return Probe{}, fmt.Errorf("fs: reading blkid output: %w", err)
	}
	return p, nil
}

func unescapeBlkid(v string) string {
	if !strings.Contains(v, `\`) {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// probeVerdict is libvirt's virStorageBackendBLKIDFindEmpty outcome for a
// build without OVERWRITE.
type probeVerdict int

const (
	probeEmpty     probeVerdict = iota // nothing there: mkfs may run
	probeMatch                         // the wanted filesystem is already there
	probeDifferent                     // something else is there
)

// verdict compares what was found with the wanted format, literally as
// libvirt does: a pool of format "auto" finds every filesystem different.
func (p Probe) verdict(format string) (probeVerdict, string) {
	switch {
	case p.Type != "":
		if p.Type == format {
			return probeMatch, p.Type
		}
		return probeDifferent, p.Type
	case p.PTType != "":
		if p.PTType == format {
			return probeMatch, p.PTType
		}
		return probeDifferent, p.PTType
	}
	return probeEmpty, ""
}
