package disk

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/adapters/lib/blockdev"
	"github.com/virtstoraged-go/virtstoraged/domain"
)

// PartitionPath is the device node of partition num, named as
// libvirt_parthelper names it (and so as the volume is named): the source
// device with its symlinks resolved, then "p" when that ends in a digit
// (loop0p1, nvme0n1p1, mmcblk0p1), then the number. A device-mapper device
// keeps the path it was given and takes the "p" also when the pool asks for
// it with part_separator='yes' (mpatha -> mpathap1).
func PartitionPath(canonical string, devMapper, partSep bool, num int) string {
	sep := ""
	if n := len(canonical); n > 0 && canonical[n-1] >= '0' && canonical[n-1] <= '9' {
		sep = "p"
	} else if devMapper && partSep {
		sep = "p"
	}
	return canonical + sep + strconv.Itoa(num)
}

// DevMapperMajor reads the block major of device-mapper from a
// /proc/devices listing; ok is false when the kernel has no device-mapper.
func DevMapperMajor(procDevices []byte) (uint32, bool) {
	sc := bufio.NewScanner(bytes.NewReader(procDevices))
	block := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "Block devices:" {
			block = true
			continue
		}
		if !block {
			continue
		}
		num, name, ok := strings.Cut(line, " ")
		if ok && strings.TrimSpace(name) == "device-mapper" {
			m, err := strconv.ParseUint(num, 10, 32)
			return uint32(m), err == nil
		}
	}
	return 0, false
}

// isDevMapper is libvirt's virIsDevMapperDevice: a block device whose major
// is device-mapper's.
func isDevMapper(procDevices, path string) bool {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return false
	}
	b, err := os.ReadFile(procDevices)
	if err != nil {
		return false
	}
	major, ok := DevMapperMajor(b)
	return ok && unix.Major(uint64(st.Rdev)) == major
}

// stablePathIsDev is libvirt's test for a pool target that holds no stable
// links: /dev itself, or anything outside /dev.
func stablePathIsDev(target string) bool {
	return target == "" || target == "/dev" || target == "/dev/" || !strings.HasPrefix(target, "/dev/")
}

// stableLinks maps each device node to the first link in target pointing at
// it (libvirt's virStorageBackendStablePath, in one pass over the directory
// for all partitions instead of one per partition). A target without stable
// links maps nothing, so that every partition keeps its /dev name.
func stableLinks(target string) (map[string]string, error) {
	if stablePathIsDev(target) {
		return map[string]string{}, nil
	}
	return blockdev.StableLinks(target)
}

// checkNotInUse refuses a device that is mounted, or held by device-mapper
// or md (an active VG on it, a RAID member), or has such a partition: the
// kernel then refuses to let anyone else open it exclusively. libvirt does
// not look, and writes a new label or zeroes under a mounted file system.
func checkNotInUse(dev string) error {
	fd, err := unix.Open(dev, unix.O_RDONLY|unix.O_EXCL|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.EBUSY) {
		return domain.Errorf(domain.KindOperationInvalid, "device '%s' is in use (mounted, or held by device-mapper or md)", dev)
	}
	if err != nil {
		return blockdev.SysErr(err, "cannot open device '%s'", dev)
	}
	unix.Close(fd)
	return nil
}
