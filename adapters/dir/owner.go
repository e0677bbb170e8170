package dir

import (
	"context"
	"os"

	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// VolOwner acts as the owner of a new volume for the steps libvirt performs
// as that owner on netfs pools: an NFS server that squashes root maps the
// daemon to nobody, who may not create files in the owner's directory nor
// chown them afterwards. FileVolumes does everything as the daemon when its
// Owner is nil (dir and fs pools).
type VolOwner interface {
	// Do runs fn with the filesystem identity of the owner and group in
	// perms (the daemon's own ids standing in for unset ones), or simply
	// runs fn when that identity is the daemon's.
	Do(perms domain.Perms, fn func() error) error
	// Credential is the identity qemu-img runs with to make a volume with
	// perms; nil when the daemon runs it itself.
	Credential(perms domain.Perms) *ports.Credential
}

// VolMode is the mode a new volume gets: the asked one, 0600 by default.
func VolMode(perms domain.Perms) uint32 {
	if perms.Mode >= 0 {
		return uint32(perms.Mode)
	}
	return DefaultVolMode
}

// createFile creates a new volume's file with O_EXCL, gives it the mode and
// the owner asked for, and returns it open for writing. With an Owner it is
// created as the volume's owner (libvirt's virFileOpenAs with
// VIR_FILE_OPEN_FORK); what is then written through the descriptor needs no
// further permission, so the rest of the work runs as the daemon.
func (v *FileVolumes) createFile(path string, perms domain.Perms) (int, error) {
	if v.Owner == nil {
		return openVolFile(path, perms)
	}
	fd := -1
	err := v.Owner.Do(perms, func() (err error) {
		fd, err = openVolFile(path, perms)
		return err
	})
	return fd, err
}

// openVolFile is the create of createFile, as whoever runs it. A failure
// after the open removes the file again.
func openVolFile(path string, perms domain.Perms) (fd int, err error) {
	mode := VolMode(perms)
	fd, err = unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, mode)
	if err != nil {
		return -1, sysErr(err, "Failed to create file '%s'", path)
	}
	defer func() {
		if err != nil {
			unix.Close(fd)
			_ = unix.Unlink(path)
		}
	}()
	// The umask must not weaken or strengthen the mode asked for.
	if err := unix.Fchmod(fd, mode); err != nil {
		return -1, sysErr(err, "cannot set mode of '%s' to %04o", path, mode)
	}
	if o, g := perms.Owner, perms.Group; o >= 0 || g >= 0 {
		if err := unix.Fchown(fd, int(o), int(g)); err != nil {
			return -1, sysErr(err, "cannot chown '%s' to (%d, %d)", path, o, g)
		}
	}
	return fd, nil
}

// removeFile removes a half-made volume. With an Owner it first tries as the
// owner, who made the file and may be the only one allowed to remove it
// (libvirt's virFileRemove), then as the daemon.
func (v *FileVolumes) removeFile(path string, perms domain.Perms) {
	if v.Owner != nil && v.Owner.Do(perms, func() error { return os.Remove(path) }) == nil {
		return
	}
	_ = os.Remove(path)
}

// runImageToolAsOwner is the netfs half of libvirt's
// virStorageBackendCreateExecCommand: qemu-img runs as the volume's owner,
// with a umask that keeps the file within the asked mode. qemu-img creates
// its files 0644 whatever the umask, so a mode wider than that is set
// afterwards, as the owner again since the daemon may be squashed. It reports
// whether the owner's run made the file; when not, the caller runs the tool
// as the daemon, as libvirt falls back. Whatever the owner could not set is
// left to settlePerms.
func (v *FileVolumes) runImageToolAsOwner(ctx context.Context, vol *domain.VolDef, cmd ports.Command) (made bool) {
	perms := vol.Target.Perms
	cred := v.Owner.Credential(perms)
	if cred == nil {
		return false
	}
	mode := VolMode(perms)
	cmd.Cred, cmd.Umask = cred, 0o777^mode
	if _, err := v.Runner.Run(ctx, cmd); err != nil {
		if v.Log != nil {
			v.Log.WithError(err).WithField("vol", vol.Name).Debug("dir: qemu-img as the volume's owner failed, running it as the daemon")
		}
		return false
	}
	var st unix.Stat_t
	if err := unix.Stat(vol.Target.Path, &st); err != nil {
		return false
	}
	if st.Mode&0o777 != mode {
		_ = v.Owner.Do(perms, func() error { return unix.Chmod(vol.Target.Path, mode) })
	}
	return true
}

// runAsOwner runs cmd as the volume's owner when there is one, and as the
// daemon when there is none or the owner's run fails: for steps on a file the
// owner already holds (the qemu-img convert -n into an encrypted copy that
// qemu-img create made first).
func (v *FileVolumes) runAsOwner(ctx context.Context, perms domain.Perms, cmd ports.Command) error {
	if v.Owner != nil {
		if cred := v.Owner.Credential(perms); cred != nil {
			ocmd := cmd
			ocmd.Cred = cred
			if _, err := v.Runner.Run(ctx, ocmd); err == nil {
				return nil
			}
		}
	}
	_, err := v.Runner.Run(ctx, cmd)
	return err
}
