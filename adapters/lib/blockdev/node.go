package blockdev

import (
	"time"

	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/domain"
)

// Node is what libvirt reads from a volume's node when it refreshes a
// block-device volume or its backing store (virStorageBackendUpdateVolTargetInfo):
// owner, group, mode and times, and for a block device where it ends, which
// libvirt shows as capacity and physical size alike.
type Node struct {
	Perms domain.Perms
	Times *domain.Timestamps
	// Block is true for a block device; Size is then its size.
	Block bool
	Size  uint64
}

// StatNode opens path (following links, as /dev/VG/LV and /dev/mapper/NAME
// are links to /dev/dm-N) read-only without changing it, and reads its facts.
func StatNode(path string) (Node, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return Node{}, SysErr(err, "cannot open volume '%s'", path)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return Node{}, SysErr(err, "cannot stat file '%s'", path)
	}
	n := Node{
		Perms: domain.Perms{Mode: int64(st.Mode & 0o777), Owner: int64(st.Uid), Group: int64(st.Gid)},
		Times: StatTimes(&st),
	}
	if st.Mode&unix.S_IFMT == unix.S_IFBLK {
		size, err := Size(fd)
		if err != nil {
			return Node{}, SysErr(err, "cannot seek to end of '%s'", path)
		}
		n.Block, n.Size = true, uint64(size)
	}
	return n, nil
}

// StatTimes are a file's times as libvirt's volume XML shows them; the birth
// time stays zero, which libvirt prints as 0 (stat(2) has none).
func StatTimes(st *unix.Stat_t) *domain.Timestamps {
	return &domain.Timestamps{
		Atime: time.Unix(st.Atim.Unix()),
		Mtime: time.Unix(st.Mtim.Unix()),
		Ctime: time.Unix(st.Ctim.Unix()),
	}
}
