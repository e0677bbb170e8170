package lab

import (
	"fmt"
	"os"
	"path/filepath"
)

// Image is what a guest boots: the kernel file QEMU loads and the initramfs.
type Image struct {
	Kernel Kernel
	// Boot is the file given to -kernel: the unpacked ELF image when the
	// kernel allows it, else the bzImage.
	Boot string
	// Initramfs is the archive built by Initramfs.
	Initramfs string
}

// CacheDirEnv overrides where the unpacked kernel and the initramfs are
// kept between runs.
const CacheDirEnv = "VIRTSTORAGED_LAB_CACHE"

// CacheDir is $VIRTSTORAGED_LAB_CACHE, else virtstoraged-lab in the user's
// cache directory (/root/.cache for root), else in the temporary directory.
func CacheDir() string {
	if d := os.Getenv(CacheDirEnv); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "virtstoraged-lab")
	}
	return filepath.Join(os.TempDir(), "virtstoraged-lab")
}

// Busybox is where Debian's busybox-static installs its binary; the
// initramfs needs a static one, as it runs before any library is reachable.
const Busybox = "/bin/busybox"

// PrepareImage finds the newest installed kernel and makes (or finds in
// cacheDir) its unpacked image and the lab's initramfs.
func PrepareImage(cacheDir string) (Image, error) {
	k, err := FindKernel("/boot", "/lib/modules")
	if err != nil {
		return Image{}, err
	}
	boot, err := UnpackedKernel(cacheDir, k)
	if err != nil {
		return Image{}, err
	}
	initrd, err := Initramfs(cacheDir, k, Busybox)
	if err != nil {
		return Image{}, err
	}
	if boot == "" || initrd == "" {
		return Image{}, fmt.Errorf("lab: no image for kernel %s", k.Version)
	}
	return Image{Kernel: k, Boot: boot, Initramfs: initrd}, nil
}
