package labkit

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/internal/lab"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// The targets and hosts the tests make: tgtd's targets (lab.ISCSITarget)
// with LUNs added and taken away, CHAP accounts, and scsi_debug's hosts.

// Portal is tgtd's, and the one the pools log in to.
const Portal = "127.0.0.1:3260"

// IQNBase prefixes every target's IQN.
const IQNBase = "iqn.2024-01.org.virtstoraged.lab:"

// LUNPath is the by-path link of a LUN of target iqn.
func LUNPath(iqn string, lun int) string {
	return "/dev/disk/by-path/ip-" + Portal + "-iscsi-" + iqn + "-lun-" + strconv.Itoa(lun)
}

var (
	tidMu   sync.Mutex
	nextTID = 1
)

// Target serves a new target (its tid the next free one) with LUN 1 of
// sizeMiB and returns its IQN and tid; the target goes with the test, after
// the test's own clean-ups (its pools' logouts).
func Target(t *testing.T, name string, sizeMiB int) (string, int) {
	t.Helper()
	tidMu.Lock()
	tid := nextTID
	nextTID++
	tidMu.Unlock()
	iqn := IQNBase + name
	t.Cleanup(func() {
		// A session still open keeps the target: log it out first.
		lab.Try("iscsiadm", "-m", "node", "-T", iqn, "--logout")
		lab.Try("tgtadm", "--lld", "iscsi", "--op", "delete", "--mode", "target", "--tid", strconv.Itoa(tid), "--force")
	})
	lab.ISCSITarget(t, tid, iqn, sizeMiB)
	lab.StartISCSIInitiator(t)
	return iqn, tid
}

// AddLUN gives target tid a LUN lun of sizeMiB, backed by a sparse file.
func AddLUN(t testing.TB, tid, lun int, sizeMiB int) {
	t.Helper()
	img := filepath.Join(t.TempDir(), fmt.Sprintf("t%d-lun%d.img", tid, lun))
	lab.Run(t, "truncate", "-s", strconv.Itoa(sizeMiB)+"M", img)
	lab.Run(t, "tgtadm", "--lld", "iscsi", "--op", "new", "--mode", "logicalunit", "--tid", strconv.Itoa(tid), "--lun", strconv.Itoa(lun), "-b", img)
}

// RequireCHAP makes target tid accept only initiators that log in as user
// with password.
func RequireCHAP(t testing.TB, tid int, user, password string) {
	t.Helper()
	lab.Run(t, "tgtadm", "--lld", "iscsi", "--op", "new", "--mode", "account", "--user", user, "--password", password)
	lab.Run(t, "tgtadm", "--lld", "iscsi", "--op", "bind", "--mode", "account", "--tid", strconv.Itoa(tid), "--user", user)
}

// SessionTo reports whether the guest's initiator has a session to iqn.
func SessionTo(iqn string) bool {
	out, _ := lab.Try("iscsiadm", "-m", "session")
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[3] == iqn {
			return true
		}
	}
	return false
}

// TargetInitiators lists the initiator names tgtd has a nexus with on
// target tid.
func TargetInitiators(t testing.TB, tid int) []string {
	t.Helper()
	out := lab.Run(t, "tgtadm", "--lld", "iscsi", "--op", "show", "--mode", "target")
	var names []string
	in := false
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "Target ") {
			in = strings.HasPrefix(line, "Target "+strconv.Itoa(tid)+":")
			continue
		}
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "Initiator: "); ok && in {
			name, _, _ := strings.Cut(rest, " ")
			names = append(names, name)
		}
	}
	return names
}

// SCSIDebugDir is the directory of scsi_debug's driver.
const SCSIDebugDir = "/sys/bus/pseudo/drivers/scsi_debug"

// LUNMiB is every scsi_debug LUN's size.
const LUNMiB = 16

var scsiOnce sync.Once

// SCSIHosts serialises the tests' scsi_debug hosts: max_luns, which decides
// how many LUNs a host reports, is the driver's, not a host's.
var SCSIHosts sync.Mutex

// NewSCSIHost adds a scsi_debug host with one LUN (0) and returns its name
// (hostN); the host is removed when the test ends. scsi_debug removes its
// newest hosts first, so hosts must be removed in the reverse order of
// their making, which the tests' clean-ups do.
func NewSCSIHost(t testing.TB) string {
	t.Helper()
	scsiOnce.Do(func() { lab.ScsiDebug(t, 1, LUNMiB) })
	before := scsiDebugHosts()
	WriteSys(t, filepath.Join(SCSIDebugDir, "max_luns"), "1")
	WriteSys(t, filepath.Join(SCSIDebugDir, "add_host"), "1")
	var host string
	lab.WaitFor(t, "a new scsi_debug host", time.Minute, func() bool {
		for h := range scsiDebugHosts() {
			if !before[h] {
				host = h
				return true
			}
		}
		return false
	})
	t.Cleanup(func() {
		WriteSys(t, filepath.Join(SCSIDebugDir, "max_luns"), "1")
		WriteSys(t, filepath.Join(SCSIDebugDir, "add_host"), "-1")
	})
	lab.Run(t, "udevadm", "settle")
	return host
}

// scsiDebugHosts are scsi_debug's SCSI hosts.
func scsiDebugHosts() map[string]bool {
	hosts := map[string]bool{}
	found, _ := filepath.Glob(filepath.Join(SCSIDebugDir, "adapter*", "host*"))
	for _, h := range found {
		hosts[filepath.Base(h)] = true
	}
	return hosts
}

// WriteSys writes a sysfs attribute (the kernel wants the newline).
func WriteSys(t testing.TB, path, value string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(value+"\n"), 0o644); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
}

// DeleteSCSIDevice removes H:C:T:L from the kernel, as an administrator
// does for a LUN gone from its target.
func DeleteSCSIDevice(t testing.TB, hctl string) {
	t.Helper()
	WriteSys(t, filepath.Join("/sys/class/scsi_device", hctl, "device/delete"), "1")
	lab.Run(t, "udevadm", "settle")
}

// ReadText is a file's text.
func ReadText(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}

// ServiceWait bounds what the kernel does asynchronously (a host's scan, a
// module's devices): seconds under emulation, minutes on a loaded machine.
const ServiceWait = 2 * time.Minute

// InitiatorIQN is the initiator name the pools log in as, not the guest's
// default one (/etc/iscsi/initiatorname.iscsi).
const InitiatorIQN = "iqn.2024-01.org.virtstoraged.lab:initiator"

// ISCSIPoolXML is an iscsi pool on target iqn at portal host:port, its
// volumes under /dev/disk/by-path; extra goes into <source>.
func ISCSIPoolXML(name, hostPort, iqn, extra string) string {
	host, port, _ := strings.Cut(hostPort, ":")
	return "<pool type='iscsi'><name>" + name + "</name><source><host name='" + host + "' port='" + port + "'/>" +
		"<device path='" + iqn + "'/>" + extra + "</source><target><path>/dev/disk/by-path</path></target></pool>"
}

// SCSIPoolXML is a scsi pool with adapter, its volumes under /dev (scsi_debug's
// LUNs have no by-path links).
func SCSIPoolXML(name, adapter string) string {
	return "<pool type='scsi'><name>" + name + "</name><source>" + adapter + "</source><target><path>/dev</path></target></pool>"
}

// ParentAddr is the adapter element of the parentaddr form.
func ParentAddr(pci [4]string, uid string) string {
	return "<adapter type='scsi_host'><parentaddr unique_id='" + uid + "'><address domain='" + pci[0] +
		"' bus='" + pci[1] + "' slot='" + pci[2] + "' function='" + pci[3] + "'/></parentaddr></adapter>"
}

// SdOf is the /dev node of host's LUN lun.
func SdOf(t *testing.T, host, lun string) string {
	t.Helper()
	hctl := strings.TrimPrefix(host, "host") + ":0:0:" + lun
	blocks, _ := filepath.Glob(filepath.Join("/sys/class/scsi_device", hctl, "device/block/*"))
	if len(blocks) != 1 {
		t.Fatalf("SCSI device %s has block devices %q", hctl, blocks)
	}
	return "/dev/" + filepath.Base(blocks[0])
}

// IDEHostAddr loads ata_piix for the machine's IDE controller and returns
// the PCI address (0x-prefixed domain, bus, slot, function) and unique_id
// of its first SCSI host, and the host's name.
func IDEHostAddr(t *testing.T) ([4]string, string, string) {
	t.Helper()
	lab.Modprobe(t, "ata_piix")
	var found string
	lab.WaitFor(t, "the IDE controller's SCSI hosts", ServiceWait, func() bool {
		hosts, _ := filepath.Glob("/sys/class/scsi_host/host*")
		for _, h := range hosts {
			if b, err := os.ReadFile(filepath.Join(h, "proc_name")); err == nil && strings.TrimSpace(string(b)) == "ata_piix" {
				found = h
				return true
			}
		}
		return false
	})
	real, err := filepath.EvalSymlinks(found)
	if err != nil {
		t.Fatal(err)
	}
	// .../pci0000:00/0000:00:01.1/ata1/host0/scsi_host/host0
	var pci string
	for _, part := range strings.Split(real, "/") {
		if len(part) == len("0000:00:01.1") && strings.Count(part, ":") == 2 && strings.Contains(part, ".") {
			pci = part
		}
	}
	if pci == "" {
		t.Fatalf("no PCI address in %s", real)
	}
	uid, err := os.ReadFile(filepath.Join(found, "unique_id"))
	if err != nil {
		t.Fatal(err)
	}
	dom, rest, _ := strings.Cut(pci, ":")
	bus, rest, _ := strings.Cut(rest, ":")
	slot, fn, _ := strings.Cut(rest, ".")
	return [4]string{"0x" + dom, "0x" + bus, "0x" + slot, "0x" + fn}, strings.TrimSpace(string(uid)), filepath.Base(found)
}

// SecretConfig points our daemon's secret client at libvirtd's secret
// driver, as a host running both does.
func SecretConfig(a *testkit.Anchor) string {
	return "secret_driver_socket = \"" + a.SocketPath() + "\"\n" +
		"secret_driver_uri = \"secret:///system\"\n" +
		"secret_driver_token_file = \"" + a.SystemTokenFile() + "\"\n"
}

// DropInitiatorIfaces removes, when the test ends (after its targets'
// logouts, when called before Target), the iSCSI interfaces the backends
// made for initiator IQNs (libvirt-iface-*) with their node records. Left
// behind, they would carry a record of every target created later (a
// node's "--op new" adds one per interface), so that a pool without an
// initiator logs in twice, once per interface, and the by-path link of its
// LUNs names the other session's device.
func DropInitiatorIfaces(t *testing.T) {
	t.Helper()
	t.Cleanup(func() {
		out, _ := lab.Try("iscsiadm", "-m", "iface")
		for _, line := range strings.Split(out, "\n") {
			name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
			if !strings.HasPrefix(name, "libvirt-iface-") {
				continue
			}
			lab.Try("iscsiadm", "-m", "node", "-I", name, "--logout")
			lab.Try("iscsiadm", "-m", "node", "-I", name, "-o", "delete")
			if out, err := lab.Try("iscsiadm", "-m", "iface", "-I", name, "-o", "delete"); err != nil {
				t.Errorf("removing iSCSI interface %s: %v: %s", name, err, out)
			}
		}
	})
}
