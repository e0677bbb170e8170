package faults_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// toolsUnder returns the pids of the processes (other than the daemon) whose
// command line mentions root: the daemon's external tools working in it.
func toolsUnder(root string, daemon int) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == daemon || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := bytes.Split(bytes.TrimRight(b, "\x00"), []byte{0})
		if len(args) == 0 || filepath.Base(string(args[0])) != "qemu-img" {
			continue
		}
		if bytes.Contains(b, []byte(root)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestCrashLeavesNoOrphanTool SIGKILLs the daemon while qemu-img converts a
// volume for it. The tool must die with the daemon: a qemu-img that outlives
// it keeps writing the half-made volume under the restarted daemon, which
// lists it as a volume whose size and content change behind its back (and
// which nobody will ever remove as a failed create).
func TestCrashLeavesNoOrphanTool(t *testing.T) {
	testkit.RequireTool(t, "virsh")
	testkit.RequireTool(t, "qemu-img")
	d := testkit.StartDaemon(t, testkit.DaemonOptions{})
	pool := filepath.Join(d.Root, "p")
	if err := os.Mkdir(pool, 0o755); err != nil {
		t.Fatal(err)
	}
	virsh := func(args ...string) {
		t.Helper()
		if _, errOut, code := d.Virsh(args...); code != 0 {
			t.Fatalf("virsh %s: %s", strings.Join(args, " "), errOut)
		}
	}
	virsh("pool-define-as", "p", "dir", "--target", pool)
	virsh("pool-start", "p")
	// A raw source full of data, so that converting it takes a while.
	data := bytes.Repeat([]byte("virtstoraged-faults!"), (128<<20)/20)
	if err := os.WriteFile(filepath.Join(pool, "src.img"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	virsh("pool-refresh", "p")
	xml := filepath.Join(d.Root, "copy.xml")
	if err := os.WriteFile(xml, []byte("<volume><name>copy.qcow2</name><capacity unit='MiB'>128</capacity><target><format type='qcow2'/></target></volume>"), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _, _ = d.Virsh("vol-create-from", "p", xml, "src.img", "--inputpool", "p")
	}()
	deadline := time.Now().Add(20 * time.Second)
	for len(toolsUnder(d.Root, d.Pid())) == 0 {
		select {
		case <-done:
			t.Skip("faults: the convert finished before it could be caught running")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("qemu-img convert never seen running")
		}
		time.Sleep(2 * time.Millisecond)
	}
	d.Kill()
	<-done
	// Give a dying child the moment the kernel needs to deliver its signal.
	time.Sleep(200 * time.Millisecond)
	orphans := toolsUnder(d.Root, 0)
	for _, pid := range orphans {
		if p, err := os.FindProcess(pid); err == nil {
			_ = p.Kill() // our own child's child: ended by its pid, not by name
		}
	}
	if len(orphans) > 0 {
		t.Errorf("qemu-img %v outlived the SIGKILLed daemon and went on writing %s", orphans, filepath.Join(pool, "copy.qcow2"))
	}
	d.Start(t)
	out, _, _ := d.Virsh("vol-list", "p")
	t.Logf("after the restart, vol-list p:\n%s", out)
}
