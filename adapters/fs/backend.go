// Package fs is the "fs" pool backend: a block device holding a filesystem,
// mounted on the pool's target directory, whose files are the volumes. The
// volume operations are adapters/dir's FileVolumes; this package adds the
// mkfs, mount and umount around them, and the mount helpers netfs reuses.
package fs

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/virtstoraged-go/virtstoraged/adapters/dir"
	"github.com/virtstoraged-go/virtstoraged/adapters/lib/blockdev"
	"github.com/virtstoraged-go/virtstoraged/adapters/lib/fsmount"
	"github.com/virtstoraged-go/virtstoraged/adapters/lib/oserr"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

var _ ports.PoolBackend = (*Backend)(nil)

// Backend serves fs pools.
type Backend struct {
	dir.FileVolumes
	// MountTimeout bounds each mount and umount so that a device that never
	// answers cannot hang the daemon; New sets fsmount.DefaultTimeout, and
	// <= 0 means no bound. Set it before the backend is used.
	MountTimeout time.Duration

	runner    ports.CommandRunner
	mountinfo string
	log       *logrus.Entry
}

// New returns the fs backend. Every external command (mount, umount, mkfs,
// blkid, qemu-img, scrub) goes through runner; mountinfoPath is the mount
// table to read ("" = /proc/self/mountinfo).
func New(runner ports.CommandRunner, mountinfoPath string, log *logrus.Entry) *Backend {
	return &Backend{
		FileVolumes:  dir.FileVolumes{Runner: runner, Log: log},
		MountTimeout: fsmount.DefaultTimeout,
		runner:       runner,
		mountinfo:    mountinfoPath,
		log:          log,
	}
}

// Type is PoolFS.
func (b *Backend) Type() domain.PoolType { return domain.PoolFS }

func (b *Backend) mounter() *fsmount.Mounter {
	return &fsmount.Mounter{Runner: b.runner, MountinfoPath: b.mountinfo, Timeout: b.MountTimeout, Log: b.log}
}

// ValidatePool requires a target path and a source device, with libvirt's
// define-time texts.
func (b *Backend) ValidatePool(def *domain.PoolDef) error {
	if len(def.Source.Devices) == 0 || def.Source.Devices[0].Path == "" {
		return domain.Errorf(domain.KindXMLError, "missing storage pool source device name")
	}
	if def.Target.Path == "" {
		return domain.Errorf(domain.KindXMLError, "missing storage pool target path")
	}
	return nil
}

// isValid is libvirt's start-time check: exactly one device.
func isValid(def *domain.PoolDef) error {
	switch n := len(def.Source.Devices); {
	case n == 0:
		return domain.Errorf(domain.KindInternal, "missing source device")
	case n > 1:
		return domain.Errorf(domain.KindInternal, "expected exactly 1 device for the storage pool")
	}
	return nil
}

// CheckPool reports the pool active when its device is mounted on its target.
func (b *Backend) CheckPool(ctx context.Context, def *domain.PoolDef) (bool, error) {
	if err := isValid(def); err != nil {
		return false, err
	}
	if _, err := os.Stat(def.Target.Path); err != nil {
		return false, nil
	}
	return b.mounter().IsMounted(devicePath(def), def.Target.Path)
}

// BuildPool creates the target directory and, with a flag, the filesystem:
// OVERWRITE runs mkfs; NO_OVERWRITE probes the device first and refuses a
// device that already holds a filesystem or partition table.
func (b *Backend) BuildPool(ctx context.Context, def *domain.PoolDef, flags uint32) error {
	if flags&^(domain.PoolBuildOverwrite|domain.PoolBuildNoOverwrite) != 0 {
		return domain.ErrUnsupportedFlags(flags&^(domain.PoolBuildOverwrite|domain.PoolBuildNoOverwrite), "virStorageBackendFileSystemBuild")
	}
	if err := domain.CheckBuildFlags(flags); err != nil {
		return err
	}
	if err := dir.MakeTargetDir(def); err != nil {
		return err
	}
	if flags == 0 {
		return nil
	}
	return b.makeFilesystem(ctx, def, flags)
}

func (b *Backend) makeFilesystem(ctx context.Context, def *domain.PoolDef, flags uint32) error {
	dev := devicePath(def)
	if dev == "" {
		return domain.Errorf(domain.KindOperationInvalid, "No source device specified when formatting pool '%s'", def.Name)
	}
	if _, err := os.Stat(dev); err != nil {
		return domain.Errorf(domain.KindOperationInvalid, "Source device does not exist when formatting pool '%s'", def.Name)
	}
	format := fsmount.SourceFormat(def)
	if flags&domain.PoolBuildNoOverwrite != 0 {
		probe, err := b.probe(ctx, dev, format)
		if err != nil {
			return err
		}
		switch v, found := verdict(probe, format); v {
		case probeMatch:
			return domain.Errorf(domain.KindStoragePoolBuilt, "Device '%s' already formatted using '%s'", dev, found)
		case probeDifferent:
			return domain.Errorf(domain.KindStoragePoolBuilt, "Format of device '%s' does not match the expected format '%s', forced overwrite is necessary", dev, format)
		}
	}
	// Format "auto" runs `mkfs -t auto`, which fails with mkfs's own
	// "failed to execute mkfs.auto" as it does under libvirt.
	argv := MkfsArgv(format, dev)
	if _, err := b.runner.Run(ctx, ports.Command{Path: argv[0], Args: argv[1:]}); err != nil {
		return oserr.Command(err, argv)
	}
	return nil
}

// probe runs blkid on dev and words its failures as fs always has.
func (b *Backend) probe(ctx context.Context, dev, format string) (blockdev.Probe, error) {
	p, err := blockdev.RunBlkid(ctx, b.runner, dev)
	var unreadable *blockdev.BlkidOutputError
	switch {
	case err == nil:
		return p, nil
	case errors.As(err, &unreadable):
		// "fs: " is what the text said when fs parsed blkid itself; it is
		// user-visible, so it stays.
		return blockdev.Probe{}, domain.Errorf(domain.KindStorageProbeFailed, "Failed to probe for format type '%s': fs: %v", format, err)
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return blockdev.Probe{}, oserr.Command(err, blockdev.BlkidArgv(dev))
	}
	e := domain.Errorf(domain.KindStorageProbeFailed, "Failed to probe for format type '%s'", format)
	e.Detail += ": " + oserr.Command(err, blockdev.BlkidArgv(dev)).Detail
	e.Err = err
	return blockdev.Probe{}, e
}

// probeVerdict is libvirt's virStorageBackendBLKIDFindEmpty outcome for a
// build without OVERWRITE.
type probeVerdict int

const (
	probeEmpty     probeVerdict = iota // nothing there: mkfs may run
	probeMatch                         // the wanted filesystem is already there
	probeDifferent                     // something else is there
)

// verdict compares what was found with the wanted format, literally as
// libvirt does: a pool of format "auto" finds every filesystem different.
// It also returns the signature found.
func verdict(p blockdev.Probe, format string) (probeVerdict, string) {
	switch {
	case p.Type != "":
		if p.Type == format {
			return probeMatch, p.Type
		}
		return probeDifferent, p.Type
	case p.PTType != "":
		if p.PTType == format {
			return probeMatch, p.PTType
		}
		return probeDifferent, p.PTType
	}
	return probeEmpty, ""
}

// StartPool mounts the device on the target unless it is already mounted.
func (b *Backend) StartPool(ctx context.Context, def *domain.PoolDef) error {
	if err := isValid(def); err != nil {
		return err
	}
	// What a refresh kept of the directory under the mount point is stale.
	b.ForgetPool(def)
	return b.mounter().Mount(ctx, def, MountArgv(def), devicePath(def))
}

// StopPool unmounts the target when the device is mounted on it.
func (b *Backend) StopPool(ctx context.Context, def *domain.PoolDef) error {
	if err := isValid(def); err != nil {
		return err
	}
	// Drop the inotify watch first: it is on the filesystem going away.
	b.ForgetPool(def)
	return b.mounter().Unmount(ctx, devicePath(def), def.Target.Path)
}

// DeletePool removes the (empty) target directory.
func (b *Backend) DeletePool(ctx context.Context, def *domain.PoolDef, flags uint32) error {
	b.ForgetPool(def)
	return fsmount.DeleteTarget(def, flags)
}

// RefreshPool lists the mounted filesystem as a dir pool, after checking
// that it is still mounted: see fsmount.NotMountedError.
func (b *Backend) RefreshPool(ctx context.Context, def *domain.PoolDef) (domain.PoolStats, []*domain.VolDef, error) {
	if err := isValid(def); err != nil {
		return domain.PoolStats{}, nil, err
	}
	mounted, err := b.mounter().IsMounted(devicePath(def), def.Target.Path)
	if err != nil {
		return domain.PoolStats{}, nil, err
	}
	if !mounted {
		b.ForgetPool(def)
		return domain.PoolStats{}, nil, fsmount.NotMountedError(def)
	}
	return b.FileVolumes.RefreshPool(ctx, def)
}

// FindPoolSources is not supported for fs pools.
func (b *Backend) FindPoolSources(ctx context.Context, spec *domain.PoolSource, flags uint32) ([]domain.PoolSource, error) {
	return nil, domain.Errorf(domain.KindNoSupport, "pool type '%s' does not support source discovery", domain.PoolFS)
}
