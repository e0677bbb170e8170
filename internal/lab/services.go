package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The services below run for the guest's whole life once started: the
// guest is the package's, and powering it off is their cleanup. Each starts
// at most once however many tests ask; a start that failed fails every
// test that asks again, with the first failure's text.

// WaitFor polls cond until it holds and fails the test when it still does
// not after bound; what says what was awaited. It is for conditions the
// kernel or a daemon brings about asynchronously (a multipath map built
// after a uevent, a daemon's socket), where no command waits for them.
func WaitFor(t testing.TB, what string, bound time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("lab: %s: not after %v", what, bound)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// serviceBound bounds a daemon's start-up: seconds under emulation, minutes
// on a machine loaded by parallel test packages.
const serviceBound = 2 * time.Minute

type service struct {
	once sync.Once
	err  error
}

// start runs f once for the guest and fails t (now, and every later t) if
// it failed.
func (s *service) start(t testing.TB, name string, f func() error) {
	t.Helper()
	Require(t)
	s.once.Do(func() { s.err = f() })
	if s.err != nil {
		t.Fatalf("lab: %s: %v", name, s.err)
	}
}

// run is Try with an error that carries the output.
func run(name string, args ...string) error {
	if out, err := Try(name, args...); err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out))
	}
	return nil
}

// poll is WaitFor for the starters, which report instead of failing.
func poll(what string, cond func() bool) error {
	deadline := time.Now().Add(serviceBound)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not after %v", what, serviceBound)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

var multipathd service

// multipathConf makes every SCSI disk a multipath map, named mpatha,
// mpathb, ... in the order they appear: Debian's default (find_multipaths
// strict) would leave a disk alone until its WWID is listed.
const multipathConf = `defaults {
	user_friendly_names yes
	find_multipaths no
}
`

// StartMultipathd loads dm_multipath and starts multipathd, which then
// builds a map for every SCSI disk, existing or added later (scsi_debug,
// iSCSI logins). Maps appear asynchronously: wait for them with
// MultipathMaps and WaitFor.
func StartMultipathd(t testing.TB) {
	t.Helper()
	multipathd.start(t, "multipathd", func() error {
		if err := os.WriteFile("/etc/multipath.conf", []byte(multipathConf), 0o644); err != nil {
			return err
		}
		if err := run("modprobe", "dm_multipath"); err != nil {
			return err
		}
		if err := run("multipathd"); err != nil {
			return err
		}
		return poll("multipathd answering", func() bool {
			_, err := Try("multipathd", "show", "daemon")
			return err == nil
		})
	})
}

// MultipathMaps lists the multipath maps as /dev/mapper names with their
// dm-N, read from sysfs as the mpath backend does.
func MultipathMaps() map[string]string {
	maps := map[string]string{}
	dirs, _ := filepath.Glob("/sys/block/dm-*")
	for _, d := range dirs {
		uuid, _ := os.ReadFile(filepath.Join(d, "dm/uuid"))
		name, _ := os.ReadFile(filepath.Join(d, "dm/name"))
		if strings.HasPrefix(string(uuid), "mpath-") {
			maps[strings.TrimSpace(string(name))] = filepath.Base(d)
		}
	}
	return maps
}

var scsiDebug service

// ScsiDebug loads scsi_debug, once per guest, with paths SCSI hosts each
// reaching the same logical unit of sizeMiB (vpd_use_hostno=0: one WWID for
// all), which multipathd makes one map of paths paths. It returns the
// H:C:T:L of each path, whose /sys/class/scsi_device/ID/device/state takes
// a path offline ("offline") and back ("running").
func ScsiDebug(t testing.TB, paths, sizeMiB int) []string {
	t.Helper()
	scsiDebug.start(t, "scsi_debug", func() error {
		return run("modprobe", "scsi_debug", "add_host="+strconv.Itoa(paths),
			"dev_size_mb="+strconv.Itoa(sizeMiB), "vpd_use_hostno=0")
	})
	var ids []string
	hosts, _ := filepath.Glob("/sys/bus/pseudo/drivers/scsi_debug/adapter*/host*")
	for _, h := range hosts {
		devs, _ := filepath.Glob(filepath.Join(h, "target*", "*:*:*:*"))
		for _, d := range devs {
			ids = append(ids, filepath.Base(d))
		}
	}
	if len(ids) != paths {
		t.Fatalf("lab: scsi_debug has paths %q, want %d", ids, paths)
	}
	return ids
}

var tgtd service

// ISCSITarget serves a new iSCSI target named iqn from tgtd (started once
// per guest) on 127.0.0.1:3260, with one LUN (1) backed by a fresh sparse
// file of sizeMiB on the guest's tmpfs.
func ISCSITarget(t testing.TB, tid int, iqn string, sizeMiB int) {
	t.Helper()
	tgtd.start(t, "tgtd", func() error {
		if err := run("tgtd"); err != nil {
			return err
		}
		return poll("tgtd answering", func() bool {
			_, err := Try("tgtadm", "--lld", "iscsi", "--op", "show", "--mode", "sys")
			return err == nil
		})
	})
	img := filepath.Join(t.TempDir(), "lun.img")
	Run(t, "truncate", "-s", strconv.Itoa(sizeMiB)+"M", img)
	id := strconv.Itoa(tid)
	Run(t, "tgtadm", "--lld", "iscsi", "--op", "new", "--mode", "target", "--tid", id, "-T", iqn)
	Run(t, "tgtadm", "--lld", "iscsi", "--op", "new", "--mode", "logicalunit", "--tid", id, "--lun", "1", "-b", img)
	Run(t, "tgtadm", "--lld", "iscsi", "--op", "bind", "--mode", "target", "--tid", id, "-I", "ALL")
}

var iscsid service

// StartISCSIInitiator starts open-iscsi's iscsid (once per guest) and waits
// until iscsiadm reaches it and tgtd's portal on 127.0.0.1:3260 answers a
// discovery, for tests whose logins go through a pool's backend; call it
// after ISCSITarget.
func StartISCSIInitiator(t testing.TB) {
	t.Helper()
	iscsid.start(t, "iscsid", func() error {
		if err := run("modprobe", "iscsi_tcp"); err != nil {
			return err
		}
		return run("iscsid")
	})
	const portal = "127.0.0.1:3260"
	// iscsiadm talks to iscsid over a socket it may not have bound yet.
	WaitFor(t, "iscsid discovering "+portal, serviceBound, func() bool {
		_, err := Try("iscsiadm", "-m", "discovery", "-t", "sendtargets", "-p", portal)
		return err == nil
	})
}

// ISCSILogin logs the guest's initiator (open-iscsi's iscsid, started once)
// in to target iqn on 127.0.0.1 and returns the LUN's stable path
// (/dev/disk/by-path/ip-127.0.0.1:3260-iscsi-IQN-lun-1) once udev made it.
func ISCSILogin(t testing.TB, iqn string) string {
	t.Helper()
	StartISCSIInitiator(t)
	const portal = "127.0.0.1:3260"
	Run(t, "iscsiadm", "-m", "node", "-T", iqn, "-p", portal, "--login")
	dev := "/dev/disk/by-path/ip-" + portal + "-iscsi-" + iqn + "-lun-1"
	Run(t, "udevadm", "settle")
	WaitFor(t, dev+" appearing", serviceBound, func() bool {
		_, err := os.Stat(dev)
		return err == nil
	})
	return dev
}

var nfsd service

// nfsRoot holds the NFS exports: a tmpfs, because nfsd cannot export the
// guest's overlay root. It is also NFSv4's pseudo-root (fsid=0), which
// version 4 clients see as "/".
const nfsRoot = "/srv/lab-nfs"

var (
	exportMu   sync.Mutex
	exportFSID = 1
	exportsOf  []string
)

// Export is one directory the guest's NFS server exports to 127.0.0.1.
type Export struct {
	// Dir is the directory in the guest, which NFSv3 clients mount.
	Dir string
	// V4Path is what NFSv4 clients mount: Dir below the pseudo-root.
	V4Path string
}

// StartNFSServer starts the kernel NFS server with its helpers (rpcbind,
// rpc.statd for NFSv3 locks, rpc.mountd) once per guest, serving versions 3
// and 4 on 127.0.0.1, without NFSv4's grace period (which would hold every
// new open for 90 s) and with NFSv3's lock grace period at its 3 s minimum.
func StartNFSServer(t testing.TB) {
	t.Helper()
	nfsd.start(t, "NFS server", func() error {
		for _, dir := range []string{nfsRoot, "/var/lib/nfs/rpc_pipefs", "/var/lib/nfs/v4recovery"} {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
		}
		steps := [][]string{
			{"mount", "-t", "tmpfs", "-o", "mode=0755", "labnfs", nfsRoot},
			// lockd refuses NFSv3 locks for a grace period after it
			// starts (50 s by default), and qemu-img locks its images:
			// the shortest grace lockd takes, set before it starts.
			{"modprobe", "lockd"},
			{"sysctl", "-q", "fs.nfs.nlm_timeout=3", "fs.nfs.nlm_grace_period=3"},
			{"modprobe", "nfsd"},
			{"mount", "-t", "nfsd", "nfsd", "/proc/fs/nfsd"},
			{"rpcbind", "-w"},
			{"rpc.statd"},
		}
		for _, s := range steps {
			if err := run(s[0], s[1:]...); err != nil {
				return err
			}
		}
		if err := writeExports(); err != nil {
			return err
		}
		for _, s := range [][]string{{"exportfs", "-ra"}, {"rpc.mountd"}, {"rpc.nfsd", "2"}} {
			if err := run(s[0], s[1:]...); err != nil {
				return err
			}
		}
		return os.WriteFile("/proc/fs/nfsd/v4_end_grace", []byte("Y"), 0o644)
	})
}

// writeExports writes /etc/exports: the pseudo-root and every export.
func writeExports() error {
	const opts = "rw,no_root_squash,no_subtree_check,insecure"
	lines := []string{fmt.Sprintf("%s 127.0.0.1(%s,fsid=0,crossmnt)", nfsRoot, opts)}
	lines = append(lines, exportsOf...)
	return os.WriteFile("/etc/exports", []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

// NFSExport creates a directory on the NFS server's tmpfs and exports it to
// 127.0.0.1 (read-write, root not squashed).
func NFSExport(t testing.TB, name string) Export {
	t.Helper()
	StartNFSServer(t)
	exportMu.Lock()
	defer exportMu.Unlock()
	dir := filepath.Join(nfsRoot, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatalf("lab: %v", err)
	}
	exportFSID++
	exportsOf = append(exportsOf, fmt.Sprintf("%s 127.0.0.1(rw,no_root_squash,no_subtree_check,insecure,fsid=%d)", dir, exportFSID))
	if err := writeExports(); err != nil {
		t.Fatalf("lab: %v", err)
	}
	Run(t, "exportfs", "-ra")
	return Export{Dir: dir, V4Path: "/" + name}
}

// StopNFSServer stops the NFS server's threads: its clients' calls then
// wait (hard mounts, the default) or fail after their timeout (soft). The
// returned function starts it again (without a new grace period); it also
// runs when the test ends, and a second call does nothing.
func StopNFSServer(t testing.TB) (restart func()) {
	t.Helper()
	StartNFSServer(t)
	Run(t, "rpc.nfsd", "0")
	var once sync.Once
	restart = func() {
		once.Do(func() {
			Run(t, "rpc.nfsd", "2")
			if err := os.WriteFile("/proc/fs/nfsd/v4_end_grace", []byte("Y"), 0o644); err != nil {
				t.Errorf("lab: end NFSv4 grace: %v", err)
			}
		})
	}
	t.Cleanup(restart)
	return restart
}
