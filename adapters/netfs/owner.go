package netfs

import (
	"context"
	"errors"
	"os/user"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/adapters/dir"
	"github.com/virtstoraged-go/virtstoraged/adapters/lib/oserr"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// owner is the netfs dir.VolOwner. An NFS export with root_squash maps root
// to nobody, who may not create files in the owner's directory nor chown
// them afterwards, so libvirt forks a child that takes the owner's uid and
// gid for each such step. In process we switch the filesystem uid and gid of
// the one OS thread doing the step instead: that is what the kernel and the
// NFS client check, and it leaves the daemon's other threads alone. A
// program (qemu-img) gets the owner's credentials at exec.
type owner struct{}

var _ dir.VolOwner = owner{}

// Do runs fn as the owner, libvirt's virFileOpenAs with VIR_FILE_OPEN_FORK.
func (owner) Do(p domain.Perms, fn func() error) error {
	uid, gid, ok := creator(p)
	if !ok {
		return fn()
	}
	return asUser(uid, gid, fn)
}

// Credential follows libvirt's virStorageBackendCreateExecCommand: qemu-img
// runs as the volume's owner when the daemon is root and the volume has an
// owner other than root, or when it has a group other than the daemon's.
func (owner) Credential(p domain.Perms) *ports.Credential {
	if !((unix.Geteuid() == 0 && p.Owner > 0) || (p.Group >= 0 && int(p.Group) != unix.Getegid())) {
		return nil
	}
	uid, gid := ownerIDs(p)
	return &ports.Credential{UID: uint32(uid), GID: uint32(gid), Groups: groupList(uint32(uid), uint32(gid))}
}

// ownerIDs are the uid and gid of perms, the daemon's own standing in for
// unset ones.
func ownerIDs(p domain.Perms) (uid, gid int) {
	uid, gid = unix.Geteuid(), unix.Getegid()
	if p.Owner >= 0 {
		uid = int(p.Owner)
	}
	if p.Group >= 0 {
		gid = int(p.Group)
	}
	return uid, gid
}

// groupList is libvirt's virGetGroupList: the supplementary groups of the
// user uid names, if any, plus gid. A uid without a passwd entry, common for
// the ids of an NFS export, has no groups of its own.
func groupList(uid, gid uint32) []uint32 {
	var groups []uint32
	if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil {
		if ids, err := u.GroupIds(); err == nil {
			for _, s := range ids {
				if g, err := strconv.ParseUint(s, 10, 32); err == nil {
					groups = append(groups, uint32(g))
				}
			}
		}
	}
	for _, g := range groups {
		if g == gid {
			return groups
		}
	}
	return append(groups, gid)
}

// BuildVol creates the volume as its owner when it has one other than root:
// files through dir.FileVolumes and its Owner, directories here, since
// libvirt creates them with VIR_DIR_CREATE_AS_UID (createDirAs).
func (b *Backend) BuildVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, flags uint32) error {
	if vol.Target.Format != "dir" || flags != 0 {
		return b.FileVolumes.BuildVol(ctx, pool, vol, flags)
	}
	mode := dir.VolMode(vol.Target.Perms)
	asDaemon := func() error { return b.FileVolumes.BuildVol(ctx, pool, vol, flags) }
	if err := createDirAs(vol.Target.Path, mode, vol.Target.Perms, false, asDaemon); err != nil {
		return err
	}
	vol.Capacity, vol.Allocation, vol.Physical = 0, 0, 0
	return nil
}

// createDirAs is libvirt's virDirCreate with VIR_DIR_CREATE_AS_UID: when the
// daemon is root, an owner or group is given, and the directory is not
// already there (with allowExist), the directory is made as that owner and
// group; otherwise, or when the owner is refused (EACCES), asDaemon makes it
// as the daemon, chowning it afterwards.
func createDirAs(path string, mode uint32, p domain.Perms, allowExist bool, asDaemon func() error) error {
	uid, gid, ok := creator(p)
	if !ok || (allowExist && unix.Access(path, unix.F_OK) == nil) {
		return asDaemon()
	}
	err := asUser(uid, gid, func() error { return mkdirOwned(path, mode, gid) })
	if errors.Is(err, unix.EACCES) {
		return asDaemon()
	}
	return err
}

// mkdirOwned is the part of virDirCreate that runs as the owner: mkdir, the
// group set again where the directory's setgid bit gave it its own, and the
// mode set again past the umask. A failure after the mkdir removes it.
func mkdirOwned(path string, mode uint32, gid int) (err error) {
	if err := unix.Mkdir(path, mode); err != nil {
		if errors.Is(err, unix.EACCES) {
			return err // the caller retries as the daemon
		}
		return oserr.System(err, "child failed to create directory '%s'", path)
	}
	defer func() {
		if err != nil {
			_ = unix.Rmdir(path)
		}
	}()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return oserr.System(err, "stat of '%s' failed", path)
	}
	if int(st.Gid) != gid {
		if err := unix.Chown(path, -1, gid); err != nil {
			return oserr.System(err, "cannot chown '%s' to group %d", path, gid)
		}
	}
	if err := unix.Chmod(path, mode); err != nil {
		return oserr.System(err, "cannot set mode of '%s' to %04o", path, mode)
	}
	return nil
}

// creator returns the ids a new volume is created with, and whether they
// differ from the daemon's own (only root can take other ids).
func creator(p domain.Perms) (uid, gid int, ok bool) {
	if unix.Geteuid() != 0 {
		return 0, 0, false
	}
	uid, gid = ownerIDs(p)
	return uid, gid, uid != 0 || gid != unix.Getegid()
}

// asUser runs fn on a locked OS thread whose filesystem uid and gid are uid
// and gid, and whose supplementary groups are the owner's (groupList), as in
// libvirt's forked child: a directory the owner may write through one of
// those groups accepts the create. Leaving fsuid 0 also drops the thread's
// filesystem capabilities (CAP_DAC_OVERRIDE, CAP_CHOWN, CAP_FOWNER...), so fn
// gets exactly the owner's rights, even on a local filesystem. Each of these
// is a per-thread credential for the kernel (x/sys's Setgroups is one raw
// system call, unlike the standard library's, which changes every thread).
// If anything cannot be put back, the thread is left locked so that the
// runtime discards it with the goroutine instead of reusing it.
func asUser(uid, gid int, fn func() error) error {
	return asUserWithGroups(uid, gid, groupList(uint32(uid), uint32(gid)), fn)
}

func asUserWithGroups(uid, gid int, groups []uint32, fn func() error) error {
	runtime.LockOSThread()
	prevGroups, err := unix.Getgroups()
	if err != nil {
		runtime.UnlockOSThread()
		return domain.SystemError(0, err, "cannot read the daemon's groups")
	}
	ids := make([]int, len(groups))
	for i, g := range groups {
		ids[i] = int(g)
	}
	if err := unix.Setgroups(ids); err != nil {
		runtime.UnlockOSThread()
		return domain.SystemError(0, err, "cannot switch to the groups of user %d", uid)
	}
	prevGID, err := unix.SetfsgidRetGid(gid)
	if err == nil {
		var prevUID int
		if prevUID, err = unix.SetfsuidRetUid(uid); err == nil {
			err = fn()
			_, _ = unix.SetfsuidRetUid(prevUID)
		} else {
			err = domain.SystemError(0, err, "cannot switch to user %d", uid)
		}
		_, _ = unix.SetfsgidRetGid(prevGID)
	} else {
		err = domain.SystemError(0, err, "cannot switch to group %d", gid)
	}
	_ = unix.Setgroups(prevGroups)
	if threadRestored(prevGroups) {
		runtime.UnlockOSThread()
	}
	return err
}

// threadRestored reports whether the locked thread is back to the daemon's
// credentials: fsuid and fsgid equal to the effective ids, which they follow
// outside asUser, and the groups it had before.
func threadRestored(groups []int) bool {
	// setfsuid answers the previous value; asking for an invalid id (-1)
	// changes nothing and tells what is in force.
	curUID, _ := unix.SetfsuidRetUid(-1)
	curGID, _ := unix.SetfsgidRetGid(-1)
	if curUID != unix.Geteuid() || curGID != unix.Getegid() {
		return false
	}
	cur, err := unix.Getgroups()
	if err != nil || len(cur) != len(groups) {
		return false
	}
	for i := range cur {
		if cur[i] != groups[i] {
			return false
		}
	}
	return true
}
