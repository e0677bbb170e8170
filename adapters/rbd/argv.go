package rbd

import (
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/virtstoraged-go/virtstoraged/domain"
)

// Conn is one pool's way to its cluster, the credential set every command of
// the pool reuses: the monitors, the cephx user (empty without cephx), the
// key file a command reads the key from, the client timeouts and the pool's
// <rbd:config_opts>.
type Conn struct {
	MonHost string
	User    string
	KeyFile string
	Timeout time.Duration
	Opts    []domain.ConfigOpt
}

// MonHost joins a pool's <host> elements into Ceph's mon_host list as
// libvirt does: name:port, or the name alone (Ceph's default ports), IPv6
// addresses in brackets when a port follows.
func MonHost(hosts []domain.SourceHost) string {
	parts := make([]string, 0, len(hosts))
	for _, h := range hosts {
		switch {
		case h.Port == 0:
			parts = append(parts, h.Name)
		case strings.Contains(h.Name, ":") && net.ParseIP(h.Name) != nil:
			parts = append(parts, "["+h.Name+"]:"+strconv.Itoa(h.Port))
		default:
			parts = append(parts, h.Name+":"+strconv.Itoa(h.Port))
		}
	}
	return strings.Join(parts, ",")
}

// Args are the options that put a command on the pool's cluster. No
// ceph.conf is read (-c /dev/null): everything comes from the pool's
// definition, as in libvirt, which sets the same options on its librados
// handle. The key never appears here, only the file holding it.
func (c Conn) Args() []string {
	a := []string{"-c", "/dev/null", "-m", c.MonHost}
	if c.User != "" {
		// cephx only, as libvirt sets it: a cluster that also lets clients in
		// without auth must not take a wrong key for no key.
		a = append(a, "--id", c.User, "--keyfile", c.KeyFile, "--auth_supported=cephx")
	} else {
		a = append(a, "--auth_supported=none")
	}
	secs := strconv.FormatInt(int64((c.Timeout+time.Second-1)/time.Second), 10)
	a = append(a,
		"--client_mount_timeout="+secs,
		"--rados_mon_op_timeout="+secs,
		"--rados_osd_op_timeout="+secs,
		"--rbd_default_format=2")
	for _, o := range c.Opts {
		a = append(a, "--"+o.Name+"="+o.Value)
	}
	return a
}

// Spec is an image's POOL/IMAGE name; with a snapshot POOL/IMAGE@SNAP.
func Spec(pool, image string) string { return pool + "/" + image }

// SnapSpec names a snapshot of an image.
func SnapSpec(pool, image, snap string) string { return Spec(pool, image) + "@" + snap }

// The builders below return a command's arguments after Conn.Args.

// DfArgv asks for the cluster's and one pool's usage, the figures libvirt
// takes from rados_cluster_stat and rados_ioctx_pool_stat.
// rados asks the monitors for their configuration before it connects and
// fails that step with exit status 1 and no errno; --no-mon-config lets the
// connection itself fail, with its errno.
func DfArgv(pool string) []string {
	return []string{"--no-mon-config", "df", "-p", pool, "--format", "json"}
}

// ListArgv lists a pool's images with their sizes in one call.
func ListArgv(pool string) []string { return []string{"ls", "-l", "--format", "json", pool} }

// DuPoolArgv measures every image of a pool in one call.
func DuPoolArgv(pool string) []string { return []string{"du", "--format", "json", "-p", pool} }

// DuArgv measures one image (and its snapshots).
func DuArgv(pool, image string) []string {
	return []string{"du", "--format", "json", Spec(pool, image)}
}

// InfoArgv describes one image.
func InfoArgv(pool, image string) []string {
	return []string{"info", "--format", "json", Spec(pool, image)}
}

// CreateArgv creates an image of size bytes with librbd's default features,
// as libvirt's rbd_create does.
func CreateArgv(pool, image string, size uint64) []string {
	return []string{"create", "--size", strconv.FormatUint(size, 10) + "B", Spec(pool, image)}
}

// RemoveArgv removes an image.
func RemoveArgv(pool, image string) []string {
	return []string{"rm", "--no-progress", Spec(pool, image)}
}

// ResizeArgv sets an image's size in bytes.
func ResizeArgv(pool, image string, size uint64) []string {
	return []string{"resize", "--no-progress", "--size", strconv.FormatUint(size, 10) + "B", Spec(pool, image)}
}

// SnapListArgv lists an image's snapshots.
func SnapListArgv(pool, image string) []string {
	return []string{"snap", "ls", "--format", "json", Spec(pool, image)}
}

// SnapCreateArgv, SnapProtectArgv, SnapUnprotectArgv and SnapRemoveArgv act
// on one snapshot.
func SnapCreateArgv(pool, image, snap string) []string {
	return []string{"snap", "create", "--no-progress", SnapSpec(pool, image, snap)}
}

// SnapProtectArgv protects a snapshot so that clones may use it.
func SnapProtectArgv(pool, image, snap string) []string {
	return []string{"snap", "protect", SnapSpec(pool, image, snap)}
}

// SnapUnprotectArgv lifts a snapshot's protection.
func SnapUnprotectArgv(pool, image, snap string) []string {
	return []string{"snap", "unprotect", SnapSpec(pool, image, snap)}
}

// SnapRemoveArgv removes a snapshot.
func SnapRemoveArgv(pool, image, snap string) []string {
	return []string{"snap", "rm", "--no-progress", SnapSpec(pool, image, snap)}
}

// DiffSinceArgv lists the objects of an image changed since a snapshot; an
// empty list means the snapshot holds the image as it is.
func DiffSinceArgv(pool, image, snap string) []string {
	return []string{"diff", "--format", "json", "--whole-object", "--from-snap", snap, Spec(pool, image)}
}

// CloneArgv clones a protected snapshot with the parent's features and
// striping, as libvirt's rbd_clone2 call does (stripeUnit 0: not striped).
func CloneArgv(srcPool, src, snap, dstPool, dst string, features []string, stripeUnit, stripeCount uint64) []string {
	a := []string{"clone"}
	for _, f := range features {
		a = append(a, "--image-feature", f)
	}
	if stripeUnit != 0 {
		a = append(a, "--stripe-unit", strconv.FormatUint(stripeUnit, 10)+"B", "--stripe-count", strconv.FormatUint(stripeCount, 10))
	}
	return append(a, SnapSpec(srcPool, src, snap), Spec(dstPool, dst))
}

// ImportDiffArgv writes the diff stream read from stdin into an image.
// sparse false writes zeros as data (wipe's zero algorithm); otherwise runs
// of zeros become zeroed extents that take no space.
func ImportDiffArgv(pool, image string, sparse bool) []string {
	a := []string{"import-diff", "--no-progress"}
	if !sparse {
		a = append(a, "--sparse-size", "0")
	}
	return append(a, "-", Spec(pool, image))
}

// ExportDiffArgv streams an image's allocated extents to stdout, in order,
// with the data of a clone's parent included.
func ExportDiffArgv(pool, image string) []string {
	return []string{"export-diff", "--no-progress", Spec(pool, image), "-"}
}
