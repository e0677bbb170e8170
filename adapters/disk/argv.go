package disk

import "strconv"

// The argv builders below are pure: each returns one command line, program
// first, as libvirt 9.0 runs it where libvirt has the operation (its parted
// command lines, word for word), and tests compare them with
// testdata/argv/*.argv.

// ListArgv lists the partition table with its free regions, in sectors, with
// libparted's default cylinder alignment of msdos labels (see Layout).
func ListArgv(dev string) []string {
	return []string{"parted", "-m", "-s", "-a", "cylinder", dev, "unit", "s", "print", "free"}
}

// GeometryArgv prints the disk's BIOS geometry (cylinders, heads, sectors),
// which the msdos alignment rules need; libvirt asks `libvirt_parthelper DEV
// -g` for the same libparted figures.
func GeometryArgv(dev string) []string {
	return []string{"parted", "-m", "-s", dev, "unit", "chs", "print"}
}

// LabelArgv is libvirt's fallback probe of the label, for the label types
// blkid does not tell apart (dvh, pc98, bsd): parted's human-readable print,
// whose "Partition Table:" line names the label.
func LabelArgv(dev string) []string {
	return []string{"parted", dev, "print", "--script"}
}

// MklabelArgv writes an empty label of parted's type name (msdos for dos).
func MklabelArgv(dev, label string) []string {
	return []string{"parted", dev, "mklabel", "--script", label}
}

// MkpartArgv creates a partition from start to end (bytes, end inclusive).
// partType is what libvirt passes as one argument ("primary ext2",
// "logical linux-swap", "extended", "primary"); parted splits it into words.
func MkpartArgv(dev, partType string, start, end uint64) []string {
	return []string{"parted", dev, "mkpart", "--script", partType,
		strconv.FormatUint(start, 10) + "B", strconv.FormatUint(end, 10) + "B"}
}

// RmArgv removes partition num.
func RmArgv(dev string, num int) []string {
	return []string{"parted", dev, "rm", "--script", strconv.Itoa(num)}
}

// PartxDeleteArgv tells the kernel that partition num is gone, for when
// parted's own notice did not reach it.
func PartxDeleteArgv(dev string, num int) []string {
	return []string{"partx", "-d", "--nr", strconv.Itoa(num), dev}
}

// SettleArgv waits for udev to finish with the events a partition change
// raised (device nodes, /dev/disk links), as libvirt's virWaitForDevices.
func SettleArgv() []string { return []string{"udevadm", "settle", "--timeout=10"} }
