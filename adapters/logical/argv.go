package logical

import (
	"strconv"
	"strings"

	"github.com/virtstoraged-go/virtstoraged/adapters/luks"
	"github.com/virtstoraged-go/virtstoraged/domain"
)

// The argv builders below are pure: each returns one command line, program
// first, exactly as libvirt 9.0 runs it (docs/semantics.md §1.2) except where
// a comment says why we differ. Tests compare them with testdata/*.argv.

// Fields asked of the LVM reporting commands, with libvirt's own command
// lines: '#' separates the lvs fields because LV names may hold ':' and the
// devices field holds ','; '#' is not allowed in LVM names or device paths.
const (
	LVSFields = "lv_name,origin,uuid,devices,segtype,stripes,seg_size,vg_extent_size,size,lv_attr"
	// LVSThinFields serve a VG/THINPOOL pool (docs/logical-thin.md), which
	// libvirt does not have: the thin LVs' pool and how full each is.
	LVSThinFields = LVSFields + ",pool_lv,data_percent"
	VGSFields     = "vg_size,vg_free"
	PVSFields     = "pv_name,vg_name"
)

// sizeK is libvirt's "%lluK" of VIR_DIV_UP(bytes, 1024).
func sizeK(bytes uint64) string {
	return strconv.FormatUint(bytes/1024+min(bytes%1024, 1), 10) + "K"
}

// PVCreateArgv labels one device as a PV.
func PVCreateArgv(dev string) []string { return []string{"pvcreate", dev} }

// PVRemoveArgv wipes the PV label of one device.
func PVRemoveArgv(dev string) []string { return []string{"pvremove", dev} }

// VGCreateArgv creates the VG over the pool's devices.
func VGCreateArgv(vg string, devs []string) []string {
	return append([]string{"vgcreate", vg}, devs...)
}

// VGRemoveArgv removes the VG and every LV in it.
func VGRemoveArgv(vg string) []string { return []string{"vgremove", "-f", vg} }

// VGScanArgv makes LVM rescan devices before a PV listing.
func VGScanArgv() []string { return []string{"vgscan"} }

// VGChangeArgv activates (or deactivates) every LV of the VG.
func VGChangeArgv(vg string, on bool) []string {
	if on {
		return []string{"vgchange", "-aly", vg}
	}
	return []string{"vgchange", "-aln", vg}
}

// PVSArgv lists every PV with its VG.
func PVSArgv() []string { return []string{"pvs", "--noheadings", "-o", PVSFields} }

// LVSArgv lists the LVs of a VG, a row per segment. A thin pool's listing
// adds the thin fields at the end, after libvirt's.
func LVSArgv(src Source) []string {
	fields := LVSFields
	if src.ThinPool != "" {
		fields = LVSThinFields
	}
	return []string{"lvs", "--separator", "#", "--noheadings", "--units", "b", "--unbuffered", "--nosuffix", "--options", fields, src.VG}
}

// VGSArgv reports the VG's size and free space.
func VGSArgv(vg string) []string {
	return []string{"vgs", "--separator", ":", "--noheadings", "--units", "b", "--unbuffered", "--nosuffix", "--options", VGSFields, vg}
}

// LVCreateArgv creates vol in the pool as libvirt does: a plain LV of
// ceil(capacity/1 KiB) K; an LVM "sparse" LV (a snapshot over a virtual
// origin) when allocation differs from capacity; an LVM snapshot of the
// backing store's device when there is one. In a thin pool (source name
// VG/THINPOOL) it creates a thin LV instead, whose size is only provisioned.
func LVCreateArgv(src Source, vol *domain.VolDef) []string {
	argv := []string{"lvcreate", "--name", vol.Name}
	size := vol.Capacity
	if vol.Target.Encryption.Encrypted() {
		// Room for the LUKS header in front of the capacity, as libvirt
		// makes it (up to 2 MiB: qemu-img's default header is 2068480 bytes).
		size += LUKSHeaderRoom
	}
	if src.ThinPool != "" {
		return append(argv, "--virtualsize", sizeK(size), "--thinpool", src.ThinPool, src.VG, "--yes")
	}
	argv = append(argv, "-L")
	if vol.Capacity != vol.Allocation {
		argv = append(argv, sizeK(max(vol.Allocation, 1)), "--type", "snapshot", "--virtualsize")
	}
	argv = append(argv, sizeK(size))
	if vol.Backing != nil && vol.Backing.Path != "" {
		argv = append(argv, "-s", vol.Backing.Path)
	} else {
		argv = append(argv, src.VG)
	}
	return append(argv, "--yes")
}

// LUKSHeaderRoom is what libvirt adds to an encrypted LV for the LUKS header.
const LUKSHeaderRoom = 2 << 20

// LUKSFormatArgv writes a LUKS header on a new LV as libvirt does (its
// qemu-img create of a raw volume with encryption): qemu-img create -f luks
// with the passphrase in keyFile, for the volume's capacity, which leaves the
// LV's extra room to the header.
func LUKSFormatArgv(vol *domain.VolDef, keyFile string) []string {
	alias := luks.Alias(vol.Name)
	return []string{"qemu-img", "create", "-f", luks.Format,
		"--object", luks.SecretObject(alias, keyFile),
		"-o", strings.Join(luks.CreateOptions("raw", alias, vol.Target.Encryption), ","),
		vol.Target.Path, sizeK(vol.Capacity)}
}

// ThinPoolCreateArgv creates the thin pool LV of a VG/THINPOOL pool over all
// the free space of the VG.
func ThinPoolCreateArgv(src Source) []string {
	return []string{"lvcreate", "--type", "thin-pool", "-l", "100%FREE", "--name", src.ThinPool, src.VG, "--yes"}
}

// LVRemoveArgv removes an LV given by its path.
func LVRemoveArgv(path string) []string { return []string{"lvremove", "-f", path} }

// LVChangeDeactivateArgv deactivates an LV so that a failed lvremove can be
// retried.
func LVChangeDeactivateArgv(path string) []string { return []string{"lvchange", "-aln", path} }

// LVResizeArgv sets an LV's size in bytes (LVM rounds up to whole extents).
// Shrinking needs --force: lvresize otherwise asks for confirmation on a tty
// we do not have and fails.
func LVResizeArgv(vg, lv string, capacity uint64, shrink bool) []string {
	argv := []string{"lvresize", "-L", strconv.FormatUint(capacity, 10) + "b"}
	if shrink {
		argv = append(argv, "--force")
	}
	return append(argv, vg+"/"+lv)
}

// QemuImgConvertArgv copies an image of another format into a raw LV.
func QemuImgConvertArgv(srcFormat, src, dst string) []string {
	return []string{"qemu-img", "convert", "-f", srcFormat, "-O", "raw", src, dst}
}
