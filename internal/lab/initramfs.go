package lab

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	_ "embed"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

//go:embed init.sh
var initScript []byte

// rootModules are what stage 1 of init.sh needs before it can reach the
// host's root: Debian builds all of them as modules. virtio_blk is among them
// so that the disks exist before udev runs, whatever order it loads in.
var rootModules = []string{"virtio_pci", "virtio_blk", "9pnet_virtio", "9p", "overlay"}

// initramfsFormat changes whenever the archive's layout changes in a way
// neither init.sh nor its inputs show, so that old cache entries are not used.
const initramfsFormat = "1"

// Initramfs builds (or finds in cacheDir) the initramfs that boots k into
// the lab: static busybox, init.sh and the modules of rootModules in load
// order. The file is named after the kernel version and a hash of everything
// that went in, so it is built once per kernel and init script and a cached
// one is never stale. Concurrent builders each write a temporary file and
// rename it into place.
func Initramfs(cacheDir string, k Kernel, busybox string) (string, error) {
	deps, err := readModuleDeps(k.ModuleDir)
	if err != nil {
		return "", fmt.Errorf("lab: read modules.dep of %s: %w", k.Version, err)
	}
	builtin, err := readBuiltin(k.ModuleDir)
	if err != nil {
		return "", fmt.Errorf("lab: %w", err)
	}
	order, err := deps.loadOrder(rootModules, builtin)
	if err != nil {
		return "", err
	}
	bb, err := os.ReadFile(busybox)
	if err != nil {
		return "", fmt.Errorf("lab: %w (apt-get install busybox-static)", err)
	}
	if !isStatic(bb) {
		return "", fmt.Errorf("lab: %s is linked dynamically, and the initramfs has no libraries (apt-get install busybox-static)", busybox)
	}
	h := sha256.New()
	fmt.Fprintf(h, "format %s\nkernel %s\n", initramfsFormat, k.Version)
	h.Write(initScript)
	h.Write(bb)
	for _, m := range order {
		fi, err := os.Stat(filepath.Join(k.ModuleDir, m))
		if err != nil {
			return "", fmt.Errorf("lab: %w", err)
		}
		fmt.Fprintf(h, "module %s %d %d\n", m, fi.Size(), fi.ModTime().UnixNano())
	}
	sum := hex.EncodeToString(h.Sum(nil))[:16]
	path := filepath.Join(cacheDir, fmt.Sprintf("initramfs-%s-%s.img", k.Version, sum))
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	img, err := buildInitramfs(k, bb, order)
	if err != nil {
		return "", err
	}
	if err := writeAtomic(cacheDir, path, img); err != nil {
		return "", err
	}
	return path, nil
}

// buildInitramfs returns the gzip-compressed archive.
func buildInitramfs(k Kernel, busybox []byte, modules []string) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	c := newCPIOWriter(zw)
	for _, d := range []string{"bin", "dev", "proc", "sys", "lib", "lib/modules"} {
		c.Dir(d)
	}
	// The kernel opens /dev/console for init's stdio before any devtmpfs
	// is mounted.
	c.CharDev("dev/console", 0o600, 5, 1)
	c.File("bin/busybox", 0o755, busybox)
	c.Symlink("bin/sh", "busybox")
	c.File("init", 0o755, initScript)
	// The kernel's unpacker creates no missing parents: every directory
	// comes before what is in it, and sorting puts parents first.
	dsts := make([]string, len(modules))
	dirSet := map[string]bool{}
	for i, m := range modules {
		name := strings.TrimSuffix(strings.TrimSuffix(m, ".xz"), ".zst")
		dsts[i] = filepath.Join("lib/modules", k.Version, name)
		for d := filepath.Dir(dsts[i]); d != "lib/modules"; d = filepath.Dir(d) {
			dirSet[d] = true
		}
	}
	dirs := make([]string, 0, len(dirSet))
	for d := range dirSet {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	for _, d := range dirs {
		c.Dir(d)
	}
	var list strings.Builder
	for i, m := range modules {
		data, err := moduleBytes(filepath.Join(k.ModuleDir, m))
		if err != nil {
			return nil, err
		}
		list.WriteString(dsts[i] + "\n")
		c.File(dsts[i], 0o644, data)
	}
	c.File("modules", 0o644, []byte(list.String()))
	if err := c.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// moduleBytes reads a module file, decompressing what busybox's insmod
// cannot read (Debian 13 ships modules as .ko.xz).
func moduleBytes(path string) ([]byte, error) {
	var tool string
	switch {
	case strings.HasSuffix(path, ".xz"):
		tool = "xz"
	case strings.HasSuffix(path, ".zst"):
		tool = "zstd"
	default:
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("lab: %w", err)
		}
		return b, nil
	}
	out, err := exec.Command(tool, "-dc", path).Output()
	if err != nil {
		return nil, fmt.Errorf("lab: %s -dc %s: %w", tool, path, err)
	}
	return out, nil
}

// isStatic reports whether an executable needs no dynamic loader.
func isStatic(exe []byte) bool {
	f, err := elf.NewFile(bytes.NewReader(exe))
	if err != nil {
		return false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}
