package lab

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
)

// Unpacking the kernel: a bzImage decompresses itself at every boot, which
// under software emulation takes seconds (8 s of xz on a loaded 2-core
// machine). The ELF image inside it, with a PVH entry note, boots directly
// from QEMU's -kernel, so the lab unpacks it once per kernel into its cache.

// pvhEntryNote is XEN_ELFNOTE_PHYS32_ENTRY: the 32-bit entry point QEMU's
// PVH loader starts an ELF kernel at.
const pvhEntryNote = 18

// UnpackedKernel returns the path of k's uncompressed ELF image in cacheDir,
// unpacking it on first use. It returns k.Image itself when the image cannot
// be unpacked or would not boot by PVH (an unknown compression, a kernel
// without CONFIG_PVH): that kernel boots as it is, only slower.
func UnpackedKernel(cacheDir string, k Kernel) (string, error) {
	fi, err := os.Stat(k.Image)
	if err != nil {
		return "", fmt.Errorf("lab: %w", err)
	}
	path := filepath.Join(cacheDir, fmt.Sprintf("vmlinux-%s-%d-%d", k.Version, fi.Size(), fi.ModTime().Unix()))
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	bz, err := os.ReadFile(k.Image)
	if err != nil {
		return "", fmt.Errorf("lab: %w", err)
	}
	elfImage, err := unpackBzImage(bz)
	if err != nil || !hasPVHEntry(elfImage) {
		return k.Image, nil
	}
	if err := writeAtomic(cacheDir, path, elfImage); err != nil {
		return "", err
	}
	return path, nil
}

// unpackBzImage extracts the compressed kernel a bzImage carries (x86 boot
// protocol 2.08 or later: setup_sects at 0x1f1, "HdrS" at 0x202, the version
// at 0x206, payload_offset and payload_length at 0x248 and 0x24c). The
// payload ends with the uncompressed length, which the result must match.
func unpackBzImage(bz []byte) ([]byte, error) {
	if len(bz) < 0x250 || string(bz[0x202:0x206]) != "HdrS" || binary.LittleEndian.Uint16(bz[0x206:]) < 0x208 {
		return nil, errors.New("not a bzImage of boot protocol 2.08 or later")
	}
	setupSects := int(bz[0x1f1])
	if setupSects == 0 {
		setupSects = 4
	}
	start := (setupSects+1)*512 + int(binary.LittleEndian.Uint32(bz[0x248:]))
	end := start + int(binary.LittleEndian.Uint32(bz[0x24c:]))
	if start < 0 || end > len(bz) || end-start < 8 {
		return nil, errors.New("payload outside the image")
	}
	payload := bz[start:end]
	want := int(binary.LittleEndian.Uint32(payload[len(payload)-4:]))
	var out []byte
	var err error
	switch {
	case bytes.HasPrefix(payload, []byte{0x1f, 0x8b}):
		var zr *gzip.Reader
		if zr, err = gzip.NewReader(bytes.NewReader(payload)); err == nil {
			zr.Multistream(false)
			out, err = io.ReadAll(zr)
		}
	case bytes.HasPrefix(payload, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		out, err = decompressWith(payload, "xz", "-dc", "--single-stream")
	case bytes.HasPrefix(payload, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		out, err = decompressWith(payload, "zstd", "-dcq")
	default:
		return nil, errors.New("compression not handled")
	}
	if err != nil {
		return nil, err
	}
	if len(out) != want {
		return nil, fmt.Errorf("unpacked %d bytes, the image says %d", len(out), want)
	}
	return out, nil
}

func decompressWith(data []byte, tool string, args ...string) ([]byte, error) {
	cmd := exec.Command(tool, args...)
	cmd.Stdin = bytes.NewReader(data)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %v: %s", tool, err, stderr.Bytes())
	}
	return out, nil
}

// hasPVHEntry reports whether image is an ELF file with a Xen
// PHYS32_ENTRY note, the one QEMU needs to boot it.
func hasPVHEntry(image []byte) bool {
	f, err := elf.NewFile(bytes.NewReader(image))
	if err != nil {
		return false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		notes, err := io.ReadAll(p.Open())
		if err != nil {
			return false
		}
		if findNote(notes, f.ByteOrder, "Xen", pvhEntryNote) {
			return true
		}
	}
	return false
}

// findNote walks an ELF note segment: namesz, descsz, type, then the name
// and the descriptor, each padded to four bytes.
func findNote(b []byte, bo binary.ByteOrder, name string, typ uint32) bool {
	for len(b) >= 12 {
		namesz, descsz, t := bo.Uint32(b), bo.Uint32(b[4:]), bo.Uint32(b[8:])
		b = b[12:]
		nlen, dlen := int(align4(namesz)), int(align4(descsz))
		if nlen > len(b) || dlen > len(b)-nlen {
			return false
		}
		n := string(bytes.TrimRight(b[:namesz], "\x00"))
		if n == name && t == typ {
			return true
		}
		b = b[nlen+dlen:]
	}
	return false
}

func align4(n uint32) uint32 { return (n + 3) &^ 3 }

// writeAtomic writes data to path through a temporary file in dir, so that
// concurrent test binaries never see half a file.
func writeAtomic(dir, path string, data []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("lab: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("lab: write %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	return nil
}
