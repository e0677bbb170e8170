package dir

import (
	"errors"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/adapters/lib/imgformat"
	"github.com/virtstoraged-go/virtstoraged/domain"
)

// errSkip marks a directory entry that refresh leaves out without failing, as
// libvirt does: it vanished, is a dangling symlink, a FIFO, socket or device.
var errSkip = errors.New("dir: entry skipped")

// fdReader reads an open file with pread, without the os.File machinery that
// costs extra system calls per file in a refresh of thousands of files.
type fdReader int

func (fd fdReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := unix.Pread(int(fd), p, off)
	if n < 0 {
		n = 0
	}
	return n, err
}

// volPath is "<target>/<name>", the path and key of a file volume. libvirt
// glues the two with a slash and does not resolve symlinks.
func volPath(target, name string) string {
	if t := strings.TrimRight(target, "/"); t != "" {
		return t + "/" + name
	}
	return "/" + name
}

// inspect fills vol's type, format and figures from the file at path, the way
// libvirt's refresh does: open (following symlinks), fstat, read the header.
//
// scratch, when not nil, is a buffer of imgformat.HeaderSize bytes reused for
// the header read.
func inspect(path string, vol *domain.VolDef, scratch []byte) error {
	return inspectProbe(path, vol, scratch, nil)
}

// probe is what an inspection learns besides the volume, for the incremental
// refresh to know which entries inotify on the pool directory cannot follow.
type probe struct {
	mode  uint32 // S_IFMT of the file opened (symlinks followed)
	nlink uint64
	// backingPath is the local backing file whose perms and format went into
	// the volume ("" if none), and backingID its identity before it was read.
	backingPath string
	backingID   fileID
	stat        unix.Stat_t // of the file opened
}

// fileID is the part of a stat that changes whenever a file's content,
// size, owner or mode does (ctime moves with every such change).
type fileID struct {
	missing      bool
	dev, ino     uint64
	mode         uint32
	uid, gid     uint32
	size, blocks int64
	mtime, ctime unix.Timespec
}

func statID(path string) fileID {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return fileID{missing: true}
	}
	return fileID{
		dev: st.Dev, ino: st.Ino, mode: st.Mode, uid: st.Uid, gid: st.Gid,
		size: st.Size, blocks: st.Blocks, mtime: st.Mtim, ctime: st.Ctim,
	}
}

// openNoAtime opens a file for inspection without moving its access time, so
// that a refresh never changes what the next one reports (and what the
// incremental refresh, which reads only changed files, keeps). O_NOATIME needs
// the file's owner or CAP_FOWNER: without them, open plainly.
func openNoAtime(path string) (int, error) {
	const flags = unix.O_RDONLY | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_CLOEXEC
	fd, err := unix.Open(path, flags|unix.O_NOATIME, 0)
	if errors.Is(err, unix.EPERM) {
		fd, err = unix.Open(path, flags, 0)
	}
	return fd, err
}

// inspectProbe is inspect, also filling pr when it is not nil.
func inspectProbe(path string, vol *domain.VolDef, scratch []byte, pr *probe) error {
	fd, err := openNoAtime(path)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENXIO) {
			return errSkip
		}
		return sysErr(err, "cannot open volume '%s'", path)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return sysErr(err, "cannot stat file '%s'", path)
	}
	vol.Target.Path = path
	vol.Key = path
	vol.HasCapacity = true
	vol.HasAllocation = true
	vol.Target.Perms = domain.Perms{Mode: int64(st.Mode & 0o777), Owner: int64(st.Uid), Group: int64(st.Gid)}
	vol.Target.Timestamps = statTimes(&st)
	if pr != nil {
		pr.mode, pr.nlink, pr.stat = st.Mode&unix.S_IFMT, uint64(st.Nlink), st
	}
	vol.Backing = nil
	vol.Target.Compat, vol.Target.ClusterSize = "", 0
	vol.Target.HasFeatures, vol.Target.LazyRefcounts, vol.Target.ExtendedL2 = false, false, false
	vol.Target.Encryption = domain.VolEncryption{}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		vol.Type = domain.VolDir
		vol.Target.Format = "dir"
		vol.Capacity, vol.Allocation, vol.Physical = 0, 0, 0
		return nil
	case unix.S_IFBLK:
		size, err := unix.Seek(fd, 0, unix.SEEK_END)
		if err != nil {
			return sysErr(err, "cannot seek to end of '%s'", path)
		}
		vol.Type = domain.VolBlock
		vol.Target.Format = imgformat.Raw
		vol.Capacity, vol.Allocation, vol.Physical = uint64(size), uint64(size), uint64(size)
		return nil
	case unix.S_IFREG:
	default:
		return errSkip
	}
	vol.Type = domain.VolFile
	size := uint64(st.Size)
	vol.Physical = size
	vol.Allocation = uint64(st.Blocks) * 512
	vol.Capacity = size
	info, err := imgformat.ProbeBuffer(fdReader(fd), st.Size, scratch)
	if err != nil && !imgformat.IsHeaderError(err) {
		return sysErr(err, "cannot read header of '%s'", path)
	}
	applyInfo(path, vol, info, pr)
	return nil
}

// applyInfo copies a probe's result into vol.
func applyInfo(path string, vol *domain.VolDef, info imgformat.Info, pr *probe) {
	vol.Target.Format = info.Format
	if info.HasVirtualSize {
		vol.Capacity = info.VirtualSize
	}
	// libvirt 9.0's probe reports the cluster size of qcow2 images only (not
	// qcow or qed), and the compat level only for version 3 images ("1.1"),
	// which always carry a features set: <features/> when it is empty.
	vol.Target.ClusterSize = 0
	if info.Format == imgformat.QCOW2 {
		vol.Target.ClusterSize = info.ClusterSize
	}
	vol.Target.Compat = ""
	if info.Compat == "1.1" {
		vol.Target.Compat = info.Compat
	}
	vol.Target.HasFeatures = info.Compat == "1.1"
	vol.Target.LazyRefcounts = info.LazyRefcounts
	vol.Target.ExtendedL2 = info.ExtendedL2
	vol.Target.Encryption = domain.VolEncryption{Format: info.Encryption}
	if info.BackingFile != "" {
		vol.Backing = backingStore(path, info, pr)
	}
}

// backingStore resolves an image's backing file one level down, as libvirt's
// refresh does: a relative name is relative to the image's directory, an
// unrecorded format is probed, and an unreadable backing file counts as raw.
//
// pr, when not nil, records the backing file's identity, taken before it is
// read so that a change racing with the read shows at the next check.
func backingStore(imagePath string, info imgformat.Info, pr *probe) *domain.BackingStore {
	bs := &domain.BackingStore{Path: info.BackingFile, Format: info.BackingFormat, Perms: domain.UnsetPerms()}
	if strings.Contains(bs.Path, ":") && !strings.HasPrefix(bs.Path, "/") {
		// nbd://, json:{...}, gluster:// ...: not a local file.
		if bs.Format == "" {
			bs.Format = imgformat.Raw
		}
		return bs
	}
	if !filepath.IsAbs(bs.Path) {
		bs.Path = filepath.Join(filepath.Dir(imagePath), bs.Path)
	}
	if pr != nil {
		pr.backingPath, pr.backingID = bs.Path, statID(bs.Path)
	}
	fd, err := openNoAtime(bs.Path)
	if err != nil {
		if bs.Format == "" {
			bs.Format = imgformat.Raw
		}
		return bs
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if unix.Fstat(fd, &st) == nil {
		bs.Perms = domain.Perms{Mode: int64(st.Mode & 0o777), Owner: int64(st.Uid), Group: int64(st.Gid)}
		bs.Timestamps = statTimes(&st) // libvirt shows the backing file's times too
		if bs.Format == "" {
			bs.Format = imgformat.Raw
			if st.Mode&unix.S_IFMT == unix.S_IFREG {
				if bi, err := imgformat.Probe(fdReader(fd), st.Size); err == nil || imgformat.IsHeaderError(err) {
					bs.Format = bi.Format
				}
			}
		}
	}
	if bs.Format == "" {
		bs.Format = imgformat.Raw
	}
	return bs
}

// statTimes are a file's times as libvirt's vol XML shows them (no birth time:
// libvirt prints 0 there).
func statTimes(st *unix.Stat_t) *domain.Timestamps {
	return &domain.Timestamps{
		Atime: time.Unix(st.Atim.Unix()),
		Mtime: time.Unix(st.Mtim.Unix()),
		Ctime: time.Unix(st.Ctim.Unix()),
	}
}
