package sanconformlab_test

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/backendtest"
	"github.com/virtstoraged-go/virtstoraged/internal/backendtest/harness"
	"github.com/virtstoraged-go/virtstoraged/internal/lab"
	"github.com/virtstoraged-go/virtstoraged/internal/labe2e/labkit"
)

// TestConformance runs the shared PoolBackend suite (internal/backendtest)
// over the iscsi backend on tgtd's targets and the scsi backend on
// scsi_debug's hosts.
func TestConformance(t *testing.T) {
	lab.Require(t)
	t.Run("iscsi", func(t *testing.T) {
		backendtest.RunConformanceTests(t, harness.ISCSI(func(t *testing.T) (harness.ISCSIEnv, error) {
			return harness.ISCSIEnv{Sysfs: "/sys", Targets: &labTargets{t: t}}, nil
		}))
	})
	t.Run("scsi", func(t *testing.T) {
		labkit.SCSIHosts.Lock()
		defer labkit.SCSIHosts.Unlock()
		backendtest.RunConformanceTests(t, harness.SCSI(func(t *testing.T) (harness.SCSIEnv, error) {
			return harness.SCSIEnv{Sysfs: "/sys", Hosts: &labHosts{t: t, luns: map[string]int{}}, LUNSize: labkit.LUNMiB * 1 << 20}, nil
		}))
	})
}

// labTargets are tgtd's targets for the iscsi harness, one test's.
type labTargets struct {
	t    *testing.T
	mu   sync.Mutex
	tids map[string]int
	luns map[string]int
}

var conformanceTarget int

func (l *labTargets) NewTarget(name string) (string, int, string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	conformanceTarget++
	iqn, tid := labkit.Target(l.t, fmt.Sprintf("conf%d-%s", conformanceTarget, name), 8)
	// target made LUN 1: the suite's pools start empty.
	lab.Run(l.t, "tgtadm", "--lld", "iscsi", "--op", "delete", "--mode", "logicalunit", "--tid", strconv.Itoa(tid), "--lun", "1")
	if l.tids == nil {
		l.tids, l.luns = map[string]int{}, map[string]int{}
	}
	l.tids[iqn] = tid
	return "127.0.0.1", 3260, iqn, nil
}

func (l *labTargets) AddLUN(iqn string, size uint64) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.luns[iqn]++
	lun := l.luns[iqn]
	labkit.AddLUN(l.t, l.tids[iqn], lun, int(size>>20))
	return lun, nil
}

func (l *labTargets) RemoveLUN(iqn string, lun int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if out, err := lab.Try("tgtadm", "--lld", "iscsi", "--op", "delete", "--mode", "logicalunit", "--tid", strconv.Itoa(l.tids[iqn]), "--lun", strconv.Itoa(lun)); err != nil {
		return fmt.Errorf("tgtadm: %v: %s", err, out)
	}
	// The kernel keeps the LUN's device until told: find it by its link.
	dev := labkit.LUNPath(iqn, lun)
	real, err := lab.Try("readlink", "-f", dev)
	if err != nil {
		return fmt.Errorf("%s: %v", dev, err)
	}
	hctl, err := lab.Try("sh", "-c", "ls /sys/block/"+strings.TrimPrefix(strings.TrimSpace(real), "/dev/")+"/device/scsi_device")
	if err != nil {
		return fmt.Errorf("SCSI device of %s: %v", real, err)
	}
	labkit.DeleteSCSIDevice(l.t, strings.TrimSpace(hctl))
	return nil
}

// labHosts are scsi_debug's hosts for the scsi harness, one test's.
type labHosts struct {
	t    *testing.T
	luns map[string]int
}

func (l *labHosts) NewHost() (string, error) {
	h := labkit.NewSCSIHost(l.t)
	l.luns[h] = 1
	return h, nil
}

func (l *labHosts) AddLUN(host string) (int, error) {
	l.luns[host]++
	labkit.WriteSys(l.t, labkit.SCSIDebugDir+"/max_luns", strconv.Itoa(l.luns[host]))
	return l.luns[host] - 1, nil
}

func (l *labHosts) RemoveLUN(host string, lun int) error {
	l.luns[host]--
	labkit.WriteSys(l.t, labkit.SCSIDebugDir+"/max_luns", strconv.Itoa(l.luns[host]))
	labkit.DeleteSCSIDevice(l.t, strings.TrimPrefix(host, "host")+":0:0:"+strconv.Itoa(lun))
	return nil
}
