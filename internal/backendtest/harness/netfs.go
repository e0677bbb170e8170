package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/adapters/netfs"
	"github.com/virtstoraged-go/virtstoraged/adapters/osexec"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/backendtest"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// NetFSEnv is where netfs pools come from: the server, an export for each
// pool, the runner that mounts them and the mount table that shows it.
type NetFSEnv struct {
	Host string
	// Export returns the export a new pool mounts; each pool needs its own,
	// empty one, since volumes outlive the pools that mount them.
	Export func(pool string) (string, error)
	// Runner runs mount, umount and the volume tools.
	Runner ports.CommandRunner
	// Mountinfo is the mount table the backend reads ("": the real one).
	Mountinfo string
	// Isolated says each export is a filesystem of its own, a few volumes
	// large (backendtest.Capabilities.Isolated).
	Isolated bool
}

// NetFS is the harness of the netfs backend over the exports newEnv gives:
// FakeNFS on the host, a real server in the lab.
func NetFS(newEnv func(t *testing.T) (NetFSEnv, error)) backendtest.HarnessMaker {
	return withEnv(newEnv, func(t *testing.T, env NetFSEnv) backendtest.Harness {
		return &netfsHarness{t: t, env: env, b: netfs.New(env.Runner, env.Mountinfo, testkit.QuietLog())}
	})
}

type netfsHarness struct {
	fileVolumes
	t   *testing.T
	env NetFSEnv
	b   *netfs.Backend
}

func (h *netfsHarness) Backend() ports.PoolBackend { return h.b }

func (h *netfsHarness) Capabilities() backendtest.Capabilities {
	return backendtest.Capabilities{
		Type: domain.PoolNetFS, Build: true, Delete: true, Presence: backendtest.PresentWhenStarted, FindSources: true,
		Ops: fileOps, Allocation: backendtest.Sparse, Isolated: h.env.Isolated,
	}
}

func (h *netfsHarness) MakePool(ctx context.Context, name string) (*domain.PoolDef, error) {
	export, err := h.env.Export(name)
	if err != nil {
		return nil, err
	}
	target := filepath.Join(h.t.TempDir(), name)
	if h.env.Mountinfo == "" {
		h.t.Cleanup(func() { unmountIfMounted(target) })
	}
	return &domain.PoolDef{Type: domain.PoolNetFS, Name: name,
		Source: domain.PoolSource{Hosts: []domain.SourceHost{{Name: h.env.Host}}, Dir: export, Format: netfs.FormatNFS},
		Target: domain.PoolTarget{Path: target, Perms: domain.UnsetPerms()}}, nil
}

// FakeNFS is the host's netfs environment, the scripted mounts the netfs
// tests use: mount and umount only change a fake mount table (the files stay
// in the target directory, where the volume operations work on them for
// real), and refuse what the real ones refuse (a missing mount point, an
// unmount of what is not mounted). Every other command runs for real.
func FakeNFS(t *testing.T) (NetFSEnv, error) {
	mt := testkit.NewMountTable(t)
	r := &fakeMounts{table: mt, real: osexec.New(testkit.QuietLog()), mounted: map[string]bool{}}
	export := func(pool string) (string, error) { return "/export/" + pool, nil }
	return NetFSEnv{Host: "nfs.example.com", Export: export, Runner: r, Mountinfo: mt.Path}, nil
}

type fakeMounts struct {
	table *testkit.MountTable
	real  ports.CommandRunner

	mu      sync.Mutex
	mounted map[string]bool
}

func (f *fakeMounts) Run(ctx context.Context, cmd ports.Command) ([]byte, error) {
	argv := append([]string{cmd.Path}, cmd.Args...)
	if cmd.Path != "mount" && cmd.Path != "umount" {
		return f.real.Run(ctx, cmd)
	}
	if err := ctx.Err(); err != nil {
		return nil, &ports.ExitError{Argv: argv, Code: -1, Err: err}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	target := argv[len(argv)-1]
	if cmd.Path == "umount" {
		if !f.mounted[target] {
			return nil, &ports.ExitError{Argv: argv, Code: 32, Stderr: fmt.Sprintf("umount: %s: not mounted.\n", target)}
		}
		delete(f.mounted, target)
		f.table.Remove(target)
		return nil, nil
	}
	if st, err := os.Stat(target); err != nil || !st.IsDir() {
		return nil, &ports.ExitError{Argv: argv, Code: 32, Stderr: fmt.Sprintf("mount.nfs: mount point %s does not exist\n", target)}
	}
	f.mounted[target] = true
	f.table.Add(target, "nfs4", argv[len(argv)-2])
	return nil, nil
}
