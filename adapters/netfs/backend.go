// Package netfs is the "netfs" pool backend: a network filesystem (NFS,
// GlusterFS, CIFS) mounted on the pool's target directory, whose files are
// the volumes. Volume operations are adapters/dir's FileVolumes; mounting is
// adapters/fs's Mounter, bounded in time so that an unreachable server gives
// an error instead of a hung daemon.
package netfs

import (
	"context"
	"errors"
	"os"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/virtstoraged-go/virtstoraged/adapters/dir"
	"github.com/virtstoraged-go/virtstoraged/adapters/lib/fsmount"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

var _ ports.PoolBackend = (*Backend)(nil)

// DefaultShowmountTimeout bounds the source discovery commands.
const DefaultShowmountTimeout = 15 * time.Second

// Backend serves netfs pools.
type Backend struct {
	dir.FileVolumes
	// MountTimeout bounds each mount and umount (New: fsmount.DefaultTimeout;
	// <= 0: no bound). Set it before the backend is used.
	MountTimeout time.Duration
	// ShowmountTimeout bounds showmount and the gluster CLI during source
	// discovery (New: DefaultShowmountTimeout; <= 0: no bound).
	ShowmountTimeout time.Duration

	runner    ports.CommandRunner
	mountinfo string
	log       *logrus.Entry
}

// New returns the netfs backend. Every external command (mount, umount,
// showmount, gluster, qemu-img, scrub) goes through runner; mountinfoPath is
// the mount table to read ("" = /proc/self/mountinfo).
func New(runner ports.CommandRunner, mountinfoPath string, log *logrus.Entry) *Backend {
	return &Backend{
		// Other clients change an export without inotify events.
		FileVolumes:      dir.FileVolumes{Runner: runner, Log: log, FullRefresh: true, Owner: owner{}},
		MountTimeout:     fsmount.DefaultTimeout,
		ShowmountTimeout: DefaultShowmountTimeout,
		runner:           runner,
		mountinfo:        mountinfoPath,
		log:              log,
	}
}

// Type is PoolNetFS.
func (b *Backend) Type() domain.PoolType { return domain.PoolNetFS }

func (b *Backend) mounter() *fsmount.Mounter {
	return &fsmount.Mounter{Runner: b.runner, MountinfoPath: b.mountinfo, Timeout: b.MountTimeout, Log: b.log}
}

// ValidatePool requires a host, a source dir and a target path, with
// libvirt's define-time texts.
func (b *Backend) ValidatePool(def *domain.PoolDef) error {
	if len(def.Source.Hosts) == 0 || def.Source.Hosts[0].Name == "" {
		return domain.Errorf(domain.KindXMLError, "missing storage pool source host name")
	}
	if def.Source.Dir == "" {
		return domain.Errorf(domain.KindXMLError, "missing storage pool source path")
	}
	if def.Target.Path == "" {
		return domain.Errorf(domain.KindXMLError, "missing storage pool target path")
	}
	switch fsmount.SourceFormat(def) {
	case FormatAuto, FormatNFS, FormatGlusterFS, FormatCIFS:
	default:
		return domain.Errorf(domain.KindXMLError, "unknown netfs pool format type %s", def.Source.Format)
	}
	return nil
}

// isValid is libvirt's start-time check (virStorageBackendFileSystemIsValid).
func isValid(def *domain.PoolDef) error {
	switch {
	case len(def.Source.Hosts) != 1:
		return domain.Errorf(domain.KindInternal, "expected exactly 1 host for the storage pool")
	case def.Source.Hosts[0].Name == "":
		return domain.Errorf(domain.KindInternal, "missing source host")
	case def.Source.Dir == "":
		return domain.Errorf(domain.KindInternal, "missing source path")
	}
	return nil
}

// CheckPool reports the pool active when its export is mounted on its target.
func (b *Backend) CheckPool(ctx context.Context, def *domain.PoolDef) (bool, error) {
	if err := isValid(def); err != nil {
		return false, err
	}
	if _, err := os.Stat(def.Target.Path); err != nil {
		return false, nil
	}
	return b.mounter().IsMounted(MountSource(def), def.Target.Path)
}

// BuildPool creates the target directory. A netfs pool has no device to
// format, so the overwrite flags fail after the mkdir, as in libvirt.
func (b *Backend) BuildPool(ctx context.Context, def *domain.PoolDef, flags uint32) error {
	if flags&^(domain.PoolBuildOverwrite|domain.PoolBuildNoOverwrite) != 0 {
		return domain.ErrUnsupportedFlags(flags&^(domain.PoolBuildOverwrite|domain.PoolBuildNoOverwrite), "virStorageBackendFileSystemBuild")
	}
	if err := domain.CheckBuildFlags(flags); err != nil {
		return err
	}
	if err := makeTargetDir(def); err != nil {
		return err
	}
	if flags != 0 {
		return domain.Errorf(domain.KindOperationInvalid, "No source device specified when formatting pool '%s'", def.Name)
	}
	return nil
}

// makeTargetDir is libvirt's virStorageBackendBuildLocal for a netfs pool:
// the mode defaults to 0711 even for a directory already there, and a new
// directory is made as the pool's owner (VIR_DIR_CREATE_AS_UID with
// VIR_DIR_CREATE_ALLOW_EXIST), so that a mount point inside an export
// squashing root can be made.
func makeTargetDir(def *domain.PoolDef) error {
	if err := dir.MakeTargetParent(def.Target.Path); err != nil {
		return err
	}
	withMode := *def
	if withMode.Target.Perms.Mode < 0 {
		withMode.Target.Perms.Mode = dir.DefaultPoolMode
	}
	asDaemon := func() error { return dir.MakeTargetDir(&withMode) }
	return createDirAs(def.Target.Path, uint32(withMode.Target.Perms.Mode), def.Target.Perms, true, asDaemon)
}

// StartPool mounts the export on the target unless it is already mounted.
func (b *Backend) StartPool(ctx context.Context, def *domain.PoolDef) error {
	if err := isValid(def); err != nil {
		return err
	}
	// What a refresh kept of the directory under the mount point is stale.
	b.ForgetPool(def)
	return b.mounter().Mount(ctx, def, MountArgv(def), MountSource(def))
}

// StopPool unmounts the target when the export is mounted on it.
func (b *Backend) StopPool(ctx context.Context, def *domain.PoolDef) error {
	if err := isValid(def); err != nil {
		return err
	}
	// Drop the inotify watch first: it is on the filesystem going away.
	b.ForgetPool(def)
	return b.mounter().Unmount(ctx, MountSource(def), def.Target.Path)
}

// DeletePool removes the (empty) target directory.
func (b *Backend) DeletePool(ctx context.Context, def *domain.PoolDef, flags uint32) error {
	b.ForgetPool(def)
	return fsmount.DeleteTarget(def, flags)
}

// RefreshPool lists the mounted export as a dir pool, after checking that
// it is still mounted (fsmount.NotMountedError).
func (b *Backend) RefreshPool(ctx context.Context, def *domain.PoolDef) (domain.PoolStats, []*domain.VolDef, error) {
	if err := isValid(def); err != nil {
		return domain.PoolStats{}, nil, err
	}
	mounted, err := b.mounter().IsMounted(MountSource(def), def.Target.Path)
	if err != nil {
		return domain.PoolStats{}, nil, err
	}
	if !mounted {
		b.ForgetPool(def)
		return domain.PoolStats{}, nil, fsmount.NotMountedError(def)
	}
	return b.FileVolumes.RefreshPool(ctx, def)
}

// FindPoolSources lists the NFS exports (showmount) and gluster volumes
// (gluster CLI) of the host in spec. Both run at once, each bounded by
// ShowmountTimeout. As in libvirt, a missing or failing gluster CLI is not an
// error, and a failed showmount is one only when gluster found nothing.
func (b *Backend) FindPoolSources(ctx context.Context, spec *domain.PoolSource, flags uint32) ([]domain.PoolSource, error) {
	if flags != 0 {
		return nil, domain.ErrUnsupportedFlags(flags, "virStorageBackendFileSystemNetFindPoolSources")
	}
	if spec == nil || len(spec.Hosts) != 1 || spec.Hosts[0].Name == "" {
		return nil, domain.Errorf(domain.KindInvalidArg, "hostname must be specified for netfs sources")
	}
	host := spec.Hosts[0].Name
	var (
		wg                sync.WaitGroup
		exports, glusters []string
		nfsErr, glErr     error
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		exports, nfsErr = b.showmount(ctx, host)
	}()
	go func() {
		defer wg.Done()
		glusters, glErr = b.glusterVolumes(ctx, host)
	}()
	wg.Wait()
	if glErr != nil {
		return nil, glErr
	}
	if nfsErr != nil && len(glusters) == 0 {
		if b.log != nil {
			b.log.WithError(nfsErr).Warnf("netfs: listing the NFS exports of %s failed", host)
		}
		if de, ok := fsmount.TimeoutDetail(nfsErr, "cannot list the NFS exports of %s", host); ok {
			return nil, de
		}
		return nil, domain.Errorf(domain.KindOperationFailed, "no storage pools were found on host '%s'", host)
	}
	sources := make([]domain.PoolSource, 0, len(exports)+len(glusters))
	for _, d := range exports {
		sources = append(sources, domain.PoolSource{Hosts: []domain.SourceHost{{Name: host}}, Dir: d, Format: FormatNFS})
	}
	for _, v := range glusters {
		sources = append(sources, domain.PoolSource{Hosts: []domain.SourceHost{{Name: host}}, Dir: v, Format: FormatGlusterFS})
	}
	return sources, nil
}

func (b *Backend) showmount(ctx context.Context, host string) ([]string, error) {
	argv := ShowmountArgv(host)
	out, err := fsmount.RunBounded(ctx, b.runner, ports.Command{Path: argv[0], Args: argv[1:]}, b.ShowmountTimeout)
	if err != nil {
		return nil, err
	}
	return ParseShowmount(out), nil
}

// glusterVolumes asks the gluster CLI; a host without gluster (the CLI
// missing, failing or timing out) simply has no gluster volumes.
func (b *Backend) glusterVolumes(ctx context.Context, host string) ([]string, error) {
	argv := GlusterArgv(host)
	out, err := fsmount.RunBounded(ctx, b.runner, ports.Command{Path: argv[0], Args: argv[1:]}, b.ShowmountTimeout)
	if err != nil {
		if b.log != nil && !errors.Is(err, ports.ErrCommandNotFound) {
			b.log.WithError(err).Debugf("netfs: no gluster volumes on %s", host)
		}
		return nil, nil
	}
	names, err := ParseGlusterVolumes(out)
	if err != nil {
		return nil, domain.Errorf(domain.KindXMLError, "failed to extract gluster volume name: %v", err)
	}
	return names, nil
}
