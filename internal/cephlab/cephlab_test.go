package cephlab_test

import (
	"context"
	"os/exec"
	"syscall"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/cephlab"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// A cluster comes up serving rbd to cephx and to unauthenticated clients,
// and Stop leaves none of its daemons running.
func TestStartStop(t *testing.T) {
	if !cephlab.Available() {
		testkit.SkipOrFailInCI(t, cephlab.ErrUnavailable.Error())
	}
	ctx := context.Background()
	c, err := cephlab.Start(ctx, cephlab.Options{Dir: t.TempDir(), AllowNoAuth: true})
	if err != nil {
		t.Fatal(err)
	}
	pids := c.Pids()
	defer c.Stop()
	if len(pids) != 3 {
		t.Errorf("pids %v, want mon, mgr and osd", pids)
	}
	if _, err := c.Rbd(ctx, "create", "--size", "4M", c.Pool+"/x"); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("rbd", "-c", "/dev/null", "-m", c.MonHost, "--auth_supported=none", "ls", c.Pool).CombinedOutput()
	if err != nil || string(out) != "x\n" {
		t.Errorf("rbd ls without cephx: %v: %s", err, out)
	}
	c.Stop()
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("pid %d still running after Stop", pid)
		}
	}
}
