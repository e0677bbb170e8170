// Package fsmount mounts and unmounts the filesystems of fs and netfs pools,
// with libvirt's mount options and texts, and bounds commands in time (a
// mount of an unreachable NFS server would otherwise hang its caller). It is
// a library both backends share, so that neither imports the other.
package fsmount

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/adapters/lib/mountinfo"
	"github.com/virtstoraged-go/virtstoraged/adapters/lib/oserr"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// DefaultTimeout bounds a mount or umount when the backend is given none.
const DefaultTimeout = 30 * time.Second

// reapGrace is how long RunBounded waits, once the bound has passed, for the
// runner to come back from killing the command. A mount.nfs stuck in the
// kernel (D state) survives SIGKILL; we stop waiting for it rather than hang
// the caller, and the runner's goroutine ends whenever the process does.
const reapGrace = 2 * time.Second

// RunBounded runs cmd through r with a deadline of timeout (none when
// timeout <= 0). When the deadline passes it returns a *TimeoutError, even if
// the runner itself ignores ctx. A cancelled parent ctx returns ctx's error.
func RunBounded(ctx context.Context, r ports.CommandRunner, cmd ports.Command, timeout time.Duration) ([]byte, error) {
	if timeout <= 0 {
		return r.Run(ctx, cmd)
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	type result struct {
		out []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := r.Run(tctx, cmd)
		done <- result{out, err}
	}()
	timedOut := func() error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return &TimeoutError{Argv: append([]string{cmd.Path}, cmd.Args...), After: timeout}
	}
	select {
	case res := <-done:
		if res.err != nil && tctx.Err() != nil {
			return res.out, timedOut()
		}
		return res.out, res.err
	case <-tctx.Done():
	}
	select {
	case res := <-done:
		if res.err == nil {
			// It finished just as the deadline passed.
			return res.out, nil
		}
	case <-time.After(reapGrace):
	}
	return nil, timedOut()
}

// Mounter mounts and unmounts pool filesystems for the fs and netfs
// backends, and reads the mount table to know what is mounted.
type Mounter struct {
	Runner ports.CommandRunner
	// MountinfoPath is the mount table read ("" = /proc/self/mountinfo).
	MountinfoPath string
	// Timeout bounds each mount and umount command (<= 0: no bound).
	Timeout time.Duration
	Log     *logrus.Entry
}

// IsMounted reports whether source is mounted on target.
func (m *Mounter) IsMounted(source, target string) (bool, error) {
	ok, err := mountinfo.Check(m.MountinfoPath, source, target)
	if err != nil {
		return false, domain.Errorf(domain.KindInternal, "cannot read the mount table: %v", err)
	}
	return ok, nil
}

// Mount runs argv (a mount command line) unless source is already mounted on
// target, as libvirt's start does.
func (m *Mounter) Mount(ctx context.Context, def *domain.PoolDef, argv []string, source string) error {
	target := def.Target.Path
	mounted, err := m.IsMounted(source, target)
	if err != nil || mounted {
		return err
	}
	if len(def.MountOpts) > 0 && m.Log != nil {
		// libvirt taints the pool: options it does not control may break it.
		m.Log.WithField("pool", def.Name).Warn("fs: pool is tainted by custom mount_opts")
	}
	_, err = RunBounded(ctx, m.Runner, ports.Command{Path: argv[0], Args: argv[1:]}, m.Timeout)
	if err != nil {
		return mountErr(err, argv, "cannot mount %s on %s", source, target)
	}
	return nil
}

// Unmount unmounts target when source is mounted on it, and does nothing
// otherwise (libvirt's stop).
func (m *Mounter) Unmount(ctx context.Context, source, target string) error {
	mounted, err := m.IsMounted(source, target)
	if err != nil || !mounted {
		return err
	}
	argv := UmountArgv(target)
	_, err = RunBounded(ctx, m.Runner, ports.Command{Path: argv[0], Args: argv[1:]}, m.Timeout)
	if err != nil {
		return mountErr(err, argv, "cannot unmount %s", target)
	}
	return nil
}

// mountErr reports a timeout or cancellation in our own words (libvirt has
// none: its mount just hangs) and any other failure as libvirt does.
func mountErr(err error, argv []string, format string, args ...any) error {
	var te *TimeoutError
	switch {
	case errors.As(err, &te):
		e := domain.Errorf(domain.KindOperationFailed, format, args...)
		e.Detail += ": timed out after " + te.After.String()
		e.Err = err
		return e
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		e := domain.Errorf(domain.KindOperationFailed, format, args...)
		e.Detail += ": " + err.Error()
		e.Err = err
		return e
	}
	return oserr.Command(err, argv)
}

// TimeoutDetail is mountErr for callers outside the package (netfs's
// showmount): a timeout or cancellation becomes an operation-failed error
// with the given text; ok is false for any other error.
func TimeoutDetail(err error, format string, args ...any) (derr *domain.Error, ok bool) {
	var te *TimeoutError
	if !errors.As(err, &te) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return nil, false
	}
	e, _ := mountErr(err, nil, format, args...).(*domain.Error)
	return e, true
}

// TimeoutError is a command that did not finish within its bound: a mount of
// an unreachable NFS server, a showmount of a host that drops packets.
type TimeoutError struct {
	Argv  []string
	After time.Duration
}

// Error names the command and the bound.
func (e *TimeoutError) Error() string {
	return fmt.Sprintf("fsmount: %s: timed out after %s", strings.Join(e.Argv, " "), e.After)
}

// NotMountedError is what a refresh of an fs or netfs pool returns when its
// filesystem is no longer mounted. libvirt silently lists the directory
// underneath instead, showing the host's filesystem as the pool's; failing
// makes the service mark the pool inactive, as for a vanished dir pool.
func NotMountedError(def *domain.PoolDef) *domain.Error {
	return domain.Errorf(domain.KindOperationInvalid,
		"storage pool '%s' is not mounted on '%s': the filesystem was unmounted behind our back", def.Name, def.Target.Path)
}

// DeleteTarget removes an fs or netfs pool's target directory, libvirt's
// virStorageBackendDeleteLocal.
func DeleteTarget(def *domain.PoolDef, flags uint32) error {
	if flags != 0 {
		return domain.ErrUnsupportedFlags(flags, "virStorageBackendDeleteLocal")
	}
	if err := unix.Rmdir(def.Target.Path); err != nil {
		return oserr.System(err, "failed to remove pool '%s'", def.Target.Path)
	}
	return nil
}

// DefaultOptions are the options libvirt puts first on every pool mount
// (Linux): a pool holds images, never devices or programs to run.
const DefaultOptions = "nodev,nosuid,noexec"

// Options joins the -o value of a pool mount: the defaults, then extra
// (nfsvers=4.1, guest, direct-io-mode=1) when given, then the pool's
// <fs:mount_opts> in their XML order.
func Options(def *domain.PoolDef, extra string) string {
	parts := []string{DefaultOptions}
	if extra != "" {
		parts = append(parts, extra)
	}
	parts = append(parts, def.MountOpts...)
	return strings.Join(parts, ",")
}

// SourceFormat is the pool's source format, "auto" when the XML gives none.
func SourceFormat(def *domain.PoolDef) string {
	if def.Source.Format == "" {
		return "auto"
	}
	return def.Source.Format
}

// UmountArgv unmounts a pool's target.
func UmountArgv(target string) []string { return []string{"umount", target} }
