package rbde2e_test

import (
	"context"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/adapters/osexec"
	"github.com/virtstoraged-go/virtstoraged/adapters/rbd"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// The fault tests bound how long a failing call may take. The daemons run
// with rbd_timeout = 5: Ceph gives up after 5 s and the backend kills a
// command 5 s later at most (timeoutGrace); faultBound adds as much again
// for process start-up and virsh on a loaded machine. It is an upper bound
// on a call that must not hang, not a measure of speed.
const faultBound = 20 * time.Second

// keyLookup is the test's secret driver: it hands out one key.
type keyLookup struct{ key string }

func (k keyLookup) CephKey(ctx context.Context, auth domain.PoolAuth) ([]byte, error) {
	return base64.StdEncoding.DecodeString(k.key)
}

// argvRecorder runs commands for real and keeps their command lines.
type argvRecorder struct {
	ports.CommandRunner
	argv [][]string
}

func (r *argvRecorder) Run(ctx context.Context, cmd ports.Command) ([]byte, error) {
	r.argv = append(r.argv, append([]string{cmd.Path}, cmd.Args...))
	return r.CommandRunner.Run(ctx, cmd)
}

// TestCephxKey runs the backend in-process with cephx and a key from a
// secret lookup, as the daemon will with libvirt's secret driver: the right
// key works; the key never reaches a command line, and no key file outlives
// its command; a wrong key fails within the timeout with libvirt's text.
func TestCephxKey(t *testing.T) {
	needLab(t)
	ctx := context.Background()
	host, port, _ := strings.Cut(lab.MonHost, ":")
	p, _ := strconv.Atoi(port)
	def := &domain.PoolDef{
		Type: domain.PoolRBD, Name: "cx", UUID: domain.UUID{1},
		Source: domain.PoolSource{
			Hosts: []domain.SourceHost{{Name: host, Port: p}}, Name: lab.Pool,
			Auth: &domain.PoolAuth{Type: "ceph", Username: "libvirt", SecretUUID: cephSecretUUID},
		},
	}
	keyDir := t.TempDir()
	rec := &argvRecorder{CommandRunner: osexec.New(nil)}
	b := rbd.New(rec, rbd.Config{Timeout: 5 * time.Second, Secrets: keyLookup{libvirtKey}, KeyDir: keyDir}, nil)
	if err := b.StartPool(ctx, def); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.RefreshPool(ctx, def); err != nil {
		t.Fatalf("refresh with the right key: %v", err)
	}
	vol := &domain.VolDef{Name: "cephx-vol", Capacity: 4 << 20, HasCapacity: true}
	if err := b.PrepareVol(def, vol); err != nil {
		t.Fatal(err)
	}
	if err := b.BuildVol(ctx, def, vol, 0); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteVol(ctx, def, vol, 0); err != nil {
		t.Fatal(err)
	}
	for _, argv := range rec.argv {
		if strings.Contains(strings.Join(argv, " "), libvirtKey) {
			t.Errorf("the key is on a command line: %q", argv)
		}
	}
	if left, _ := os.ReadDir(keyDir); len(left) != 0 {
		t.Errorf("key files left behind: %v", left)
	}

	wrong := rbd.New(osexec.New(nil), rbd.Config{Timeout: 5 * time.Second, Secrets: keyLookup{"AQCSOBdrgcQTBBAAU1FiCG33U0Ih9LSP0bjmaa=="}}, nil)
	start := time.Now()
	_, _, err := wrong.RefreshPool(ctx, def)
	if took := time.Since(start); took > faultBound {
		t.Errorf("a wrong key took %v to fail", took)
	}
	want := "failed to connect to the RADOS monitor on: " + lab.MonHost + ": Connection timed out"
	if err == nil || err.Error() != want {
		t.Errorf("wrong key: %v, want %q", err, want)
	}
	// Without a secret driver, a pool with auth fails as libvirt does.
	none := rbd.New(osexec.New(nil), rbd.Config{}, nil)
	if _, _, err := none.RefreshPool(ctx, def); err == nil || err.Error() != "no connection driver available for secret:///system" {
		t.Errorf("no secret driver: %v", err)
	}
}

// TestDeadClusterDoesNotStallOthers: while a pool whose monitor does not
// answer waits out its timeout, another pool of the same daemon serves
// calls, and the stuck call then fails with a clear error.
func TestDeadClusterDoesNotStallOthers(t *testing.T) {
	needLab(t)
	d, _ := startPool(t, "alive", "alive")
	// A listener that accepts and never answers: a monitor that hangs.
	dead := blackhole(t)
	f := t.TempDir() + "/dead.xml"
	if err := os.WriteFile(f, []byte("<pool type='rbd'><name>dead</name><source><host name='127.0.0.1' port='"+dead+"'/><name>rbd</name>"+cephAuthUsage+"</source></pool>"), 0o644); err != nil {
		t.Fatal(err)
	}
	must(t, d, "pool-define", f)
	deadDone := make(chan string, 1)
	start := time.Now()
	go func() {
		_, errOut, _ := d.Virsh("pool-start", "dead")
		deadDone <- errOut
	}()
	// These run while the dead pool's start waits for its monitor: the
	// monitor never answers, so the start cannot end before Ceph's 5 s
	// timeout, and each call below takes a fraction of that.
	must(t, d, "vol-create-as", "alive", "ok", "4M")
	must(t, d, "vol-list", "alive", "--details")
	must(t, d, "pool-info", "alive")
	select {
	case errOut := <-deadDone:
		t.Fatalf("the dead pool's start ended before the live pool's calls (%v): %s", time.Since(start), errOut)
	default:
	}
	select {
	case errOut := <-deadDone:
		if !strings.Contains(errOut, "failed to connect to the RADOS monitor on: 127.0.0.1:"+dead+": Connection timed out") {
			t.Errorf("dead pool start: %s", errOut)
		}
	case <-time.After(faultBound):
		t.Fatalf("the dead pool's start still runs after %v", faultBound)
	}
}

// blackhole listens on a free port, accepts connections and never writes.
func blackhole(t *testing.T) string {
	t.Helper()
	l, err := netListen()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	_, port, _ := strings.Cut(l.Addr().String(), ":")
	return port
}

// TestMonitorStopped: with the monitor gone, a call fails within the
// timeout with a clear error; the pool works again once it is back.
func TestMonitorStopped(t *testing.T) {
	needLab(t)
	ctx := context.Background()
	d, _ := startPool(t, "nomon", "nomon")
	lab.StopMon()
	start := time.Now()
	got := fails(t, d, "vol-create-as", "nomon", "v", "4M")
	took := time.Since(start)
	if err := lab.StartMon(); err != nil {
		t.Fatal(err)
	}
	if err := lab.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	if took > faultBound {
		t.Errorf("the call took %v with the monitor stopped", took)
	}
	if got != "error: failed to connect to the RADOS monitor on: "+lab.MonHost+": Connection timed out" {
		t.Errorf("error with the monitor stopped: %q", got)
	}
	must(t, d, "vol-create-as", "nomon", "v", "4M")
}

// TestOSDStoppedMidUpload: the OSD stops (SIGSTOP: it hangs, neither
// answering nor closing its connections) while an upload streams; the
// upload fails with a clear error instead of hanging, and the pool works
// once the OSD runs again.
func TestOSDStoppedMidUpload(t *testing.T) {
	needLab(t)
	ctx := context.Background()
	d, _ := startPool(t, "noosd", "noosd")
	must(t, d, "vol-create-as", "noosd", "big", "64M")

	cmd := exec.Command("virsh", "-c", d.URI(), "vol-upload", "--pool", "noosd", "big", "/dev/stdin")
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i)
	}
	// The first 8 MiB go in while the OSD is up, then it stops while more
	// keeps coming; the writer ends when virsh does (its stdin breaks).
	for range 8 {
		if _, err := stdin.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	lab.PauseOSD()
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			lab.ResumeOSD()
			if err := lab.WaitHealthy(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer resume()
	go func() {
		for range 56 {
			if _, err := stdin.Write(chunk); err != nil {
				break
			}
		}
		stdin.Close()
	}()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("the upload succeeded with the OSD stopped")
		}
		if took := time.Since(start); took > faultBound {
			t.Errorf("the upload took %v to fail", took)
		}
		if !strings.Contains(stderr.String(), "failed to upload to RBD image 'noosd/big': Connection timed out") {
			t.Errorf("upload error: %s", stderr.String())
		}
	case <-time.After(2 * faultBound):
		_ = cmd.Process.Kill()
		t.Fatalf("the upload still runs %v after the OSD stopped", 2*faultBound)
	}
	resume()
	// The pool works again. (Not yet the image itself: the upload that was
	// stopped still holds its exclusive lock until Ceph's watch timeout,
	// 30 s, lets another client break it.)
	must(t, d, "vol-create-as", "noosd", "after", "4M")
	src, want := dataFile(t, 4<<20)
	must(t, d, "vol-upload", "--pool", "noosd", "after", src)
	if got := sum(download(t, d, "noosd", "after")); got != want {
		t.Errorf("after the OSD came back: read %s, wrote %s", got, want)
	}
}

// TestCephxFaults: the ways a pool's key can be wrong, through virsh, with
// the key in libvirtd's secret driver. A wrong key fails the start within
// the timeout, with the errno Ceph gave (ETIMEDOUT: its monitor client
// retries a refused key until then); a secret the driver does not hold
// fails as libvirtd's own rbd driver does, to the text; a secret driver
// that is not there fails with the socket it tried. None leaves the pool
// running, and the right key still works afterwards.
func TestCephxFaults(t *testing.T) {
	needLab(t)
	newCephPool(t, "cxf")
	a := startSecrets(t)
	t.Cleanup(func() { a.CleanupPools("cx") })
	// A well-formed key that is not client.libvirt's.
	const wrongUUID, wrongUsage = "2ec115d7-3a88-3ceb-bc12-0ac909a6fd88", "client.libvirt wrong"
	defineKey(t, a, wrongUUID, wrongUsage, "AQCSOBdrgcQTBBAAU1FiCG33U0Ih9LSP0bjmaA==")
	d := startDaemon(t, a, "")

	// A wrong key.
	wrong := poolXML("cxwrong", "cxf", "<auth type='ceph' username='libvirt'><secret usage='"+wrongUsage+"'/></auth>", "")
	definePoolOnly(t, d, "cxwrong", wrong)
	start := time.Now()
	got := fails(t, d, "pool-start", "cxwrong")
	if took := time.Since(start); took > faultBound {
		t.Errorf("a wrong key took %v to fail", took)
	}
	// Ceph's monitor client retries a refused key until its mount timeout,
	// and that is the errno the call fails with.
	if want := "error: failed to connect to the RADOS monitor on: " + lab.MonHost + ": Connection timed out"; got != want {
		t.Errorf("wrong key:\n%s\nwant\n%s", got, want)
	}
	if info := must(t, d, "pool-info", "cxwrong"); !strings.Contains(info, "State:          inactive") {
		t.Errorf("a pool with a wrong key after its start:\n%s", info)
	}
	// Two pools may not share a source.
	must(t, d, "pool-undefine", "cxwrong")

	// A secret libvirt's driver does not hold, by usage and by UUID: the
	// same error as libvirtd's.
	for _, auth := range []string{
		"<auth type='ceph' username='libvirt'><secret usage='client.nobody secret'/></auth>",
		"<auth type='ceph' username='libvirt'><secret uuid='2ec115d7-3a88-3ceb-bc12-0ac909a6fd89'/></auth>",
	} {
		xml := poolXML("cxnone", "cxf", auth, "")
		var answers []string
		for _, v := range []virsher{a, d} {
			definePoolOnly(t, v, "cxnone", xml)
			answers = append(answers, fails(t, v, "pool-start", "cxnone"))
			must(t, v, "pool-undefine", "cxnone")
		}
		if answers[0] != answers[1] || answers[0] == "" {
			t.Errorf("a secret the driver does not hold (%s):\n--- ours\n%s\n--- libvirtd\n%s", auth, answers[1], answers[0])
		}
	}

	// No secret driver where the config says: the error names the socket.
	gone := filepath.Join(t.TempDir(), "virtsecretd-sock")
	nodrv := testkit.StartDaemon(t, testkit.DaemonOptions{Config: "rbd_timeout = 5\nsecret_driver_socket = \"" + gone + "\"\n"})
	definePoolOnly(t, nodrv, "cxdown", poolXML("cxdown", "cxf", cephAuthUsage, ""))
	start = time.Now()
	got = fails(t, nodrv, "pool-start", "cxdown")
	if took := time.Since(start); took > faultBound {
		t.Errorf("a missing secret driver took %v to fail", took)
	}
	if want := "error: Failed to connect socket to '" + gone + "': No such file or directory"; got != want {
		t.Errorf("no secret driver:\n%s\nwant\n%s", got, want)
	}

	// The right key works in the same daemon after all that.
	definePool(t, d, "cxright", poolXML("cxright", "cxf", cephAuthUsage, ""))
	must(t, d, "vol-create-as", "cxright", "v", "4M")
	must(t, d, "vol-delete", "--pool", "cxright", "v")
}
