// Package dir is the "dir" pool backend: a pool is a directory, its volumes
// are the files (raw, qcow2 and other image formats) and subdirectories in it.
// The volume operations live in FileVolumes so that the fs and netfs backends,
// whose volumes are files in a mounted directory, reuse them.
package dir

import (
	"context"
	"errors"
	"os"
	"path/filepath"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

var _ ports.PoolBackend = (*Backend)(nil)

// Backend serves dir pools.
type Backend struct {
	FileVolumes
}

// New returns the dir backend; every external command (qemu-img, scrub) goes
// through runner.
func New(runner ports.CommandRunner, log *logrus.Entry) *Backend {
	return &Backend{FileVolumes: FileVolumes{Runner: runner, Log: log}}
}

// Type is PoolDir.
func (b *Backend) Type() domain.PoolType { return domain.PoolDir }

// ValidatePool requires a target path. A relative one is accepted here, as
// libvirt does at define time, and refused when the pool starts.
func (b *Backend) ValidatePool(def *domain.PoolDef) error {
	if def.Target.Path == "" {
		return domain.Errorf(domain.KindXMLError, "missing storage pool target path")
	}
	return nil
}

// CheckPool reports a dir pool active when its directory exists: libvirt
// brings such pools back as running after a daemon restart.
func (b *Backend) CheckPool(ctx context.Context, def *domain.PoolDef) (bool, error) {
	if !filepath.IsAbs(def.Target.Path) {
		return false, nil
	}
	st, err := os.Stat(def.Target.Path)
	return err == nil && st.IsDir(), nil
}

// BuildPool creates the target directory. The overwrite flags are accepted
// by the fs build code dir shares in libvirt, which then fails because a dir
// pool has no device to format.
func (b *Backend) BuildPool(ctx context.Context, def *domain.PoolDef, flags uint32) error {
	if flags&^(domain.PoolBuildOverwrite|domain.PoolBuildNoOverwrite) != 0 {
		return domain.ErrUnsupportedFlags(flags&^(domain.PoolBuildOverwrite|domain.PoolBuildNoOverwrite), "virStorageBackendFileSystemBuild")
	}
	if err := domain.CheckBuildFlags(flags); err != nil {
		return err
	}
	if err := MakeTargetDir(def); err != nil {
		return err
	}
	if flags != 0 {
		return domain.Errorf(domain.KindOperationInvalid, "No source device specified when formatting pool '%s'", def.Name)
	}
	return nil
}

// MakeTargetParent checks that a pool's target path is absolute and creates
// the directories above it, with default ids and mode.
func MakeTargetParent(path string) error {
	if !filepath.IsAbs(path) {
		return errnoErr(unix.ENOENT, "cannot create path '%s'", path)
	}
	parent := filepath.Dir(path)
	if err := os.MkdirAll(parent, 0o777); err != nil {
		return sysErr(err, "cannot create path '%s'", parent)
	}
	return nil
}

// MakeTargetDir creates a pool's target directory and its parents, as
// libvirt's virStorageBackendBuildLocal: a new directory gets the pool's mode
// (default 0711), an existing one keeps its mode unless one is given, and the
// owner and group are applied when given.
func MakeTargetDir(def *domain.PoolDef) error {
	path := def.Target.Path
	if err := MakeTargetParent(path); err != nil {
		return err
	}
	perms := def.Target.Perms
	mode := perms.Mode
	err := unix.Mkdir(path, DefaultPoolMode)
	switch {
	case err == nil:
		if mode < 0 {
			mode = DefaultPoolMode
		}
	case errors.Is(err, unix.EEXIST):
		var st unix.Stat_t
		if err := unix.Stat(path, &st); err != nil {
			return sysErr(err, "cannot create path '%s'", path)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return errnoErr(unix.ENOTDIR, "cannot create path '%s'", path)
		}
	default:
		return sysErr(err, "cannot create path '%s'", path)
	}
	if perms.Owner >= 0 || perms.Group >= 0 {
		if err := unix.Chown(path, int(perms.Owner), int(perms.Group)); err != nil {
			return sysErr(err, "cannot chown '%s' to (%d, %d)", path, perms.Owner, perms.Group)
		}
	}
	if mode >= 0 {
		// Chmod after mkdir, so that the umask does not trim the mode asked for.
		if err := unix.Chmod(path, uint32(mode)); err != nil {
			return sysErr(err, "cannot set mode of '%s' to %04o", path, mode)
		}
	}
	return nil
}

// StartPool checks that the target directory can be opened; a dir pool has
// nothing to start.
func (b *Backend) StartPool(ctx context.Context, def *domain.PoolDef) error {
	path := def.Target.Path
	if !filepath.IsAbs(path) {
		// libvirtd runs in /, where a relative target is not found.
		return utilErr(unix.ENOENT, "cannot open directory '%s'", path)
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return utilErr(err, "cannot open directory '%s'", path)
	}
	unix.Close(fd)
	return nil
}

// StopPool drops the pool's refresh cache and watch: a dir pool has
// nothing else to stop.
func (b *Backend) StopPool(ctx context.Context, def *domain.PoolDef) error {
	b.ForgetPool(def)
	return nil
}

// DeletePool removes the (empty) target directory.
func (b *Backend) DeletePool(ctx context.Context, def *domain.PoolDef, flags uint32) error {
	if flags != 0 {
		return domain.ErrUnsupportedFlags(flags, "virStorageBackendDeleteLocal")
	}
	b.ForgetPool(def)
	if err := unix.Rmdir(def.Target.Path); err != nil {
		return sysErr(err, "failed to remove pool '%s'", def.Target.Path)
	}
	return nil
}

// FindPoolSources is not supported for dir pools.
func (b *Backend) FindPoolSources(ctx context.Context, spec *domain.PoolSource, flags uint32) ([]domain.PoolSource, error) {
	return nil, domain.Errorf(domain.KindNoSupport, "pool type '%s' does not support source discovery", domain.PoolDir)
}

// RefreshPool refuses a relative target before listing it, like StartPool.
func (b *Backend) RefreshPool(ctx context.Context, def *domain.PoolDef) (domain.PoolStats, []*domain.VolDef, error) {
	if !filepath.IsAbs(def.Target.Path) {
		return domain.PoolStats{}, nil, utilErr(unix.ENOENT, "cannot open directory '%s'", def.Target.Path)
	}
	return b.FileVolumes.RefreshPool(ctx, def)
}
