// Package qcow2 writes new, empty qcow2 images in pure Go, laid out byte for
// byte as qemu-img 7.2 (Debian 12) lays them out, so that volume creation does
// not pay for a qemu-img process (about 14 creates/s against thousands).
//
// Only the plain cases are handled: no preallocation, no encryption, no
// external data file, no extended L2 entries, and a backing file only in raw
// or qcow2 format. Supported tells the caller when it must run qemu-img
// instead. Sizes that would make qemu grow the refcount table during creation
// (only possible with cluster sizes of 512 bytes) are left to qemu-img too,
// because matching its reftable-growth heuristics buys nothing for a layout
// nobody uses.
package qcow2

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// ErrUnsupported is returned by Create for options it does not write
// natively; the caller runs qemu-img create for those.
var ErrUnsupported = errors.New("qcow2: options not supported natively, use qemu-img")

// ErrInvalidOption is matched (errors.Is) by every *OptionError.
var ErrInvalidOption = errors.New("qcow2: invalid option")

// ErrBackingFile is matched (errors.Is) by the errors Create returns when the
// backing file cannot be opened or is not in the stated format, the two checks
// qemu-img create makes before writing anything.
var ErrBackingFile = errors.New("qcow2: unusable backing file")

// OptionError reports options that qemu-img create itself rejects. Message is
// qemu-img's own wording (after its "qemu-img: PATH: " prefix), so that a
// caller imitating libvirt can show what libvirt would have shown.
type OptionError struct {
	Option  string // the -o option at fault, e.g. "cluster_size"
	Message string // qemu-img's error text, e.g. "Cluster size must be a power of two between 512 and 2048k"
}

// Error implements error.
func (e *OptionError) Error() string {
	return fmt.Sprintf("qcow2: invalid %s: %s", e.Option, e.Message)
}

// Is makes errors.Is(err, ErrInvalidOption) true.
func (e *OptionError) Is(target error) bool { return target == ErrInvalidOption }

// CreateOptions are the qemu-img create -o options libvirt passes for qcow2.
type CreateOptions struct {
	Size          uint64 // virtual size in bytes; rounded up to 512 as qemu-img does
	Compat        string // "0.10"/"v2" (version 2) or "1.1"/"v3" (version 3); "" = "1.1", qemu-img's default
	ClusterSize   uint32 // 0 = 65536; a power of two from 512 to 2 MiB
	LazyRefcounts bool   // version 3 only
	BackingFile   string // stored as given; a relative name is relative to the image's directory
	BackingFormat string // header extension 0xe2792aca; "raw" or "qcow2" natively, without it qemu-img must probe
	Preallocation string // "" or "off"; "metadata", "falloc" and "full" are left to qemu-img
	NoCOW         bool   // nocow=on: set FS_NOCOW_FL, best effort, as qemu's file driver does
	ExtendedL2    bool   // extended_l2=on: left to qemu-img
	Encrypted     bool   // any encrypt.* option: left to qemu-img
	DataFile      string // data_file=: left to qemu-img
}

// Supported reports whether Create handles these options natively, else the
// caller must run qemu-img. Options qemu-img would reject count as supported:
// Create then returns an *OptionError with qemu-img's message.
func Supported(o CreateOptions) bool {
	_, err := plan(o)
	return !errors.Is(err, ErrUnsupported)
}

// Create writes a new qcow2 image to f, an empty writable file (it is
// truncated first if not, as qemu-img opens with O_TRUNC), exactly as qemu-img
// create would lay it out. It does not fsync: neither does libvirt's qemu-img
// path, and the caller owns f.
func Create(f *os.File, o CreateOptions) error {
	l, err := plan(o)
	if err != nil {
		return err
	}
	if o.BackingFile != "" {
		if err := checkBacking(f.Name(), o.BackingFile, o.BackingFormat); err != nil {
			return err
		}
	}
	if st, err := f.Stat(); err != nil {
		return fmt.Errorf("qcow2: stat %s: %w", f.Name(), err)
	} else if st.Size() != 0 {
		if err := f.Truncate(0); err != nil {
			return fmt.Errorf("qcow2: truncate %s: %w", f.Name(), err)
		}
	}
	if o.NoCOW {
		setNoCOW(f)
	}
	if err := l.writeTo(f); err != nil {
		return fmt.Errorf("qcow2: write %s: %w", f.Name(), err)
	}
	return nil
}

// fsNoCOWFlag is FS_NOCOW_FL from linux/fs.h, which x/sys/unix does not export.
const fsNoCOWFlag = 0x00800000

// setNoCOW ignores every failure, as qemu does: only btrfs has the flag and
// it can only be set while the file is empty.
func setNoCOW(f *os.File) {
	fd := int(f.Fd())
	flags, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err != nil {
		return
	}
	_ = unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(flags|fsNoCOWFlag))
}

// checkBacking makes the checks qemu-img create makes by opening the backing
// image: it must exist, and a qcow2 one must carry the qcow2 magic.
func checkBacking(imagePath, backing, format string) error {
	p := backing
	if !filepath.IsAbs(p) {
		p = filepath.Join(filepath.Dir(imagePath), p)
	}
	bf, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("%w: could not open %q: %w", ErrBackingFile, backing, err)
	}
	defer bf.Close()
	st, err := bf.Stat()
	if err != nil {
		return fmt.Errorf("%w: stat %q: %w", ErrBackingFile, backing, err)
	}
	if st.IsDir() {
		return fmt.Errorf("%w: %q is a directory", ErrBackingFile, backing)
	}
	if format == "qcow2" {
		var m [4]byte
		if _, err := io.ReadFull(bf, m[:]); err != nil || beUint32(m[:]) != magic {
			return fmt.Errorf("%w: %q: image is not in qcow2 format", ErrBackingFile, backing)
		}
	}
	return nil
}
