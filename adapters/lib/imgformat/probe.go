// Package imgformat recognises disk image formats from their headers, in pure
// Go, the way libvirt's storage file probe does on refresh: a few KB are read,
// magic numbers decide the format, and for the formats that have one the header
// gives the virtual size, cluster size, compat level and backing file.
package imgformat

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Format names, as libvirt's <format type> spells them.
const (
	Raw   = "raw"
	QCOW2 = "qcow2"
	QCOW  = "qcow"
	QED   = "qed"
	VMDK  = "vmdk"
	VPC   = "vpc"
	VDI   = "vdi"
	ISO   = "iso"
)

// HeaderSize is how much Probe reads from the start of an image. A fixed VHD,
// whose only footer is at the end of the file, is not looked for: qemu and
// libvirt probe it as raw too, and the extra read would cost every raw file.
const HeaderSize = 4096

const (
	isoMagicOffset   = 32769 // ISO 9660 primary volume descriptor "CD001"
	maxBackingName   = 4096
	qcow2ExtBackFmt  = 0xe2792aca
	qcow2ExtEnd      = 0
	qcow2HdrV2Len    = 72
	qcow2LazyRefBit  = 1 << 0 // compatible feature
	qcow2ExtL2Bit    = 1 << 4 // incompatible feature
	qedFeatBacking   = 1 << 0
	qedFeatBackRaw   = 1 << 2
	sectorSize       = 512
	vdiSignatureOff  = 0x40
	vdiSignature     = 0xbeda107f
	vdiDiskSizeOffV1 = 0x170
)

// Info is what a probe learnt about an image.
type Info struct {
	// Format is the detected format; Raw when nothing matched.
	Format string
	// VirtualSize is the guest-visible size from the header; 0 with
	// HasVirtualSize false means the file size is the capacity (raw, iso).
	VirtualSize    uint64
	HasVirtualSize bool
	// ClusterSize is the qcow2/qcow/qed cluster size in bytes (0 if none).
	ClusterSize uint64
	// Compat is the qcow2 compat level: "0.10" for version 2, "1.1" for 3.
	Compat        string
	LazyRefcounts bool
	ExtendedL2    bool
	// Encryption is the encryption format as libvirt names it: "qcow" (the
	// legacy AES method of qcow/qcow2), "luks" (qcow2's LUKS, or a raw LUKS
	// image, whose Format is Raw), or "" for none.
	Encryption string
	// BackingFile is the backing file name as stored in the image (may be
	// relative to the image's directory); "" when the image has none.
	BackingFile string
	// BackingFormat is the backing file's format recorded in the image, "" when
	// the image does not say.
	BackingFormat string
}

// ErrTruncated is returned for a file whose magic matched a format but whose
// header is cut short.
var ErrTruncated = errors.New("imgformat: truncated image header")

// ErrMalformed is returned when a header field points outside the file.
var ErrMalformed = errors.New("imgformat: malformed image header")

// IsHeaderError reports whether err is a complaint about the image's contents
// (truncated or malformed header), as opposed to an I/O failure: the Info
// returned with such an error still holds what could be read.
func IsHeaderError(err error) bool {
	return errors.Is(err, ErrTruncated) || errors.Is(err, ErrMalformed)
}

// Probe reads the header of the image r of the given size and reports its
// format. It reads at most HeaderSize bytes from the start plus a few small
// reads (backing file name, ISO descriptor). A file that matches no
// format is Raw without error; an I/O error is returned as is.
func Probe(r io.ReaderAt, size int64) (Info, error) {
	return ProbeBuffer(r, size, nil)
}

// magicSize is the first read: enough for every magic number and the vdi
// header, so that a raw file costs one small read.
const magicSize = 512

// ProbeBuffer is Probe reusing scratch (at least HeaderSize bytes, or nil) for
// the header, so that a refresh probing thousands of files does not allocate
// for each.
func ProbeBuffer(r io.ReaderAt, size int64, scratch []byte) (Info, error) {
	if len(scratch) < HeaderSize {
		scratch = make([]byte, HeaderSize)
	}
	n := max(min(size, magicSize), 0)
	buf := scratch[:n]
	if _, err := readFull(r, buf, 0); err != nil {
		return Info{}, fmt.Errorf("imgformat: read header: %w", err)
	}
	if needsFullHeader(buf) && size > n {
		full := min(size, HeaderSize)
		if _, err := readFull(r, scratch[n:full], n); err != nil {
			return Info{}, fmt.Errorf("imgformat: read header: %w", err)
		}
		buf = scratch[:full]
	}
	switch {
	case bytes.HasPrefix(buf, []byte("QFI\xfb")):
		if len(buf) < 8 {
			return Info{Format: QCOW2}, ErrTruncated
		}
		if binary.BigEndian.Uint32(buf[4:]) == 1 {
			return probeQCOW(r, size, buf)
		}
		return probeQCOW2(r, size, buf)
	case bytes.HasPrefix(buf, []byte("QED\x00")):
		return probeQED(r, size, buf)
	case bytes.HasPrefix(buf, []byte("KDMV")):
		if len(buf) < 20 {
			return Info{Format: VMDK}, ErrTruncated
		}
		return Info{Format: VMDK, VirtualSize: binary.LittleEndian.Uint64(buf[12:]) * sectorSize, HasVirtualSize: true}, nil
	case bytes.HasPrefix(buf, []byte("# Disk DescriptorFile")):
		return probeVMDKDescriptor(buf), nil
	case bytes.HasPrefix(buf, []byte("conectix")):
		return vpcInfo(buf), nil
	case len(buf) >= vdiSignatureOff+4 && binary.LittleEndian.Uint32(buf[vdiSignatureOff:]) == vdiSignature:
		return probeVDI(buf), nil
	case bytes.HasPrefix(buf, []byte(luksMagic)):
		if info, ok := probeLUKS(buf, size); ok {
			return info, nil
		}
	}
	if size >= isoMagicOffset+5 {
		var m [5]byte
		if _, err := readFull(r, m[:], isoMagicOffset); err != nil {
			return Info{}, fmt.Errorf("imgformat: read iso descriptor: %w", err)
		}
		if string(m[:]) == "CD001" {
			return Info{Format: ISO}, nil
		}
	}
	return Info{Format: Raw}, nil
}

// needsFullHeader reports the formats whose header (qcow2 extensions, backing
// names, a vmdk descriptor) may reach past the first read.
func needsFullHeader(b []byte) bool {
	return bytes.HasPrefix(b, []byte("QFI\xfb")) || bytes.HasPrefix(b, []byte("QED\x00")) ||
		bytes.HasPrefix(b, []byte("# Disk DescriptorFile"))
}

func probeQCOW2(r io.ReaderAt, size int64, buf []byte) (Info, error) {
	info := Info{Format: QCOW2}
	if len(buf) < qcow2HdrV2Len {
		return info, ErrTruncated
	}
	be := binary.BigEndian
	version := be.Uint32(buf[4:])
	switch version {
	case 2:
		info.Compat = "0.10"
	case 3:
		info.Compat = "1.1"
	}
	backOff, backLen := be.Uint64(buf[8:]), be.Uint32(buf[16:])
	// libvirt reads no cluster size from a header giving 0 bits.
	if bits := be.Uint32(buf[20:]); bits > 0 && bits < 64 {
		info.ClusterSize = 1 << bits
	}
	info.VirtualSize, info.HasVirtualSize = be.Uint64(buf[24:]), true
	info.Encryption = encryptionName(be.Uint32(buf[32:]))
	extStart := uint64(qcow2HdrV2Len)
	if version >= 3 {
		if len(buf) < 104 {
			return info, ErrTruncated
		}
		info.ExtendedL2 = be.Uint64(buf[72:])&qcow2ExtL2Bit != 0
		info.LazyRefcounts = be.Uint64(buf[80:])&qcow2LazyRefBit != 0
		extStart = uint64(be.Uint32(buf[100:]))
	}
	if backOff != 0 && backLen > 0 {
		name, err := readName(r, size, backOff, backLen)
		if err != nil {
			return info, err
		}
		info.BackingFile = name
	}
	// Header extensions follow the header up to the first cluster; only the
	// part inside the bytes already read is walked, which is where qemu-img
	// always puts them.
	for off := extStart; off+8 <= uint64(len(buf)); {
		typ, l := be.Uint32(buf[off:]), uint64(be.Uint32(buf[off+4:]))
		if typ == qcow2ExtEnd {
			break
		}
		data := off + 8
		if data+l > uint64(len(buf)) {
			break
		}
		if typ == qcow2ExtBackFmt {
			info.BackingFormat = cString(buf[data : data+l])
		}
		off = data + (l+7)&^7
	}
	if info.BackingFile == "" {
		info.BackingFormat = ""
	}
	return info, nil
}

func probeQCOW(r io.ReaderAt, size int64, buf []byte) (Info, error) {
	info := Info{Format: QCOW}
	if len(buf) < 48 {
		return info, ErrTruncated
	}
	be := binary.BigEndian
	backOff, backLen := be.Uint64(buf[8:]), be.Uint32(buf[16:])
	info.VirtualSize, info.HasVirtualSize = be.Uint64(buf[24:]), true
	if bits := buf[32]; bits < 64 {
		info.ClusterSize = 1 << bits
	}
	info.Encryption = encryptionName(be.Uint32(buf[36:]))
	if backOff != 0 && backLen > 0 {
		name, err := readName(r, size, backOff, backLen)
		if err != nil {
			return info, err
		}
		info.BackingFile = name
	}
	return info, nil
}

func probeQED(r io.ReaderAt, size int64, buf []byte) (Info, error) {
	info := Info{Format: QED}
	if len(buf) < 64 {
		return info, ErrTruncated
	}
	le := binary.LittleEndian
	info.ClusterSize = uint64(le.Uint32(buf[4:]))
	features := le.Uint64(buf[16:])
	info.VirtualSize, info.HasVirtualSize = le.Uint64(buf[48:]), true
	if features&qedFeatBacking != 0 {
		off, l := le.Uint32(buf[56:]), le.Uint32(buf[60:])
		if off != 0 && l > 0 {
			name, err := readName(r, size, uint64(off), l)
			if err != nil {
				return info, err
			}
			info.BackingFile = name
		}
		if features&qedFeatBackRaw != 0 {
			info.BackingFormat = Raw
		}
	}
	return info, nil
}

// probeVMDKDescriptor sums the extent sizes (in sectors) of a text descriptor.
func probeVMDKDescriptor(buf []byte) Info {
	info := Info{Format: VMDK}
	var sectors uint64
	for line := range strings.Lines(string(buf)) {
		f := strings.Fields(line)
		if len(f) < 3 || (f[0] != "RW" && f[0] != "RDONLY" && f[0] != "NOACCESS") {
			continue
		}
		n, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			continue
		}
		sectors += n
		info.HasVirtualSize = true
	}
	info.VirtualSize = sectors * sectorSize
	return info
}

func vpcInfo(foot []byte) Info {
	info := Info{Format: VPC}
	if len(foot) >= 56 {
		info.VirtualSize, info.HasVirtualSize = binary.BigEndian.Uint64(foot[48:]), true
	}
	return info
}

func probeVDI(buf []byte) Info {
	info := Info{Format: VDI}
	// Version 1.1 headers (the only ones VirtualBox and qemu-img write) keep the
	// disk size at a fixed offset.
	if len(buf) >= vdiDiskSizeOffV1+8 && binary.LittleEndian.Uint32(buf[vdiSignatureOff+4:]) == 0x00010001 {
		info.VirtualSize, info.HasVirtualSize = binary.LittleEndian.Uint64(buf[vdiDiskSizeOffV1:]), true
	}
	return info
}

// luksMagic starts a LUKS header (qemu-img create -f luks, cryptsetup).
const luksMagic = "LUKS\xba\xbe"

// probeLUKS reads a LUKS1 header as libvirt's probe does: the image is raw
// data behind the header, its capacity the file less the payload offset (in
// sectors at byte 104). libvirt knows version 1 only; any other version is
// left as plain raw, as there.
func probeLUKS(buf []byte, size int64) (Info, bool) {
	if len(buf) < 108 || binary.BigEndian.Uint16(buf[6:]) != 1 {
		return Info{}, false
	}
	info := Info{Format: Raw, Encryption: "luks", HasVirtualSize: true}
	if payload := uint64(binary.BigEndian.Uint32(buf[104:])) * sectorSize; uint64(size) > payload {
		info.VirtualSize = uint64(size) - payload
	}
	return info, true
}

func encryptionName(method uint32) string {
	switch method {
	case 0:
		return ""
	case 2:
		return "luks"
	default:
		return "qcow"
	}
}

func readName(r io.ReaderAt, size int64, off uint64, l uint32) (string, error) {
	if l > maxBackingName || off > uint64(size) || uint64(l) > uint64(size)-off {
		return "", fmt.Errorf("%w: backing file name out of range (offset %d, length %d)", ErrMalformed, off, l)
	}
	b := make([]byte, l)
	if _, err := readFull(r, b, int64(off)); err != nil {
		return "", fmt.Errorf("imgformat: read backing file name: %w", err)
	}
	return cString(b), nil
}

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// readFull reads len(b) bytes at off, treating a short read at EOF as
// ErrTruncated rather than success.
func readFull(r io.ReaderAt, b []byte, off int64) (int, error) {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return n, nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return n, ErrTruncated
	}
	return n, err
}
