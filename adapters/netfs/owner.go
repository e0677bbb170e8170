package netfs

import (
	"context"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/domain"
)

// BuildVol creates the volume as its owner when it has one other than root.
// An NFS export with root_squash maps root to nobody, who may not create files
// in the owner's directory nor chown them afterwards; libvirt forks a child
// that takes the owner's uid and gid for this. We switch the filesystem uid
// and gid of the one OS thread running the creation instead: that is what the
// kernel and the NFS client check, and it leaves the daemon's other threads
// alone. Raw files and directories are made in process and so are made as the
// owner; image formats made by qemu-img run as root (exec resets the
// filesystem ids) and are chowned afterwards, as on other pools.
func (b *Backend) BuildVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, flags uint32) error {
	uid, gid, ok := creator(vol.Target.Perms)
	if !ok {
		return b.FileVolumes.BuildVol(ctx, pool, vol, flags)
	}
	return asUser(uid, gid, func() error { return b.FileVolumes.BuildVol(ctx, pool, vol, flags) })
}

// creator returns the ids a new volume is created with, and whether they
// differ from the daemon's own (only root can take other ids).
func creator(p domain.Perms) (uid, gid int, ok bool) {
	euid, egid := unix.Geteuid(), unix.Getegid()
	if euid != 0 {
		return 0, 0, false
	}
	uid, gid = euid, egid
	if p.Owner >= 0 {
		uid = int(p.Owner)
	}
	if p.Group >= 0 {
		gid = int(p.Group)
	}
	return uid, gid, uid != euid || gid != egid
}

// asUser runs fn on a locked OS thread whose filesystem uid and gid are uid
// and gid. If the ids cannot be put back, the thread is left locked so that
// the runtime discards it with the goroutine instead of reusing it.
func asUser(uid, gid int, fn func() error) error {
	runtime.LockOSThread()
	prevGID, err := unix.SetfsgidRetGid(gid)
	if err != nil {
		runtime.UnlockOSThread()
		return domain.SystemError(0, err, "cannot switch to group %d", gid)
	}
	prevUID, err := unix.SetfsuidRetUid(uid)
	if err == nil {
		err = fn()
	} else {
		err = domain.SystemError(0, err, "cannot switch to user %d", uid)
	}
	_, _ = unix.SetfsuidRetUid(prevUID)
	_, _ = unix.SetfsgidRetGid(prevGID)
	// setfsuid answers the previous value; asking for an invalid id (-1)
	// changes nothing and tells what is in force.
	curUID, _ := unix.SetfsuidRetUid(-1)
	curGID, _ := unix.SetfsgidRetGid(-1)
	if curUID == prevUID && curGID == prevGID {
		runtime.UnlockOSThread()
	}
	return err
}
