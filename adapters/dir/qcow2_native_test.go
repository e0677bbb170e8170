package dir_test

import (
	"context"
	"os/exec"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/domain"
)

// The common qcow2 creates are written in process: the fake runner expects no
// command, so any qemu-img call fails the test.
func TestQcow2NativeByDefault(t *testing.T) {
	t.Parallel()
	b, f := fakeBackend(t)
	pool := newPool(t)
	ctx := context.Background()
	vol := newVol(t, b, pool, "n.qcow2", "qcow2", 1<<30, nil)
	if err := b.BuildVol(ctx, pool, vol, 0); err != nil {
		t.Fatal(err)
	}
	if n := len(f.RunLog()); n != 0 {
		t.Fatalf("native create ran %d commands: %v", n, f.RunLog())
	}
	got := &domain.VolDef{Name: vol.Name, Target: domain.VolTarget{Path: vol.Target.Path}}
	if err := b.RefreshVol(ctx, pool, got); err != nil {
		t.Fatal(err)
	}
	// The figures libvirt shows for a qemu-img made 1 GiB compat 0.10 qcow2.
	if got.Target.Format != "qcow2" || got.Capacity != 1<<30 || got.Physical != 196624 || got.Target.Perms.Mode != 0o600 {
		t.Errorf("native qcow2: format %s capacity %d physical %d mode %o", got.Target.Format, got.Capacity, got.Physical, got.Target.Perms.Mode)
	}
	requireQemuImg(t)
	if out, err := exec.Command("qemu-img", "check", "-f", "qcow2", vol.Target.Path).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img check: %v\n%s", err, out)
	}
}
