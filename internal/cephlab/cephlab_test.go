package cephlab_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/cephlab"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// A cluster comes up serving rbd to cephx and to unauthenticated clients, a
// client AddClient makes reaches its pool with its key, and Stop leaves none of its daemons running.
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
	// A client of AddClient's reaches its pool with its key alone.
	key, err := c.AddClient(ctx, "t", c.Pool)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte(key), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command("rbd", "-c", "/dev/null", "-m", c.MonHost, "--id", "t", "--keyfile", keyFile, "--auth_supported=cephx", "ls", c.Pool).CombinedOutput()
	if err != nil || string(out) != "x\n" {
		t.Errorf("rbd ls as client.t: %v: %s", err, out)
	}
	c.Stop()
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("pid %d still running after Stop", pid)
		}
	}
}
