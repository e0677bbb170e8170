package fs

import (
	"github.com/virtstoraged-go/virtstoraged/adapters/lib/fsmount"
	"github.com/virtstoraged-go/virtstoraged/domain"
)

// The argv builders below are pure: each returns one command line, program
// first, exactly as libvirt 9.0 runs it (docs/semantics.md §1.2). Tests
// compare them with testdata/*.argv.

// MountArgv mounts an fs pool's device on its target:
// mount -o nodev,nosuid,noexec[,opts] -t FMT|auto DEV TARGET.
func MountArgv(def *domain.PoolDef) []string {
	return []string{"mount", "-o", fsmount.Options(def, ""), "-t", fsmount.SourceFormat(def), devicePath(def), def.Target.Path}
}

// mkfsForce is the flag each mkfs needs to write over an existing signature,
// as libvirt passes it (mkfs.vfat's -I allows a whole unpartitioned device).
// The other fs pool formats get none, as in libvirt.
var mkfsForce = map[string]string{
	"ext2": "-F", "ext3": "-F", "ext4": "-F",
	"xfs":  "-f",
	"vfat": "-I",
}

// MkfsArgv formats dev: mkfs -t FMT [force flag] DEV.
func MkfsArgv(format, dev string) []string {
	argv := []string{"mkfs", "-t", format}
	if f := mkfsForce[format]; f != "" {
		argv = append(argv, f)
	}
	return append(argv, dev)
}

func devicePath(def *domain.PoolDef) string {
	if len(def.Source.Devices) == 0 {
		return ""
	}
	return def.Source.Devices[0].Path
}
