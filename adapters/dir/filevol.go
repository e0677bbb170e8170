package dir

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/adapters/lib/imgformat"
	"github.com/virtstoraged-go/virtstoraged/adapters/lib/qcow2"
	"github.com/virtstoraged-go/virtstoraged/adapters/luks"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// Default modes, as libvirt's VIR_STORAGE_DEFAULT_{POOL,VOL}_PERM_MODE.
const (
	DefaultPoolMode = 0o711
	DefaultVolMode  = 0o600
)

// volFormats are the formats a file pool accepts (pool-capabilities).
var volFormats = map[string]bool{
	"none": true, "raw": true, "dir": true, "bochs": true, "cloop": true, "dmg": true, "iso": true,
	"vpc": true, "vdi": true, "fat": true, "vhd": true, "ploop": true, "cow": true, "qcow": true,
	"qcow2": true, "qed": true, "vmdk": true,
}

// FileVolumes holds the volume operations of the pools whose volumes are files
// in a target directory: dir, and fs and netfs once their filesystem is
// mounted. Those backends embed it and add their own pool operations.
type FileVolumes struct {
	Runner ports.CommandRunner
	Log    *logrus.Entry
	// Workers bounds the parallel inspection of a refresh; 0 picks a number
	// from the cores.
	Workers int
	// FullRefresh makes every RefreshPool read every file, for filesystems
	// where inotify misses changes (netfs; NFS, CIFS and FUSE are detected).
	FullRefresh bool
	// QemuImgOnly turns off the native qcow2 writer, so that every non-raw image
	// is made by qemu-img (argv tests, and a fallback switch).
	QemuImgOnly bool
	// Owner, when set, makes new volumes' files as their owner (netfs); nil
	// makes them as the daemon and chowns them.
	Owner VolOwner
	// LookPath finds the programs whose absence or place libvirt reports
	// (ploop, and qemu-img named by its full path in errors); nil is
	// exec.LookPath.
	LookPath func(file string) (string, error)
	// Keys reads the passphrases of encrypted volumes from the secret driver
	// for qemu-img; nil refuses to make or open them.
	Keys *luks.Keys

	// watchMu guards watches, the incremental refresh state (watch.go),
	// created on first use.
	watchMu sync.Mutex
	watches *watchSet
	quiet   quietFiles
	// clock is time.Now when nil; tests replace it to make a file look quiet.
	clock func() time.Time
}

func (v *FileVolumes) now() time.Time {
	if v.clock != nil {
		return v.clock()
	}
	return time.Now()
}

// DefaultVolFormat is raw, as for every file pool.
func (v *FileVolumes) DefaultVolFormat() string { return imgformat.Raw }

// PrepareVol checks a new volume's name and format, and fills its key, path,
// type and default format. It refuses a path that already exists on disk.
func (v *FileVolumes) PrepareVol(pool *domain.PoolDef, vol *domain.VolDef) error {
	if strings.Contains(vol.Name, "/") {
		return domain.Errorf(domain.KindOperationInvalid, "volume name '%s' cannot contain '/'", vol.Name)
	}
	if vol.Name == "" || vol.Name == "." || vol.Name == ".." {
		// Never a file of its own; libvirt finds the directory there.
		return domain.Errorf(domain.KindOperationInvalid, "volume target path '%s' already exists", volPath(pool.Target.Path, vol.Name))
	}
	if vol.Target.Format == "" {
		vol.Target.Format = imgformat.Raw
	}
	if !volFormats[vol.Target.Format] {
		return domain.Errorf(domain.KindConfigUnsupported, "unknown volume format type %s", vol.Target.Format)
	}
	switch vol.Target.Format {
	case "dir":
		vol.Type = domain.VolDir
	case ploop:
		vol.Type = domain.VolPloop
	default:
		vol.Type = domain.VolFile
	}
	vol.Target.Path = volPath(pool.Target.Path, vol.Name)
	vol.Key = vol.Target.Path
	var st unix.Stat_t
	if err := unix.Lstat(vol.Target.Path, &st); err == nil {
		return domain.Errorf(domain.KindOperationInvalid, "volume target path '%s' already exists", vol.Target.Path)
	}
	return nil
}

// RefreshVol re-reads one volume's figures and format from disk.
func (v *FileVolumes) RefreshVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef) error {
	// Not on network filesystems: their stat may answer from an attribute
	// cache, where the open of a full read revalidates.
	if !v.FullRefresh && v.quiet.refresh(vol) {
		v.Keys.LoadDefault(ctx, v.Log, vol)
		return nil
	}
	before := vol.Target.Encryption
	var pr probe
	defined := vol.Target
	err := inspectProbe(vol.Target.Path, vol, nil, &pr)
	if err == nil {
		keepDefined(vol, &defined)
	}
	if errors.Is(err, errSkip) {
		v.quiet.forget(vol.Target.Path)
		return errnoErr(unix.ENOENT, "cannot open volume '%s'", vol.Target.Path)
	}
	if err != nil {
		return err
	}
	if pr.mode == unix.S_IFREG && !v.FullRefresh {
		v.quiet.remember(vol.Target.Path, &pr.stat, v.now())
	}
	v.refreshEncryption(ctx, vol, before)
	return nil
}

// keepDefined puts back into a re-read volume what libvirt's per-volume
// refresh (after create, resize, upload, and for every info or XML call)
// never reads again: the compat level, cluster size and features the volume
// was defined or last probed with, which only a pool refresh probes anew (so
// a qcow2 made with compat 1.1 and no <features> shows none until then). A
// format the header does not tell apart from raw stays too: an iso volume,
// which qemu-img writes as raw, is iso until the next pool refresh, with its
// file size as capacity, as in libvirt. Only a file rewritten as another kind
// of image is read as what it now is (libvirt: at the next pool refresh).
func keepDefined(vol *domain.VolDef, defined *domain.VolTarget) {
	t := &vol.Target
	switch {
	case vol.Type != domain.VolFile:
		return
	case t.Format == defined.Format:
	case t.Format == imgformat.Raw && defined.Format != "" && defined.Format != "dir":
		t.Format = defined.Format
	default:
		return
	}
	t.Compat, t.ClusterSize = defined.Compat, defined.ClusterSize
	t.HasFeatures, t.LazyRefcounts, t.ExtendedL2 = defined.HasFeatures, defined.LazyRefcounts, defined.ExtendedL2
}

// DeleteVol removes the volume's file (rmdir for a dir volume). A file that is
// already gone is not an error.
func (v *FileVolumes) DeleteVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, flags uint32) error {
	if flags != 0 {
		return domain.ErrUnsupportedFlags(flags, "virStorageBackendVolDeleteLocal")
	}
	if vol.Type == domain.VolDir {
		if err := unix.Rmdir(vol.Target.Path); err != nil && !errors.Is(err, unix.ENOENT) {
			return sysErr(err, "cannot remove directory '%s'", vol.Target.Path)
		}
		return nil
	}
	v.quiet.forget(vol.Target.Path)
	if err := unix.Unlink(vol.Target.Path); err != nil && !errors.Is(err, unix.ENOENT) {
		return sysErr(err, "cannot unlink file '%s'", vol.Target.Path)
	}
	return nil
}

// BuildVol creates the volume on disk: raw files in process, directories with
// mkdir, every other format and every encrypted volume with qemu-img create.
func (v *FileVolumes) BuildVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, flags uint32) error {
	switch {
	case vol.Target.Format == "dir":
		return createDir(vol, flags)
	case vol.Target.Format == ploop:
		return v.createPloop(vol, nil, flags)
	case vol.Target.Encryption.Encrypted():
		return v.createEncrypted(ctx, pool, vol, flags)
	case vol.Target.Format == imgformat.Raw:
		return v.createRaw(ctx, vol, nil, flags)
	default:
		return v.qemuImgCreate(ctx, pool, vol, flags)
	}
}

// BuildVolFrom creates vol as a copy of src: raw to raw in process (sparse,
// or a reflink with VolCreateReflink), anything else with qemu-img convert,
// in libvirt's two steps when either side is encrypted.
// The new volume's capacity is the larger of the source's and the one asked.
func (v *FileVolumes) BuildVolFrom(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, srcPool *domain.PoolDef, src *domain.VolDef, flags uint32) error {
	srcFormat := src.Target.Format
	if srcFormat == "" || src.Type == domain.VolBlock {
		srcFormat = imgformat.Raw
	}
	if vol.Target.Format == "dir" || src.Type == domain.VolDir {
		return domain.Errorf(domain.KindOperationUnsupported, "cannot copy a directory volume")
	}
	if !vol.HasCapacity || vol.Capacity < src.Capacity {
		vol.Capacity = src.Capacity
	}
	if vol.Target.Encryption.Encrypted() || src.Target.Encryption.Encrypted() {
		return v.convertEncrypted(ctx, pool, vol, src, srcFormat, flags)
	}
	// libvirt's choice: qemu-img when either side is a file that is not
	// plain raw; else a ploop volume from ploop tools, else a raw copy.
	srcFile := src.Type == domain.VolFile && srcFormat != imgformat.Raw
	switch {
	case srcFile, vol.Type == domain.VolFile && vol.Target.Format != imgformat.Raw:
		return v.qemuImgConvert(ctx, pool, vol, src, srcFormat, flags)
	case vol.Type == domain.VolPloop:
		return v.createPloop(vol, src, flags)
	}
	return v.createRaw(ctx, vol, src, flags)
}

// setPerms gives a file made by someone else (qemu-img) the volume's mode
// (default 0600) and owner, as libvirt does after running the tool.
func setPerms(path string, perms domain.Perms) error {
	mode := VolMode(perms)
	if perms.Owner >= 0 || perms.Group >= 0 {
		if err := unix.Chown(path, int(perms.Owner), int(perms.Group)); err != nil {
			return sysErr(err, "cannot chown '%s' to (%d, %d)", path, perms.Owner, perms.Group)
		}
	}
	if err := unix.Chmod(path, mode); err != nil {
		return sysErr(err, "cannot set mode of '%s' to %04o", path, mode)
	}
	return nil
}

// settlePerms is the end of libvirt's virStorageBackendCreateExecCommand:
// only the ids and the mode the file does not have yet are set. A file the
// owner made on a root-squashing export is already theirs, and the chown
// setPerms would do there is refused.
func settlePerms(path string, perms domain.Perms) error {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return sysErr(err, "failed to create %s", path)
	}
	uid, gid := -1, -1
	if perms.Owner >= 0 && uint32(perms.Owner) != st.Uid {
		uid = int(perms.Owner)
	}
	if perms.Group >= 0 && uint32(perms.Group) != st.Gid {
		gid = int(perms.Group)
	}
	if uid >= 0 || gid >= 0 {
		if err := unix.Chown(path, uid, gid); err != nil {
			// libvirt's text here: no quotes, the ids as passed (-1 unsigned).
			return sysErr(err, "cannot chown %s to (%d, %d)", path, uint32(uid), uint32(gid))
		}
	}
	if mode := VolMode(perms); st.Mode&0o777 != mode {
		if err := unix.Chmod(path, mode); err != nil {
			return sysErr(err, "cannot set mode of '%s' to %04o", path, mode)
		}
	}
	return nil
}

func createDir(vol *domain.VolDef, flags uint32) error {
	if flags != 0 {
		return domain.ErrUnsupportedFlags(flags, "createFileDir")
	}
	mode := VolMode(vol.Target.Perms)
	if err := unix.Mkdir(vol.Target.Path, mode); err != nil {
		return sysErr(err, "cannot create path '%s'", vol.Target.Path)
	}
	if err := setPerms(vol.Target.Path, vol.Target.Perms); err != nil {
		_ = unix.Rmdir(vol.Target.Path)
		return err
	}
	vol.Capacity, vol.Allocation, vol.Physical = 0, 0, 0
	return nil
}

// qemuImgCreate builds a non-raw image with qemu-img create.
func (v *FileVolumes) qemuImgCreate(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, flags uint32) error {
	if flags&^domain.VolCreatePreallocMetadata != 0 {
		return domain.ErrUnsupportedFlags(flags&^domain.VolCreatePreallocMetadata, "storageBackendCreateQemuImg")
	}
	if err := checkSecrets(vol); err != nil {
		return err
	}
	o, backing, err := qemuImgPlan(pool, vol, nil, flags&domain.VolCreatePreallocMetadata != 0)
	if err != nil {
		return err
	}
	capacity := vol.Capacity
	if !vol.HasCapacity {
		capacity = 0
	}
	if native := nativeQcow2Options(capacity, backing, o); !v.QemuImgOnly && qcow2.Supported(native) {
		err := v.createQcow2(vol, native)
		var oe *qcow2.OptionError
		if !errors.As(err, &oe) {
			return err
		}
		// Options qemu-img refuses: let it refuse them, so the error reads
		// exactly as libvirt's (Child process (qemu-img create ...) ...).
	}
	args := qemuImgCreateArgs(vol.Target.Path, capacity, backing, o)
	return v.runImageTool(ctx, vol, args)
}

// nativeQcow2Options are the qemu-img create options as the native qcow2
// writer takes them, with the size rounded up to KiB as qemu-img receives it,
// so that both produce the same image.
func nativeQcow2Options(capacity uint64, backing string, o qemuImgOpts) qcow2.CreateOptions {
	if o.format != "qcow2" || o.clusterSize > 1<<21 {
		return qcow2.CreateOptions{Encrypted: true} // not ours: Supported says no
	}
	return qcow2.CreateOptions{
		Size:          kib(capacity) * 1024,
		Compat:        o.compat,
		ClusterSize:   uint32(o.clusterSize),
		LazyRefcounts: o.lazyRefcounts,
		BackingFile:   backing,
		BackingFormat: o.backingFormat,
		Preallocation: o.prealloc,
		NoCOW:         o.nocow,
		ExtendedL2:    o.extendedL2,
	}
}

// createQcow2 writes a qcow2 image in process: the common cases need no
// qemu-img fork and exec, which is most of a create's cost. On failure the
// half-made file is removed, as runImageTool does. With an Owner the file is
// created as the owner, with its mode, as the qemu-img it replaces would
// have been run.
func (v *FileVolumes) createQcow2(vol *domain.VolDef, o qcow2.CreateOptions) error {
	path := vol.Target.Path
	var f *os.File
	if v.Owner != nil {
		fd, err := v.createFile(path, vol.Target.Perms)
		if err != nil {
			return err
		}
		f = os.NewFile(uintptr(fd), path)
	} else {
		var err error
		if f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, DefaultVolMode); err != nil {
			return sysErr(err, "cannot create file '%s'", path)
		}
	}
	err := qcow2.Create(f, o)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		v.removeFile(path, vol.Target.Perms)
		var oe *qcow2.OptionError
		switch {
		case errors.As(err, &oe):
			return err
		case errors.Is(err, qcow2.ErrBackingFile):
			return domain.Errorf(domain.KindInternal, "inaccessible backing store volume %s: %v", o.BackingFile, err)
		}
		return sysErr(err, "cannot write qcow2 image '%s'", path)
	}
	if v.Owner != nil {
		return nil // createFile applied the mode and owner
	}
	if err := setPerms(path, vol.Target.Perms); err != nil {
		_ = os.Remove(path)
		return err
	}
	return nil
}

// qemuImgConvert clones src into vol with qemu-img convert. A capacity
// larger than the source's is not applied, as in libvirt: the copy has the
// source's size (qemu-img cannot resize vmdk, vpc, vdi or qcow images).
func (v *FileVolumes) qemuImgConvert(ctx context.Context, pool *domain.PoolDef, vol, src *domain.VolDef, srcFormat string, flags uint32) error {
	if flags&^domain.VolCreatePreallocMetadata != 0 {
		return domain.ErrUnsupportedFlags(flags&^domain.VolCreatePreallocMetadata, "storageBackendCreateQemuImg")
	}
	if err := checkSecrets(vol); err != nil {
		return err
	}
	if err := checkSecrets(src); err != nil {
		return err
	}
	o, _, err := qemuImgPlan(pool, vol, src, flags&domain.VolCreatePreallocMetadata != 0)
	if err != nil {
		return err
	}
	return v.runImageTool(ctx, vol, qemuImgConvertArgs(src.Target.Path, srcFormat, vol.Target.Path, o))
}

// checkSecrets is libvirt's first check of an encrypted volume qemu-img
// makes or reads: its key comes from exactly one secret.
func checkSecrets(vol *domain.VolDef) error {
	if vol.Target.Encryption.Encrypted() && len(vol.Target.Encryption.Secrets) != 1 {
		return domain.Errorf(domain.KindInvalidArg, "A single <secret type='passphrase'...> element is expected in encryption description")
	}
	return nil
}

// runImageTool runs qemu-img making vol's file, then applies the volume's
// permissions; on failure the half-made file is removed (PrepareVol made sure
// nothing was there before). With an Owner, qemu-img first runs as the
// volume's owner (runImageToolAsOwner).
func (v *FileVolumes) runImageTool(ctx context.Context, vol *domain.VolDef, args []string) error {
	cmd := ports.Command{Path: qemuImg, Args: args}
	if v.Owner == nil || !v.runImageToolAsOwner(ctx, vol, cmd) {
		if _, err := v.Runner.Run(ctx, cmd); err != nil {
			v.removeFile(vol.Target.Path, vol.Target.Perms)
			return v.qemuImgError(err, args)
		}
	}
	if err := settlePerms(vol.Target.Path, vol.Target.Perms); err != nil {
		v.removeFile(vol.Target.Path, vol.Target.Perms)
		return err
	}
	return nil
}
