package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/adapters/disk"
	"github.com/virtstoraged-go/virtstoraged/adapters/osexec"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/backendtest"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// Disk is the harness of the disk backend: each pool a gpt label the backend
// writes on a device from devices (whose partitions the kernel must list: a
// loop device with partition scanning, PartitionedLoopDevices, or a lab
// disk), with the real parted, blkid and udevadm. Volumes are partitions,
// named as libvirt names them (vdb1, loop0p2): the harness is a
// backendtest.VolumeNamer.
func Disk(devices Devices) backendtest.HarnessMaker {
	return func(ctx context.Context, t *testing.T) (backendtest.Harness, error) {
		requireTools(t, "parted", "blkid", "udevadm", "partx")
		log := testkit.QuietLog()
		r := osexec.New(log)
		return &diskHarness{t: t, r: r, b: disk.New(r, disk.Config{}, log), devices: devices, names: map[string]string{}}, nil
	}
}

type diskHarness struct {
	t       *testing.T
	r       ports.CommandRunner
	b       *disk.Backend
	devices Devices

	mu    sync.Mutex
	names map[string]string // pool/suite name -> partition name
}

func (h *diskHarness) Backend() ports.PoolBackend { return h.b }

// Capabilities are libvirt's disk backend's: build writes the label and
// delete zeroes it whatever the partitions (virStorageBackendDiskDeletePool),
// the label is the pool's presence (checkPool), partitions are created,
// deleted, cloned into, wiped and streamed but not resized, and a partition
// allocates its whole extent. On gpt a partition has exactly the bytes
// asked for.
func (h *diskHarness) Capabilities() backendtest.Capabilities {
	return backendtest.Capabilities{
		Type: domain.PoolDisk, Build: true, Delete: true, DeleteNonEmpty: true,
		Presence: backendtest.PresentWhenBuilt,
		Ops: backendtest.CreateVol | backendtest.DeleteVol | backendtest.CloneVol | backendtest.WipeVol |
			backendtest.UploadVol | backendtest.DownloadVol,
		Allocation: backendtest.Thick, Isolated: true,
	}
}

func (h *diskHarness) MakePool(ctx context.Context, name string) (*domain.PoolDef, error) {
	dev, err := h.devices(h.t)
	if err != nil {
		return nil, err
	}
	return &domain.PoolDef{Type: domain.PoolDisk, Name: name,
		Source: domain.PoolSource{Devices: []domain.SourceDevice{{Path: dev}}, Format: "gpt"},
		Target: domain.PoolTarget{Path: "/dev", Perms: domain.UnsetPerms()}}, nil
}

// partName is libvirt's name of partition num of dev: a "p" between a
// device name ending in a digit and the number.
func partName(dev string, num int) string {
	base := filepath.Base(dev)
	if c := base[len(base)-1]; c >= '0' && c <= '9' {
		return fmt.Sprintf("%sp%d", base, num)
	}
	return fmt.Sprintf("%s%d", base, num)
}

// partitionNumbers are the partitions of dev the kernel lists in sysfs.
func partitionNumbers(dev string) map[int]bool {
	base := filepath.Base(dev)
	nums := map[int]bool{}
	for n := 1; n <= 128; n++ {
		if _, err := os.Stat(filepath.Join("/sys/class/block", base, partName(dev, n))); err == nil {
			nums[n] = true
		}
	}
	return nums
}

// VolumeName gives a new suite name the lowest partition number the kernel
// does not list, which is the one parted gives the next gpt partition.
func (h *diskHarness) VolumeName(pool *domain.PoolDef, name string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	key := pool.Name + "/" + name
	if n, ok := h.names[key]; ok {
		return n
	}
	dev := pool.Source.Devices[0].Path
	used := partitionNumbers(dev)
	n := 1
	for used[n] {
		n++
	}
	h.names[key] = partName(dev, n)
	return h.names[key]
}

func (h *diskHarness) run(ctx context.Context, stdin string, argv ...string) ([]byte, error) {
	return h.r.Run(ctx, ports.Command{Path: argv[0], Args: argv[1:], Stdin: []byte(stdin)})
}

// AddVolume makes a partition with parted at the start of the largest free
// region, as an administrator would, and returns the name of the one the
// kernel lists that was not there before.
func (h *diskHarness) AddVolume(ctx context.Context, pool *domain.PoolDef, name string, size uint64) (string, error) {
	dev := pool.Source.Devices[0].Path
	before := partitionNumbers(dev)
	out, err := h.run(ctx, "", "parted", "-m", "-s", dev, "unit", "B", "print", "free")
	if err != nil {
		return "", fmt.Errorf("parted print: %w: %s", err, out)
	}
	var start, end uint64
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Split(strings.TrimSuffix(line, ";"), ":")
		if len(f) < 5 || f[4] != "free" {
			continue
		}
		s, err1 := strconv.ParseUint(strings.TrimSuffix(f[1], "B"), 10, 64)
		e, err2 := strconv.ParseUint(strings.TrimSuffix(f[2], "B"), 10, 64)
		if err1 == nil && err2 == nil && e-s > end-start {
			start, end = s, e
		}
	}
	const mib = 1 << 20
	start = (start + mib - 1) / mib * mib
	if end < start+size {
		return "", fmt.Errorf("no free region of %d bytes on %s:\n%s", size, dev, out)
	}
	if out, err := h.run(ctx, "", "parted", "-s", dev, "unit", "B", "mkpart", "primary", fmt.Sprint(start), fmt.Sprint(start+size-1)); err != nil {
		return "", fmt.Errorf("parted mkpart: %w: %s", err, out)
	}
	if _, err := h.run(ctx, "", "udevadm", "settle", "--timeout=10"); err != nil {
		return "", err
	}
	for n := range partitionNumbers(dev) {
		if !before[n] {
			return partName(dev, n), nil
		}
	}
	return "", fmt.Errorf("parted added no partition the kernel lists on %s", dev)
}

// RemoveVolume removes a partition with parted, which tells the kernel.
func (h *diskHarness) RemoveVolume(ctx context.Context, pool *domain.PoolDef, name string) error {
	dev := pool.Source.Devices[0].Path
	for n := range partitionNumbers(dev) {
		if partName(dev, n) == name {
			if out, err := h.run(ctx, "", "parted", "-s", dev, "rm", fmt.Sprint(n)); err != nil {
				return fmt.Errorf("parted rm: %w: %s", err, out)
			}
			_, err := h.run(ctx, "", "udevadm", "settle", "--timeout=10")
			return err
		}
	}
	return fmt.Errorf("no partition %s on %s", name, dev)
}

// PartitionedLoopDevices are LoopDevices whose partitions the kernel lists
// (losetup -P), as disk pools need.
func PartitionedLoopDevices(size int64) Devices {
	return loopDevices(size, "-P")
}
