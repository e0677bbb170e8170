package faults

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/virtstoraged-go/virtstoraged/ports"
)

// ExtentSize is the simulated VGs' physical extent, LVM's default.
const ExtentSize = 4 << 20

// LVM simulates the LVM tools (and blkid) over device files, so that the
// logical backend's multi-step operations can be failed at every step and the
// outcome compared with a model of what is on disk. It is a
// ports.CommandRunner; unknown commands fail the way a missing tool does.
//
// It makes no device nodes under /dev: libvirt forces a logical pool's target
// to /dev/VG, and tests must not write to the host's /dev. Applying an owner or
// mode to a new LV's node therefore fails, as it does while udev lags behind.
// Operations that need the data (clone, wipe) set Nodes and point the pool
// there instead.
type LVM struct {
	// Busy names LVs (VG/LV) that lvremove refuses while they are active.
	Busy map[string]bool
	// Nodes, when set, is a directory standing in for /dev: every LV gets a
	// sparse file NODES/VG/LV of its size, made by lvcreate, sized by
	// lvresize and removed with the LV, and paths under it name LVs as
	// /dev/VG/LV does. Unlike udev's nodes these stay while an LV is
	// inactive, since they also hold its data.
	Nodes string
	// AfterRun, when set, is called after each successful command (with the
	// simulator unlocked), to act at a precise step: cancel a context.
	AfterRun func(argv []string)

	mu  sync.Mutex
	pvs map[string]string // device -> VG ("" for a PV in no VG)
	vgs map[string]*simVG
	seq int
}

type simVG struct {
	name string
	uuid string
	devs []string
	size uint64
	lvs  []*simLV
}

type simLV struct {
	name   string
	uuid   string
	size   uint64
	active bool
}

var _ ports.CommandRunner = (*LVM)(nil)

// NewLVM returns a simulator with no PVs and no VGs.
func NewLVM() *LVM {
	return &LVM{Busy: map[string]bool{}, pvs: map[string]string{}, vgs: map[string]*simVG{}}
}

func lvmErr(argv []string, code int, format string, args ...any) error {
	return &ports.ExitError{Argv: argv, Code: code, Stderr: fmt.Sprintf(format, args...)}
}

// Run executes one simulated command.
func (l *LVM) Run(ctx context.Context, cmd ports.Command) ([]byte, error) {
	out, err := l.run(cmd)
	if after := l.AfterRun; err == nil && after != nil {
		after(append([]string{cmd.Path}, cmd.Args...))
	}
	return out, err
}

func (l *LVM) run(cmd ports.Command) ([]byte, error) {
	argv := append([]string{cmd.Path}, cmd.Args...)
	l.mu.Lock()
	defer l.mu.Unlock()
	last := argv[len(argv)-1]
	switch cmd.Path {
	case "blkid":
		if _, ok := l.pvs[last]; ok {
			return []byte("TYPE=LVM2_member\nUSAGE=raid\n"), nil
		}
		return nil, lvmErr(argv, 2, "")
	case "pvcreate":
		if _, err := os.Stat(last); err != nil {
			return nil, lvmErr(argv, 5, "  No device found for %s.", last)
		}
		if _, ok := l.pvs[last]; ok {
			return nil, lvmErr(argv, 5, "  Can't initialize physical volume %q: already a PV.", last)
		}
		l.pvs[last] = ""
		return nil, nil
	case "pvremove":
		vg, ok := l.pvs[last]
		switch {
		case !ok:
			return nil, lvmErr(argv, 5, "  No PV found on device %s.", last)
		case vg != "":
			return nil, lvmErr(argv, 5, "  PV %s is used by VG %s so please use vgreduce first.", last, vg)
		}
		delete(l.pvs, last)
		return nil, nil
	case "vgcreate":
		return nil, l.vgcreate(argv)
	case "vgremove":
		vg, ok := l.vgs[last]
		if !ok {
			return nil, lvmErr(argv, 5, "  Volume group %q not found", last)
		}
		for _, d := range vg.devs {
			l.pvs[d] = ""
		}
		delete(l.vgs, last)
		if l.Nodes != "" {
			// vgremove -f takes the VG's LVs with it.
			_ = os.RemoveAll(filepath.Join(l.Nodes, last))
		}
		return nil, nil
	case "vgscan":
		return nil, nil
	case "vgchange":
		vg, ok := l.vgs[last]
		if !ok {
			return nil, lvmErr(argv, 5, "  Volume group %q not found", last)
		}
		for _, lv := range vg.lvs {
			lv.active = argv[1] == "-aly"
		}
		return nil, nil
	case "pvs":
		return l.pvsReport(argv), nil
	case "vgs":
		vg, ok := l.vgs[last]
		if !ok {
			return nil, lvmErr(argv, 5, "  Volume group %q not found", last)
		}
		return report(argv, []map[string]string{{
			"vg_name": last, "vg_uuid": vg.uuid, "vg_size": u(vg.size), "vg_free": u(vg.size - vg.used()),
			"vg_extent_size": u(ExtentSize),
		}}), nil
	case "lvs":
		return l.lvsReport(argv, last)
	case "lvcreate":
		return nil, l.lvcreate(argv)
	case "lvremove":
		return nil, l.lvremove(argv, last)
	case "lvresize":
		return nil, l.lvresize(argv, last)
	case "lvchange":
		_, lv := l.findLV(last)
		if lv == nil {
			return nil, lvmErr(argv, 5, "  Failed to find logical volume %q", last)
		}
		lv.active = argv[1] != "-aln"
		return nil, nil
	case "qemu-img":
		return nil, l.convert(argv)
	case "scrub":
		// scrub -f -p ALG DEV overwrites the device with patterns: what it
		// writes is no part of the model, only that it finds the LV.
		if _, lv := l.findLV(last); lv == nil {
			return nil, lvmErr(argv, 1, "scrub: %s: No such file or directory", last)
		}
		return nil, nil
	}
	return nil, lvmErr(argv, 127, "faults: lvm simulator: unknown command %s", strings.Join(argv, " "))
}

func u(n uint64) string { return strconv.FormatUint(n, 10) }

func (g *simVG) used() uint64 {
	var n uint64
	for _, lv := range g.lvs {
		n += lv.size
	}
	return n
}

func (l *LVM) uuid() string {
	l.seq++
	return fmt.Sprintf("sim%03d-uuid", l.seq)
}

func (l *LVM) vgcreate(argv []string) error {
	name, devs := argv[1], argv[2:]
	if _, ok := l.vgs[name]; ok {
		return lvmErr(argv, 5, "  A volume group called %s already exists.", name)
	}
	vg := &simVG{name: name, uuid: l.uuid(), devs: slices.Clone(devs)}
	for _, d := range devs {
		in, ok := l.pvs[d]
		if !ok {
			return lvmErr(argv, 5, "  Device %s not found (or ignored by filtering).", d)
		}
		if in != "" {
			return lvmErr(argv, 5, "  Physical volume '%s' is already in volume group '%s'", d, in)
		}
		st, err := os.Stat(d)
		if err != nil {
			return lvmErr(argv, 5, "  Device %s not found.", d)
		}
		// One extent per PV goes to metadata.
		if ext := uint64(st.Size()) / ExtentSize; ext > 1 {
			vg.size += (ext - 1) * ExtentSize
		}
	}
	for _, d := range devs {
		l.pvs[d] = name
	}
	l.vgs[name] = vg
	return nil
}

// convert simulates `qemu-img convert -f FMT -O raw SRC DST` into an LV. It
// converts nothing, since image formats are no part of the model; like
// qemu-img, it fails when it cannot open either end.
func (l *LVM) convert(argv []string) error {
	if len(argv) < 4 || argv[1] != "convert" {
		return lvmErr(argv, 1, "faults: lvm simulator: only qemu-img convert is simulated")
	}
	src, dst := argv[len(argv)-2], argv[len(argv)-1]
	if _, err := os.Stat(src); err != nil {
		return lvmErr(argv, 1, "qemu-img: Could not open '%s': %v", src, err)
	}
	if _, lv := l.findLV(dst); lv == nil {
		return lvmErr(argv, 1, "qemu-img: %s: error while converting raw: Could not open '%s'", dst, dst)
	}
	return nil
}

// node is the file standing in for vg/lv's device node, or "" without Nodes.
func (l *LVM) node(vg, lv string) string {
	if l.Nodes == "" {
		return ""
	}
	return filepath.Join(l.Nodes, vg, lv)
}

// sizeNode makes vg/lv's node file (when Nodes is set) size bytes long.
func (l *LVM) sizeNode(argv []string, vg, lv string, size uint64) error {
	n := l.node(vg, lv)
	if n == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(n), 0o755); err != nil {
		return lvmErr(argv, 5, "  faults: lvm simulator: %v", err)
	}
	f, err := os.OpenFile(n, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return lvmErr(argv, 5, "  faults: lvm simulator: %v", err)
	}
	defer f.Close()
	if err := f.Truncate(int64(size)); err != nil {
		return lvmErr(argv, 5, "  faults: lvm simulator: %v", err)
	}
	return nil
}

// findLV resolves "/dev/VG/LV", "VG/LV" or, with Nodes, "NODES/VG/LV".
func (l *LVM) findLV(path string) (*simVG, *simLV) {
	rel := strings.TrimPrefix(path, "/dev/")
	if l.Nodes != "" {
		if r, ok := strings.CutPrefix(path, l.Nodes+"/"); ok {
			rel = r
		}
	}
	vgName, lvName, ok := strings.Cut(rel, "/")
	if !ok {
		return nil, nil
	}
	vg := l.vgs[vgName]
	if vg == nil {
		return nil, nil
	}
	for _, lv := range vg.lvs {
		if lv.name == lvName {
			return vg, lv
		}
	}
	return nil, nil
}

func parseSizeK(s string) (uint64, error) {
	n, err := strconv.ParseUint(strings.TrimSuffix(s, "K"), 10, 64)
	return n * 1024, err
}

func (l *LVM) lvcreate(argv []string) error {
	var name, size string
	for i := 1; i < len(argv)-1; i++ {
		switch argv[i] {
		case "--name":
			name = argv[i+1]
		case "-L":
			size = argv[i+1]
		case "--type", "--thinpool", "--virtualsize", "-s":
			return lvmErr(argv, 3, "faults: lvm simulator: %s not simulated", argv[i])
		}
	}
	vgName := argv[len(argv)-2]
	vg := l.vgs[vgName]
	if vg == nil {
		return lvmErr(argv, 5, "  Volume group %q not found", vgName)
	}
	bytes, err := parseSizeK(size)
	if err != nil || name == "" {
		return lvmErr(argv, 3, "faults: lvm simulator: bad lvcreate %v", argv)
	}
	bytes = (bytes + ExtentSize - 1) / ExtentSize * ExtentSize
	for _, lv := range vg.lvs {
		if lv.name == name {
			return lvmErr(argv, 5, "  Logical Volume %q already exists in volume group %q", name, vgName)
		}
	}
	if bytes > vg.size-vg.used() {
		return lvmErr(argv, 5, "  Volume group %q has insufficient free space.", vgName)
	}
	if err := l.sizeNode(argv, vgName, name, bytes); err != nil {
		return err
	}
	vg.lvs = append(vg.lvs, &simLV{name: name, uuid: l.uuid(), size: bytes, active: true})
	return nil
}

func (l *LVM) lvresize(argv []string, path string) error {
	vg, lv := l.findLV(path)
	if lv == nil {
		return lvmErr(argv, 5, "  Failed to find logical volume %q", path)
	}
	n, err := strconv.ParseUint(strings.TrimSuffix(argv[2], "b"), 10, 64)
	if err != nil {
		return lvmErr(argv, 3, "faults: lvm simulator: bad size %q", argv[2])
	}
	n = (n + ExtentSize - 1) / ExtentSize * ExtentSize
	if n > lv.size && n-lv.size > vg.size-vg.used() {
		return lvmErr(argv, 5, "  Insufficient free space: %d extents needed", (n-lv.size)/ExtentSize)
	}
	if err := l.sizeNode(argv, vg.name, lv.name, n); err != nil {
		return err
	}
	lv.size = n
	return nil
}

func (l *LVM) lvremove(argv []string, path string) error {
	vg, lv := l.findLV(path)
	if lv == nil {
		return lvmErr(argv, 5, "  Failed to find logical volume %q", path)
	}
	if lv.active && l.Busy[strings.TrimPrefix(path, "/dev/")] {
		return lvmErr(argv, 5, "  Logical volume %s in use.", path)
	}
	vg.lvs = slices.DeleteFunc(vg.lvs, func(x *simLV) bool { return x == lv })
	if n := l.node(vg.name, lv.name); n != "" {
		_ = os.Remove(n)
	}
	return nil
}

// report renders rows as --noheadings text rows of the fields the command
// line names with -o/--options, joined by --separator (a blank when none is
// given). Following the command line rather than one fixed layout keeps the
// simulator honest about what the backend really parses.
func report(argv []string, rows []map[string]string) []byte {
	var fields []string
	sep := " "
	for i := 1; i < len(argv)-1; i++ {
		switch argv[i] {
		case "-o", "--options":
			fields = strings.Split(argv[i+1], ",")
		case "--separator":
			sep = argv[i+1]
		}
	}
	var b strings.Builder
	for _, row := range rows {
		vals := make([]string, len(fields))
		for i, f := range fields {
			vals[i] = row[f]
		}
		b.WriteString("  " + strings.Join(vals, sep) + "\n")
	}
	return []byte(b.String())
}

func (l *LVM) pvsReport(argv []string) []byte {
	var rows []map[string]string
	for _, d := range slices.Sorted(maps.Keys(l.pvs)) {
		rows = append(rows, map[string]string{"pv_name": d, "vg_name": l.pvs[d], "pv_uuid": "pv-" + filepath.Base(d)})
	}
	return report(argv, rows)
}

func (l *LVM) lvsReport(argv []string, vgName string) ([]byte, error) {
	vg := l.vgs[vgName]
	if vg == nil {
		return nil, lvmErr(argv, 5, "  Volume group %q not found", vgName)
	}
	var rows []map[string]string
	var pe uint64
	for _, lv := range vg.lvs {
		attr := "-wi-------"
		if lv.active {
			attr = "-wi-a-----"
		}
		rows = append(rows, map[string]string{
			"lv_name": lv.name, "uuid": lv.uuid, "lv_attr": attr, "size": u(lv.size),
			"segtype": "linear", "stripes": "1", "seg_size": u(lv.size),
			"devices": fmt.Sprintf("%s(%d)", vg.devs[0], pe), "vg_extent_size": u(ExtentSize),
		})
		pe += lv.size / ExtentSize
	}
	return report(argv, rows), nil
}

// LVMState is a snapshot of the simulated LVM world, comparable with ==
// after formatting.
type LVMState struct {
	// PVs maps each labelled device to its VG ("" when in none).
	PVs map[string]string
	// VGs maps each VG to its sorted LVs, "name:size:active|inactive".
	VGs map[string][]string
	// Free is each VG's free bytes.
	Free map[string]uint64
	// Size is each VG's size in bytes.
	Size map[string]uint64
}

// State returns a snapshot of the simulated world.
func (l *LVM) State() LVMState {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := LVMState{PVs: map[string]string{}, VGs: map[string][]string{}, Free: map[string]uint64{}, Size: map[string]uint64{}}
	for d, vg := range l.pvs {
		s.PVs[d] = vg
	}
	for name, vg := range l.vgs {
		lvs := []string{}
		for _, lv := range vg.lvs {
			st := "inactive"
			if lv.active {
				st = "active"
			}
			lvs = append(lvs, fmt.Sprintf("%s:%d:%s", lv.name, lv.size, st))
		}
		sort.Strings(lvs)
		s.VGs[name] = lvs
		s.Free[name] = vg.size - vg.used()
		s.Size[name] = vg.size
	}
	return s
}

// String renders the state deterministically.
func (s LVMState) String() string {
	var b strings.Builder
	for _, d := range slices.Sorted(maps.Keys(s.PVs)) {
		fmt.Fprintf(&b, "pv %s vg=%q\n", d, s.PVs[d])
	}
	for _, vg := range slices.Sorted(maps.Keys(s.VGs)) {
		fmt.Fprintf(&b, "vg %s size=%d free=%d lvs=%v\n", vg, s.Size[vg], s.Free[vg], s.VGs[vg])
	}
	return b.String()
}

// ActiveLVs returns the names of vg's active LVs, sorted: the volumes a
// logical pool over vg lists.
func (s LVMState) ActiveLVs(vg string) []string {
	var out []string
	for _, e := range s.VGs[vg] {
		parts := strings.Split(e, ":")
		if parts[2] == "active" {
			out = append(out, parts[0])
		}
	}
	return out
}

// AddVG sets up a VG over devs (which become PVs) without going through the
// command interface, for tests that start from a built pool.
func (l *LVM) AddVG(name string, devs ...string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, d := range devs {
		l.pvs[d] = ""
	}
	return l.vgcreate(append([]string{"vgcreate", name}, devs...))
}
