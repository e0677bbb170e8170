package dir

import (
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/adapters/lib/imgformat"
	"github.com/virtstoraged-go/virtstoraged/domain"
)

// qemuImg is the program name; the runner resolves it through PATH.
const qemuImg = "qemu-img"

// qemuImgError is the error of a failed qemu-img run. libvirt finds qemu-img
// in PATH before running it, so its "Child process (...)" text names the
// program by its full path.
func (v *FileVolumes) qemuImgError(err error, args []string) *domain.Error {
	name := qemuImg
	if p, lerr := v.lookPath(qemuImg); lerr == nil {
		name = p
	}
	return commandError(err, append([]string{name}, args...))
}

// qemuImgOpts is what goes into qemu-img's -o list, in libvirt's order.
type qemuImgOpts struct {
	format        string
	backingFormat string // only with a backing file
	// objects are qemu-img --object values (the secret of an encrypted
	// image); encryption are its -o options, which libvirt puts right after
	// backing_fmt.
	objects       []string
	encryption    []string
	prealloc      string // "", "metadata", "falloc"
	nocow         bool
	compat        string
	clusterSize   uint64
	lazyRefcounts bool
	extendedL2    bool
}

func (o qemuImgOpts) String() string {
	var opts []string
	if o.backingFormat != "" {
		opts = append(opts, "backing_fmt="+o.backingFormat)
	}
	opts = append(opts, o.encryption...)
	if o.prealloc != "" {
		opts = append(opts, "preallocation="+o.prealloc)
	}
	if o.nocow {
		opts = append(opts, "nocow=on")
	}
	if o.compat != "" {
		opts = append(opts, "compat="+o.compat)
	}
	if o.clusterSize != 0 {
		opts = append(opts, "cluster_size="+strconv.FormatUint(o.clusterSize, 10))
	}
	if o.format == "qcow2" {
		if o.lazyRefcounts {
			opts = append(opts, "lazy_refcounts")
		}
		if o.extendedL2 {
			opts = append(opts, "extended_l2=on")
		}
	}
	return strings.Join(opts, ",")
}

// qemuImgFormat is the name qemu-img knows a libvirt format by: an iso image
// is a plain raw file to it.
func qemuImgFormat(format string) string {
	if format == imgformat.ISO {
		return imgformat.Raw
	}
	return format
}

// qemuImgPlan makes libvirt's checks of a volume made by qemu-img (create, or
// convert from src), in libvirt's order, and derives the -o options and the
// backing file a create names: qcow2 without <compat> gets 0.10,
// preallocation is metadata unless the allocation covers the capacity (then
// falloc), and the qcow2 features need compat 1.1. A convert keeps its
// source's backing file, so it is only checked.
func qemuImgPlan(pool *domain.PoolDef, vol, src *domain.VolDef, prealloc bool) (o qemuImgOpts, backing string, err error) {
	t := &vol.Target
	o = qemuImgOpts{
		format:        qemuImgFormat(t.Format),
		nocow:         t.Nocow,
		compat:        t.Compat,
		clusterSize:   t.ClusterSize,
		lazyRefcounts: t.LazyRefcounts,
		extendedL2:    t.ExtendedL2,
	}
	qcow2 := o.format == imgformat.QCOW2
	switch {
	case prealloc && !qcow2:
		return o, "", domain.Errorf(domain.KindConfigUnsupported, "metadata preallocation only available with qcow2")
	case t.Compat != "" && !qcow2:
		return o, "", domain.Errorf(domain.KindConfigUnsupported, "compatibility option only available with qcow2")
	case (t.HasFeatures || t.LazyRefcounts || t.ExtendedL2) && !qcow2:
		return o, "", domain.Errorf(domain.KindConfigUnsupported, "format features only available with qcow2")
	}
	if vol.Backing != nil && vol.Backing.Path != "" {
		if backing, o.backingFormat, err = checkBacking(pool, vol, src, o.format, prealloc); err != nil {
			return o, "", err
		}
	}
	if qcow2 && o.compat == "" {
		o.compat = "0.10"
	}
	if qcow2 && o.compat == "0.10" {
		switch {
		case o.lazyRefcounts:
			return o, "", domain.Errorf(domain.KindConfigUnsupported, "lazy_refcounts not supported with compat level %s", o.compat)
		case o.extendedL2:
			return o, "", domain.Errorf(domain.KindConfigUnsupported, "'extended_l2' not supported with compat level %s", o.compat)
		}
	}
	if prealloc {
		if kib(vol.Capacity) > kib(allocationOf(vol)) {
			o.prealloc = "metadata"
		} else {
			o.prealloc = "falloc"
		}
	}
	if src != nil {
		backing, o.backingFormat = "", ""
	}
	return o, backing, nil
}

// checkBacking applies libvirt's rules to the backing store of a volume
// qemu-img makes and returns its path and format (raw when the XML gives
// none, as libvirt). A relative path is checked against the pool's
// directory, as qemu-img will resolve it against the image's.
func checkBacking(pool *domain.PoolDef, vol, src *domain.VolDef, format string, prealloc bool) (path, backingFormat string, err error) {
	if format == imgformat.Raw {
		return "", "", domain.Errorf(domain.KindConfigUnsupported, "cannot set backing store for raw volume")
	}
	path, backingFormat = vol.Backing.Path, vol.Backing.Format
	if backingFormat == "" {
		backingFormat = imgformat.Raw
	}
	if prealloc {
		return "", "", domain.Errorf(domain.KindConfigUnsupported, "metadata preallocation conflicts with backing store")
	}
	if src != nil && src.Backing != nil && src.Backing.Path != "" && src.Backing.Path != path {
		return "", "", domain.Errorf(domain.KindInternal, "a different backing store cannot be specified.")
	}
	abs := path
	if !strings.HasPrefix(abs, "/") {
		abs = pool.Target.Path + "/" + abs
	}
	if err := unix.Access(abs, unix.R_OK); err != nil {
		return "", "", sysErr(err, "inaccessible backing store volume %s", path)
	}
	return path, backingFormat, nil
}

// kib rounds up to whole KiB, the unit libvirt gives qemu-img sizes in.
func kib(n uint64) uint64 { return (n + 1023) / 1024 }

// allocationOf is the allocation asked for: when the XML gave none it is the
// capacity (a fully allocated volume), as libvirt's parser defaults it.
func allocationOf(vol *domain.VolDef) uint64 {
	if !vol.HasAllocation || vol.Allocation > vol.Capacity {
		return vol.Capacity
	}
	return vol.Allocation
}

// qemuImgCreateArgs is the argv of `qemu-img create` for a new volume:
// create -f FMT [-b BACKING] [--object OBJ]... [-o OPTS] PATH [SIZEK]. The
// size is left out only when a backing file gives it (no capacity asked).
func qemuImgCreateArgs(path string, capacity uint64, backing string, o qemuImgOpts) []string {
	args := []string{"create", "-f", o.format}
	if backing != "" {
		args = append(args, "-b", backing)
	}
	for _, obj := range o.objects {
		args = append(args, "--object", obj)
	}
	if s := o.String(); s != "" {
		args = append(args, "-o", s)
	}
	args = append(args, path)
	if capacity != 0 || backing == "" {
		args = append(args, strconv.FormatUint(kib(capacity), 10)+"K")
	}
	return args
}

// qemuImgConvertArgs is the argv of `qemu-img convert` cloning src into a new
// volume: convert -f IN -O OUT [-o OPTS] SRC DST. No size is given: the copy
// has its source's, whatever capacity was asked (as in libvirt, and as the
// formats qemu-img cannot resize, vmdk, vpc, vdi, qcow, require).
func qemuImgConvertArgs(srcPath, srcFormat, dstPath string, o qemuImgOpts) []string {
	args := []string{"convert", "-f", qemuImgFormat(srcFormat), "-O", o.format}
	if s := o.String(); s != "" {
		args = append(args, "-o", s)
	}
	return append(args, srcPath, dstPath)
}

// qemuImgResizeEncryptedArgs is `qemu-img resize` of an encrypted image:
// resize [--shrink] --object SECRET --image-opts IMAGE BYTES, the size
// rounded up to a 512-byte sector.
func qemuImgResizeEncryptedArgs(object, image string, capacity uint64, shrink bool) []string {
	args := []string{"resize"}
	if shrink {
		args = append(args, "--shrink")
	}
	return append(args, "--object", object, "--image-opts", image, strconv.FormatUint((capacity+511)&^511, 10))
}

// qemuImgResizeArgs is the argv of `qemu-img resize [--shrink] PATH BYTES`,
// the size rounded up to a 512-byte sector as qemu-img requires.
func qemuImgResizeArgs(path string, capacity uint64, shrink bool) []string {
	args := []string{"resize"}
	if shrink {
		args = append(args, "--shrink")
	}
	return append(args, path, strconv.FormatUint((capacity+511)&^511, 10))
}

// scrubArgs is the argv of scrub(1) overwriting a file with a pattern.
func scrubArgs(path, pattern string) []string {
	return []string{"-f", "-p", pattern, path}
}
