package scsi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/adapters/lib/blockdev"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// SCSI peripheral device types kept as volumes (SPC's "type" of a LUN).
const (
	typeDisk = 0
	typeROM  = 5
)

// LUNScanner lists the logical units of one SCSI host as volumes, as
// libvirt's virStorageBackendSCSIFindLUs does for scsi and iscsi pools.
type LUNScanner struct {
	Runner ports.CommandRunner
	// SysfsRoot is where the kernel's SCSI devices are read ("/sys").
	SysfsRoot string
	// DevDir is where block device nodes live ("/dev").
	DevDir string
	// ScsiID is udev's scsi_id, which reads a LUN's serial
	// ("/lib/udev/scsi_id").
	ScsiID string
	// StableWait bounds the wait for LUNs' links in a pool target of
	// stable links (10 s, libvirt's).
	StableWait time.Duration
	Log        *logrus.Entry
}

// NewLUNScanner fills in the system's paths for the empty ones.
func NewLUNScanner(runner ports.CommandRunner, sysfsRoot, devDir, scsiID string, log *logrus.Entry) *LUNScanner {
	if sysfsRoot == "" {
		sysfsRoot = "/sys"
	}
	if devDir == "" {
		devDir = "/dev"
	}
	if scsiID == "" {
		scsiID = "/lib/udev/scsi_id"
	}
	if log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		log = logrus.NewEntry(l)
	}
	return &LUNScanner{Runner: runner, SysfsRoot: sysfsRoot, DevDir: devDir, ScsiID: scsiID, StableWait: 10 * time.Second, Log: log}
}

// SerialArgv asks udev's scsi_id for a LUN's serial, libvirt's volume key.
func SerialArgv(scsiID, dev string) []string {
	return []string{scsiID, "--replace-whitespace", "--whitelisted", "--device", dev}
}

// SettleArgv waits for udev to finish with the LUNs a scan or login found.
func SettleArgv() []string { return []string{"udevadm", "settle", "--timeout=10"} }

// LUN is one H:B:T:L entry of SYSFS/bus/scsi/devices.
type LUN struct {
	Host, Bus, Target, Unit uint32
}

// ParseLUN reads a SCSI device name "H:B:T:L".
func ParseLUN(name string) (LUN, bool) {
	f := strings.Split(name, ":")
	if len(f) != 4 {
		return LUN{}, false
	}
	var v [4]uint32
	for i, s := range f {
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return LUN{}, false
		}
		v[i] = uint32(n)
	}
	return LUN{v[0], v[1], v[2], v[3]}, true
}

// Name is the volume's name: the host number is left out, as the kernel
// hands it out anew at each attach (libvirt's "unit:B:T:L").
func (l LUN) Name() string {
	return "unit:" + strconv.FormatUint(uint64(l.Bus), 10) + ":" + strconv.FormatUint(uint64(l.Target), 10) + ":" + strconv.FormatUint(uint64(l.Unit), 10)
}

func (l LUN) String() string {
	return strconv.FormatUint(uint64(l.Host), 10) + ":" + strconv.FormatUint(uint64(l.Bus), 10) + ":" +
		strconv.FormatUint(uint64(l.Target), 10) + ":" + strconv.FormatUint(uint64(l.Unit), 10)
}

// stableTarget says how a pool target gives volume paths: the device node
// itself (the target is the device directory) or a link in it (a directory
// of stable links such as /dev/disk/by-path); ok is false for a target
// outside the device directory, which libvirt refuses.
func (s *LUNScanner) stableTarget(target string) (stable, ok bool) {
	t := strings.TrimSuffix(target, "/")
	if t == s.DevDir {
		return false, true
	}
	return true, strings.HasPrefix(t, s.DevDir+"/")
}

// Scan waits for udev, then lists the disk and CD-ROM LUNs of SCSI host
// host: a volume per LUN that has a block device (and, in a target of stable
// links, a link to it), named unit:B:T:L, keyed by its serial. The pool's
// capacity and allocation are the LUNs' total; nothing is available.
func (s *LUNScanner) Scan(ctx context.Context, def *domain.PoolDef, host uint32) (domain.PoolStats, []*domain.VolDef, error) {
	if _, err := s.Runner.Run(ctx, ports.Command{Path: "udevadm", Args: SettleArgv()[1:]}); err != nil {
		s.Log.WithError(err).Debug("scsi: udevadm settle failed")
	}
	dir := filepath.Join(s.SysfsRoot, "bus", "scsi", "devices")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return domain.PoolStats{}, nil, blockdev.SysErr(err, "cannot open directory '%s'", dir)
	}
	var luns []LUN
	for _, e := range ents {
		if l, ok := ParseLUN(e.Name()); ok && l.Host == host {
			luns = append(luns, l)
		}
	}
	sort.Slice(luns, func(i, j int) bool {
		a, b := luns[i], luns[j]
		if a.Bus != b.Bus {
			return a.Bus < b.Bus
		}
		if a.Target != b.Target {
			return a.Target < b.Target
		}
		return a.Unit < b.Unit
	})
	stable, usable := s.stableTarget(def.Target.Path)
	type found struct {
		lun     LUN
		devPath string
	}
	var devs []found
	for _, l := range luns {
		dev, ok, err := s.blockDevice(l)
		if err != nil {
			return domain.PoolStats{}, nil, err
		}
		if !ok {
			continue
		}
		if !usable {
			return domain.PoolStats{}, nil, domain.Errorf(domain.KindInvalidArg, "unable to use target path '%s' for dev '%s'", def.Target.Path, dev)
		}
		devs = append(devs, found{l, filepath.Join(s.DevDir, dev)})
	}
	var links map[string]string
	if stable && len(devs) > 0 {
		var err error
		if links, err = s.waitLinks(ctx, def.Target.Path, len(devs), func(links map[string]string) int {
			n := 0
			for _, d := range devs {
				if _, ok := links[d.devPath]; ok {
					n++
				}
			}
			return n
		}); err != nil {
			return domain.PoolStats{}, nil, err
		}
	}
	var stats domain.PoolStats
	var vols []*domain.VolDef
	for _, d := range devs {
		path := d.devPath
		if stable {
			var ok bool
			if path, ok = links[d.devPath]; !ok {
				s.Log.WithField("pool", def.Name).Debugf("scsi: no stable path for '%s' in '%s'", d.devPath, def.Target.Path)
				continue
			}
		}
		v, ok := s.volume(ctx, d.lun, path)
		if !ok {
			continue
		}
		stats.Capacity += v.Capacity
		stats.Allocation += v.Allocation
		vols = append(vols, v)
	}
	return stats, vols, nil
}

// waitLinks reads the stable links of dir until linked counts all want
// devices or StableWait has passed: udev makes a LUN's links a moment after
// its device node (libvirt waits up to 10 s for each LUN, every refresh;
// this wait is one for all of them, and only while some link is missing).
func (s *LUNScanner) waitLinks(ctx context.Context, dir string, want int, linked func(map[string]string) int) (map[string]string, error) {
	deadline := time.Now().Add(s.StableWait)
	for {
		links, err := blockdev.StableLinks(dir)
		if err != nil {
			return nil, err
		}
		if linked(links) == want || !time.Now().Before(deadline) {
			return links, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// blockDevice finds a disk or CD-ROM LUN's block device name (sdb); ok is
// false for other device types and for a LUN without one.
func (s *LUNScanner) blockDevice(l LUN) (string, bool, error) {
	dir := filepath.Join(s.SysfsRoot, "bus", "scsi", "devices", l.String())
	b, err := os.ReadFile(filepath.Join(dir, "type"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, domain.Errorf(domain.KindInternal, "Failed to determine if %s is a Direct-Access LUN", l)
	}
	if err != nil {
		return "", false, blockdev.SysErr(err, "unable to read: %s", filepath.Join(dir, "type"))
	}
	typ, err := strconv.Atoi(string(bytes.TrimSpace(b)))
	if err != nil {
		return "", false, domain.Errorf(domain.KindInternal, "Invalid integer value '%s' in file '%s'", bytes.TrimSpace(b), filepath.Join(dir, "type"))
	}
	if typ != typeDisk && typ != typeROM {
		return "", false, nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", false, blockdev.SysErr(err, "cannot open directory '%s'", dir)
	}
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, "block") {
			continue
		}
		if name == "block" {
			sub, err := os.ReadDir(filepath.Join(dir, "block"))
			if err != nil {
				return "", false, blockdev.SysErr(err, "cannot open directory '%s'", filepath.Join(dir, "block"))
			}
			if len(sub) == 0 {
				return "", false, nil
			}
			return sub[0].Name(), true, nil
		}
		// The kernels before 2.6.25 name the link "block:sdb".
		_, dev, ok := strings.Cut(name, ":")
		if !ok {
			return "", false, domain.Errorf(domain.KindInternal, "Failed to parse block name %s", name)
		}
		return dev, true, nil
	}
	return "", false, nil
}

// volume reads a LUN's device: its size, owner, mode and times, and its
// serial as the key (the path when scsi_id has none). A LUN whose device
// cannot be opened (an empty CD-ROM drive) is skipped, where libvirt fails
// the whole refresh.
func (s *LUNScanner) volume(ctx context.Context, l LUN, path string) (*domain.VolDef, bool) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		s.Log.WithError(err).Warnf("scsi: skipping LUN %s: cannot open '%s'", l, path)
		return nil, false
	}
	size, err := blockdev.Size(fd)
	var st unix.Stat_t
	serr := unix.Fstat(fd, &st)
	unix.Close(fd)
	if err != nil || size < 0 {
		s.Log.WithError(err).Warnf("scsi: skipping LUN %s: cannot size '%s'", l, path)
		return nil, false
	}
	v := &domain.VolDef{
		Name:          l.Name(),
		Type:          domain.VolBlock,
		Capacity:      uint64(size),
		Allocation:    uint64(size),
		Physical:      uint64(size),
		HasCapacity:   true,
		HasAllocation: true,
	}
	v.Target.Path = path
	v.Target.Perms = domain.UnsetPerms()
	if serr == nil {
		v.Target.Perms.Mode = int64(st.Mode & 0o777)
		v.Target.Perms.Owner = int64(st.Uid)
		v.Target.Perms.Group = int64(st.Gid)
		v.Target.Timestamps = &domain.Timestamps{
			Atime: time.Unix(st.Atim.Unix()),
			Mtime: time.Unix(st.Mtim.Unix()),
			Ctime: time.Unix(st.Ctim.Unix()),
		}
	}
	v.Key = s.serial(ctx, path)
	return v, true
}

// serial is libvirt's virStorageBackendSCSISerial: scsi_id's first line,
// or the path when it has nothing to say or cannot run.
func (s *LUNScanner) serial(ctx context.Context, path string) string {
	argv := SerialArgv(s.ScsiID, path)
	out, err := s.Runner.Run(ctx, ports.Command{Path: argv[0], Args: argv[1:]})
	line, _, _ := strings.Cut(string(out), "\n")
	if err != nil || line == "" {
		return path
	}
	return line
}
