package netfs

import (
	"github.com/virtstoraged-go/virtstoraged/adapters/lib/fsmount"
	"github.com/virtstoraged-go/virtstoraged/domain"
)

// Source formats of a netfs pool.
const (
	FormatAuto      = "auto"
	FormatNFS       = "nfs"
	FormatGlusterFS = "glusterfs"
	FormatCIFS      = "cifs"
)

// MountSource is what a netfs pool mounts, and what the mount table then
// shows as the source: //HOST/DIR for cifs, HOST:DIR otherwise. The <host
// port> is ignored, as libvirt does.
func MountSource(def *domain.PoolDef) string {
	host := ""
	if len(def.Source.Hosts) > 0 {
		host = def.Source.Hosts[0].Name
	}
	if fsmount.SourceFormat(def) == FormatCIFS {
		return "//" + host + "/" + def.Source.Dir
	}
	return host + ":" + def.Source.Dir
}

// MountArgv builds the mount command line libvirt 9.0 runs for each format:
//
//	auto:      mount -o nodev,nosuid,noexec[,nfsvers=V][,opts] HOST:DIR TARGET
//	nfs:       mount -o nodev,nosuid,noexec[,nfsvers=V][,opts] -t nfs HOST:DIR TARGET
//	glusterfs: mount -o nodev,nosuid,noexec,direct-io-mode=1[,opts] -t glusterfs HOST:DIR TARGET
//	cifs:      mount -o nodev,nosuid,noexec,guest[,opts] -t cifs //HOST/DIR TARGET
func MountArgv(def *domain.PoolDef) []string {
	format := fsmount.SourceFormat(def)
	nfsvers := ""
	if def.Source.ProtocolVer != "" {
		nfsvers = "nfsvers=" + def.Source.ProtocolVer
	}
	src, target := MountSource(def), def.Target.Path
	switch format {
	case FormatAuto:
		return []string{"mount", "-o", fsmount.Options(def, nfsvers), src, target}
	case FormatGlusterFS:
		return []string{"mount", "-o", fsmount.Options(def, "direct-io-mode=1"), "-t", format, src, target}
	case FormatCIFS:
		return []string{"mount", "-o", fsmount.Options(def, "guest"), "-t", format, src, target}
	default:
		return []string{"mount", "-o", fsmount.Options(def, nfsvers), "-t", format, src, target}
	}
}

// ShowmountArgv lists the NFS exports of host.
func ShowmountArgv(host string) []string {
	return []string{"showmount", "--no-headers", "--exports", host}
}

// GlusterArgv lists the gluster volumes host serves, as XML.
func GlusterArgv(host string) []string {
	return []string{"gluster", "--xml", "--log-file=/dev/null", "volume", "info", "all", "--remote-host=" + host}
}
