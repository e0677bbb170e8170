package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/adapters/logical"
	"github.com/virtstoraged-go/virtstoraged/adapters/osexec"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/backendtest"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// extentSize is LVM's default physical extent, the unit of LV sizes.
const extentSize = 4 << 20

// LogicalEnv is where logical pools come from.
type LogicalEnv struct {
	// Runner runs the LVM tools and blkid.
	Runner ports.CommandRunner
	// Devices hands out a device for each pool's VG.
	Devices Devices
	// NoData says why the LVs' data cannot be reached, if it cannot
	// (backendtest.Capabilities.NoData).
	NoData string
}

// Logical is the harness of the logical backend over the environment newEnv
// gives: HostLVM on the host, real LVM over real disks in the lab. Each pool
// is a VG of its own over one device, named after the process so that
// concurrent runs never meet.
func Logical(newEnv func(t *testing.T) (LogicalEnv, error)) backendtest.HarnessMaker {
	return withEnv(newEnv, func(t *testing.T, env LogicalEnv) backendtest.Harness {
		return &logicalHarness{t: t, env: env, b: logical.New(env.Runner, testkit.QuietLog())}
	})
}

type logicalHarness struct {
	t   *testing.T
	env LogicalEnv
	b   *logical.Backend
}

func (h *logicalHarness) Backend() ports.PoolBackend { return h.b }

func (h *logicalHarness) Capabilities() backendtest.Capabilities {
	return backendtest.Capabilities{
		Type: domain.PoolLogical, Build: true, Delete: true, DeleteNonEmpty: true,
		Presence: backendtest.PresentWhenBuilt, FindSources: true,
		Ops:        fileOps, // libvirt's logical backend has them all, resize being ours
		Allocation: backendtest.Thick, Granularity: extentSize, Isolated: true, NoData: h.env.NoData,
	}
}

func (h *logicalHarness) MakePool(ctx context.Context, name string) (*domain.PoolDef, error) {
	dev, err := h.env.Devices(h.t)
	if err != nil {
		return nil, err
	}
	vg := fmt.Sprintf("vsconf%d_%s", os.Getpid(), name)
	// After the suite's own DeletePool: whatever a failed test left.
	h.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, _ = h.run(ctx, "vgremove", "-f", vg)
		_, _ = h.run(ctx, "pvremove", "-ff", "-y", dev)
	})
	return &domain.PoolDef{Type: domain.PoolLogical, Name: name,
		Source: domain.PoolSource{Name: vg, Devices: []domain.SourceDevice{{Path: dev}}},
		Target: domain.PoolTarget{Perms: domain.UnsetPerms()}}, nil
}

func (h *logicalHarness) run(ctx context.Context, argv ...string) ([]byte, error) {
	return h.env.Runner.Run(ctx, ports.Command{Path: argv[0], Args: argv[1:]})
}

func (h *logicalHarness) AddVolume(ctx context.Context, pool *domain.PoolDef, name string, size uint64) (string, error) {
	_, err := h.run(ctx, "lvcreate", "--yes", "--name", name, "-L", fmt.Sprintf("%dK", size/1024), logical.ParseSource(pool).VG)
	return name, err
}

func (h *logicalHarness) RemoveVolume(ctx context.Context, pool *domain.PoolDef, name string) error {
	_, err := h.run(ctx, "lvremove", "-f", logical.ParseSource(pool).VG+"/"+name)
	return err
}

// lvmCommands are the LVM commands the backend and the harness run.
var lvmCommands = []string{"pvcreate", "pvremove", "pvs", "vgcreate", "vgremove", "vgscan", "vgchange", "vgs", "lvcreate", "lvremove", "lvchange", "lvresize", "lvs"}

// HostLVM is the host's logical environment, as internal/backende2e has it:
// loop devices of 64 MiB, and LVM through LVMRunner. Its LVs have no device
// node: their data is out of reach.
func HostLVM(t *testing.T) (LogicalEnv, error) {
	requireRoot(t, "loop devices and pvcreate")
	requireTools(t, "blkid")
	r, err := LVMRunner(t)
	if err != nil {
		return LogicalEnv{}, err
	}
	return LogicalEnv{Runner: r, Devices: LoopDevices(64 << 20),
		NoData: "LVM runs with --driverloaded n on the host: its LVs have no device node"}, nil
}

// LVMRunner runs commands for real, the LVM ones through wrappers that pass
// --driverloaded n, so that machines without device-mapper (containers, CI)
// still make and remove PVs, VGs and LVs, in their metadata only. It skips
// the test without lvm2.
func LVMRunner(t *testing.T) (ports.CommandRunner, error) {
	requireTools(t, "lvm")
	lvm, err := exec.LookPath("lvm")
	if err != nil {
		return nil, err
	}
	dir := t.TempDir()
	for _, c := range lvmCommands {
		script := fmt.Sprintf("#!/bin/sh\nexec %s %s --driverloaded n \"$@\"\n", lvm, c)
		if err := os.WriteFile(filepath.Join(dir, c), []byte(script), 0o755); err != nil {
			return nil, err
		}
	}
	return wrapRunner{inner: osexec.New(testkit.QuietLog()), wrapDir: dir,
		env: []string{"PATH=" + dir + ":" + os.Getenv("PATH"), "LVM_SUPPRESS_FD_WARNINGS=1"}}, nil
}

// wrapRunner runs a command from wrapDir when a wrapper of that name is
// there, and adds env. Putting wrapDir first in the child's PATH is not
// enough: os/exec resolves the program with the caller's own PATH.
type wrapRunner struct {
	inner   ports.CommandRunner
	wrapDir string
	env     []string
}

func (r wrapRunner) Run(ctx context.Context, cmd ports.Command) ([]byte, error) {
	if w := filepath.Join(r.wrapDir, cmd.Path); !strings.Contains(cmd.Path, "/") {
		if _, err := os.Stat(w); err == nil {
			cmd.Path = w
		}
	}
	cmd.Env = append(append([]string(nil), cmd.Env...), r.env...)
	return r.inner.Run(ctx, cmd)
}
