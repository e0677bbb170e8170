package dir

import (
	"os/exec"

	"github.com/virtstoraged-go/virtstoraged/domain"
)

// ploop is Virtuozzo's image format, a directory holding the image and its
// descriptor, made by the ploop tools rather than qemu-img.
const ploop = "ploop"

// fileFormats are libvirt's virStorageFileFormat names in enum order: some
// of its errors name a format by its number.
var fileFormats = []string{"none", "raw", "dir", "bochs", "cloop", "dmg", "iso", "vpc", "vdi", "fat", "vhd", "ploop", "cow", "qcow", "qcow2", "qed", "vmdk"}

// formatNumber is a format's virStorageFileFormat value (0, none, for "").
func formatNumber(format string) int {
	for i, f := range fileFormats {
		if f == format {
			return i
		}
	}
	return 0
}

// createPloop makes libvirt's checks of storageBackendCreatePloop, in its
// order. Making ploop images (ploop init, or cp -r of a ploop source) is not
// implemented: without the ploop tools, as on a default Debian host, the
// answer is libvirt's; with them, a plain refusal.
func (v *FileVolumes) createPloop(vol, src *domain.VolDef, flags uint32) error {
	if flags != 0 {
		return domain.ErrUnsupportedFlags(flags, "storageBackendCreatePloop")
	}
	if src != nil && src.Target.Format != ploop {
		format := src.Target.Format
		if src.Type == domain.VolBlock || format == "" {
			format = "raw"
		}
		return domain.Errorf(domain.KindInternal, "unsupported input storage vol type %d", formatNumber(format))
	}
	if vol.Target.Encryption.Encrypted() {
		return domain.Errorf(domain.KindConfigUnsupported, "encrypted ploop volumes are not supported with ploop init")
	}
	if vol.Backing != nil && vol.Backing.Path != "" {
		return domain.Errorf(domain.KindConfigUnsupported, "copy-on-write ploop volumes are not yet supported")
	}
	if _, err := v.lookPath(ploop); err != nil && src == nil {
		return domain.Errorf(domain.KindInternal, "unable to find ploop, please install ploop tools")
	}
	return domain.Errorf(domain.KindNoSupport, "ploop volumes are not supported")
}

// lookPath finds a program as the runner will, through LookPath when set.
func (v *FileVolumes) lookPath(file string) (string, error) {
	if v.LookPath != nil {
		return v.LookPath(file)
	}
	return exec.LookPath(file)
}
