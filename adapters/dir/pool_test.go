package dir_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/domain"
)

func TestPoolLifecycle(t *testing.T) {
	t.Parallel()
	b, _ := fakeBackend(t)
	ctx := context.Background()
	target := filepath.Join(t.TempDir(), "a", "b", "pool")
	def := &domain.PoolDef{Type: domain.PoolDir, Name: "p", Target: domain.PoolTarget{Path: target, Perms: domain.UnsetPerms()}}

	if b.Type() != domain.PoolDir || b.DefaultVolFormat() != "raw" {
		t.Fatalf("type %v format %s", b.Type(), b.DefaultVolFormat())
	}
	if err := b.ValidatePool(def); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.CheckPool(ctx, def); ok || err != nil {
		t.Fatalf("CheckPool before build = %v, %v", ok, err)
	}
	err := b.StartPool(ctx, def)
	wantErrText(t, err, domain.KindSystem, "cannot open directory '"+target+"': No such file or directory")
	// libvirt's virDirOpen (util code) reports it with no error domain.
	if d := domain.AsError(err).ErrorDomain(); d != domain.FromNone {
		t.Errorf("error domain %d, want %d", d, domain.FromNone)
	}
	if err := b.BuildPool(ctx, def, 0); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(target)
	if err != nil || st.Mode().Perm() != 0o711 {
		t.Fatalf("built dir: %v, mode %o", err, st.Mode().Perm())
	}
	if ok, err := b.CheckPool(ctx, def); !ok || err != nil {
		t.Fatalf("CheckPool after build = %v, %v", ok, err)
	}
	if err := b.StartPool(ctx, def); err != nil {
		t.Fatal(err)
	}
	// Rebuilding an existing dir keeps its mode unless one is given.
	if err := os.Chmod(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := b.BuildPool(ctx, def, 0); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(target); st.Mode().Perm() != 0o755 {
		t.Errorf("rebuild changed mode to %o", st.Mode().Perm())
	}
	def.Target.Perms.Mode = 0o750
	if err := b.BuildPool(ctx, def, 0); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(target); st.Mode().Perm() != 0o750 {
		t.Errorf("mode = %o, want 0750", st.Mode().Perm())
	}
	if err := os.WriteFile(filepath.Join(target, "f"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := b.StopPool(ctx, def); err != nil {
		t.Fatal(err)
	}
	err = b.DeletePool(ctx, def, 0)
	wantErrText(t, err, domain.KindSystem, "failed to remove pool '"+target+"': Directory not empty")
	if e := domain.AsError(err); e.Errno != int32(syscall.ENOTEMPTY) {
		t.Errorf("errno = %d", e.Errno)
	}
	os.Remove(filepath.Join(target, "f"))
	if err := b.DeletePool(ctx, def, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Errorf("target still there: %v", err)
	}
}

func TestPoolErrors(t *testing.T) {
	t.Parallel()
	b, _ := fakeBackend(t)
	ctx := context.Background()
	def := newPool(t)
	tests := []struct {
		name     string
		give     func() error
		wantKind domain.Kind
		wantText string
	}{
		{
			name:     "no target",
			give:     func() error { return b.ValidatePool(&domain.PoolDef{Name: "x"}) },
			wantKind: domain.KindXMLError, wantText: "XML error: missing storage pool target path",
		},
		{
			name:     "both overwrite flags",
			give:     func() error { return b.BuildPool(ctx, def, domain.PoolBuildOverwrite|domain.PoolBuildNoOverwrite) },
			wantKind: domain.KindInvalidArg,
			wantText: "Flags 'VIR_STORAGE_POOL_BUILD_OVERWRITE' and 'VIR_STORAGE_POOL_BUILD_NO_OVERWRITE' are mutually exclusive",
		},
		{
			name:     "overwrite on dir",
			give:     func() error { return b.BuildPool(ctx, def, domain.PoolBuildOverwrite) },
			wantKind: domain.KindOperationInvalid,
			wantText: "Requested operation is not valid: No source device specified when formatting pool 'p'",
		},
		{
			name:     "repair flag",
			give:     func() error { return b.BuildPool(ctx, def, domain.PoolBuildRepair) },
			wantKind: domain.KindInvalidArg,
			wantText: "unsupported flags (0x1) in function virStorageBackendFileSystemBuild",
		},
		{
			name:     "delete flags",
			give:     func() error { return b.DeletePool(ctx, def, 1) },
			wantKind: domain.KindInvalidArg,
			wantText: "unsupported flags (0x1) in function virStorageBackendDeleteLocal",
		},
		{
			name: "find sources",
			give: func() error {
				_, err := b.FindPoolSources(ctx, &domain.PoolSource{}, 0)
				return err
			},
			wantKind: domain.KindNoSupport,
			wantText: "this function is not supported by the connection driver: pool type 'dir' does not support source discovery",
		},
		{
			name: "relative target at start",
			give: func() error {
				return b.StartPool(ctx, &domain.PoolDef{Name: "r", Target: domain.PoolTarget{Path: "rel/dir"}})
			},
			wantKind: domain.KindSystem, wantText: "cannot open directory 'rel/dir': No such file or directory",
		},
		{
			name: "refresh of a missing dir",
			give: func() error {
				_, _, err := b.RefreshPool(ctx, &domain.PoolDef{Name: "m", Target: domain.PoolTarget{Path: "/nonexistent/pool"}})
				return err
			},
			wantKind: domain.KindSystem, wantText: "cannot open directory '/nonexistent/pool': No such file or directory",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErrText(t, tt.give(), tt.wantKind, tt.wantText)
		})
	}
	if err := b.ValidatePool(&domain.PoolDef{Name: "r", Target: domain.PoolTarget{Path: "rel"}}); err != nil {
		t.Errorf("a relative target is accepted at define: %v", err)
	}
}

func TestRefreshPool(t *testing.T) {
	t.Parallel()
	requireQemuImg(t)
	b := realBackend()
	pool := newPool(t)
	ctx := context.Background()
	dir := pool.Target.Path
	raw := newVol(t, b, pool, "disk.raw", "raw", 1<<20, nil)
	if err := b.BuildVol(ctx, pool, raw, 0); err != nil {
		t.Fatal(err)
	}
	q := newVol(t, b, pool, "disk.qcow2", "qcow2", 1<<30, func(v *domain.VolDef) {
		v.Backing = &domain.BackingStore{Path: raw.Target.Path, Format: "raw"}
	})
	if err := b.BuildVol(ctx, pool, q, 0); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dir, ".hidden"), []byte("x"), 0o644))
	must(os.Mkdir(filepath.Join(dir, "sub"), 0o755))
	must(unix.Mkfifo(filepath.Join(dir, "fifo"), 0o600))
	must(os.Symlink("/nonexistent/target", filepath.Join(dir, "dangling")))
	must(os.Symlink(raw.Target.Path, filepath.Join(dir, "link")))
	must(os.WriteFile(filepath.Join(dir, "bad\x01name"), nil, 0o644))
	must(os.WriteFile(filepath.Join(dir, "new\nline"), nil, 0o644))

	stats, vols, err := b.RefreshPool(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Capacity == 0 || stats.Allocation+stats.Available != stats.Capacity {
		t.Errorf("stats = %+v", stats)
	}
	var sfs unix.Statfs_t
	must(unix.Statfs(dir, &sfs))
	if stats.Capacity != sfs.Blocks*uint64(sfs.Frsize) {
		t.Errorf("capacity %d, statvfs says %d", stats.Capacity, sfs.Blocks*uint64(sfs.Frsize))
	}
	byName := map[string]*domain.VolDef{}
	for _, v := range vols {
		byName[v.Name] = v
	}
	for _, skipped := range []string{"fifo", "dangling", "bad\x01name"} {
		if byName[skipped] != nil {
			t.Errorf("%q listed", skipped)
		}
	}
	want := map[string]struct {
		typ    domain.VolType
		format string
		cap    uint64
	}{
		"disk.raw":   {domain.VolFile, "raw", 1 << 20},
		"disk.qcow2": {domain.VolFile, "qcow2", 1 << 30},
		".hidden":    {domain.VolFile, "raw", 1},
		"sub":        {domain.VolDir, "dir", 0},
		"link":       {domain.VolFile, "raw", 1 << 20},
		// libvirt lets tab, newline and carriage return through.
		"new\nline": {domain.VolFile, "raw", 0},
	}
	if len(vols) != len(want) {
		t.Errorf("got %d volumes, want %d", len(vols), len(want))
	}
	for name, w := range want {
		v := byName[name]
		if v == nil {
			t.Errorf("%s missing", name)
			continue
		}
		if v.Type != w.typ || v.Target.Format != w.format || v.Capacity != w.cap {
			t.Errorf("%s: type %v format %s cap %d, want %v %s %d", name, v.Type, v.Target.Format, v.Capacity, w.typ, w.format, w.cap)
		}
		if v.Key != filepath.Join(dir, name) || v.Target.Path != v.Key {
			t.Errorf("%s: key %s path %s", name, v.Key, v.Target.Path)
		}
		if v.Target.Timestamps == nil || v.Target.Timestamps.Mtime.IsZero() {
			t.Errorf("%s: no timestamps", name)
		}
	}
	if v := byName["disk.raw"]; v != nil && (v.Allocation != 1<<20 || v.Physical != 1<<20 || v.Target.Perms.Mode != 0o600) {
		t.Errorf("raw: alloc %d phys %d mode %o", v.Allocation, v.Physical, v.Target.Perms.Mode)
	}
	if v := byName["disk.qcow2"]; v != nil {
		if v.Backing == nil || v.Backing.Path != raw.Target.Path || v.Backing.Format != "raw" {
			t.Errorf("qcow2 backing = %+v", v.Backing)
		}
		if v.Physical >= 1<<20 || v.Target.Compat != "" { // libvirt shows no compat for 0.10
			t.Errorf("qcow2: phys %d compat %s", v.Physical, v.Target.Compat)
		}
	}
}

func TestRefreshCancelled(t *testing.T) {
	t.Parallel()
	b, _ := fakeBackend(t)
	pool := newPool(t)
	for i := range 200 {
		if err := os.WriteFile(filepath.Join(pool.Target.Path, "f"+string(rune('a'+i%26))+string(rune('a'+i/26))), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := b.RefreshPool(ctx, pool); err == nil {
		t.Error("a cancelled refresh succeeded")
	}
}

// A pool refresh reports what libvirt's probe reads from a qcow2 header (the
// cluster size of every qcow2, compat and a features set for version 3); a
// volume's own refresh keeps what its definition said, as libvirt's does,
// until the next pool refresh.
func TestRefreshQcow2Target(t *testing.T) {
	t.Parallel()
	b := realBackend()
	pool := newPool(t)
	ctx := context.Background()
	type target struct {
		compat                   string
		cluster                  uint64
		features, lazy, extended bool
	}
	targetOf := func(v *domain.VolDef) target {
		return target{v.Target.Compat, v.Target.ClusterSize, v.Target.HasFeatures, v.Target.LazyRefcounts, v.Target.ExtendedL2}
	}
	tests := []struct {
		name        string
		give        func(*domain.VolDef)
		wantDefined target
		wantProbed  target
	}{
		{name: "default", give: func(*domain.VolDef) {},
			wantProbed: target{cluster: 65536}},
		{name: "compat 0.10", give: func(v *domain.VolDef) { v.Target.Compat = "0.10" },
			wantDefined: target{compat: "0.10"}, wantProbed: target{cluster: 65536}},
		{name: "compat 1.1", give: func(v *domain.VolDef) { v.Target.Compat = "1.1" },
			wantDefined: target{compat: "1.1"}, wantProbed: target{compat: "1.1", cluster: 65536, features: true}},
		{name: "lazy", give: func(v *domain.VolDef) {
			v.Target.Compat, v.Target.HasFeatures, v.Target.LazyRefcounts = "1.1", true, true
		},
			wantDefined: target{compat: "1.1", features: true, lazy: true},
			wantProbed:  target{compat: "1.1", cluster: 65536, features: true, lazy: true}},
		{name: "cluster 4k", give: func(v *domain.VolDef) { v.Target.ClusterSize = 4096 },
			wantDefined: target{cluster: 4096}, wantProbed: target{cluster: 4096}},
	}
	for i, tt := range tests {
		vol := newVol(t, b, pool, fmt.Sprintf("v%d.qcow2", i), "qcow2", 1<<20, tt.give)
		if err := b.BuildVol(ctx, pool, vol, 0); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if err := b.RefreshVol(ctx, pool, vol); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := targetOf(vol); got != tt.wantDefined {
			t.Errorf("%s: after the volume's refresh %+v, want %+v", tt.name, got, tt.wantDefined)
		}
	}
	_, vols, err := b.RefreshPool(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vols {
		var i int
		if _, err := fmt.Sscanf(v.Name, "v%d.qcow2", &i); err != nil || i >= len(tests) {
			t.Fatalf("unexpected volume %s", v.Name)
		}
		if got := targetOf(v); got != tests[i].wantProbed {
			t.Errorf("%s: after a pool refresh %+v, want %+v", tests[i].name, got, tests[i].wantProbed)
		}
	}
}
