package fs

import (
	"strings"

	"github.com/virtstoraged-go/virtstoraged/domain"
)

// The argv builders below are pure: each returns one command line, program
// first, exactly as libvirt 9.0 runs it (docs/semantics.md §1.2). Tests
// compare them with testdata/*.argv.

// DefaultMountOptions are the options libvirt puts first on every pool mount
// (Linux): a pool holds images, never devices or programs to run.
const DefaultMountOptions = "nodev,nosuid,noexec"

// MountOptions joins the -o value of a pool mount: the defaults, then extra
// (nfsvers=4.1, guest, direct-io-mode=1) when given, then the pool's
// <fs:mount_opts> in their XML order.
func MountOptions(def *domain.PoolDef, extra string) string {
	parts := []string{DefaultMountOptions}
	if extra != "" {
		parts = append(parts, extra)
	}
	parts = append(parts, def.MountOpts...)
	return strings.Join(parts, ",")
}

// SourceFormat is the pool's source format, "auto" when the XML gives none.
func SourceFormat(def *domain.PoolDef) string {
	if def.Source.Format == "" {
		return "auto"
	}
	return def.Source.Format
}

// MountArgv mounts an fs pool's device on its target:
// mount -o nodev,nosuid,noexec[,opts] -t FMT|auto DEV TARGET.
func MountArgv(def *domain.PoolDef) []string {
	return []string{"mount", "-o", MountOptions(def, ""), "-t", SourceFormat(def), devicePath(def), def.Target.Path}
}

// UmountArgv unmounts a pool's target.
func UmountArgv(target string) []string { return []string{"umount", target} }

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
