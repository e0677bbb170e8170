package dir

import (
	"strconv"
	"strings"

	"github.com/virtstoraged-go/virtstoraged/domain"
)

// qemuImg is the program name; the runner resolves it through PATH.
const qemuImg = "qemu-img"

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

// imgOptsFor derives the -o options of a new volume as libvirt does: qcow2
// without <compat> gets 0.10, preallocation is metadata unless the allocation
// covers the capacity (then falloc), and lazy_refcounts needs compat 1.1.
func imgOptsFor(vol *domain.VolDef, prealloc bool) (qemuImgOpts, error) {
	o := qemuImgOpts{
		format:        vol.Target.Format,
		nocow:         vol.Target.Nocow,
		compat:        vol.Target.Compat,
		clusterSize:   vol.Target.ClusterSize,
		lazyRefcounts: vol.Target.LazyRefcounts,
		extendedL2:    vol.Target.ExtendedL2,
	}
	if o.format == "qcow2" && o.compat == "" {
		o.compat = "0.10"
	}
	if o.format == "qcow2" && o.lazyRefcounts && o.compat == "0.10" {
		return o, domain.Errorf(domain.KindConfigUnsupported, "lazy_refcounts not supported with compat level %s", o.compat)
	}
	if prealloc {
		if kib(vol.Capacity) > kib(allocationOf(vol)) {
			o.prealloc = "metadata"
		} else {
			o.prealloc = "falloc"
		}
	}
	return o, nil
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
// volume: convert -f IN -O OUT [-o OPTS] SRC DST.
func qemuImgConvertArgs(srcPath, srcFormat, dstPath string, o qemuImgOpts) []string {
	args := []string{"convert", "-f", srcFormat, "-O", o.format}
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
