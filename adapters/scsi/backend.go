// Package scsi is the "scsi" pool backend: the pool is one SCSI host (an
// HBA, by name or by its PCI address and unique_id, or a Fibre Channel vHBA
// by its WWNN/WWPN), its volumes are the host's disk and CD-ROM LUNs. It
// reads everything from sysfs, whose root is configurable so that tests can
// show it a fake tree, and it also holds the LUN scan the iscsi backend
// shares (LUNScanner).
//
// Creating a vHBA (an fc_host adapter whose vHBA does not exist yet) goes
// through libvirt's node device driver, which virtstoraged does not have:
// such a start fails with libvirt's own text on a host without NPIV HBAs,
// and says so on a host with one.
package scsi

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/adapters/lib/blockdev"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

var _ ports.PoolBackend = (*Backend)(nil)

// scanString asks a SCSI host to scan every channel, target and LUN.
const scanString = "- - -"

// Backend serves scsi pools.
type Backend struct {
	LUNVolumes
	luns *LUNScanner
	log  *logrus.Entry
}

// New returns the scsi backend over a LUN scanner (whose sysfs root it
// shares); its runner runs udevadm, scsi_id and scrub.
func New(luns *LUNScanner) *Backend {
	return &Backend{LUNVolumes: LUNVolumes{Runner: luns.Runner}, luns: luns, log: luns.Log}
}

// Type is PoolSCSI.
func (b *Backend) Type() domain.PoolType { return domain.PoolSCSI }

// DefaultVolFormat is empty: LUNs carry no image format.
func (b *Backend) DefaultVolFormat() string { return "" }

// ValidatePool needs nothing beyond the XML rules.
func (b *Backend) ValidatePool(def *domain.PoolDef) error { return nil }

func (b *Backend) sys(parts ...string) string {
	return filepath.Join(append([]string{b.luns.SysfsRoot}, parts...)...)
}

// HostNumber is libvirt's virSCSIHostGetNumber: the N of "scsi_hostN",
// "fc_hostN" or "hostN".
func HostNumber(name string) (uint32, error) {
	rest := name
	switch {
	case strings.HasPrefix(rest, "scsi_host"):
		rest = rest[len("scsi_host"):]
	case strings.HasPrefix(rest, "fc_host"):
		rest = rest[len("fc_host"):]
	case strings.HasPrefix(rest, "host"):
		rest = rest[len("host"):]
	default:
		return 0, domain.Errorf(domain.KindInternal, "Invalid adapter name '%s' for SCSI pool", name)
	}
	n, err := strconv.ParseUint(rest, 10, 32)
	if err != nil {
		return 0, domain.Errorf(domain.KindInternal, "Invalid adapter name '%s' for SCSI pool", rest)
	}
	return uint32(n), nil
}

// adapterName is libvirt's getAdapterName: the SCSI host a pool's adapter
// designates, looked up in sysfs for the parentaddr and fc_host forms.
func (b *Backend) adapterName(a *domain.SourceAdapter) (string, error) {
	if a == nil {
		return "", domain.Errorf(domain.KindXMLError, "missing storage pool source adapter")
	}
	if a.Type == domain.AdapterFCHost {
		name, ok := b.hostByWWN(a.WWNN, a.WWPN)
		if !ok {
			return "", domain.Errorf(domain.KindXMLError, "Failed to find SCSI host with wwnn='%s', wwpn='%s'", a.WWNN, a.WWPN)
		}
		return name, nil
	}
	if a.ParentAddr == nil {
		return a.Name, nil
	}
	p := a.ParentAddr
	pci := pciString(p)
	dir := b.sys("class", "scsi_host")
	ents, err := os.ReadDir(dir)
	if err != nil {
		b.log.WithError(err).Debugf("scsi: cannot open directory '%s'", dir)
	}
	for _, e := range ents {
		real, err := filepath.EvalSymlinks(filepath.Join(dir, e.Name()))
		if err != nil || !strings.Contains(real, pci) {
			continue
		}
		uid, err := os.ReadFile(filepath.Join(dir, e.Name(), "unique_id"))
		if err == nil && strings.TrimSpace(string(uid)) == strconv.FormatUint(uint64(a.UniqueID), 10) {
			return e.Name(), nil
		}
	}
	return "", domain.Errorf(domain.KindXMLError, "Failed to find scsi_host using PCI '%s' and unique_id='%d'", pci, a.UniqueID)
}

// pciString is a PCI address as sysfs paths spell it.
func pciString(p *domain.PCIAddress) string {
	return fmt.Sprintf("%04x:%02x:%02x.%x", p.Domain, p.Bus, p.Slot, p.Function)
}

// hostByWWN is libvirt's virVHBAGetHostByWWN: the fc_host whose node and
// port names are the pair.
func (b *Backend) hostByWWN(wwnn, wwpn string) (string, bool) {
	dir := b.sys("class", "fc_host")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", false
	}
	for _, e := range ents {
		if sameWWN(readTrim(filepath.Join(dir, e.Name(), "node_name")), wwnn) &&
			sameWWN(readTrim(filepath.Join(dir, e.Name(), "port_name")), wwpn) {
			return e.Name(), true
		}
	}
	return "", false
}

func sameWWN(sysfs, xml string) bool {
	return sysfs != "" && strings.EqualFold(strings.TrimPrefix(sysfs, "0x"), strings.TrimPrefix(xml, "0x"))
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// hostNumber resolves the pool's adapter to its SCSI host number.
func (b *Backend) hostNumber(def *domain.PoolDef) (uint32, error) {
	name, err := b.adapterName(def.Source.Adapter)
	if err != nil {
		return 0, err
	}
	return HostNumber(name)
}

// CheckPool reports the pool active when its SCSI host exists. An fc_host
// whose vHBA is not there is inactive, not an error, as in libvirt.
func (b *Backend) CheckPool(ctx context.Context, def *domain.PoolDef) (bool, error) {
	n, err := b.hostNumber(def)
	if err != nil {
		if a := def.Source.Adapter; a != nil && a.Type == domain.AdapterFCHost {
			return false, nil
		}
		return false, err
	}
	_, err = os.Stat(b.sys("class", "scsi_host", "host"+strconv.FormatUint(uint64(n), 10)))
	return err == nil, nil
}

// StartPool checks an fc_host adapter's vHBA: an existing one (found by its
// WWNs) serves; creating one needs a vport-capable parent HBA, and the
// errors for a host without one are libvirt's. A scsi_host needs nothing:
// the refresh that follows scans it.
func (b *Backend) StartPool(ctx context.Context, def *domain.PoolDef) error {
	a := def.Source.Adapter
	if a == nil || a.Type != domain.AdapterFCHost {
		return nil
	}
	if _, ok := b.hostByWWN(a.WWNN, a.WWPN); ok {
		return nil
	}
	switch {
	case a.Parent != "":
		n, err := HostNumber(a.Parent)
		if err != nil || !exists(b.sys("class", "scsi_host", "host"+strconv.FormatUint(uint64(n), 10))) {
			return domain.Errorf(domain.KindXMLError, "parent '%s' specified for vHBA does not exist", a.Parent)
		}
		if !b.vportCapable(n) {
			return domain.Errorf(domain.KindXMLError, "parent '%s' specified for vHBA is not vport capable", a.Parent)
		}
	case a.ParentWWNN != "" && a.ParentWWPN != "":
		if _, ok := b.hostByWWN(a.ParentWWNN, a.ParentWWPN); !ok {
			return domain.Errorf(domain.KindXMLError, "cannot find parent using provided wwnn/wwpn")
		}
	case a.ParentFabricWWN != "":
		if !b.anyFabric(a.ParentFabricWWN) {
			return domain.Errorf(domain.KindXMLError, "cannot find parent using provided fabric_wwn")
		}
	default:
		if !b.anyVportHost() {
			return domain.Errorf(domain.KindXMLError, "'parent' for vHBA not specified, and cannot find one on this host")
		}
	}
	return domain.Errorf(domain.KindNoSupport, "creating a vHBA for wwnn='%s', wwpn='%s' needs libvirt's node device driver, which virtstoraged does not have: create it with virsh nodedev-create first", a.WWNN, a.WWPN)
}

// vportCapable is an fc_host that can create vports (has vport_create).
func (b *Backend) vportCapable(host uint32) bool {
	return exists(b.sys("class", "fc_host", "host"+strconv.FormatUint(uint64(host), 10), "vport_create"))
}

func (b *Backend) anyVportHost() bool {
	ents, _ := os.ReadDir(b.sys("class", "fc_host"))
	for _, e := range ents {
		if n, err := HostNumber(e.Name()); err == nil && b.vportCapable(n) {
			return true
		}
	}
	return false
}

func (b *Backend) anyFabric(wwn string) bool {
	ents, _ := os.ReadDir(b.sys("class", "fc_host"))
	for _, e := range ents {
		if sameWWN(readTrim(b.sys("class", "fc_host", e.Name(), "fabric_name")), wwn) {
			return true
		}
	}
	return false
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// StopPool does nothing: no vHBA was created here.
func (b *Backend) StopPool(ctx context.Context, def *domain.PoolDef) error { return nil }

// FindPoolSources is not supported.
func (b *Backend) FindPoolSources(ctx context.Context, spec *domain.PoolSource, flags uint32) ([]domain.PoolSource, error) {
	return nil, domain.Errorf(domain.KindNoSupport, "pool type '%s' does not support source discovery", domain.PoolSCSI)
}

// Rescan asks SCSI host host to scan for new LUNs, as libvirt's
// virStorageBackendSCSITriggerRescan does (with the string's NUL, which the
// kernel ignores).
func Rescan(sysfsRoot string, host uint32) error {
	path := filepath.Join(sysfsRoot, "class", "scsi_host", "host"+strconv.FormatUint(uint64(host), 10), "scan")
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return blockdev.SysErr(err, "Could not open '%s' to trigger host scan", path)
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, []byte(scanString+"\x00")); err != nil {
		return blockdev.SysErr(err, "Write to '%s' to trigger host scan failed", path)
	}
	return nil
}

// RefreshPool rescans the SCSI host, then lists its LUNs.
func (b *Backend) RefreshPool(ctx context.Context, def *domain.PoolDef) (domain.PoolStats, []*domain.VolDef, error) {
	n, err := b.hostNumber(def)
	if err != nil {
		return domain.PoolStats{}, nil, err
	}
	if err := Rescan(b.luns.SysfsRoot, n); err != nil {
		return domain.PoolStats{}, nil, err
	}
	return b.luns.Scan(ctx, def, n)
}
